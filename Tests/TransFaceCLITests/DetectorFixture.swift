import Foundation
import TFTestSupport
import XCTest

/// What the detector-using CLI tests share: an MTCNN detector file converted from the
/// facenet-pytorch wheel (once per process), photos, and JSON-lines parsing.
enum DetectorFixture {
    static let lfw = Reference.shared + "/data/lfw/images"
    static let dlib = Reference.shared + "/data/photos_misc/dlib_examples_faces"
    static func photo(_ name: String, _ n: Int) -> String { lfw + "/\(name)/\(name)_" + String(String(n + 10000).dropFirst()) + ".jpg" }

    /// The detector file, converted on first use; skips (XCTSkip) when the wheel is absent.
    static func detector() throws -> String {
        guard let path = converted.path else { throw XCTSkip(converted.reason) }
        return path
    }

    private static let converted: (path: String?, reason: String) = {
        guard let wheel = FacenetWheel.path() else { return (nil, "no facenet-pytorch wheel") }
        guard let folder = try? Reference.temporaryFolder() else { return (nil, "no temporary folder") }
        let path = folder + "/mtcnn.tfd"
        guard let r = try? CLI.run(["convert-detector", "--facenet-wheel", wheel, "-o", path, "--quiet"]), r.status == 0 else {
            return (nil, "convert-detector failed")
        }
        return (path, "")
    }()

    /// The JSON objects of a JSON-lines text.
    static func jsonLines(_ text: String) throws -> [[String: Any]] {
        try text.split(separator: "\n").map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
    }
}
