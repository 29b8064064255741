import Foundation
import TFCore
import TFTestSupport
import XCTest
@testable import TFGallery

/// kill -9 during enrolments, removals and compactions: a child process (this test binary
/// re-run with GALLERY_CRASH_CHILD set, running `testChildProcess`) works on one gallery and
/// reports each operation that returned; the parent SIGKILLs it after a random delay,
/// GALLERY_CRASH_KILLS times (default 30), and after each kill checks that the gallery opens and
/// holds exactly the reported operations, or those and the one in flight. Seed:
/// GALLERY_CRASH_SEED (default: the time, printed).
final class GalleryCrashTests: XCTestCase {
    typealias F = GalleryFixture

    /// Operation i: every 15th removes the label "p(i % 37)" if enrolled, the others enrol 1...3
    /// embeddings under it.
    static func isRemoval(_ i: Int) -> Bool { i % 15 == 14 }
    static func label(_ i: Int) -> String { "p\(i % 37)" }
    static func embeddings(_ i: Int) -> [Float] { F.vectors(1 + i % 3, seed: UInt64(i)) }

    /// Label counts after operations 0..<n.
    static func model(_ n: Int) -> [String: Int] {
        var counts: [String: Int] = [:]
        for i in 0..<n {
            if isRemoval(i) { counts[label(i)] = nil } else { counts[label(i), default: 0] += 1 + i % 3 }
        }
        return counts
    }

    func testChildProcess() throws {
        guard let dir = ProcessInfo.processInfo.environment["GALLERY_CRASH_CHILD"] else { return }  // only as the child
        let start = Int(ProcessInfo.processInfo.environment["GALLERY_CRASH_START"]!)!
        let report = open(dir + "/report", O_WRONLY | O_APPEND | O_CREAT, 0o644)
        func say(_ line: String) { _ = line.withCString { write(report, $0, strlen($0)) } }
        let g = try Gallery.open(path: dir + "/g.tfg", fingerprint: F.fingerprint, options: GalleryOptions(compactionFraction: 0.3))
        say("ready\n")
        for i in start..<(start + 100_000) {
            if GalleryCrashTests.isRemoval(i) {
                if !(try g.entryIDs(of: GalleryCrashTests.label(i))).isEmpty { try g.remove(label: GalleryCrashTests.label(i)) }
            } else {
                try g.enrol(label: GalleryCrashTests.label(i), embeddings: GalleryCrashTests.embeddings(i), metadata: ["op": "\(i)"])
            }
            say("\(i + 1)\n")
            if i % 25 == 24 { try g.compact() }
        }
    }

    func testKillNineDuringWrites() throws {
        let env = ProcessInfo.processInfo.environment
        if env["GALLERY_CRASH_CHILD"] != nil { return }
        let kills = Int(env["GALLERY_CRASH_KILLS"] ?? "") ?? 30
        let seed = UInt64(env["GALLERY_CRASH_SEED"] ?? "") ?? UInt64(Date().timeIntervalSince1970)
        print("GalleryCrashTests: seed \(seed), \(kills) kills")
        var rng = SeededRNG(seed: seed)
        let dir = try F.folder(); defer { Reference.removeTree(dir) }
        let path = dir + "/g.tfg"
        var done = 0
        var inFlightSeen = 0
        for round in 0..<kills {
            try? FileManager.default.removeItem(atPath: dir + "/report")
            let child = Process()
            child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
            child.arguments = ["TFGalleryTests.GalleryCrashTests/testChildProcess"]
            child.environment = env.merging(["GALLERY_CRASH_CHILD": dir, "GALLERY_CRASH_START": "\(done)"]) { _, new in new }
            child.standardOutput = FileHandle.nullDevice
            child.standardError = FileHandle.nullDevice
            try child.run()
            func lines() -> [String] { (try? String(contentsOfFile: dir + "/report", encoding: .utf8))?.split(separator: "\n").map(String.init) ?? [] }
            let deadline = Date().addingTimeInterval(60)
            while lines().first != "ready" && child.isRunning && Date() < deadline { usleep(2000) }
            XCTAssertEqual(lines().first, "ready", "round \(round): the child did not start")
            if round == 0 {  // a second writer process is refused while the child writes; a reader is not
                XCTAssertThrowsError(try Gallery.open(path: path, fingerprint: F.fingerprint)) { XCTAssertTrue("\($0)".contains("another process"), "\($0)") }
                XCTAssertNoThrow(try Gallery.open(path: path, fingerprint: F.fingerprint, options: GalleryOptions(readOnly: true)))
            }
            usleep(UInt32(2000 + rng.next() % 120_000))
            kill(child.processIdentifier, SIGKILL)
            child.waitUntilExit()
            let reported = lines().dropFirst().last.flatMap { Int($0) } ?? done
            for name in try FileManager.default.contentsOfDirectory(atPath: dir) where name.hasPrefix("g.tfg.tmp-") {
                try FileManager.default.removeItem(atPath: dir + "/" + name)  // an unfinished compaction
            }
            let g = try Gallery.open(path: path, fingerprint: F.fingerprint)
            let state = try F.counts(g)
            if state == GalleryCrashTests.model(reported) {
                done = reported
            } else {
                XCTAssertEqual(state, GalleryCrashTests.model(reported + 1), "round \(round): neither \(reported) nor \(reported + 1) operations")
                done = reported + 1
                inFlightSeen += 1
            }
            // the newest enrolment's vectors are there, bit for bit up to normalisation
            if let last = (0..<done).last(where: { !GalleryCrashTests.isRemoval($0) }), state[GalleryCrashTests.label(last)] != nil {
                let v = GalleryCrashTests.embeddings(last)
                let hit = try g.search(queries: Array(v[0..<F.dim]), k: 1, threshold: 0.9999)[0][0]
                XCTAssertEqual(hit.label, GalleryCrashTests.label(last))
                XCTAssertTrue(hit.passes)
            }
            g.close()
        }
        print("GalleryCrashTests: \(kills) kills, \(done) operations survived, \(inFlightSeen) kills found the operation in flight already written")
        XCTAssertGreaterThan(done, kills)
    }
}
