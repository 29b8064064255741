import TFCore
import TFDistributed
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
}
