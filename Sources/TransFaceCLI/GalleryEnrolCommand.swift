import ArgumentParser
import Foundation
import TFCore
import TFData
import TFGallery

/// `transface gallery enrol`: photos' main faces into a gallery, under one label or one per sub-folder.
struct GalleryEnrolCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enrol",
        abstract: "Enrol photos into a gallery (created if missing), under --label or one label per sub-folder of --folder.",
        discussion: """
            --folder DIR enrols every image (.jpg, .jpeg, .png, .pgm, .ppm) of each sub-folder \
            under the sub-folder's name. Each photo gives the embedding of its main face. A photo \
            without a face is reported on stderr and skipped; so is one that cannot be read, but \
            then the exit status is 1 (after the others are enrolled), as it is when nothing was enrolled.
            Example: transface gallery enrol people.tfg --model vit_s.tfm --detector mtcnn.tfd --label Ada ada1.jpg ada2.jpg
            """)

    @Argument(help: "The gallery file (created if missing).") var gallery: String
    @OptionGroup var options: GalleryModelOptions
    @Option(name: .long, help: "The identity the images are enrolled under.") var label: String?
    @Option(name: .long, help: "A folder of identities: one sub-folder of images each.") var folder: String?
    @Argument(help: "Images (with --label).") var images: [String] = []

    func validate() throws {
        guard (label == nil) != (folder == nil) else { throw ValidationError("give --label L IMAGE... or --folder DIR") }
        if label != nil && images.isEmpty { throw ValidationError("--label needs images") }
        if folder != nil && !images.isEmpty { throw ValidationError("--folder takes no images") }
    }

    func run() throws {
        let groups = try folder.map(Self.identities) ?? [(label!, images)]
        let photos = try options.load()
        let g = try Gallery.open(path: gallery, fingerprint: photos.fingerprint)
        defer { g.close() }
        var enrolled = 0, identities = 0, noFace = 0, unreadable = 0
        for (name, paths) in groups {
            var embeddings: [Float] = []
            for path in paths {
                do {
                    embeddings += try photos.embedding(path)
                } catch let error as TransFaceError {
                    CLISupport.warn("gallery enrol", "\(error.message): skipped")
                    if error.kind == .notFound && DataFiles.isFile(path) { noFace += 1 } else { unreadable += 1 }
                }
            }
            guard !embeddings.isEmpty else { continue }
            let n = try g.enrol(label: name, embeddings: embeddings, metadata: [:], fingerprint: photos.fingerprint).count
            print("enrolled \(n) photo\(n == 1 ? "" : "s") of '\(name)'")
            enrolled += n
            identities += 1
        }
        print("\(gallery): enrolled \(enrolled) embedding\(enrolled == 1 ? "" : "s") of \(identities) identit\(identities == 1 ? "y" : "ies")"
              + (noFace + unreadable > 0 ? "; skipped \(noFace) without a face, \(unreadable) unreadable" : "")
              + "; the gallery holds \(g.identityCount) identities")
        if unreadable > 0 || enrolled == 0 { throw ExitCode(1) }
    }

    static let imageExtensions: Set<String> = ["jpg", "jpeg", "png", "pgm", "ppm"]

    /// The sub-folders of `folder` (sorted) with their images (sorted); folders without images are left out.
    static func identities(_ folder: String) throws -> [(String, [String])] {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: folder) else { throw TransFaceError.notFound("folder '\(folder)' cannot be read") }
        var out: [(String, [String])] = []
        for name in names.sorted() where !name.hasPrefix(".") {
            let sub = folder + "/" + name
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: sub, isDirectory: &isDir), isDir.boolValue else { continue }
            let files = (try? fm.contentsOfDirectory(atPath: sub)) ?? []
            let images = files.sorted().filter { imageExtensions.contains(CLISupport.lowercasedExtension($0)) }.map { sub + "/" + $0 }
            if !images.isEmpty { out.append((name, images)) }
        }
        guard !out.isEmpty else { throw TransFaceError.notFound("folder '\(folder)' has no sub-folder with images") }
        return out
    }
}
