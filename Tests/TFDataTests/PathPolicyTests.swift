import Foundation
import TFCore
import TFData
import TFTestSupport
import XCTest

/// Paths named inside dataset files stay under the dataset root (a lexical rule: no absolute
/// paths, no ".." components). Symbolic links inside the root are followed like any file: the
/// root's own contents are trusted, only the text of list, pairs and IJB files is not.
final class PathPolicyTests: XCTestCase {
    func testListedPathsAreResolvedUnderTheRootOnly() throws {
        let root = "/data/set"
        XCTAssertEqual(try DataFiles.resolve("a/b.jpg", under: root, what: "t"), "/data/set/a/b.jpg")
        XCTAssertEqual(try DataFiles.resolve("./a/b.jpg", under: root + "/", what: "t"), "/data/set/./a/b.jpg")
        XCTAssertEqual(try DataFiles.resolve("a..b/c..jpg", under: root, what: "t"), "/data/set/a..b/c..jpg")
        for bad in ["../x.jpg", "a/../../x.jpg", "a/..", "..", "/etc/passwd", "//etc/passwd", "", "a\u{0}b"] {
            XCTAssertThrowsError(try DataFiles.resolve(Substring(bad), under: root, what: "list line 3"), bad) { e in
                XCTAssertEqual((e as? TransFaceError)?.kind, .format, "\(bad): \(e)")
                XCTAssertTrue("\(e)".contains("list line 3"), "\(e)")
            }
        }
    }

    func testSymlinksInsideTheRootAreFollowed() throws {
        let folder = try Reference.temporaryFolder()
        defer { Reference.removeTree(folder) }
        let fm = FileManager.default
        try fm.createDirectory(atPath: folder + "/outside", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: folder + "/root", withIntermediateDirectories: true)
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: folder + "/outside/face.jpg"))
        try fm.createSymbolicLink(atPath: folder + "/root/linked", withDestinationPath: folder + "/outside")
        try "linked/face.jpg\t0\n".write(toFile: folder + "/root/list.tsv", atomically: true, encoding: .utf8)
        let list = try LabeledImageList.listFile(folder + "/root/list.tsv")
        XCTAssertEqual(try DataFiles.readAll(try list.fullPath(0)), [1, 2, 3])
        // The same file named through ".." is refused.
        try "../outside/face.jpg\t0\n".write(toFile: folder + "/root/bad.tsv", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try LabeledImageList.listFile(folder + "/root/bad.tsv")) { e in
            XCTAssertTrue("\(e)".contains("leaves the dataset root"), "\(e)")
        }
    }
}
