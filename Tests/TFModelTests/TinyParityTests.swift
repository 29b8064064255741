import TFCore
import TFModel
import TFTestSupport
import XCTest

/// Forward parity with the official PyTorch code on `reference/tiny` (rtol 1e-4, atol 1e-6).
final class TinyParityTests: XCTestCase {
    let rtol = 1e-4

    private func runForward(mode: ForwardMode, threads: Int = 1, keepActivations: Bool = false) throws
        -> (forward: ViTForward, model: TransFaceModel, acts: [String: [Float]]) {
        let model = try Reference.tinyModel()
        let input = try Reference.load("tiny/input/u8_hwc")
        let forward = try ViTForward(config: model.config, preprocess: model.preprocess, maxBatch: 4,
                                     pool: try WorkerPool(threadCount: threads), keepActivations: keepActivations)
        let weights = ViTWeights(layout: model.layout, config: model.config, base: model.slab.base)
        var acts: [String: [Float]] = [:]
        try input.bytes.withUnsafeBufferPointer { images in
            try forward.run(weights: weights, images: images.baseAddress!, count: 4, mode: mode) { name, values in
                acts[name] = Array(values)
            }
        }
        return (forward, model, acts)
    }

    private func check(_ actual: some Collection<Float>, _ reference: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let expected = try Reference.load(reference)
        let c = Comparison(actual, expected.values, rtol: rtol)
        print("parity \(reference): \(c)")
        XCTAssertTrue(c.passed, "\(reference): \(c)", file: file, line: line)
    }

    func testInputNormalisationMatchesOfficialTensor() throws {
        let u8 = try Reference.load("tiny/input/u8_hwc"), nchw = try Reference.load("tiny/input/nchw")
        let lut = Preprocess.official(size: 112).lookupTable()
        for b in 0..<4 { for c in 0..<3 { for y in 0..<112 { for x in 0..<112 {
            let v = u8.bytes[((b * 112 + y) * 112 + x) * 3 + c]
            XCTAssertEqual(lut[c * 256 + Int(v)], nchw.values[((b * 3 + c) * 112 + y) * 112 + x])
        } } } }
    }

    func testEvalModeMatchesEveryModuleOutput() throws {
        let (forward, _, acts) = try runForward(mode: .eval)
        let modules = ["patch_embed", "blocks.0.attn", "blocks.0.mlp", "blocks.0", "blocks.1", "norm", "senet",
                       "feature.input", "feature.0", "feature.1", "feature.2", "feature.3"]
        for name in modules {
            guard let a = acts[name] else { XCTFail("no output observed for \(name)"); continue }
            try check(a, "tiny/eval_act/\(name)")
        }
        try check(forward.embeddings, "tiny/eval/embedding")
        try check(forward.patchWeights, "tiny/eval/se_weight_softmax")
        try check(forward.patchStd, "tiny/eval/patch_std")
    }

    func testTrainingBuffersComputeTheSameAsInferenceBuffers() throws {
        for mode in [ForwardMode.eval, .train(updateRunningStatistics: false)] {
            let shared = try runForward(mode: mode, threads: 2), kept = try runForward(mode: mode, threads: 2, keepActivations: true)
            XCTAssertEqual(Array(shared.forward.embeddings), Array(kept.forward.embeddings))
            XCTAssertEqual(shared.acts, kept.acts)
        }
    }

    func testTrainModeUsesBatchStatisticsAndMovesRunningStatistics() throws {
        let (forward, model, acts) = try runForward(mode: .train(updateRunningStatistics: true))
        for name in ["feature.0", "feature.1", "feature.2", "feature.3"] {
            try check(acts[name]!, "tiny/train_act/\(name)")
        }
        try check(forward.embeddings, "tiny/train/embedding")
        try check(forward.patchWeights, "tiny/train/se_weight_softmax")
        try check(forward.patchStd, "tiny/train/patch_std")
        for bn in ["feature.1", "feature.3"] {
            for stat in ["running_mean", "running_var"] {
                try check(try model.tensor("\(bn).\(stat)"), "tiny/bn_after_train_forward/\(bn).\(stat)")
            }
        }
    }

    func testTrainModeWithoutUpdateLeavesRunningStatistics() throws {
        let (_, model, _) = try runForward(mode: .train(updateRunningStatistics: false))
        let before = try Reference.load("tiny/param/feature.3.running_var").values
        XCTAssertEqual(try model.tensor("feature.3.running_var"), before)
    }

    func testTrainModeRefusesSingleImage() throws {
        let model = try Reference.tinyModel()
        let forward = try ViTForward(config: model.config, preprocess: model.preprocess, maxBatch: 2,
                                     pool: try WorkerPool(threadCount: 1))
        let weights = ViTWeights(layout: model.layout, config: model.config, base: model.slab.base)
        let image = [UInt8](repeating: 7, count: 112 * 112 * 3)
        XCTAssertThrowsError(try forward.run(weights: weights, images: image, count: 1, mode: .train(updateRunningStatistics: true)))
    }

    func testBorderPixelsBeyond108AreIgnored() throws {
        let model = try Reference.tinyModel()
        let embedder = try Embedder(model: model, maxBatch: 1)
        var image = try Reference.load("tiny/input/u8_hwc").bytes
        image.removeSubrange((112 * 112 * 3)...)
        var a = [Float](repeating: 0, count: 32), b = a
        try a.withUnsafeMutableBufferPointer { try embedder.embed(images: image, count: 1, width: 112, height: 112, into: .init(embeddings: $0)) }
        for y in 0..<112 { for x in 108..<112 { for c in 0..<3 { image[(y * 112 + x) * 3 + c] = 255 } } }
        for y in 108..<112 { for x in 0..<112 { for c in 0..<3 { image[(y * 112 + x) * 3 + c] = 0 } } }
        try b.withUnsafeMutableBufferPointer { try embedder.embed(images: image, count: 1, width: 112, height: 112, into: .init(embeddings: $0)) }
        XCTAssertEqual(a, b)
    }
}
