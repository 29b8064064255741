import TFCore
import TFTestSupport
@testable import TFTrain
import XCTest

/// `Trainer.setTensor`: written values read back; a trainer whose weights, statistics, centres
/// and moments were set steps exactly as one created with them; bad input changes nothing.
final class TrainerSetTensorTests: XCTestCase {
    private let images = (0..<(2 * 18 * 18 * 3)).map { UInt8(truncatingIfNeeded: $0 * 37 + 11) }

    func testSetTrainerStepsAsOneCreatedFromTheModel() throws {
        let config = try OfficialRunImportTests.config()
        let other = try TrainerConfig.parse(config.json.replacingOccurrences(of: #""seed": 1"#, with: #""seed": 7"#))
        let source = try Trainer(config: other)
        _ = try source.step(images: images, labels: [0, 3])  // moments and running statistics not at their initial values
        let model = try source.exportModel()
        let created = try Trainer(config: config, initialModel: model)
        let set = try Trainer(config: config)
        XCTAssertNotEqual(try set.tensor("senet.0.weight"), try created.tensor("senet.0.weight"))
        // A step first, so that anything derived from the old weights (packed GEMM weights) exists;
        // then back to step 0 (this configuration draws no random numbers).
        _ = try set.step(images: images, labels: [2, 2])
        try set.restorePosition(step: 0, microStep: 0)
        for e in set.layout.entries { try set.setTensor(e.name, try source.tensor(e.name)) }
        // The same centres and moments in both.
        for name in ["partial_fc.weight"] + set.stateTensors().map(\.0) {
            let values = try source.tensor(name)
            try set.setTensor(name, values)
            try created.setTensor(name, values)
            XCTAssertEqual(try set.tensor(name), values, "read back \(name)")
        }
        for name in OfficialRunImportTests.names(of: set) { XCTAssertEqual(try set.tensor(name), try created.tensor(name), name) }
        for step in 0..<2 {
            let a = try set.step(images: images, labels: [1, 4]), b = try created.step(images: images, labels: [1, 4])
            XCTAssertEqual(a.loss, b.loss, "step \(step)")
            XCTAssertEqual(a.gradientNorm, b.gradientNorm, "step \(step)")
        }
        for name in OfficialRunImportTests.names(of: set) { XCTAssertEqual(try set.tensor(name), try created.tensor(name), "after 2 steps: \(name)") }
    }

    func testBadValuesAreRefusedAndChangeNothing() throws {
        let t = try Trainer(config: try OfficialRunImportTests.config())
        let name = "blocks.0.attn.qkv.weight", count = try t.tensor(name).count
        let before = OfficialRunImportTests.names(of: t).map { try? t.tensor($0) }
        func refused(_ name: String, _ values: [Float], _ kind: TransFaceError.Kind, _ needle: String, line: UInt = #line) {
            XCTAssertThrowsError(try t.setTensor(name, values), line: line) { e in
                let error = e as? TransFaceError
                XCTAssertEqual(error?.kind, kind, line: line)
                XCTAssertTrue(error?.message.contains(needle) == true, "'\(error?.message ?? "")' lacks '\(needle)'", line: line)
            }
        }
        refused(name, [Float](repeating: 1, count: count - 1), .invalidArgument, "holds \(count) values, \(count - 1) were given")
        var bad = [Float](repeating: 1, count: count)
        bad[5] = .nan
        refused(name, bad, .invalidArgument, "value 5 for '\(name)' is nan, not finite")
        bad[5] = .infinity
        refused("optimizer.exp_avg.\(name)", bad, .invalidArgument, "not finite")
        refused("optimizer.exp_avg_sq.\(name)", [Float](repeating: -1, count: count), .invalidArgument, "cannot be negative")
        refused("no.such.tensor", [1], .notFound, "no.such.tensor")
        refused("optimizer.momentum_buffer.\(name)", [Float](repeating: 1, count: count), .notFound, "optimizer.<exp_avg|exp_avg_sq>")
        refused("gradient.\(name)", [Float](repeating: 1, count: count), .invalidArgument, "cannot be set")
        refused("partial_fc.weight", [1, 2], .invalidArgument, "holds 20 values, 2 were given")
        XCTAssertEqual(OfficialRunImportTests.names(of: t).map { try? t.tensor($0) }, before, "nothing changed")
    }
}
