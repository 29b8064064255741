import ArgumentParser
import TFCore
import TFData
import TFDetect
import TFImage
import TFModel

#if canImport(Glibc)
import Glibc
#endif

/// Shared helpers of the subcommands: model loading, faces from image files (+ landmarks),
/// output writing (text, NPY, JSON), small formatting.
enum CLISupport {
    /// A usage error of a subcommand (reported as one line, exit 1).
    static func usage(_ message: String) -> TransFaceError { .invalidArgument(message) }

    static func loadModel(_ path: String) throws -> TransFaceModel {
        guard DataFiles.isFile(path) else { throw TransFaceError.notFound("model file '\(path)' does not exist") }
        return try ModelFile.load(path: path)
    }

    static func embedder(_ model: TransFaceModel, threads: Int, maxBatch: Int = 16) throws -> Embedder {
        try require((1...256).contains(threads), "--threads \(threads) is outside 1...256")
        return try Embedder(model: model, threads: threads, maxBatch: maxBatch)
    }

    /// Writes text atomically.
    static func write(_ text: String, to path: String) throws { try write(Array(text.utf8), to: path) }

    static func write(_ bytes: [UInt8], to path: String) throws {
        let w = try AtomicFileWriter(path: path)
        try w.write(bytes)
        try w.commit()
    }

    /// `.npy` (format 1.0) of a float32 `rows × cols` matrix, little-endian, C order.
    static func npy(_ values: [Float], rows: Int, cols: Int) -> [UInt8] {
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(rows), \(cols)), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)]
        out += Array(header.utf8)
        out.reserveCapacity(out.count + values.count * 4)
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { out += $0 } }
        return out
    }

    /// A JSON array of numbers (shortest round-trip text; non-finite as null).
    static func jsonArray(_ v: ArraySlice<Float>) -> String {
        "[" + v.map { $0.isFinite ? "\($0)" : "null" }.joined(separator: ", ") + "]"
    }

    static func fixed(_ x: Double, _ digits: Int) -> String {
        guard x.isFinite else { return x.isNaN ? "nan" : (x > 0 ? "inf" : "-inf") }
        var s = 1.0
        for _ in 0..<digits { s *= 10 }
        let v = (abs(x) * s).rounded()
        let i = Int(v), scale = Int(s)
        var frac = String(i % scale)
        while frac.count < digits { frac = "0" + frac }
        return (x < 0 && i != 0 ? "-" : "") + (digits == 0 ? "\(i)" : "\(i / scale).\(frac)")
    }

    static func pad(_ s: String, _ width: Int, right: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, width - s.count))
        return right ? fill + s : s + fill
    }

    /// The file name without folders and (one) extension.
    static func stem(_ path: String) -> String {
        let base = path.split(separator: "/").last.map(String.init) ?? path
        guard let dot = base.lastIndex(of: "."), dot != base.startIndex else { return base }
        return String(base[..<dot])
    }

    static func lowercasedExtension(_ path: String) -> String {
        let base = path.split(separator: "/").last.map(String.init) ?? path
        guard let dot = base.lastIndex(of: ".") else { return "" }
        return base[base.index(after: dot)...].lowercased()
    }

    /// A note on stderr that does not stop the command (`transface SUBCOMMAND: message`).
    static func warn(_ command: String, _ message: String) { fputs("transface \(command): \(message)\n", stderr) }

    static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }

    static func base64(_ bytes: [UInt8]) -> String {
        let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i < bytes.count {
            let b0 = Int(bytes[i]), b1 = i + 1 < bytes.count ? Int(bytes[i + 1]) : 0, b2 = i + 2 < bytes.count ? Int(bytes[i + 2]) : 0
            out.append(table[b0 >> 2])
            out.append(table[(b0 & 3) << 4 | b1 >> 4])
            out.append(i + 1 < bytes.count ? table[(b1 & 15) << 2 | b2 >> 6] : UInt8(ascii: "="))
            out.append(i + 2 < bytes.count ? table[b2 & 63] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Where the 5 landmarks of an image come from: inline numbers or a landmark table (TSV).
struct LandmarkSource {
    var inline: [Float]?
    var table: LandmarkTable?
    var root: String?

    /// `spec`: "x1,y1,...,x5,y5" (10 numbers) or the path of a LandmarkTable file; nil: none.
    init(_ spec: String?, root: String? = nil) throws {
        self.root = root
        guard let spec else { return }
        let parts = spec.split(separator: ",", omittingEmptySubsequences: false)
        if parts.count > 1 {
            let v = parts.map { Float($0.trimmingSpaces) }
            guard v.count == 10, v.allSatisfy({ $0 != nil && $0!.isFinite }) else {
                throw CLISupport.usage("--landmarks '\(spec.prefix(60))' is neither 10 comma-separated numbers (x1,y1,...,x5,y5) nor a file")
            }
            inline = v.map { $0! }
        } else {
            guard DataFiles.isFile(spec) else { throw TransFaceError.notFound("landmark file '\(spec)' does not exist") }
            table = try LandmarkTable(path: spec)
        }
    }

    var isEmpty: Bool { inline == nil && table == nil }

    /// The landmarks of `image`: inline ones, or the table's row for the path relative to
    /// `root` (when under it), as given, or without a leading "./".
    func points(for image: String) -> [Float]? {
        if let inline { return inline }
        guard let table else { return nil }
        var keys: [String] = []
        if let root, !root.isEmpty {
            let r = root.hasSuffix("/") ? root : root + "/"
            if image.hasPrefix(r) { keys.append(String(image.dropFirst(r.count))) }
        }
        keys.append(image)
        if image.hasPrefix("./") { keys.append(String(image.dropFirst(2))) }
        for k in keys { if let p = table.points(for: k) { return p } }
        return nil
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while s.first == " " || s.first == "\t" { s = s.dropFirst() }
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return s
    }
}

/// The face-input options `embed`, `compare` and `patches` share.
struct FaceInputOptions: ParsableArguments {
    @Option(name: .long, help: "Landmarks: a table (TSV: path + 10 coordinates) or x1,y1,...,x5,y5 (one image).") var landmarks: String?
    @Option(name: .long, help: "Folder the table's paths are relative to.") var root: String?
    @Flag(name: .long, help: "Images are aligned input-size faces: no landmarks, no alignment.") var aligned = false
    @Option(name: .long, help: "A detector file (.tfd, from convert-detector): images without landmarks get their main face detected and aligned.")
    var detector: String?

    /// A loader for `images` images of `model`; inline landmarks fit one image only.
    func loader(for model: TransFaceModel, images: Int) throws -> FaceLoader {
        if aligned && detector != nil { throw CLISupport.usage("--aligned and --detector exclude each other") }
        let source = try LandmarkSource(landmarks, root: root)
        if source.inline != nil && images > 1 { throw CLISupport.usage("inline --landmarks fit one image; give a table for \(images) images") }
        return FaceLoader(model: model, landmarks: source, aligned: aligned, detector: try detector.map { try PhotoFaces(detector: $0) })
    }
}

/// Model-input faces from image files.
struct FaceLoader {
    let size: Int
    let template: [Float]
    let landmarks: LandmarkSource
    /// Use images as they are (they must be size × size).
    let aligned: Bool
    /// Finds the faces of images without landmarks.
    let detector: PhotoFaces?

    init(model: TransFaceModel, landmarks: LandmarkSource, aligned: Bool, detector: PhotoFaces? = nil) {
        size = model.config.imgSize
        template = model.preprocess.alignTemplate
        self.landmarks = landmarks
        self.aligned = aligned
        self.detector = detector
    }

    /// Decodes `path`; aligns it with its landmarks, else with its detected main face (with a
    /// detector), or takes it as is when `--aligned` or when it has no landmarks and is already
    /// size × size.
    func face(_ path: String) throws -> [UInt8] {
        let image = try PhotoFaces.decode(path)
        if !aligned, let points = try landmarks.points(for: path) ?? detector.map({ try mainLandmarks(image, path, $0) }) {
            return try PhotoFaces.align(image, landmarks: points, template: template, size: size, path: path)
        }
        guard image.width == size && image.height == size else {
            throw TransFaceError.invalidArgument(aligned
                ? "'\(path)' is \(image.width)x\(image.height); --aligned needs \(size)x\(size) faces"
                : "'\(path)' is \(image.width)x\(image.height) and has no landmarks: give --landmarks (5 points or a table listing it), --detector, or an aligned \(size)x\(size) face")
        }
        return image.pixels
    }

    /// The main face's landmarks; notFound when the detector finds none.
    private func mainLandmarks(_ image: RGBImage, _ path: String, _ detector: PhotoFaces) throws -> [Float] {
        guard let face = try detector.mainFace(in: image, path: path) else { throw TransFaceError.notFound("no face found in '\(path)'") }
        return face.landmarks
    }

    /// Every face the detector finds in `path` (largest box first), each aligned.
    func allFaces(_ path: String) throws -> [(face: DetectedFace, pixels: [UInt8])] {
        guard let detector else { throw CLISupport.usage("--all-faces needs --detector") }
        let image = try PhotoFaces.decode(path)
        return try detector.faces(in: image, path: path).map {
            ($0, try PhotoFaces.align(image, landmarks: $0.landmarks, template: template, size: size, path: path))
        }
    }
}

/// Embeds faces in chunks: unit-length embeddings (flip-summed when asked).
func embedFaces(_ embedder: Embedder, faces: [UInt8], count: Int, flip: Bool) throws -> [Float] {
    let c = embedder.model.config
    var out = [Float](repeating: 0, count: count * c.embeddingSize)
    try faces.withUnsafeBufferPointer { src in
        try out.withUnsafeMutableBufferPointer { dst in
            try embedder.embed(images: src.baseAddress!, count: count, width: c.imgSize, height: c.imgSize, flip: flip,
                               into: .init(embeddings: dst))
        }
    }
    return out
}
