import Foundation
import TFCore
import TFModel
import TFTestSupport
@testable import TFTrain
import XCTest

/// Trainer behaviour beyond the reference step: exact resume, learning on a synthetic task,
/// refusal of bad input and of non-finite steps, configuration errors.
final class TrainerBehaviourTests: XCTestCase {
    /// A small model on 36×36 images (16 patches) with every training feature on.
    static func json(classes: Int = 12, dpap: Bool = true, ehsm: String = "official", extra: String = "") -> String {
        """
        {"arch": "custom", "model": {"img_size": 36, "embed_dim": 32, "depth": 2, "num_heads": 4, "mlp_hidden_dim": 64},
         "embedding_size": 16, "mask_ratio": 0.25, "drop_path_rate": 0.1, "num_classes": \(classes), "batch_size": 8,
         "optimizer": {"name": "adamw", "lr": 0.002, "weight_decay": 0.05}, "schedule": {"warmup_steps": 2, "max_steps": 200},
         "dpap": {"enabled": \(dpap), "probability": 0.5}, "ehsm": {"enabled": \(ehsm != "off"), "mode": "\(ehsm == "off" ? "official" : ehsm)"},
         "margin": {"s": 16, "m2": 0.2}, "threads": 2, "seed": 3 \(extra)}
        """
    }

    /// Class prototypes: each class is a fixed random image; samples add noise and a shift.
    struct Synthetic {
        let classes: Int
        var rng = SeededRNG(seed: 77)
        let prototypes: [[UInt8]]
        init(classes: Int) {
            self.classes = classes
            var r = SeededRNG(seed: 5)
            prototypes = (0..<classes).map { _ in (0..<(36 * 36 * 3)).map { _ in UInt8(truncatingIfNeeded: r.next()) } }
        }
        mutating func batch(_ n: Int) -> ([UInt8], [Int32]) {
            var images: [UInt8] = [], labels: [Int32] = []
            for _ in 0..<n {
                let c = Int(rng.next() % UInt64(classes))
                labels.append(Int32(c))
                images += prototypes[c].map { v in UInt8(clamping: Int(v) + Int(rng.next() % 61) - 30) }
            }
            return (images, labels)
        }
    }

    func testResumeIsBitExact() throws {
        let folder = try Reference.temporaryFolder()
        defer { Reference.removeTree(folder) }
        let config = try TrainerConfig.parse(Self.json())
        var data = Synthetic(classes: 12)
        let batches = (0..<4).map { _ in data.batch(8) }
        let straight = try Trainer(config: config)
        for (images, labels) in batches { _ = try straight.step(images: images, labels: labels) }

        let first = try Trainer(config: config)
        for (images, labels) in batches.prefix(2) { _ = try first.step(images: images, labels: labels) }
        first.samplerState = [1, 2, 3]
        try first.saveCheckpoint(to: folder + "/run.tfc")
        let resumed = try Trainer.resume(from: folder + "/run.tfc")
        XCTAssertEqual(resumed.step, 2)
        XCTAssertEqual(resumed.samplerState, [1, 2, 3])
        for (images, labels) in batches.suffix(2) { _ = try resumed.step(images: images, labels: labels) }
        XCTAssertEqual(Array(resumed.parameters.all), Array(straight.parameters.all))
        XCTAssertEqual(try resumed.tensor("partial_fc.weight"), try straight.tensor("partial_fc.weight"))
        for (name, _, _, _) in straight.stateTensors() { XCTAssertEqual(try resumed.tensor(name), try straight.tensor(name), name) }
        XCTAssertEqual(resumed.learningRate, straight.learningRate)
    }

    /// The loss falls on a learnable task, with and without DPAP and EHSM (either mode).
    func testLossDecreasesOnASyntheticTask() throws {
        for (dpap, ehsm) in [(false, "off"), (true, "official"), (true, "paper")] {
            let trainer = try Trainer(config: try TrainerConfig.parse(Self.json(classes: 24, dpap: dpap, ehsm: ehsm)))
            var data = Synthetic(classes: 24)
            var losses: [Double] = []
            for _ in 0..<40 {
                let (images, labels) = data.batch(8)
                losses.append(try trainer.step(images: images, labels: labels).loss)
            }
            let early = losses.prefix(8).reduce(0, +) / 8, late = losses.suffix(8).reduce(0, +) / 8
            print("synthetic task, dpap \(dpap), ehsm \(ehsm): mean loss of the first 8 steps \(early), last 8 \(late)")
            XCTAssertLessThan(late, 0.7 * early, "dpap \(dpap) ehsm \(ehsm)")
        }
    }

    func testBadInputIsRefusedAndChangesNothing() throws {
        let trainer = try Trainer(config: try TrainerConfig.parse(Self.json()))
        var data = Synthetic(classes: 12)
        let (images, labels) = data.batch(8)
        let before = Array(trainer.parameters.all)
        func message(_ body: () throws -> Void) -> String {
            do { try body(); return "" } catch { return (error as? TransFaceError)?.message ?? "\(error)" }
        }
        XCTAssertTrue(message { _ = try trainer.step(images: images, labels: Array(labels.prefix(7))) }.contains("batch_size = 8"))
        var wrong = labels
        wrong[3] = 12
        XCTAssertTrue(message { _ = try trainer.step(images: images, labels: wrong) }.contains("label 12 is outside 0..<12"))
        wrong[3] = -1
        XCTAssertTrue(message { _ = try trainer.step(images: images, labels: wrong) }.contains("label -1"))
        // A NaN weight makes the step non-finite: refused, nothing changes.
        trainer.parameters.base[trainer.layout["blocks.0.mlp.fc1.bias"]!.offset] = .nan
        let poisoned = Array(trainer.parameters.all)
        let error = message { _ = try trainer.step(images: images, labels: labels) }
        XCTAssertTrue(error.contains("not finite"), error)
        XCTAssertEqual(Array(trainer.parameters.all).map(\.bitPattern), poisoned.map(\.bitPattern))
        XCTAssertEqual(trainer.step, 0)
        XCTAssertEqual(before.count, poisoned.count)
    }

    func testSkipPolicyReportsAndContinues() throws {
        let trainer = try Trainer(config: try TrainerConfig.parse(Self.json(extra: #", "non_finite": "skip""#)))
        var data = Synthetic(classes: 12)
        let (images, labels) = data.batch(8)
        let offset = trainer.layout["norm.weight"]!.offset
        let saved = trainer.parameters.base[offset]
        trainer.parameters.base[offset] = .infinity
        let skipped = try trainer.step(images: images, labels: labels)
        XCTAssertTrue(skipped.skipped)
        XCTAssertEqual(trainer.step, 0)
        trainer.parameters.base[offset] = saved
        XCTAssertTrue(try trainer.step(images: images, labels: labels).optimizerStepped)
        XCTAssertEqual(trainer.step, 1)
    }

    func testConfigurationErrorsNameTheKey() {
        func message(_ json: String) -> String {
            do { _ = try TrainerConfig.parse(json); return "" } catch { return (error as? TransFaceError)?.message ?? "\(error)" }
        }
        XCTAssertTrue(message(#"{"num_classes": 10, "learning_rate": 0.1}"#).contains("unknown key 'learning_rate'"))
        XCTAssertTrue(message(#"{"num_classes": 10, "optimizer": {"name": "adam"}}"#).contains("config.optimizer.name"))
        XCTAssertTrue(message(#"{"num_classes": 0}"#).contains("config.num_classes"))
        XCTAssertTrue(message(#"{}"#).contains("config.num_classes is required"))
        XCTAssertTrue(message(#"{"num_classes": 10, "schedule": {"warmup_steps": 5, "max_steps": 5}}"#).contains("max_steps"))
        XCTAssertTrue(message(#"{"num_classes": 10, "batch_size": 1}"#).contains("batch_size"))
        XCTAssertTrue(message(#"{"num_classes": 10, "ehsm": {"mode": "both"}}"#).contains("config.ehsm.mode"))
        XCTAssertTrue(message(#"{"num_classes": 10,"#).contains("invalid JSON"))
        XCTAssertTrue(message(#"{"num_classes": 10, "arch": "vit_q"}"#).contains("unknown preset"))
        XCTAssertTrue(message(#"{"num_classes": 10, "num_classes": 11}"#).contains("appears twice"))
        XCTAssertEqual(message(#"{"num_classes": 10, "clip_grad_norm": null}"#), "")
    }

    func testCorruptOrForeignCheckpointsAreRefused() throws {
        let folder = try Reference.temporaryFolder()
        defer { Reference.removeTree(folder) }
        let trainer = try Trainer(config: try TrainerConfig.parse(Self.json()))
        let path = folder + "/c.tfc"
        try trainer.saveCheckpoint(to: path)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        for cut in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 300)) {
            try bytes.prefix(cut).write(to: URL(fileURLWithPath: folder + "/cut.tfc"))
            XCTAssertThrowsError(try Trainer.resume(from: folder + "/cut.tfc"))
        }
        for offset in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 300)) {
            var damaged = bytes
            damaged[offset] ^= 0x10
            try damaged.write(to: URL(fileURLWithPath: folder + "/flip.tfc"))
            XCTAssertThrowsError(try Trainer.resume(from: folder + "/flip.tfc"), "flip at \(offset)")
        }
        // A model file is not a checkpoint, and a checkpoint is not a model file.
        try ModelFile.write(try trainer.exportModel(), to: folder + "/m.tfm")
        XCTAssertThrowsError(try Trainer.resume(from: folder + "/m.tfm"))
        XCTAssertThrowsError(try ModelFile.load(path: path))
        // The exported model loads and embeds.
        XCTAssertEqual(try ModelFile.load(path: folder + "/m.tfm").metadataValue("training_step"), "0")
    }
}

/// Gradient accumulation: the optimizer steps once every N batches, with the mean gradient.
final class GradientAccumulationTests: XCTestCase {
    func testOptimizerStepsEveryNBatches() throws {
        let json = TrainerBehaviourTests.json(dpap: false, extra: #", "gradient_accumulation": 3"#)
        let trainer = try Trainer(config: try TrainerConfig.parse(json))
        var data = TrainerBehaviourTests.Synthetic(classes: 12)
        let before = Array(trainer.parameters.all)
        var stepped: [Bool] = []
        for _ in 0..<6 {
            let (images, labels) = data.batch(8)
            stepped.append(try trainer.step(images: images, labels: labels).optimizerStepped)
            if stepped.count == 2 {
                // Between optimizer steps only the BatchNorm statistics move.
                for e in trainer.layout.entries where e.trainable {
                    XCTAssertEqual(Array(trainer.parameters.view(e.offset, e.count)), Array(before[e.offset..<(e.offset + e.count)]), e.name)
                }
            }
        }
        XCTAssertEqual(stepped, [false, false, true, false, false, true])
        XCTAssertEqual(trainer.step, 2)
        // A refused batch drops the partial window; training then goes on normally.
        let (good, goodLabels) = data.batch(8)
        XCTAssertFalse(try trainer.step(images: good, labels: goodLabels).optimizerStepped)
        let offset = trainer.layout["norm.bias"]!.offset
        let saved = trainer.parameters.base[offset]
        trainer.parameters.base[offset] = .nan
        XCTAssertThrowsError(try trainer.step(images: good, labels: goodLabels))
        trainer.parameters.base[offset] = saved
        XCTAssertEqual(trainer.microStep, 6)
        for expected in [false, false, true] {
            XCTAssertEqual(try trainer.step(images: good, labels: goodLabels).optimizerStepped, expected)
        }
        XCTAssertTrue(trainer.parameters.all.allSatisfy(\.isFinite))
        let folder = try Reference.temporaryFolder()
        defer { Reference.removeTree(folder) }
        let (images, labels) = data.batch(8)
        _ = try trainer.step(images: images, labels: labels)
        XCTAssertThrowsError(try trainer.saveCheckpoint(to: folder + "/mid.tfc"))  // mid-accumulation
    }
}
