import Foundation
import TFCore
@testable import TFModel
import TFTestSupport
@testable import TFTrain
import XCTest

/// `"non_finite": "reduce_lr"` (back-off of the learning rate, checkpointed), and checkpoints
/// whose configuration claims enormous tensors being refused before allocation.
final class NonFiniteAndCheckpointSafetyTests: XCTestCase {
    typealias Behaviour = TrainerBehaviourTests

    func testReduceLRSkipsTheBatchScalesTheRateAndResumesBitExact() throws {
        let folder = try Reference.temporaryFolder()
        defer { Reference.removeTree(folder) }
        let config = try TrainerConfig.parse(Behaviour.json(extra: #", "non_finite": "reduce_lr", "non_finite_lr_factor": 0.25"#))
        XCTAssertEqual(config.nonFinite, .reduceLearningRate(factor: 0.25))
        var data = Behaviour.Synthetic(classes: 12)
        let batches = (0..<6).map { _ in data.batch(8) }
        let schedule = try PolyScheduler(baseLR: 0.002, maxSteps: 200, warmupSteps: 2)

        let trainer = try Trainer(config: config)
        for (images, labels) in batches.prefix(3) { _ = try trainer.step(images: images, labels: labels) }
        XCTAssertEqual(trainer.learningRateScale, 1)
        // An Inf weight makes the next batch non-finite: skipped, nothing changes, rate × 0.25.
        let offset = trainer.layout["norm.weight"]!.offset
        let saved = trainer.parameters.base[offset]
        trainer.parameters.base[offset] = .infinity
        let before = Array(trainer.parameters.all)
        let skipped = try trainer.step(images: batches[3].0, labels: batches[3].1)
        XCTAssertTrue(skipped.skipped)
        XCTAssertFalse(skipped.optimizerStepped)
        XCTAssertEqual(trainer.step, 3)
        XCTAssertEqual(Array(trainer.parameters.all).map(\.bitPattern), before.map(\.bitPattern))
        XCTAssertEqual(trainer.learningRateScale, 0.25)
        XCTAssertEqual(skipped.learningRate, schedule.learningRate(forOptimizerStep: 3) * 0.25)
        XCTAssertEqual(trainer.learningRate, schedule.learningRate(forOptimizerStep: 3) * 0.25)
        // A second non-finite batch halves it again (0.25²); then training continues at that rate.
        _ = try trainer.step(images: batches[3].0, labels: batches[3].1)
        XCTAssertEqual(trainer.learningRateScale, 0.0625)
        trainer.parameters.base[offset] = saved
        let r = try trainer.step(images: batches[3].0, labels: batches[3].1)
        XCTAssertTrue(r.optimizerStepped)
        XCTAssertEqual(r.learningRate, schedule.learningRate(forOptimizerStep: 3) * 0.0625)

        // The scale is checkpointed: a resumed run continues bit for bit.
        try trainer.saveCheckpoint(to: folder + "/run.tfc")
        let resumed = try Trainer.resume(from: folder + "/run.tfc")
        XCTAssertEqual(resumed.learningRateScale, 0.0625)
        XCTAssertEqual(resumed.learningRate, trainer.learningRate)
        for (images, labels) in batches.suffix(2) {
            let a = try trainer.step(images: images, labels: labels), b = try resumed.step(images: images, labels: labels)
            XCTAssertEqual(a.learningRate, b.learningRate)
            XCTAssertEqual(a.learningRate, schedule.learningRate(forOptimizerStep: trainer.step - 1) * 0.0625)
        }
        XCTAssertEqual(Array(resumed.parameters.all).map(\.bitPattern), Array(trainer.parameters.all).map(\.bitPattern))
        for (name, _, _, _) in trainer.stateTensors() {
            XCTAssertEqual(try resumed.tensor(name).map(\.bitPattern), try trainer.tensor(name).map(\.bitPattern), name)
        }
        // A checkpoint without back-off stores no scale and resumes with 1.
        let plain = try Trainer(config: try TrainerConfig.parse(Behaviour.json()))
        try plain.saveCheckpoint(to: folder + "/plain.tfc")
        XCTAssertEqual(try Trainer.resume(from: folder + "/plain.tfc").learningRateScale, 1)
    }

    func testReduceLRConfiguration() {
        func message(_ extra: String) -> String {
            do { _ = try TrainerConfig.parse(Behaviour.json(extra: extra)); return "" } catch {
                return (error as? TransFaceError)?.message ?? "\(error)"
            }
        }
        XCTAssertEqual(try TrainerConfig.parse(Behaviour.json(extra: #", "non_finite": "reduce_lr""#)).nonFinite,
                       .reduceLearningRate(factor: 0.5))
        XCTAssertEqual(try TrainerConfig.parse(Behaviour.json(extra: #", "non_finite": "skip""#)).nonFinite, .skip)
        XCTAssertEqual(try TrainerConfig.parse(Behaviour.json()).nonFinite, .refuse)
        XCTAssertTrue(message(#", "non_finite": "reduce_lr", "non_finite_lr_factor": 1"#).contains("strictly between 0 and 1"))
        XCTAssertTrue(message(#", "non_finite": "reduce_lr", "non_finite_lr_factor": 0"#).contains("strictly between 0 and 1"))
        XCTAssertTrue(message(#", "non_finite": "reduce_lr", "non_finite_lr_factor": 2"#).contains("non_finite_lr_factor"))
        XCTAssertTrue(message(#", "non_finite_lr_factor": 0.5"#).contains("only for \"non_finite\": \"reduce_lr\""))
        XCTAssertTrue(message(#", "non_finite": "skip", "non_finite_lr_factor": 0.5"#).contains("only for"))
        XCTAssertTrue(message(#", "non_finite": "halve""#).contains("config.non_finite"))
    }

    /// The sizes resume checks before allocating are exactly the tensors a trainer checkpoints.
    func testStateTensorSizesMatchTheTrainersTensors() throws {
        for variant in ["adamw", "sgd", "no masking"] {
            var json = Behaviour.json()
            if variant == "sgd" { json = json.replacingOccurrences(of: #""name": "adamw""#, with: #""name": "sgd""#) }
            if variant == "no masking" { json = json.replacingOccurrences(of: #""mask_ratio": 0.25"#, with: #""mask_ratio": 0"#) }
            let config = try TrainerConfig.parse(json)
            let trainer = try Trainer(config: config)
            let actual = [("partial_fc.weight", trainer.partialFC.weight.count)] + trainer.stateTensors().map { ($0.0, $0.3) }
            let expected = try Trainer.stateTensorSizes(config: config)
            XCTAssertEqual(Dictionary(uniqueKeysWithValues: expected.map { ($0.name, $0.count) }),
                           Dictionary(uniqueKeysWithValues: actual), variant)
        }
    }

    /// A checkpoint whose stored configuration claims 2 billion classes (centres and moments of
    /// about 380 GB) is refused from its tensor records before the trainer is allocated.
    func testCheckpointClaimingEnormousTensorsIsRefusedBeforeAllocating() throws {
        let folder = try Reference.temporaryFolder()
        defer { Reference.removeTree(folder) }
        let path = folder + "/run.tfc"
        try Trainer(config: try TrainerConfig.parse(Behaviour.json())).saveCheckpoint(to: path)
        func rewrite(_ edit: (inout ModelHeader) -> Void) throws -> String {
            try Reference.rewriteHeader(of: path, to: folder + "/crafted.tfc", edit)
            return folder + "/crafted.tfc"
        }
        XCTAssertNoThrow(try Trainer.resume(from: try rewrite { _ in }))
        let huge = try rewrite {
            $0.training!.configJSON = $0.training!.configJSON.replacingOccurrences(of: #""num_classes": 12"#,
                                                                                 with: #""num_classes": 2000000000"#)
        }
        let start = monotonicSeconds()
        XCTAssertThrowsError(try Trainer.resume(from: huge)) { e in
            XCTAssertEqual((e as? TransFaceError)?.kind, .format, "\(e)")
            XCTAssertTrue("\(e)".contains("partial_fc.weight") && "\(e)".contains("32000000000 values"), "\(e)")
        }
        XCTAssertLessThan(monotonicSeconds() - start, 2)
        let badScale = try rewrite { $0.training!.learningRateScale = 2 }
        XCTAssertThrowsError(try Trainer.resume(from: badScale)) { e in XCTAssertTrue("\(e)".contains("learning-rate scale"), "\(e)") }
    }
}
