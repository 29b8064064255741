import TFCore
import TFModel
import TFTestSupport
@testable import TFTrain
import XCTest

/// The backward pass against central finite differences of the float32 forward pass, one
/// random direction per tensor, on an odd-shaped model (27×27 input: 9 patches, D 12, 3 heads,
/// MLP 20, E 6, batch 3, train-mode BatchNorm). The loss is L = Σ c·embedding + Σ p·patch_std
/// with fixed random c and p, so both gradient inputs of `ViTBackward` are exercised.
/// Agreement: |fd − analytic| ≤ 2e-2·max(|fd|, |analytic|) + 5e-3, where 5e-3 is the noise floor of
/// float32 central differences with step 1e-3·max|tensor| on this loss; the exact
/// parity of every gradient with the official code is checked against `reference/tiny`.
final class ViTBackwardTests: XCTestCase {
    let config = ViTConfig(imgSize: 27, embedDim: 12, depth: 2, numHeads: 3, mlpHiddenDim: 20, embeddingSize: 6)
    let batch = 3

    func testGradientsMatchFiniteDifferences() throws { try checkGradients(withNoise: false) }

    /// The same with token masking (6 of 9 tokens kept, in shuffled order) and drop path
    /// (branch scales 0 or 1/0.8): the mask token gets a gradient too.
    func testGradientsWithMaskingAndDropPathMatchFiniteDifferences() throws { try checkGradients(withNoise: true) }

    /// The plain ViT of the ablation (no SE module) against an SE model that is the same function:
    /// with `senet.2.weight` = 0 the gate is exactly sigmoid(0) = 0.5 on every token, so a plain
    /// model with half its `feature.0.weight` (and doubled patch-std loss weights on the SE side)
    /// computes the same loss, and every backbone gradient must match (the SE branch adds nothing
    /// when W2 = 0); `feature.0.weight`'s differs by the factor 2. Float32 rounding differs only in the ×0.5/×2 steps: tolerance 1e-5·max|g|.
    func testPlainViTGradientsEqualAnSEModelWithAConstantGate() throws {
        var plain = config
        plain.seGate = false
        XCTAssertEqual(ParameterLayout(config: config).entries.count - ParameterLayout(config: plain).entries.count, 2)
        XCTAssertNil(ParameterLayout(config: plain)["senet.0.weight"])
        let seBuilder = try ModelBuilder(config: config)
        seBuilder.initializeWeights(seed: 5)
        let seModel = try seBuilder.build()
        let plainBuilder = try ModelBuilder(config: plain)
        for e in plainBuilder.layout.entries {
            var v = try seModel.tensor(e.name)
            if e.name == "feature.0.weight" { v = v.map { $0 / 2 } }
            try plainBuilder.setTensor(e.name, v)
        }
        let plainModel = try plainBuilder.build()
        seModel.slab.view(seModel.layout["senet.2.weight"]!.offset, 81).update(repeating: 0)

        var rng = SeededRNG(seed: 23)
        let images = (0..<(batch * 27 * 27 * 3)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let c = (0..<(batch * 6)).map { _ in Float(rng.normal()) }
        let p = (0..<(batch * 9)).map { _ in Float(rng.normal()) }
        var kept: [Int32] = []
        for _ in 0..<batch { kept += Array(Array(0..<9).shuffled(using: &rng).prefix(6)).map(Int32.init) }
        let noise = TrainingNoise(keptTokens: kept, keep: 6, branchScales: (0..<(2 * 2 * batch)).map { i in i % 5 == 1 ? 0 : 1 / 0.8 })
        let pool = try WorkerPool(threadCount: 2)
        func gradients(_ model: TransFaceModel, patchStdWeight: Float) throws -> (grads: FloatSlab, patchStd: [Float]) {
            let forward = try ViTForward(config: model.config, preprocess: model.preprocess, maxBatch: batch, pool: pool,
                                         keepActivations: true)
            let weights = ViTWeights(layout: model.layout, config: model.config, base: model.slab.base)
            try images.withUnsafeBufferPointer {
                try forward.run(weights: weights, input: .rgb8($0.baseAddress!), count: batch,
                                mode: .train(updateRunningStatistics: false), noise: noise)
            }
            let grads = try FloatSlab(count: model.layout.totalCount)
            try ViTBackward(config: model.config, batch: batch, pool: pool).run(
                weights: weights, grads: ViTWeights(layout: model.layout, config: model.config, base: grads.base),
                forward: forward, dEmbedding: c, dPatchStd: p.map { $0 * patchStdWeight })
            return (grads, Array(forward.patchStd))
        }
        let (gPlain, stdPlain) = try gradients(plainModel, patchStdWeight: 1)
        let (gSE, stdSE) = try gradients(seModel, patchStdWeight: 2)
        for (a, b) in zip(stdPlain, stdSE) { XCTAssertEqual(a, 2 * b, accuracy: 1e-6 * max(1, abs(a))) }
        for e in plainModel.layout.entries where e.trainable {
            let want = gPlain.view(e.offset, e.count).map { e.name == "feature.0.weight" ? $0 / 2 : $0 }
            let got = Array(gSE.view(seModel.layout[e.name]!.offset, e.count))
            let tolerance = 1e-5 * max(want.map { abs($0) }.max()!, 1e-3)
            XCTAssertLessThanOrEqual(zip(want, got).map { abs($0 - $1) }.max()!, tolerance, e.name)
        }
    }

    private func checkGradients(withNoise: Bool) throws {
        let builder = try ModelBuilder(config: config)
        builder.initializeWeights(seed: 5)
        // Larger-than-default weights so every branch carries signal.
        let model = try builder.build()
        var rng = SeededRNG(seed: 17)
        for e in model.layout.entries where e.trainable {
            let v = model.slab.view(e.offset, e.count)
            for i in v.indices { v[i] += Float(rng.normal()) * 0.1 }
        }
        let images = (0..<(batch * 27 * 27 * 3)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let c = (0..<(batch * 6)).map { _ in Float(rng.normal()) }
        let p = (0..<(batch * 9)).map { _ in Float(rng.normal()) }
        let pool = try WorkerPool(threadCount: 2)
        let forward = try ViTForward(config: config, preprocess: model.preprocess, maxBatch: batch, pool: pool,
                                     keepActivations: true)
        let weights = ViTWeights(layout: model.layout, config: config, base: model.slab.base)
        var noise: TrainingNoise?
        if withNoise {
            var kept: [Int32] = []
            for _ in 0..<batch { kept += Array(Array(0..<9).shuffled(using: &rng).prefix(6)).map(Int32.init) }
            let scales = (0..<(config.depth * 2 * batch)).map { i in i % 5 == 1 ? Float(0) : Float(1 / 0.8) }
            noise = TrainingNoise(keptTokens: kept, keep: 6, branchScales: scales)
        }

        func loss() throws -> Double {
            try images.withUnsafeBufferPointer {
                try forward.run(weights: weights, input: .rgb8($0.baseAddress!), count: batch,
                                mode: .train(updateRunningStatistics: false), noise: noise)
            }
            var l = 0.0
            for (a, b) in zip(forward.embeddings, c) { l += Double(a) * Double(b) }
            for (a, b) in zip(forward.patchStd, p) { l += Double(a) * Double(b) }
            return l
        }
        _ = try loss()
        let grads = try FloatSlab(count: model.layout.totalCount)
        let gw = ViTWeights(layout: model.layout, config: config, base: grads.base)
        let backward = try ViTBackward(config: config, batch: batch, pool: pool)
        try backward.run(weights: weights, grads: gw, forward: forward, dEmbedding: c, dPatchStd: p)

        var checked = 0
        for e in model.layout.entries where e.trainable && (withNoise || e.name != "mask_token") {
            let values = model.slab.view(e.offset, e.count)
            let scale = max(values.map { abs($0) }.max()!, 0.05)
            let direction = (0..<e.count).map { _ in Float(rng.normal()) }
            let eps = 1e-3 * scale
            let saved = Array(values)
            for i in values.indices { values[i] = saved[i] + eps * direction[i] }
            let plus = try loss()
            for i in values.indices { values[i] = saved[i] - eps * direction[i] }
            let minus = try loss()
            for i in values.indices { values[i] = saved[i] }
            let fd = (plus - minus) / (2 * Double(eps))
            let analytic = zip(grads.view(e.offset, e.count), direction).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            XCTAssertLessThanOrEqual(abs(fd - analytic), 2e-2 * max(abs(fd), abs(analytic)) + 5e-3,
                                     "\(e.name): fd \(fd) analytic \(analytic)")
            checked += 1
        }
        XCTAssertEqual(checked, model.layout.entries.filter { $0.trainable }.count - (withNoise ? 0 : 1))
    }
}
