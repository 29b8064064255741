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

    static let thresholdKey = "verification_threshold"

    @Argument(help: "The model file (.tfm).") var model: String
    @Argument(help: "First image.") var a: String
    @Argument(help: "Second image.") var b: String
    @OptionGroup var faces: FaceInputOptions
    @Flag(inversion: .prefixedNo, help: "Add the mirrored images' embeddings (default: as the stored threshold was made, else on).") var flip: Bool?
    @Option(name: .long, help: "Cosine threshold: 'same' at or above it.") var threshold: Double?

    func run() throws {
        if let t = threshold, !(t.isFinite && t >= -1 && t <= 1) { throw CLISupport.usage("--threshold \(t) is outside [-1, 1]") }
        let m = try CLISupport.loadModel(model)
        let loader = try faces.loader(for: m, images: 2)
        let faces = try loader.face(a) + loader.face(b)
        let useFlip = flip ?? (threshold == nil ? m.metadataValue("verification_threshold_flip").map { $0 == "true" } : nil) ?? true
        let emb = try embedFaces(try CLISupport.embedder(m, threads: 1), faces: faces, count: 2, flip: useFlip)
        let e = m.config.embeddingSize
        var dot = 0.0
        for i in 0..<e { dot += Double(emb[i]) * Double(emb[e + i]) }
        print("cosine \(CLISupport.fixed(dot, 4))")
        var t = threshold, origin = "--threshold"
        if t == nil, let stored = m.metadataValue(Self.thresholdKey) {
            guard let v = Double(stored), v.isFinite else { throw TransFaceError.format("'\(model)': metadata \(Self.thresholdKey) '\(stored.prefix(40))' is not a number") }
            t = v
            let far = m.metadataValue("verification_threshold_far").map { " at FAR \($0)" } ?? ""
            let set = m.metadataValue("verification_threshold_set").map { " on \($0)" } ?? ""
            origin = "stored in the model\(far)\(set)"
        }
        guard let t else {
            print("no threshold is set (give --threshold, or store one with `transface eval --set-threshold-far`)")
            return
        }
        print("threshold \(CLISupport.fixed(t, 4)) (\(origin))")
        print(dot >= t ? "same person" : "different people")
    }
}
