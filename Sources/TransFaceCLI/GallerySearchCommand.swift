import ArgumentParser
import TFCore
import TFGallery

/// `transface gallery search`: the closest identities to each photo's main face.
struct GallerySearchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Search a gallery with photos: the closest identities to each one's main face.",
        discussion: """
            Each identity scores its closest embedding's cosine; the --top best are listed, \
            marked "match" at or above --threshold, else the threshold stored in the model by \
            `transface eval --set-threshold-far` (without either only scores are shown). --json \
            prints one line per photo: {"image": PATH, "threshold": T or null, "matches": \
            [{"label": L, "score": S, "passes": true/false/null}]}. A photo without a face or that \
            cannot be read is reported on stderr and the others are still searched; the exit \
            status is then 1. The gallery must have been made with the same model.
            Example: transface gallery search people.tfg --model vit_s.tfm --detector mtcnn.tfd who.jpg --top 3
            """)

    @Argument(help: "The gallery file.") var gallery: String
    @OptionGroup var options: GalleryModelOptions
    @Argument(help: "Photos to identify.") var images: [String]
    @Option(name: .long, help: "Identities to list per photo.") var top = 5
    @Option(name: .long, help: "Cosine threshold for a match (default: the model's stored one).") var threshold: Double?
    @Flag(name: .long, help: "One JSON object per photo and line.") var json = false

    func validate() throws {
        guard !images.isEmpty else { throw ValidationError("no image given") }
        guard top >= 1 else { throw ValidationError("--top must be at least 1") }
    }

    func run() throws {
        let photos = try options.load()
        let t = try VerificationThreshold.resolve(threshold, model: photos.model, path: options.model)
        let g = try Gallery.open(path: gallery, fingerprint: photos.fingerprint, options: GalleryOptions(readOnly: true))
        defer { g.close() }
        if !json { print(t.map { "threshold \(CLISupport.fixed($0.value, 4)) (\($0.origin))" } ?? VerificationThreshold.missing) }
        var failed = 0
        for path in images {
            do {
                let query = try photos.embedding(path)
                // Without a threshold nothing can pass (scores are at most 1); `passes` is then not shown.
                let matches = try g.search(queries: query, k: top, threshold: Float(t?.value ?? 2), fingerprint: photos.fingerprint)[0]
                print(json ? jsonLine(path, matches, t) : table(path, matches, t))
            } catch let error as TransFaceError {
                CLISupport.warn("gallery search", error.message)
                failed += 1
            }
        }
        if failed > 0 { throw ExitCode(1) }
    }

    func jsonLine(_ path: String, _ matches: [GalleryMatch], _ t: VerificationThreshold?) -> String {
        let items = matches.map { m in
            "{\"label\": \(JSONText.quoted(m.label)), \"score\": \(m.score), \"passes\": \(t == nil ? "null" : "\(m.passes)")}"
        }
        return "{\"image\": \(JSONText.quoted(path)), \"threshold\": \(t.map { "\($0.value)" } ?? "null"), \"matches\": [\(items.joined(separator: ", "))]}"
    }

    func table(_ path: String, _ matches: [GalleryMatch], _ t: VerificationThreshold?) -> String {
        let width = matches.map(\.label.count).max() ?? 0
        return ([path + (matches.isEmpty ? ": the gallery is empty" : ":")] + matches.enumerated().map { i, m in
            "  \(CLISupport.pad("\(i + 1)", 2)) \(CLISupport.pad(m.label, width))  \(CLISupport.fixed(Double(m.score), 4))" + (t != nil && m.passes ? "  match" : "")
        }).joined(separator: "\n")
    }
}
