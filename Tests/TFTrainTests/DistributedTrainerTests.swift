import Foundation
import TFCore
import TFDistributed
import TFTestSupport
@testable import TFTrain
import XCTest

/// The distributed code paths without MPI: over a `SingleProcessCommunicator` (a world of one)
/// the sharded head and the data-parallel step must equal the single-process trainer bit for
/// bit; the `"distributed"` block; the class split; a missing or wrong MPI library.
final class DistributedTrainerTests: XCTestCase {
    func testWorldOfOneIsBitIdenticalToOneProcess() throws {
        for rate in [1.0, 0.5] {
            let config = try TrainerConfig.parse(TrainerBehaviourTests.json(ehsm: "paper", extra: ", \"sample_rate\": \(rate)"))
            let single = try Trainer(config: config)
            let world = try Trainer(config: config, communicator: SingleProcessCommunicator())
            var data = TrainerBehaviourTests.Synthetic(classes: 12)
            for _ in 0..<6 {
                let (images, labels) = data.batch(8)
                let a = try single.step(images: images, labels: labels), b = try world.step(images: images, labels: labels)
                XCTAssertEqual(a.loss.bitPattern, b.loss.bitPattern)
                XCTAssertEqual(a.gradientNorm.bitPattern, b.gradientNorm.bitPattern)
            }
            XCTAssertEqual(Array(single.parameters.all).map(\.bitPattern), Array(world.parameters.all).map(\.bitPattern))
            XCTAssertEqual(try single.tensor("partial_fc.weight").map(\.bitPattern), try world.tensor("partial_fc.weight").map(\.bitPattern))
            XCTAssertEqual(try single.tensor("optimizer.exp_avg_sq.partial_fc.weight").map(\.bitPattern),
                           try world.tensor("optimizer.exp_avg_sq.partial_fc.weight").map(\.bitPattern))
        }
    }

    func testDistributedBlockRoundTripsAndIsChecked() throws {
        let text = #"{"num_classes": 5, "distributed": {"backend": "mpi", "checksum_every": 7}}"#
        let c = try TrainerConfig.parse(text)
        XCTAssertEqual(c.distributed, DistributedConfig(checksumEvery: 7))
        XCTAssertEqual(try TrainerConfig.parse(c.resolvedJSON.text), c)
        XCTAssertEqual(try TrainerConfig.parse(#"{"num_classes": 5, "distributed": {}}"#).distributed, DistributedConfig(checksumEvery: 100))
        XCTAssertNil(try TrainerConfig.parse(#"{"num_classes": 5, "distributed": null}"#).distributed)
        XCTAssertNotEqual(try TrainerConfig.parse(#"{"num_classes": 5}"#), c)
        for bad in [#"{"backend": "nccl"}"#, #"{"checksum_every": -1}"#, #"{"ranks": 2}"#] {
            XCTAssertThrowsError(try TrainerConfig.parse(#"{"num_classes": 5, "distributed": "# + bad + "}"), bad)
        }
    }

    func testClassShardsTileTheClassesAsPartialFCV2() {
        XCTAssertEqual((0..<3).map { ClassShard(total: 10, rank: $0, size: 3).range }, [0..<4, 4..<7, 7..<10])
        XCTAssertEqual((0..<4).map { ClassShard(total: 85742, rank: $0, size: 4).count }, [21436, 21436, 21435, 21435])
        XCTAssertEqual(ClassShard(total: 7, rank: 0, size: 1).range, 0..<7)
    }

    func testMissingOrWrongMPILibraryIsAClearError() {
        XCTAssertThrowsError(try MPICommunicator(library: "/nonexistent/libmpi.so.40")) { e in
            XCTAssertTrue("\(e)".contains("cannot load the MPI library /nonexistent/libmpi.so.40"), "\(e)")
        }
        XCTAssertThrowsError(try MPICommunicator(library: "libz.so.1")) { e in
            XCTAssertTrue("\(e)".contains("symbol MPI_Initialized not found in libz.so.1"), "\(e)")
        }
    }

    /// The general resume (re-sharding) path on a single-process checkpoint continues exactly as
    /// the single-process resume does, in one process and over a world of one.
    func testGeneralResumeEqualsTheSingleProcessResume() throws {
        let folder = try Reference.temporaryFolder()
        defer { Reference.removeTree(folder) }
        let config = try TrainerConfig.parse(TrainerBehaviourTests.json(extra: ", \"sample_rate\": 0.5"))
        var data = TrainerBehaviourTests.Synthetic(classes: 12)
        let batches = (0..<4).map { _ in data.batch(8) }
        let first = try Trainer(config: config)
        for (images, labels) in batches.prefix(2) { _ = try first.step(images: images, labels: labels) }
        try first.saveCheckpoint(to: folder + "/run.tfc")
        let resumed = [try Trainer.resume(from: folder + "/run.tfc"),
                       try Trainer.resume(from: folder + "/run.tfc", communicator: nil),
                       try Trainer.resume(from: folder + "/run.tfc", communicator: SingleProcessCommunicator())]
        for t in resumed { for (images, labels) in batches.suffix(2) { _ = try t.step(images: images, labels: labels) } }
        for t in resumed.dropFirst() {
            XCTAssertEqual(Array(t.parameters.all).map(\.bitPattern), Array(resumed[0].parameters.all).map(\.bitPattern))
            XCTAssertEqual(try t.tensor("optimizer.exp_avg.partial_fc.weight").map(\.bitPattern),
                           try resumed[0].tensor("optimizer.exp_avg.partial_fc.weight").map(\.bitPattern))
        }
    }

    func testBadManifestsAreClearErrors() throws {
        let folder = try Reference.temporaryFolder()
        defer { Reference.removeTree(folder) }
        let path = folder + "/run.tfc"
        let cases: [(String, String)] = [
            (#"{"format": "something else", "step": 1, "num_classes": 4, "shards": []}"#, "not a transface-sharded-checkpoint"),
            (#"{"format": "transface-sharded-checkpoint", "step": 1, "num_classes": 4, "shards": []}"#, "no shards"),
            (#"{"format": "transface-sharded-checkpoint", "step": 1, "num_classes": 4, "shards": [{"file": "../x", "start": 0, "count": 4}]}"#,
             "must be a file name in the manifest's folder"),
            (#"{"format": "transface-sharded-checkpoint", "step": 1, "num_classes": 4, "shards": [{"file": "a", "start": 1, "count": 3}]}"#,
             "shard 0 starts at class 1, expected 0"),
            (#"{"format": "transface-sharded-checkpoint", "step": 1, "num_classes": 4, "shards": [{"file": "a", "start": 0, "count": 3}]}"#,
             "the shards hold 3 classes, not 4"),
            (#"{"format": "transface-sharded-checkpoint", "step": 1, "num_classes": 4, "shards": [{"file": "a", "start": 0, "count": 4}]}"#,
             "cannot open '\(folder)/a'"),
            (#"{"format": "transface-sharded-checkpoint", "#, "checkpoint manifest"),
        ]
        for (text, message) in cases {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try Trainer.resume(from: path, communicator: nil)) { e in XCTAssertTrue("\(e)".contains(message), "\(e) should say \(message)") }
        }
    }
}
