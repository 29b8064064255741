import ArgumentParser
import TFCore
import TFData
import TFGallery
import TFModel

/// `transface gallery`: a 1:N gallery file of enrolled faces (TFGallery): enrol, search, list, remove.
struct GalleryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gallery",
        abstract: "Enrol faces into a gallery file and search it (1:N identification).",
        discussion: """
            A gallery holds unit-length embeddings of one model under identity labels; it refuses \
            another model's embeddings (it stores the model's fingerprint). Photos are embedded by \
            their main face (--detector, as `embed --detector`), flip-summed unless the model's \
            stored threshold was measured without flipping.
            Example: transface gallery enrol people.tfg --model vit_s.tfm --detector mtcnn.tfd --folder people/ && \
            transface gallery search people.tfg --model vit_s.tfm --detector mtcnn.tfd who.jpg
            """,
        subcommands: [GalleryEnrolCommand.self, GallerySearchCommand.self, GalleryListCommand.self, GalleryRemoveCommand.self])
}

/// The model and detector that turn photos into gallery embeddings.
struct GalleryModelOptions: ParsableArguments {
    @Option(name: .long, help: "The model file (.tfm).") var model: String
    @Option(name: .long, help: "The detector file (.tfd).") var detector: String
    @Option(name: .long, help: "Worker threads.") var threads = 1

    func load() throws -> PhotoEmbedder { try PhotoEmbedder(self) }
}

/// Photos to embeddings of their main face, with the model's gallery fingerprint.
struct PhotoEmbedder {
    let model: TransFaceModel
    let fingerprint: GalleryFingerprint
    let loader: FaceLoader
    let embedder: Embedder
    let flip: Bool

    init(_ options: GalleryModelOptions) throws {
        model = try CLISupport.loadModel(options.model)
        fingerprint = try GalleryFingerprint(model: model)
        let photos = try PhotoFaces(detector: options.detector, threads: options.threads)
        loader = FaceLoader(model: model, landmarks: try LandmarkSource(nil), aligned: false, detector: photos)
        embedder = try CLISupport.embedder(model, threads: options.threads, maxBatch: 1)
        flip = VerificationThreshold.storedFlip(model)
    }

    /// The embedding of the main face of the photo at `path`; notFound when it has no face.
    func embedding(_ path: String) throws -> [Float] {
        try embedFaces(embedder, faces: try loader.face(path), count: 1, flip: flip)
    }
}

/// `transface gallery list`: the enrolled identities.
struct GalleryListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List a gallery's identities and embedding counts.")

    @Argument(help: "The gallery file.") var gallery: String
    @Flag(name: .long, help: "One JSON object: {\"gallery\", \"model\", \"embeddings\", \"identities\": [{\"label\", \"count\", \"metadata\"}]}.")
    var json = false

    func run() throws {
        let g = try Gallery.open(path: gallery, fingerprint: nil, options: GalleryOptions(readOnly: true))
        defer { g.close() }
        let identities = try g.list()
        if json {
            let items = identities.map { i in
                let meta = i.metadata.sorted { $0.key < $1.key }.map { "\(JSONText.quoted($0.key)): \(JSONText.quoted($0.value))" }
                return "{\"label\": \(JSONText.quoted(i.label)), \"count\": \(i.count), \"metadata\": {\(meta.joined(separator: ", "))}}"
            }
            print("{\"gallery\": \(JSONText.quoted(gallery)), \"model\": \(JSONText.quoted(g.fingerprint.description)), \"embeddings\": \(g.count), \"identities\": [\(items.joined(separator: ", "))]}")
            return
        }
        print("\(gallery): \(identities.count) identit\(identities.count == 1 ? "y" : "ies"), \(g.count) embedding\(g.count == 1 ? "" : "s") (model \(g.fingerprint))")
        let width = identities.map(\.label.count).max() ?? 0
        for i in identities { print("  \(CLISupport.pad(i.label, width))  \(i.count)") }
    }
}

/// `transface gallery remove`: drops every embedding of one label.
struct GalleryRemoveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "remove", abstract: "Remove an identity (all its embeddings) from a gallery.")

    @Argument(help: "The gallery file.") var gallery: String
    @Option(name: .long, help: "The identity's label.") var label: String

    func run() throws {
        guard DataFiles.isFile(gallery) else { throw TransFaceError.notFound("gallery '\(gallery)' does not exist") }
        let g = try Gallery.open(path: gallery, fingerprint: nil)
        defer { g.close() }
        let n = try g.remove(label: label)
        print("removed '\(label)' (\(n) embedding\(n == 1 ? "" : "s")) from \(gallery)")
    }
}
