import TFCore
import TFData
import TFModel

/// Something that turns encoded face images into raw embeddings: the model (through
/// `ModelEmbeddingSource`), or a stand-in in tests.
public protocol FaceEmbeddingSource {
    var embeddingSize: Int { get }
    /// Raw (not normalised) embeddings of `images` (encoded bytes; `names` for messages), `count × E`,
    /// and of their mirror images when `mirrored` is requested. `landmarks[i]` (10 values) asks for
    /// 5-point alignment of image `i`; nil means the image is already an aligned input-size face.
    func embed(images: [[UInt8]], names: [String], landmarks: [[Float]?], mirrored: Bool) throws -> (original: [Float], mirrored: [Float]?)
}

/// How encoded images become model inputs: decoding and (optional) 5-point alignment.
public struct FacePreparer {
    public var decode: ImageDecodeFunction
    /// Aligns an RGB image with 5 landmarks (ArcFace order) to a `size × size` face using the
    /// template; nil when alignment is unavailable.
    public var align: ((_ pixels: [UInt8], _ width: Int, _ height: Int, _ landmarks: [Float], _ template: [Float], _ size: Int) throws -> [UInt8])?

    public init(decode: @escaping ImageDecodeFunction,
                align: ((_ pixels: [UInt8], _ width: Int, _ height: Int, _ landmarks: [Float], _ template: [Float], _ size: Int) throws -> [UInt8])? = nil) {
        self.decode = decode
        self.align = align
    }

    /// A model input (`size × size` RGB) from encoded bytes.
    public func prepare(_ bytes: [UInt8], name: String, landmarks: [Float]?, template: [Float], size: Int) throws -> [UInt8] {
        let img = try decode(bytes, name)
        if let lm = landmarks {
            guard let align else {
                throw TransFaceError(.misuse, "\(name): 5-point alignment is not available in this build")
            }
            do { return try align(img.pixels, img.width, img.height, lm, template, size) } catch let e as TransFaceError {
                throw TransFaceError(e.kind, "\(name): \(e.message)")
            }
        }
        guard img.width == size && img.height == size else {
            throw TransFaceError.format("\(name): image is \(img.width)x\(img.height); without landmarks images must be aligned \(size)x\(size) faces")
        }
        return img.pixels
    }
}

/// Embeddings from a model: decode (+ align), then the original and (optionally) the mirrored
/// image through the forward pass, raw.
public final class ModelEmbeddingSource: FaceEmbeddingSource {
    public let embedder: Embedder
    public let preparer: FacePreparer

    public init(embedder: Embedder, preparer: FacePreparer) {
        self.embedder = embedder
        self.preparer = preparer
    }

    public var embeddingSize: Int { embedder.model.config.embeddingSize }

    public func embed(images: [[UInt8]], names: [String], landmarks: [[Float]?], mirrored wantMirror: Bool) throws -> (original: [Float], mirrored: [Float]?) {
        let n = images.count
        guard n > 0 else { return ([], wantMirror ? [] : nil) }
        let size = embedder.model.config.imgSize
        let template = embedder.model.preprocess.alignTemplate
        let bytes = size * size * 3
        var batch = [UInt8](repeating: 0, count: n * bytes)
        for i in 0..<n {
            let face = try preparer.prepare(images[i], name: names[i], landmarks: landmarks[i], template: template, size: size)
            batch.replaceSubrange((i * bytes)..<((i + 1) * bytes), with: face)
        }
        let e = embeddingSize
        var original = [Float](repeating: 0, count: n * e)
        try batch.withUnsafeBufferPointer { src in
            try original.withUnsafeMutableBufferPointer { dst in
                try embedder.embed(images: src.baseAddress!, count: n, width: size, height: size, flip: false, normalize: false,
                                   into: .init(embeddings: dst))
            }
        }
        guard wantMirror else { return (original, nil) }
        mirrorImages(&batch, count: n, width: size, height: size)
        var mirrored = [Float](repeating: 0, count: n * e)
        try batch.withUnsafeBufferPointer { src in
            try mirrored.withUnsafeMutableBufferPointer { dst in
                try embedder.embed(images: src.baseAddress!, count: n, width: size, height: size, flip: false, normalize: false,
                                   into: .init(embeddings: dst))
            }
        }
        return (original, mirrored)
    }
}

/// Mirrors RGB images left-right in place.
public func mirrorImages(_ images: inout [UInt8], count: Int, width: Int, height: Int) {
    images.withUnsafeMutableBufferPointer { p in
        for row in 0..<(count * height) {
            var a = row * width * 3, b = a + (width - 1) * 3
            while a < b {
                for c in 0..<3 { p.swapAt(a + c, b + c) }
                a += 3; b -= 3
            }
        }
    }
}

/// Verification and IJB evaluation from images.
public enum Evaluation {
    /// Images per `FaceEmbeddingSource.embed` call (bounds memory).
    public static let chunk = 256

    /// Flip-summed embeddings of `images` (`count × E`, not normalised) and the XNorm sum and
    /// count (norms of every raw embedding, original and mirrored, as verification.py's
    /// `_xnorm`).
    static func embedAll(_ source: FaceEmbeddingSource, images: [[UInt8]], names: [String], landmarks: [[Float]?],
                         flip: Bool) throws -> (summed: [Float], xnormSum: Double, xnormCount: Int) {
        let e = source.embeddingSize
        var summed = [Float](repeating: 0, count: images.count * e)
        var xs = 0.0, xc = 0
        func addNorms(_ v: [Float]) {
            for r in 0..<(v.count / e) {
                var s = 0.0
                for j in 0..<e { s += Double(v[r * e + j]) * Double(v[r * e + j]) }
                xs += Double(Float(s.squareRoot())); xc += 1
            }
        }
        var start = 0
        var norms: [[Float]] = []
        while start < images.count {
            let end = min(images.count, start + chunk)
            let (o, m) = try source.embed(images: Array(images[start..<end]), names: Array(names[start..<end]),
                                          landmarks: Array(landmarks[start..<end]), mirrored: flip)
            guard o.count == (end - start) * e, !flip || m?.count == o.count else {
                throw TransFaceError(.internal, "embedding source returned \(o.count) values for \(end - start) images")
            }
            for i in 0..<o.count { summed[start * e + i] = o[i] }
            if let m { for i in 0..<m.count { summed[start * e + i] += m[i] } }
            addNorms(o)
            if let m { norms.append(m) }
            start = end
        }
        // official order: all original norms, then all mirrored norms
        for m in norms { addNorms(m) }
        return (summed, xs, xc)
    }

    /// A `.bin` set: images `2i`, `2i+1` are pair `i`.
    public static func verify(bin: VerificationBin, source: FaceEmbeddingSource, flip: Bool = true,
                              options: Verification.Options = .init(), name: String = ".bin") throws -> Verification.Report {
        let names = (0..<bin.images.count).map { "\(name) image \($0)" }
        let (emb, xs, xc) = try embedAll(source, images: bin.images, names: names,
                                         landmarks: [[Float]?](repeating: nil, count: bin.images.count), flip: flip)
        var report = try Verification.evaluate(embeddings1: emb, embeddings2: nil, issame: bin.issame, dim: source.embeddingSize, options: options)
        report.xnorm = xs / Double(xc)
        report.images = bin.images.count
        return report
    }

    public static func verify(binPath: String, source: FaceEmbeddingSource, flip: Bool = true,
                              options: Verification.Options = .init()) throws -> Verification.Report {
        try verify(bin: try VerificationBin.read(path: binPath), source: source, flip: flip, options: options, name: binPath)
    }

    /// A pairs list with images under `root`: each distinct image is embedded once. With a
    /// landmark table, images are aligned with the landmarks of their path (the first source in
    /// `preferring` that has them); an image without landmarks is then an error. Without one,
    /// images must be aligned input-size faces.
    public static func verify(pairs: PairList, root: String, landmarks: LandmarkTable? = nil, preferring: [String] = [],
                              source: FaceEmbeddingSource, flip: Bool = true,
                              options: Verification.Options = .init()) throws -> Verification.Report {
        let (paths, index) = pairs.uniqueImages()
        var images: [[UInt8]] = [], lms: [[Float]?] = []
        for p in paths {
            images.append(try DataFiles.readAll(try DataFiles.resolve(Substring(p), under: root, what: "pairs list"), limit: 1 << 30))
            if let table = landmarks {
                guard let lm = table.points(for: p, preferring: preferring) else {
                    throw TransFaceError.notFound("no landmarks for '\(p)'")
                }
                lms.append(lm)
            } else {
                lms.append(nil)
            }
        }
        let names = paths.map { root + "/" + $0 }
        let (emb, xs, xc) = try embedAll(source, images: images, names: names, landmarks: lms, flip: flip)
        let e = source.embeddingSize
        var e1 = [Float](repeating: 0, count: pairs.count * e), e2 = e1
        for (k, (a, b)) in index.enumerated() {
            e1.replaceSubrange((k * e)..<((k + 1) * e), with: emb[(a * e)..<((a + 1) * e)])
            e2.replaceSubrange((k * e)..<((k + 1) * e), with: emb[(b * e)..<((b + 1) * e)])
        }
        var report = try Verification.evaluate(embeddings1: e1, embeddings2: e2, issame: pairs.issame, dim: e, options: options)
        report.xnorm = xs / Double(xc)
        report.images = paths.count
        return report
    }

    /// IJB-B/C 1:1 from `<root>/loose_crop` and `<root>/meta` (see `IJB`): every image is
    /// aligned with its landmarks and embedded (with its mirror image for F1).
    public static func verifyIJB(root: String, target: String, source: FaceEmbeddingSource, options: IJB.Options = .init(),
                                 fars: [Double] = ROCCurve.standardFARs, name: String = "model") throws -> TARReport {
        try verifyIJB(meta: try IJB.loadMeta(root: root, target: target), imageRoot: root + "/loose_crop", source: source,
                      options: options, fars: fars, name: name)
    }

    /// IJB 1:1 of loaded meta files, with the images (`meta.imageNames`) under `imageRoot`.
    public static func verifyIJB(meta: IJB.Meta, imageRoot: String, source: FaceEmbeddingSource, options: IJB.Options = .init(),
                                 fars: [Double] = ROCCurve.standardFARs, name: String = "model") throws -> TARReport {
        let e = source.embeddingSize
        var original: [Float] = [], mirrored: [Float] = []
        original.reserveCapacity(meta.imageNames.count * e)
        var start = 0
        while start < meta.imageNames.count {
            let end = min(meta.imageNames.count, start + chunk)
            var imgs: [[UInt8]] = [], names: [String] = []
            for i in start..<end {
                let path = try DataFiles.resolve(Substring(meta.imageNames[i]), under: imageRoot, what: "IJB image list")
                imgs.append(try DataFiles.readAll(path, limit: 1 << 30)); names.append(path)
            }
            let (o, m) = try source.embed(images: imgs, names: names, landmarks: meta.landmarks[start..<end].map { Optional($0) },
                                          mirrored: options.flip)
            original += o
            if let m { mirrored += m }
            start = end
        }
        return try IJB.evaluate(meta: meta, original: original, mirrored: options.flip ? mirrored : nil, dim: e, options: options,
                                fars: fars, name: IJB.methodName(name, options))
    }
}
