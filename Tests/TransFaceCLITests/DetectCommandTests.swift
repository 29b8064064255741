import Foundation
import TFTestSupport
import XCTest

/// `transface detect` on real photos (an LFW portrait, dogs without faces, a group photo) and
/// unreadable files; skipped without the facenet-pytorch wheel.
final class DetectCommandTests: XCTestCase {
    var folder = ""
    override func setUpWithError() throws { folder = try Reference.temporaryFolder() }
    override func tearDown() { Reference.removeTree(folder) }

    func testPortraitJSONHasOneCentredFaceWithLandmarksInItsBox() throws {
        let detector = try DetectorFixture.detector()
        let photo = DetectorFixture.photo("AJ_Lamas", 1)
        let r = try CLI.run(["detect", photo, "--detector", detector, "--json"], in: folder)
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = try DetectorFixture.jsonLines(r.stdout)
        XCTAssertEqual(lines.count, 1)
        XCTAssertEqual(lines[0]["image"] as? String, photo)
        let faces = try XCTUnwrap(lines[0]["faces"] as? [[String: Any]])
        XCTAssertEqual(faces.count, 1, r.stdout)
        let face = try XCTUnwrap(faces.first)
        let box = try XCTUnwrap(face["box"] as? [Double])
        XCTAssertEqual(box.count, 4)
        XCTAssertEqual((box[0] + box[2]) / 2, 125, accuracy: 25, "LFW photos are 250x250 with the face in the middle")
        XCTAssertEqual((box[1] + box[3]) / 2, 125, accuracy: 25)
        XCTAssertGreaterThan(try XCTUnwrap(face["score"] as? Double), 0.9)
        let points = try XCTUnwrap(face["landmarks"] as? [[Double]])
        XCTAssertEqual(points.count, 5)
        for p in points {
            XCTAssertEqual(p.count, 2)
            XCTAssertTrue(p[0] > box[0] && p[0] < box[2] && p[1] > box[1] && p[1] < box[3], "\(p) outside \(box)")
        }
        // the same face in the table, and with facenet-pytorch's landmark box
        let text = try CLI.run(["detect", photo, "--detector", detector], in: folder)
        XCTAssertEqual(text.status, 0, text.stderr)
        XCTAssertTrue(text.stdout.contains("(250x250): 1 face"), text.stdout)
        let facenet = try CLI.run(["detect", photo, "--detector", detector, "--json", "--landmarks", "facenet"], in: folder)
        XCTAssertEqual(try DetectorFixture.jsonLines(facenet.stdout).first.flatMap { ($0["faces"] as? [Any])?.count }, 1)
    }

    func testDogsHaveNoFaceAndAGroupHasSeveralBestScoreFirst() throws {
        let detector = try DetectorFixture.detector()
        let r = try CLI.run(["detect", DetectorFixture.dlib + "/dogs.jpg", DetectorFixture.dlib + "/bald_guys.jpg",
                             "--detector", detector, "--json"], in: folder)
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = try DetectorFixture.jsonLines(r.stdout)
        XCTAssertEqual(lines.count, 2)
        XCTAssertEqual((lines[0]["faces"] as? [Any])?.count, 0)
        let scores = try XCTUnwrap(lines[1]["faces"] as? [[String: Any]]).compactMap { $0["score"] as? Double }
        XCTAssertGreaterThan(scores.count, 1)
        XCTAssertEqual(scores, scores.sorted(by: >))
        let text = try CLI.run(["detect", DetectorFixture.dlib + "/dogs.jpg", "--detector", detector], in: folder)
        XCTAssertTrue(text.stdout.contains(": 0 faces"), text.stdout)
    }

    /// A missing and an undecodable file are each one stderr line naming it; the good photo is still reported.
    func testUnreadableImagesAreNamedAndTheOthersStillDetected() throws {
        let detector = try DetectorFixture.detector()
        try Data("not a jpeg".utf8).write(to: URL(fileURLWithPath: folder + "/bad.jpg"))
        let r = try CLI.run(["detect", "bad.jpg", DetectorFixture.photo("AJ_Lamas", 1), "missing.png", "--detector", detector, "--json"],
                            in: folder)
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.errorLines.count, 2, r.stderr)
        XCTAssertTrue(r.errorLines[0].contains("'bad.jpg'"), r.stderr)
        XCTAssertTrue(r.errorLines[1].contains("'missing.png'"), r.stderr)
        XCTAssertEqual(try DetectorFixture.jsonLines(r.stdout).count, 1)
        let noDetector = try CLI.run(["detect", "bad.jpg", "--detector", "none.tfd"], in: folder)
        XCTAssertNotEqual(noDetector.status, 0)
        XCTAssertTrue(noDetector.stderr.contains("'none.tfd' does not exist"), noDetector.stderr)
    }
}
