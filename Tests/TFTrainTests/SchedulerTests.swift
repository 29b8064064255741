import Foundation
import TFCore
import TFTestSupport
@testable import TFTrain
import XCTest

final class SchedulerTests: XCTestCase {
    struct Case { let baseLR: Double; let iterations: Int; let maxSteps: Int; let warmupSteps: Int }

    func cases() throws -> [Case] {
        let data = try Data(contentsOf: URL(fileURLWithPath: Reference.path("schedule/meta.json")))
        let meta = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        let list = try XCTUnwrap(meta["cases"] as? [[String: Any]])
        return try list.map {
            Case(baseLR: try XCTUnwrap($0["base_lr"] as? Double), iterations: try XCTUnwrap($0["iterations"] as? Int),
                 maxSteps: try XCTUnwrap($0["max_steps"] as? Int), warmupSteps: try XCTUnwrap($0["warmup_steps"] as? Int))
        }
    }

    /// train.py's loop: the optimizer steps with the current lr, then lr_scheduler.step();
    /// every lr bit-identical to the official Double, last_epoch as recorded.
    func testOfficialScheduleCasesExactly() throws {
        let all = try cases()
        XCTAssertEqual(all.count, 3)
        for (index, c) in all.enumerated() {
            let used = try NPYExact.doubles("schedule/case\(index)/lr_used").values
            let epochs = try NPYExact.ints("schedule/case\(index)/last_epoch_after")
            XCTAssertEqual(used.count, c.iterations)
            var s = try PolyScheduler(baseLR: c.baseLR, maxSteps: c.maxSteps, warmupSteps: c.warmupSteps)
            XCTAssertEqual(s.lastEpoch, -1)
            var ours: [Double] = [], lastEpochs: [Int] = []
            for i in 0..<c.iterations {
                ours.append(s.lr)
                XCTAssertEqual(s.learningRate(forOptimizerStep: i).bitPattern, s.lr.bitPattern)
                s.step()
                lastEpochs.append(s.lastEpoch)
            }
            XCTAssertEqual(ours.map(\.bitPattern), used.map(\.bitPattern), "case \(index): \(ours) vs \(used)")
            XCTAssertEqual(lastEpochs, epochs)
            if c.warmupSteps > 0 { XCTAssertEqual(Array(ours.prefix(2)), [0, 0]) }
            print("schedule case \(index): \(c.iterations) steps bit-identical (base \(c.baseLR), W \(c.warmupSteps), M \(c.maxSteps))")
        }
    }

    /// Past max_steps the polynomial rises again (no clamp), as the official code does.
    func testNoClampAfterMaxSteps() throws {
        let s = try PolyScheduler(baseLR: 0.1, maxSteps: 10, warmupSteps: 0)
        XCTAssertEqual(s.learningRate(epoch: 10), 0)
        XCTAssertGreaterThan(s.learningRate(epoch: 11), 0)
        XCTAssertGreaterThan(s.learningRate(epoch: 15), s.learningRate(epoch: 11))
        XCTAssertEqual(s.learningRate(epoch: -1), 0.0001)  // warmup_lr_init, never reached by the loop
    }

    /// A checkpoint's state resumes the schedule exactly.
    func testStateSaveAndRestore() throws {
        var a = try PolyScheduler(baseLR: 0.001, maxSteps: 20, warmupSteps: 4)
        for _ in 0..<7 { a.step() }
        var b = try PolyScheduler(state: a.state)
        XCTAssertEqual(a, b)
        for _ in 0..<30 {
            XCTAssertEqual(a.lr.bitPattern, b.lr.bitPattern)
            a.step(); b.step()
        }
        let fresh = try PolyScheduler(baseLR: 0.001, maxSteps: 20, warmupSteps: 4)
        XCTAssertEqual(try PolyScheduler(state: fresh.state), fresh)
        XCTAssertThrowsError(try PolyScheduler(baseLR: 0.1, maxSteps: 4, warmupSteps: 4))
        XCTAssertThrowsError(try PolyScheduler(baseLR: -1, maxSteps: 4, warmupSteps: 0))
        XCTAssertThrowsError(try PolyScheduler(state: .init(baseLR: 0.1, maxSteps: 10, warmupSteps: 0, lastEpoch: -2, lr: 0)))
    }
}
