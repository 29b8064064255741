import ArgumentParser
import TFCore
import TFData
import TFImage

/// `transface align`: one aligned face (ArcFace template, 5 landmarks) as PNG or JPEG.
struct AlignCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "align",
        abstract: "Align a face with its 5 landmarks and write the crop (PNG).",
        discussion: """
            Landmarks are in ArcFace order: image-left eye, image-right eye, nose tip, image-left \
            mouth corner, image-right mouth corner. The crop is size x size (ArcFace template scaled).
            Example: transface align photo.jpg --landmarks 104,112,148,117,129,134,95,152,148,158 -o face.png
            """)

    @Argument(help: "The image (JPEG, PNG, PGM/PPM).") var image: String
    @Option(name: .long, help: "The 5 landmarks: x1,y1,...,x5,y5 (or a landmark table).") var landmarks: String?
    @Option(name: .long, help: "A landmark table (TSV) listing the image.") var landmarksFile: String?
    @Option(name: .long, help: "Folder the table's paths are relative to.") var root: String?
    @Option(name: .shortAndLong, help: "Output image (.png, or .jpg/.jpeg); default IMAGE-STEM_aligned.png.") var output: String?
    @Option(name: .long, help: "Output size in pixels.") var size = 112

    func validate() throws {
        guard (landmarks == nil) != (landmarksFile == nil) else { throw ValidationError("give exactly one of --landmarks and --landmarks-file") }
        guard (8...4096).contains(size) else { throw ValidationError("--size \(size) is outside 8...4096") }
    }

    func run() throws {
        let source = try LandmarkSource(landmarks ?? landmarksFile, root: root)
        guard let points = source.points(for: image) else { throw TransFaceError.notFound("no landmarks for '\(image)' in '\(landmarksFile ?? landmarks ?? "")'") }
        guard DataFiles.isFile(image) else { throw TransFaceError.notFound("image '\(image)' does not exist") }
        let decoded = try ImageDecoder.decodeFile(image)
        let (face, matrix) = try ImageDecoder.naming(image) {
            try decoded.pixels.withUnsafeBufferPointer { p in
                let view = try ImageView(base: p.baseAddress!, width: decoded.width, height: decoded.height, format: .rgb)
                return try FaceAlignment.align(view, landmarks: points, template: try FaceAlignment.template(size: size), size: size)
            }
        }
        let out = output ?? CLISupport.stem(image) + "_aligned.png"
        let ext = CLISupport.lowercasedExtension(out)
        let bytes = ext == "jpg" || ext == "jpeg" ? try ImageEncoder.jpeg(face) : try ImageEncoder.png(face)
        try CLISupport.write(bytes, to: out)
        print("wrote \(out) (\(size)x\(size)); matrix \(matrix.values.map { CLISupport.fixed($0, 5) }.joined(separator: " "))")
    }
}
