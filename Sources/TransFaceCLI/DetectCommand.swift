import ArgumentParser
import TFCore
import TFDetect
import TFModel

/// `transface detect`: the faces in photos (MTCNN: boxes, scores, 5 landmarks), as a table or JSON lines.
struct DetectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detect",
        abstract: "Find the faces in photos: boxes, scores and 5 landmarks (MTCNN).",
        discussion: """
            Faces are listed highest score first, in the photo's pixel coordinates; landmarks are \
            left eye, right eye, nose, left and right mouth corners. --json prints one line per \
            image: {"image": PATH, "faces": [{"box": [x1, y1, x2, y2], "score": S, \
            "landmarks": [[x, y], ...5]}]}. An image that is missing or cannot be decoded is \
            reported on stderr (one line naming it) and the others are still processed; the exit \
            status is then 1. Make the detector file with `transface convert-detector`.
            Example: transface detect group.jpg --detector mtcnn.tfd --json
            """)

    @Argument(help: "Image files (JPEG, PNG, PGM/PPM).") var images: [String]
    @Option(name: .long, help: "The detector file (.tfd).") var detector: String
    @Flag(name: .long, help: "One JSON object per image and line.") var json = false
    @Option(name: .long, help: "Smallest face to look for, in pixels (default: the detector file's, 20).") var minFace: Int?
    @Option(name: .long, help: "Box the landmarks are decoded from: truncated (original MTCNN) or facenet (facenet-pytorch parity).")
    var landmarks: DetectionOptions.LandmarkBox = .truncated
    @Option(name: .long, help: "Worker threads.") var threads = 1

    func validate() throws {
        guard !images.isEmpty else { throw ValidationError("no image given") }
        if let m = minFace, !(12...65536).contains(m) { throw ValidationError("--min-face \(m) is outside 12...65536") }
    }

    func run() throws {
        let photos = try PhotoFaces(detector: detector, threads: threads, minFace: minFace, landmarkBox: landmarks)
        var failed = 0
        for path in images {
            do {
                let image = try PhotoFaces.decode(path)
                let faces = try photos.faces(in: image, path: path).sorted { $0.score > $1.score }
                print(json ? jsonLine(path, faces) : table(path, image.width, image.height, faces))
            } catch let error as TransFaceError {
                CLISupport.warn("detect", error.message)
                failed += 1
            }
        }
        if failed > 0 { throw ExitCode(1) }
    }

    func jsonLine(_ path: String, _ faces: [DetectedFace]) -> String {
        let items = faces.map { f in
            let points = stride(from: 0, to: 10, by: 2).map { CLISupport.jsonArray(f.landmarks[$0..<($0 + 2)]) }
            return "{\"box\": \(CLISupport.jsonArray(f.box[...])), \"score\": \(f.score), \"landmarks\": [\(points.joined(separator: ", "))]}"
        }
        return "{\"image\": \(JSONText.quoted(path)), \"faces\": [\(items.joined(separator: ", "))]}"
    }

    func table(_ path: String, _ width: Int, _ height: Int, _ faces: [DetectedFace]) -> String {
        var lines = ["\(path) (\(width)x\(height)): \(faces.count) face\(faces.count == 1 ? "" : "s")"]
        guard !faces.isEmpty else { return lines[0] }
        let point = { (v: Float) in CLISupport.fixed(Double(v), 1) }
        lines.append("  #  score   x1      y1      x2      y2      landmarks (left eye, right eye, nose, mouth left, mouth right)")
        for (i, f) in faces.enumerated() {
            let box = f.box.map { CLISupport.pad(point($0), 7) }.joined(separator: " ")
            let marks = stride(from: 0, to: 10, by: 2).map { "\(point(f.landmarks[$0])),\(point(f.landmarks[$0 + 1]))" }.joined(separator: "  ")
            lines.append("  \(CLISupport.pad("\(i + 1)", 2)) \(CLISupport.fixed(Double(f.score), 4))  \(box) \(marks)")
        }
        return lines.joined(separator: "\n")
    }
}
