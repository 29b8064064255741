import Foundation
import TFCore
import TFModel
import TFTestSupport
import XCTest

/// `transface convert-detector`: the facenet-pytorch wheel (when at hand) to a detector file
/// that `inspect` describes and embedding commands refuse; argument errors.
final class ConvertDetectorCommandTests: XCTestCase {
    var folder = ""
    override func setUpWithError() throws { folder = try Reference.temporaryFolder() }
    override func tearDown() { Reference.removeTree(folder) }

    func testArgumentsAreChecked() throws {
        for args in [["convert-detector", "a.pt", "-o", "x.tfd"], ["convert-detector", "-o", "x.tfd"],
                     ["convert-detector", "a.pt", "b.pt", "c.pt", "--facenet-wheel", "w.whl", "-o", "x.tfd"]] {
            let r = try CLI.run(args, in: folder)
            XCTAssertNotEqual(r.status, 0, "\(args)")
            XCTAssertTrue(r.stderr.contains("give PNET.pt RNET.pt ONET.pt, or --facenet-wheel WHEEL.whl"), r.stderr)
        }
        let r = try CLI.run(["convert-detector", "--facenet-wheel", "nothing.whl", "-o", "x.tfd"], in: folder)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("nothing.whl"), r.stderr)
    }

    func testWheelToDetectorFile() throws {
        guard let wheel = FacenetWheel.path() else { throw XCTSkip("no facenet-pytorch wheel") }
        let r = try CLI.run(["convert-detector", "--facenet-wheel", wheel, "-o", "mtcnn.tfd"], in: folder)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("wrote mtcnn.tfd"), r.stdout)
        let model = try DetectorModelFile.load(path: folder + "/mtcnn.tfd")
        XCTAssertEqual(model.config, DetectorConfig())
        let i = try CLI.run(["inspect", "mtcnn.tfd"], in: folder)
        XCTAssertEqual(i.status, 0, i.stderr)
        XCTAssertTrue(i.stdout.contains("kind: detector (MTCNN)"), i.stdout)
        XCTAssertTrue(i.stdout.contains("source_project = facenet-pytorch (MIT licence)"), i.stdout)
        let e = try CLI.run(["embed", "mtcnn.tfd", Reference.repoRoot + "/nothing.jpg"], in: folder)
        XCTAssertNotEqual(e.status, 0)
        XCTAssertTrue(e.stderr.contains("is a face detector, not an embedding model"), e.stderr)
    }
}
