import TFCore
import TFModel
import TFTestSupport
@testable import TFTrain
import XCTest

/// One full official training iteration against `reference/tiny_official_step` (no-grad pass,
/// DPAP replaying the recorded draws, second pass, EHSM-weighted ArcFace loss, backward,
/// clipping, AdamW) and the single-pass step against `reference/tiny` / `tiny_nondetached`.
/// Tolerances (README of the fixtures): losses rtol 1e-4; gradients 2e-3 of max|ref|; updated
/// weights 1e-6 absolute where |g| > 1e-4·max|g| (elsewhere AdamW turns rounding noise into
/// ±lr steps); BatchNorm statistics rtol 1e-4.
final class TrainerReferenceTests: XCTestCase {
    static let json = """
    {"arch": "custom", "model": {"embed_dim": 64, "depth": 2, "num_heads": 4, "mlp_hidden_dim": 256},
     "embedding_size": 32, "mask_ratio": 0, "drop_path_rate": 0, "num_classes": 10, "batch_size": 4,
     "optimizer": {"name": "adamw", "lr": 0.001, "weight_decay": 0.1}, "schedule": {"warmup_steps": 0, "max_steps": 100},
     "clip_grad_norm": 5.0, "seed": 1 %@ }
    """

    private func trainer(dpap: Bool, ehsmMode: String = "official") throws -> Trainer {
        let extra = (dpap ? "" : #", "dpap": {"enabled": false}"#) + #", "ehsm": {"mode": "\#(ehsmMode)"}"#
        let config = try TrainerConfig.parse(Self.json.replacingOccurrences(of: "%@", with: extra))
        let t = try Trainer(config: config, initialModel: try Reference.tinyModel())
        _ = t.partialFC.weight.all.update(fromContentsOf: try Reference.load("tiny/param/partial_fc.weight").values)
        return t
    }

    private func check(_ t: Trainer, _ result: Trainer.StepResult, set: String, loss: String,
                       file: StaticString = #filePath, line: UInt = #line) throws {
        let refLoss = Double(try Reference.load("\(set)/loss/\(loss)").values[0])
        XCTAssertEqual(result.loss, refLoss, accuracy: 1e-4 * abs(refLoss), "loss", file: file, line: line)
        let refNorm = Double(try Reference.load("\(set)/clip/total_norm").values[0])
        XCTAssertEqual(result.gradientNorm, refNorm, accuracy: 1e-4 * refNorm, "clip norm", file: file, line: line)
        var worstGrad = 0.0, worstUpdate = 0.0
        for e in t.layout.entries where e.trainable && e.name != "mask_token" && e.name != "feature.1.bias" {
            let grad = try t.tensor("gradient.\(e.name)").map { Double($0) / result.clipCoefficient }
            let updated = try t.tensor(e.name)
            if let ref = try? Reference.load("\(set)/grad/\(e.name)") {
                let c = Comparison(grad.map(Float.init), ref.values, rtol: 2e-3, atol: 1e-6)
                worstGrad = max(worstGrad, c.maxRel)
                XCTAssertTrue(c.passed, "gradient \(e.name): \(c)", file: file, line: line)
                let refUpdated = try Reference.load("\(set)/updated/\(e.name)").values
                let gmax = ref.values.map { abs($0) }.max()!
                for i in ref.values.indices where abs(ref.values[i]) > 1e-4 * gmax {
                    let d = Double(abs(updated[i] - refUpdated[i]))
                    worstUpdate = max(worstUpdate, d)
                    if d > 1e-6 { XCTFail("updated \(e.name)[\(i)]: \(updated[i]) vs \(refUpdated[i])", file: file, line: line); break }
                }
            } else {  // the two large tensors are stored as samples
                let idx = try Reference.load("\(set)/sample_idx/\(e.name)").values.map { Int($0) }
                let ref = try Reference.load("\(set)/grad_sample/\(e.name)").values
                let c = Comparison(idx.map { Float(grad[$0]) }, ref, rtol: 2e-3, atol: 1e-6)
                worstGrad = max(worstGrad, c.maxRel)
                XCTAssertTrue(c.passed, "gradient sample \(e.name): \(c)", file: file, line: line)
                let refUpdated = try Reference.load("\(set)/updated_sample/\(e.name)").values
                let gmax = try Reference.load("\(set)/grad_stats/\(e.name)").values[2]  // [L2, sum, max|g|]
                for (j, i) in idx.enumerated() where abs(ref[j]) > 1e-4 * gmax {
                    worstUpdate = max(worstUpdate, Double(abs(updated[i] - refUpdated[j])))
                }
                XCTAssertLessThanOrEqual(worstUpdate, 1e-6, "updated samples \(e.name)", file: file, line: line)
            }
        }
        let centres = Comparison(try t.tensor("partial_fc.weight"), try Reference.load("\(set)/updated/partial_fc.weight").values,
                                 rtol: 0, atol: 1e-6)
        XCTAssertTrue(centres.passed, "updated centres: \(centres)", file: file, line: line)
        print("\(set): loss \(result.loss) vs \(refLoss); clip norm \(result.gradientNorm) vs \(refNorm); worst gradient max|diff|/max|ref| \(worstGrad); worst update |diff| \(worstUpdate)")
    }

    func testSinglePassStepMatchesOfficial() throws {
        let t = try trainer(dpap: false)
        let images = try Reference.load("tiny/input/u8_hwc").bytes
        let result = try t.step(images: images, labels: [3, 7, 0, 7])
        try check(t, result, set: "tiny", loss: "value")
    }

    func testPaperModeEHSMStepMatchesOfficialNonDetached() throws {
        let t = try trainer(dpap: false, ehsmMode: "paper")
        let result = try t.step(images: try Reference.load("tiny/input/u8_hwc").bytes, labels: [3, 7, 0, 7])
        try check(t, result, set: "tiny_nondetached", loss: "value")
    }

    func testOfficialStepWithDPAPMatchesOfficial() throws {
        let t = try trainer(dpap: true)
        var replay = try ReplayDPAPRandom()
        t.dpapRandom = replay
        let result = try t.step(images: try Reference.load("tiny/input/u8_hwc").bytes, labels: [3, 7, 0, 7])
        replay = t.dpapRandom as! ReplayDPAPRandom
        XCTAssertTrue(replay.exhausted, "every recorded DPAP draw used")
        XCTAssertEqual(result.firstPassLoss, Double(try Reference.load("tiny_official_step/loss/pass1_nograd").values[0]), accuracy: 1e-3)
        XCTAssertEqual(result.imagesAugmented, 2)
        try check(t, result, set: "tiny_official_step", loss: "pass2")
        for name in ["feature.1.running_mean", "feature.1.running_var", "feature.3.running_mean", "feature.3.running_var"] {
            let c = Comparison(try t.tensor(name), try Reference.load("tiny_official_step/bn_after_step/\(name)").values, rtol: 1e-4)
            XCTAssertTrue(c.passed, "\(name) after two passes: \(c)")
        }
    }
}
