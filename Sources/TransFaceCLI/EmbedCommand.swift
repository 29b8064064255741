import ArgumentParser
import TFCore
import TFModel

/// `transface embed`: unit-length embeddings of face images, as .npy, JSON or JSON on stdout.
struct EmbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Embed face images (unit-length vectors) to .npy or JSON.",
        discussion: """
            Each image is decoded (JPEG, PNG, PGM/PPM) and aligned to the model's template with its \
            5 landmarks (--landmarks: a TSV table looked up by the image path relative to --root, \
            or as given; or 10 inline numbers for a single image). Images without landmarks that \
            are already the model's input size (112x112) are used as they are, as are all images \
            with --aligned. With --detector, images without landmarks get their main face \
            detected (MTCNN; the largest centre-weighted face) and aligned; --all-faces embeds \
            every face found instead (a photo without any adds no row; it is reported on stderr).
            Output: -o OUT.npy writes float32 [N, E] plus OUT.names.txt (one image per line); \
            -o OUT.json writes [{"image": ..., "embedding": [...]}]; without -o the JSON goes to stdout. \
            With --all-faces each row is one face: the JSON adds "face" (its index, largest box \
            first) and "box" [x1, y1, x2, y2], and the names file lists PATH<TAB>FACE.
            Example: transface embed vit_s.tfm a.jpg b.jpg --landmarks lm.tsv -o emb.npy
            """)

    @Argument(help: "The model file (.tfm).") var model: String
    @Argument(help: "Image files.") var images: [String]
    @OptionGroup var faces: FaceInputOptions
    @Flag(name: .long, help: "Add the mirrored image's embedding before normalising (as eval does).") var flip = false
    @Flag(name: .long, help: "With --detector: embed every face found, not only the main one.") var allFaces = false
    @Option(name: .long, help: "Worker threads.") var threads = 1
    @Option(name: .shortAndLong, help: "Output file: .npy or .json (default: JSON on stdout).") var output: String?

    func validate() throws {
        guard !images.isEmpty else { throw ValidationError("no image given") }
        if allFaces && faces.detector == nil { throw ValidationError("--all-faces needs --detector") }
        if let o = output, !["npy", "json"].contains(CLISupport.lowercasedExtension(o)) {
            throw ValidationError("-o '\(o)' must end in .npy or .json")
        }
    }

    /// One embedded face: its image and, with --all-faces, its index and box.
    struct Row {
        var image: String
        var face: (index: Int, box: [Float])?
    }

    func run() throws {
        let m = try CLISupport.loadModel(model)
        let loader = try faces.loader(for: m, images: images.count)
        let embedder = try CLISupport.embedder(m, threads: threads)
        let e = m.config.embeddingSize, faceBytes = m.config.imgSize * m.config.imgSize * 3
        let start = CLISupport.now()
        var all: [Float] = [], rows: [Row] = []
        all.reserveCapacity(images.count * e)
        var chunkStart = 0
        while chunkStart < images.count {
            let chunk = images[chunkStart..<min(images.count, chunkStart + 64)]
            var pixels: [UInt8] = []
            for path in chunk {
                guard allFaces else {
                    pixels += try loader.face(path)
                    rows.append(Row(image: path))
                    continue
                }
                let found = try loader.allFaces(path)
                if found.isEmpty { CLISupport.warn("embed", "no face found in '\(path)'") }
                for (i, f) in found.enumerated() {
                    pixels += f.pixels
                    rows.append(Row(image: path, face: (i, f.face.box)))
                }
            }
            if !pixels.isEmpty { all += try embedFaces(embedder, faces: pixels, count: pixels.count / faceBytes, flip: flip) }
            chunkStart += chunk.count
        }
        let seconds = CLISupport.now() - start
        guard let output else {
            print(json(rows, all, e))
            return
        }
        if CLISupport.lowercasedExtension(output) == "npy" {
            try CLISupport.write(CLISupport.npy(all, rows: rows.count, cols: e), to: output)
            let names = String(output.dropLast(4)) + ".names.txt"
            try CLISupport.write(rows.map { r in r.face.map { "\(r.image)\t\($0.index)" } ?? r.image }.joined(separator: "\n") + "\n", to: names)
            print("wrote \(output) (\(rows.count) x \(e) float32) and \(names)")
        } else {
            try CLISupport.write(json(rows, all, e) + "\n", to: output)
            print("wrote \(output) (\(rows.count) embeddings of \(e))")
        }
        print("embedded \(rows.count) \(allFaces ? "face" : "image")\(rows.count == 1 ? "" : "s") in \(CLISupport.fixed(seconds, 2)) s (\(CLISupport.fixed(Double(rows.count) / max(seconds, 1e-9), 1)) images/s, \(threads) thread\(threads == 1 ? "" : "s"))")
    }

    func json(_ rows: [Row], _ all: [Float], _ e: Int) -> String {
        "[\n" + rows.enumerated().map { i, r in
            let face = r.face.map { ", \"face\": \($0.index), \"box\": \(CLISupport.jsonArray($0.box[...]))" } ?? ""
            return "  {\"image\": \(JSONText.quoted(r.image))\(face), \"embedding\": \(CLISupport.jsonArray(all[(i * e)..<((i + 1) * e)]))}"
        }.joined(separator: ",\n") + "\n]"
    }
}
