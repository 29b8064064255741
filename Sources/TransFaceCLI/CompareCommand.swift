import ArgumentParser
import TFCore
import TFModel

/// `transface compare`: the cosine of two faces and a same/different verdict.
struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare two face images: cosine similarity and a same/different verdict.",
        discussion: """
            The verdict uses --threshold, else the threshold `transface eval --set-threshold-far` \
            stored in the model file (metadata verification_threshold); without either only the \
            cosine is printed. Images are aligned as in `transface embed`. The exit status is 0 \
            whatever the verdict.
            Example: transface compare vit_s.tfm a.jpg b.jpg --landmarks lm.tsv
            """)

    @Argument(help: "The model file (.tfm).") var model: String
    @Argument(help: "First image.") var a: String
    @Argument(help: "Second image.") var b: String
    @OptionGroup var faces: FaceInputOptions
    @Flag(inversion: .prefixedNo, help: "Add the mirrored images' embeddings (default: as the stored threshold was made, else on).") var flip: Bool?
    @Option(name: .long, help: "Cosine threshold: 'same' at or above it.") var threshold: Double?

    func run() throws {
        let m = try CLISupport.loadModel(model)
        let t = try VerificationThreshold.resolve(threshold, model: m, path: model)
        let loader = try faces.loader(for: m, images: 2)
        let faces = try loader.face(a) + loader.face(b)
        let useFlip = flip ?? (threshold == nil ? VerificationThreshold.storedFlip(m) : true)
        let emb = try embedFaces(try CLISupport.embedder(m, threads: 1), faces: faces, count: 2, flip: useFlip)
        let e = m.config.embeddingSize
        var dot = 0.0
        for i in 0..<e { dot += Double(emb[i]) * Double(emb[e + i]) }
        print("cosine \(CLISupport.fixed(dot, 4))")
        guard let t else {
            print(VerificationThreshold.missing)
            return
        }
        print("threshold \(CLISupport.fixed(t.value, 4)) (\(t.origin))")
        print(dot >= t.value ? "same person" : "different people")
    }
}
