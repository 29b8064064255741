import Foundation
import TFModel
import TFTestSupport
import XCTest

/// `transface gallery` enrol/search/list/remove with the tiny reference model and real photos;
/// skipped without the facenet-pytorch wheel.
final class GalleryCommandTests: XCTestCase {
    var folder = ""
    let people = ["Ahmed_Chalabi", "Ai_Sugiyama", "Al_Gore"]
    override func setUpWithError() throws {
        folder = try Reference.temporaryFolder()
        try ModelFile.write(try Reference.tinyModel(), to: folder + "/tiny.tfm")
        let other = try ModelBuilder(config: Reference.tinyConfig)
        other.initializeWeights(seed: 2)
        try other.save(to: folder + "/other.tfm")
    }
    override func tearDown() { Reference.removeTree(folder) }

    func run(_ args: [String], model: String = "tiny.tfm", detector: String) throws -> CLI.Result {
        try CLI.run(["gallery"] + args + ["--model", model, "--detector", detector], in: folder)
    }

    func testEnrolFolderSearchListRemove() throws {
        let detector = try DetectorFixture.detector()
        for name in people {  // the first photo of each identity
            try FileManager.default.createDirectory(atPath: folder + "/people/" + name, withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: folder + "/people/\(name)/1.jpg", withDestinationPath: DetectorFixture.photo(name, 1))
        }
        let e = try run(["enrol", "g.tfg", "--folder", "people"], detector: detector)
        XCTAssertEqual(e.status, 0, e.stderr)
        XCTAssertTrue(e.stdout.contains("enrolled 3 embeddings of 3 identities"), e.stdout)

        let s = try run(["search", "g.tfg", DetectorFixture.photo("Al_Gore", 2), "--top", "3", "--json", "--threshold", "0.5"], detector: detector)
        XCTAssertEqual(s.status, 0, s.stderr)
        let line = try XCTUnwrap(try DetectorFixture.jsonLines(s.stdout).first)
        XCTAssertEqual(line["threshold"] as? Double, 0.5)
        let matches = try XCTUnwrap(line["matches"] as? [[String: Any]])
        XCTAssertEqual(matches.count, 3)
        XCTAssertTrue(matches.contains { $0["label"] as? String == "Al_Gore" }, s.stdout)
        let scores = matches.compactMap { $0["score"] as? Double }
        XCTAssertEqual(scores, scores.sorted(by: >))
        for m in matches { XCTAssertEqual(m["passes"] as? Bool, (m["score"] as? Double ?? 0) >= 0.5) }
        let text = try run(["search", "g.tfg", DetectorFixture.photo("Al_Gore", 2)], detector: detector)
        XCTAssertTrue(text.stdout.contains("no threshold is set"), text.stdout)
        XCTAssertTrue(text.stdout.contains("Al_Gore"), text.stdout)

        // --label adds to an identity; a photo without a face is skipped
        let more = try run(["enrol", "g.tfg", "--label", "Al_Gore", DetectorFixture.photo("Al_Gore", 3), DetectorFixture.dlib + "/dogs.jpg"],
                           detector: detector)
        XCTAssertEqual(more.status, 0, more.stderr)
        XCTAssertTrue(more.stderr.contains("no face found in '\(DetectorFixture.dlib)/dogs.jpg'"), more.stderr)
        let list = try CLI.run(["gallery", "list", "g.tfg", "--json"], in: folder)
        XCTAssertEqual(list.status, 0, list.stderr)
        let listed = try XCTUnwrap(try DetectorFixture.jsonLines(list.stdout).first?["identities"] as? [[String: Any]])
        XCTAssertEqual(listed.compactMap { $0["label"] as? String }, people)
        XCTAssertEqual(listed.compactMap { $0["count"] as? Int }, [1, 1, 2])

        let r = try CLI.run(["gallery", "remove", "g.tfg", "--label", "Ai_Sugiyama"], in: folder)
        XCTAssertEqual(r.status, 0, r.stderr)
        let after = try CLI.run(["gallery", "list", "g.tfg"], in: folder).stdout
        XCTAssertTrue(after.contains("2 identities, 3 embeddings"), after)
        XCTAssertFalse(after.contains("Ai_Sugiyama"), after)
        let again = try CLI.run(["gallery", "remove", "g.tfg", "--label", "Ai_Sugiyama"], in: folder)
        XCTAssertNotEqual(again.status, 0)
        XCTAssertEqual(again.errorLines.count, 1, again.stderr)
    }

    func testAnotherModelAndBadInputsAreRefused() throws {
        let detector = try DetectorFixture.detector()
        let photo = DetectorFixture.photo("Al_Gore", 1)
        XCTAssertEqual(try run(["enrol", "g.tfg", "--label", "Al_Gore", photo], detector: detector).status, 0)
        for args in [["search", "g.tfg", photo], ["enrol", "g.tfg", "--label", "x", photo]] {
            let r = try run(args, model: "other.tfm", detector: detector)
            XCTAssertNotEqual(r.status, 0, "\(args)")
            XCTAssertEqual(r.errorLines.count, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains("with another model"), r.stderr)
        }
        let dogs = try run(["enrol", "d.tfg", "--label", "dog", DetectorFixture.dlib + "/dogs.jpg"], detector: detector)
        XCTAssertEqual(dogs.status, 1, "nothing enrolled")
        let missing = try run(["search", "g.tfg", "missing.jpg", photo, "--json"], detector: detector)
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("'missing.jpg'"), missing.stderr)
        XCTAssertEqual(try DetectorFixture.jsonLines(missing.stdout).count, 1)
        let usage = try run(["enrol", "g.tfg", "--folder", "people", "--label", "x"], detector: detector)
        XCTAssertNotEqual(usage.status, 0)
        XCTAssertTrue(usage.stderr.contains("give --label L IMAGE... or --folder DIR"), usage.stderr)
        let none = try CLI.run(["gallery", "list", "nothing.tfg"], in: folder)
        XCTAssertNotEqual(none.status, 0)
        XCTAssertTrue(none.stderr.contains("nothing.tfg"), none.stderr)
    }
}
