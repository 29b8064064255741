import Foundation
import TFModel
import TFTestSupport
import XCTest

/// `embed`/`compare`/`patches --detector`: photos without landmarks get their main face detected
/// and aligned, exactly as if its landmarks had been given; skipped without the facenet-pytorch wheel.
final class PhotoEmbedCommandTests: XCTestCase {
    var folder = ""
    var model: String { folder + "/tiny.tfm" }
    override func setUpWithError() throws {
        folder = try Reference.temporaryFolder()
        try ModelFile.write(try Reference.tinyModel(), to: model)
    }
    override func tearDown() { Reference.removeTree(folder) }

    func embeddings(_ args: [String]) throws -> [[Double]] {
        let r = try CLI.run(["embed", model] + args, in: folder)
        XCTAssertEqual(r.status, 0, r.stderr)
        let rows = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]], r.stdout)
        return rows.compactMap { $0["embedding"] as? [Double] }
    }

    /// --detector equals --landmarks with the detected points, and `embed --aligned` of `align`'s crop.
    func testDetectorEmbeddingEqualsTheAlignedCrop() throws {
        let detector = try DetectorFixture.detector()
        let photo = DetectorFixture.photo("AJ_Lamas", 1)
        let d = try CLI.run(["detect", photo, "--detector", detector, "--json"], in: folder)
        let face = try XCTUnwrap((try DetectorFixture.jsonLines(d.stdout).first?["faces"] as? [[String: Any]])?.first)
        let points = try XCTUnwrap(face["landmarks"] as? [[Double]]).flatMap { $0 }.map { "\(Float($0))" }.joined(separator: ",")
        let a = try CLI.run(["align", photo, "--landmarks", points, "-o", "crop.png"], in: folder)
        XCTAssertEqual(a.status, 0, a.stderr)

        let detected = try embeddings([photo, "--detector", detector])
        XCTAssertEqual(detected.count, 1)
        XCTAssertEqual(detected, try embeddings([photo, "--landmarks", points]))
        XCTAssertEqual(detected, try embeddings(["crop.png", "--aligned"]))
        let all = try embeddings([photo, "--detector", detector, "--all-faces"])
        XCTAssertEqual(all, detected)
    }

    func testAllFacesOfAGroupAndRefusals() throws {
        let detector = try DetectorFixture.detector()
        let group = DetectorFixture.dlib + "/bald_guys.jpg"
        let d = try CLI.run(["detect", group, "--detector", detector, "--json"], in: folder)
        let count = try XCTUnwrap((try DetectorFixture.jsonLines(d.stdout).first?["faces"] as? [Any])?.count)
        XCTAssertGreaterThan(count, 1)
        let r = try CLI.run(["embed", model, group, DetectorFixture.dlib + "/dogs.jpg", "--detector", detector, "--all-faces"], in: folder)
        XCTAssertEqual(r.status, 0, r.stderr)
        let rows = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        XCTAssertEqual(rows.count, count)
        XCTAssertEqual(rows.compactMap { $0["face"] as? Int }, Array(0..<count))
        XCTAssertTrue(r.stderr.contains("no face found in '\(DetectorFixture.dlib)/dogs.jpg'"), r.stderr)

        let dogs = try CLI.run(["embed", model, DetectorFixture.dlib + "/dogs.jpg", "--detector", detector], in: folder)
        XCTAssertNotEqual(dogs.status, 0)
        XCTAssertEqual(dogs.errorLines.count, 1, dogs.stderr)
        XCTAssertTrue(dogs.stderr.contains("no face found in"), dogs.stderr)
        let noDetector = try CLI.run(["embed", model, group, "--all-faces"], in: folder)
        XCTAssertNotEqual(noDetector.status, 0)
        XCTAssertTrue(noDetector.stderr.contains("--all-faces needs --detector"), noDetector.stderr)
        // without --detector a photo without landmarks is refused as before
        let plain = try CLI.run(["embed", model, group], in: folder)
        XCTAssertTrue(plain.stderr.contains("has no landmarks"), plain.stderr)
    }

    func testCompareAndPatchesWithADetector() throws {
        let detector = try DetectorFixture.detector()
        let c = try CLI.run(["compare", model, DetectorFixture.photo("Al_Gore", 1), DetectorFixture.photo("Al_Gore", 2),
                             "--detector", detector, "--threshold=-1"], in: folder)
        XCTAssertEqual(c.status, 0, c.stderr)
        XCTAssertTrue(c.stdout.contains("same person"), c.stdout)
        let p = try CLI.run(["patches", model, DetectorFixture.photo("Al_Gore", 1), "--detector", detector], in: folder)
        XCTAssertEqual(p.status, 0, p.stderr)
        XCTAssertTrue(p.stdout.contains("top 7 of 144 patches"), p.stdout)
    }
}
