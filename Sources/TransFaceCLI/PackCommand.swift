import ArgumentParser
import TFCore
import TFData
import TFWiring

/// `transface pack`: an image folder or list file into an InsightFace/MXNet RecordIO set.
struct PackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pack",
        abstract: "Pack face images into a RecordIO training set (.rec, .idx, property).",
        discussion: """
            Source: a folder with one sub-folder per identity (labels in sorted folder order), or \
            --list FILE with 'path<TAB>label' lines (paths relative to --root, default the list's \
            folder). Files are stored as they are unless --transcode-jpeg re-encodes non-JPEG \
            images. --legacy writes the identity-indexed layout of MS1MV2 (header and identity \
            records); the default is the flat layout. The `property` file goes beside OUT.rec.
            Example: transface pack faces/ -o train/train.rec --transcode-jpeg 95
            """)

    @Argument(help: "Image folder (one sub-folder per identity).") var folder: String?
    @Option(name: .long, help: "List file of 'path<TAB>label' lines instead of a folder.") var list: String?
    @Option(name: .long, help: "Folder the list's paths are relative to (default: the list's folder).") var root: String?
    @Option(name: .shortAndLong, help: "Output .rec file (its .idx and property go beside it).") var output: String
    @Option(name: .long, help: "Re-encode non-JPEG images as JPEG of this quality (1-100).") var transcodeJpeg: Int?
    @Flag(name: .long, help: "Legacy identity-indexed layout (face2rec2 / MS1MV2).") var legacy = false
    @Option(name: .long, help: "Image size written to `property`.") var size = 112

    func validate() throws {
        guard (folder == nil) != (list == nil) else { throw ValidationError("give an image folder or --list FILE (exactly one)") }
        guard root == nil || list != nil else { throw ValidationError("--root only applies to --list") }
        guard output.hasSuffix(".rec") else { throw ValidationError("-o '\(output)' must end in .rec") }
        if let q = transcodeJpeg, !(1...100).contains(q) { throw ValidationError("--transcode-jpeg \(q) is outside 1...100") }
        guard (1...65536).contains(size) else { throw ValidationError("--size \(size) is outside 1...65536") }
    }

    func run() throws {
        let images: LabeledImageList
        if let folder {
            guard DataFiles.isDirectory(folder) else { throw TransFaceError.notFound("image folder '\(folder)' does not exist") }
            images = try LabeledImageList.imageFolder(folder)
        } else {
            guard DataFiles.isFile(list!) else { throw TransFaceError.notFound("list file '\(list!)' does not exist") }
            images = try LabeledImageList.listFile(list!, root: root)
        }
        var options = RecordIOPacker.Options()
        options.layout = legacy ? .legacy : .flat
        options.width = size
        options.height = size
        options.name = CLISupport.stem(output)
        if let q = transcodeJpeg { options.transcode = RecordIOPacker.jpegTranscoder(quality: q) }
        let dir = DataFiles.folder(of: output)
        let start = CLISupport.now()
        let s = try RecordIOPacker.pack(ImageListDataset(images), to: dir, options: options)
        let idx = String(output.dropLast(4)) + ".idx"
        print("packed \(s.images) images of \(s.classes) identities (\(legacy ? "legacy" : "flat") layout) in \(CLISupport.fixed(CLISupport.now() - start, 2)) s")
        print("wrote \(output) (\(s.bytes) bytes), \(idx), \(dir)/property")
    }
}
