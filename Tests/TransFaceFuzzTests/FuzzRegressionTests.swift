import Foundation
import TFCore
import TransFaceFuzzHarness
import XCTest

/// Replays every input kept under `Tests/Fuzz/regressions/<harness>/` (inputs that once crashed
/// a parser, found by libFuzzer) and each harness's generated seeds through the same harness
/// code the fuzzer runs. Each must be refused with a `TransFaceError` or accepted, never crash;
/// a file named `*.refuse` must be refused and one named `*.accept` accepted.
final class FuzzRegressionTests: XCTestCase {
    static let regressions: String = {
        let file = "\(#filePath)"
        let tests = file[..<file.range(of: "/TransFaceFuzzTests/")!.lowerBound]
        return tests + "/Fuzz/regressions"
    }()

    func testKeptCrashesAreRefusedCleanly() throws {
        var replayed = 0
        for harness in FuzzHarness.allCases {
            let folder = Self.regressions + "/" + harness.rawValue
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { continue }
            for name in names.sorted() where !name.hasPrefix(".") && !name.hasSuffix(".md") {
                let data = try [UInt8](Data(contentsOf: URL(fileURLWithPath: folder + "/" + name)))
                let outcome: FuzzHarness.Outcome
                do { outcome = try harness.run(data) } catch {
                    XCTFail("\(harness)/\(name): \(error)")
                    continue
                }
                replayed += 1
                switch outcome {
                case .accepted(let what):
                    XCTAssertFalse(name.hasSuffix(".refuse"), "\(harness)/\(name) was accepted (\(what)), expected a refusal")
                case .refused(let e):
                    XCTAssertFalse(e.message.isEmpty, "\(harness)/\(name): empty error message")
                    XCTAssertFalse(name.hasSuffix(".accept"), "\(harness)/\(name) was refused: \(e.message)")
                }
            }
        }
        print("replayed \(replayed) kept fuzzer inputs")
    }

    /// The seeds are valid files: each harness accepts its own (so the harnesses reach the
    /// parsers' success paths, and the framing of the recordio harness stays in step).
    func testSeedsAreAccepted() throws {
        let folder = NSTemporaryDirectory() + "transface-fuzz-seeds-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        for harness in FuzzHarness.allCases {
            let dir = folder + "/" + harness.rawValue
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let count = try FuzzSeeds.write(harness, to: dir)
            XCTAssertGreaterThan(count, 0)
            for name in try FileManager.default.contentsOfDirectory(atPath: dir).sorted() {
                let data = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/" + name)))
                XCTAssertLessThanOrEqual(data.count, harness.maxLength, "\(harness)/\(name) is longer than the fuzzer's -max_len")
                switch try harness.run(data) {
                case .accepted: break
                case .refused(let e): XCTFail("\(harness) seed \(name) refused: \(e.message)")
                }
            }
        }
    }
}
