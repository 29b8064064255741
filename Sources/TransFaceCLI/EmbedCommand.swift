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
            with --aligned.
            Output: -o OUT.npy writes float32 [N, E] plus OUT.names.txt (one image per line); \
            -o OUT.json writes [{"image": ..., "embedding": [...]}]; without -o the JSON goes to stdout.
            Example: transface embed vit_s.tfm a.jpg b.jpg --landmarks lm.tsv -o emb.npy
            """)

    @Argument(help: "The model file (.tfm).") var model: String
    @Argument(help: "Image files.") var images: [String]
    @OptionGroup var faces: FaceInputOptions
    @Flag(name: .long, help: "Add the mirrored image's embedding before normalising (as eval does).") var flip = false
    @Option(name: .long, help: "Worker threads.") var threads = 1
    @Option(name: .shortAndLong, help: "Output file: .npy or .json (default: JSON on stdout).") var output: String?

    func validate() throws {
        guard !images.isEmpty else { throw ValidationError("no image given") }
        if let o = output, !["npy", "json"].contains(CLISupport.lowercasedExtension(o)) {
            throw ValidationError("-o '\(o)' must end in .npy or .json")
        }
    }

    func run() throws {
        let m = try CLISupport.loadModel(model)
        let loader = try faces.loader(for: m, images: images.count)
        let embedder = try CLISupport.embedder(m, threads: threads)
        let e = m.config.embeddingSize
        let start = CLISupport.now()
        var all: [Float] = []
        all.reserveCapacity(images.count * e)
        var chunkStart = 0
        while chunkStart < images.count {
            let chunk = images[chunkStart..<min(images.count, chunkStart + 64)]
            var faces: [UInt8] = []
            for path in chunk { faces += try loader.face(path) }
            all += try embedFaces(embedder, faces: faces, count: chunk.count, flip: flip)
            chunkStart += chunk.count
        }
        let seconds = CLISupport.now() - start
        guard let output else {
            print(json(all, e))
            return
        }
        if CLISupport.lowercasedExtension(output) == "npy" {
            try CLISupport.write(CLISupport.npy(all, rows: images.count, cols: e), to: output)
            let names = String(output.dropLast(4)) + ".names.txt"
            try CLISupport.write(images.joined(separator: "\n") + "\n", to: names)
            print("wrote \(output) (\(images.count) x \(e) float32) and \(names)")
        } else {
            try CLISupport.write(json(all, e) + "\n", to: output)
            print("wrote \(output) (\(images.count) embeddings of \(e))")
        }
        print("embedded \(images.count) image\(images.count == 1 ? "" : "s") in \(CLISupport.fixed(seconds, 2)) s (\(CLISupport.fixed(Double(images.count) / max(seconds, 1e-9), 1)) images/s, \(threads) thread\(threads == 1 ? "" : "s"))")
    }

    func json(_ all: [Float], _ e: Int) -> String {
        "[\n" + images.enumerated().map { i, path in
            "  {\"image\": \(JSONText.quoted(path)), \"embedding\": \(CLISupport.jsonArray(all[(i * e)..<((i + 1) * e)]))}"
        }.joined(separator: ",\n") + "\n]"
    }
}
