import XCTest
import TFCore
import TFModel
import TFTestSupport
@testable import TFTrain

/// AdamW and SGD against hand computations in Double (torch's formulas), weight-decay policies,
/// gradient clipping and the finite check.
final class OptimizerTests: XCTestCase {
    /// Two tensors in a padded buffer: "a.weight" (decays) at 0..<5, "a.bias" (does not) at 16..<19.
    func smallGroup() throws -> ParameterGroup {
        try ParameterGroup(tensors: [.init(name: "a.weight", offset: 0, count: 5, decay: true),
                                     .init(name: "a.bias", offset: 16, count: 3, decay: false)], extent: 32)
    }

    func gradientSequence(step: Int) -> [Float] {
        (0..<32).map { i in Float(sin(Double(i * 7 + step * 13)) * (i % 3 == 0 ? 0.01 : 2)) }
    }

    func testSGDMomentumMatchesHandComputation() throws {
        for nesterov in [false, true] {
            let group = try smallGroup()
            let lr = 0.05, mu = 0.9, wd = 5e-4
            let sgd = try SGD(group: group, learningRate: lr, momentum: mu, weightDecay: wd, nesterov: nesterov)
            var p = (0..<32).map { Float(0.1 * Double($0) - 1) }
            let untouched = p
            var hp = p.map(Double.init), buf = [Double](repeating: 0, count: 32)
            for step in 0..<4 {
                let g = gradientSequence(step: step)
                try p.withUnsafeMutableBufferPointer { pp in try g.withUnsafeBufferPointer { try sgd.step(parameters: pp, gradients: $0, pool: nil) } }
                for t in group.tensors {
                    for i in t.offset..<(t.offset + t.count) {
                        var d = Double(g[i]) + (t.decay ? wd * hp[i] : 0)
                        buf[i] = step == 0 ? d : mu * buf[i] + d   // torch: first step buf = clone(d)
                        d = nesterov ? d + mu * buf[i] : buf[i]
                        hp[i] -= lr * d
                    }
                }
            }
            let inGroup = Set(group.tensors.flatMap { $0.offset..<($0.offset + $0.count) })
            for i in 0..<32 {
                if inGroup.contains(i) {
                    XCTAssertEqual(Double(p[i]), hp[i], accuracy: 1e-6 * max(1, abs(hp[i])), "element \(i) nesterov \(nesterov)")
                } else {
                    XCTAssertEqual(p[i], untouched[i], "element \(i) outside the group moved")
                }
            }
            XCTAssertEqual(sgd.stepCount, 4)
        }
    }

    func testAdamWMatchesHandComputation() throws {
        let group = try smallGroup()
        let lr = 2e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.05
        let opt = try AdamW(group: group, learningRate: lr, betas: (b1, b2), eps: eps, weightDecay: wd)
        var p = (0..<32).map { Float(0.1 * Double($0) - 1) }
        let untouched = p
        var hp = p.map(Double.init), m = [Double](repeating: 0, count: 32), v = m
        for step in 1...5 {
            let g = gradientSequence(step: step)
            try p.withUnsafeMutableBufferPointer { pp in try g.withUnsafeBufferPointer { try opt.step(parameters: pp, gradients: $0, pool: nil) } }
            for t in group.tensors {
                for i in t.offset..<(t.offset + t.count) {
                    let gi = Double(g[i])
                    if t.decay { hp[i] *= 1 - lr * wd }
                    m[i] = b1 * m[i] + (1 - b1) * gi
                    v[i] = b2 * v[i] + (1 - b2) * gi * gi
                    let bc1 = 1 - pow(b1, Double(step)), bc2 = 1 - pow(b2, Double(step))
                    hp[i] -= lr / bc1 * m[i] / (v[i].squareRoot() / bc2.squareRoot() + eps)
                }
            }
        }
        for i in 0..<32 {
            if group.tensors.contains(where: { ($0.offset..<($0.offset + $0.count)).contains(i) }) {
                XCTAssertEqual(Double(p[i]), hp[i], accuracy: 1e-6, "element \(i)")
                XCTAssertEqual(Double(opt.expAvg.base[i]), m[i], accuracy: 1e-6 * max(1, abs(m[i])))
                XCTAssertEqual(Double(opt.expAvgSq.base[i]), v[i], accuracy: 1e-5 * max(1e-3, abs(v[i])))
            } else {
                XCTAssertEqual(p[i], untouched[i])
                XCTAssertEqual(opt.expAvg.base[i], 0)
            }
        }
    }

    /// Parallel steps (flat ranges split over workers) equal the single-threaded ones bit for bit.
    func testWorkerPoolStepIsBitIdentical() throws {
        let group = try ParameterGroup(tensors: [.init(name: "w", offset: 0, count: 5000, decay: true),
                                                 .init(name: "b", offset: 5008, count: 77, decay: false),
                                                 .init(name: "v", offset: 5104, count: 3001, decay: true)], extent: 8112)
        let pool = try WorkerPool(threadCount: 2)
        let g = HeadReference.floats(HeadReference.randomNormals(group.extent, seed: 21))
        let p0 = HeadReference.floats(HeadReference.randomNormals(group.extent, seed: 22, std: 0.02))
        var results: [[Float]] = []
        for usePool in [nil, pool] {
            for make in [{ try AdamW(group: group, weightDecay: 0.1) as any ParameterOptimizer },
                         { try SGD(group: group, learningRate: 0.1, momentum: 0.9, weightDecay: 1e-4) as any ParameterOptimizer }] {
                let opt = try make()
                var p = p0
                for _ in 0..<2 {
                    try p.withUnsafeMutableBufferPointer { pp in try g.withUnsafeBufferPointer { try opt.step(parameters: pp, gradients: $0, pool: usePool) } }
                }
                results.append(p)
            }
        }
        XCTAssertEqual(results[0], results[2])
        XCTAssertEqual(results[1], results[3])
        XCTAssertNotEqual(results[0], p0)
    }

    func testWeightDecayPolicies() throws {
        let config = Reference.tinyConfig
        let layout = ParameterLayout(config: config)
        let official = try ParameterGroup.backbone(layout: layout, config: config)
        XCTAssertTrue(official.tensors.allSatisfy { $0.decay })
        XCTAssertEqual(official.extent, layout.totalCount)
        XCTAssertEqual(official.elementCount, layout.entries.filter { $0.trainable && $0.name != "mask_token" }.reduce(0) { $0 + $1.count })
        for t in official.tensors { XCTAssertEqual(t.offset, layout[t.name]!.offset) }

        var masked = config
        masked.maskRatio = 0.1
        XCTAssertNotNil(try ParameterGroup.backbone(layout: layout, config: masked).tensor(named: "mask_token"))

        let exempt = try ParameterGroup.backbone(layout: layout, decay: .exemptNormsBiasesAndTokens, withoutGradient: [])
        let noDecay = Set(exempt.tensors.filter { !$0.decay }.map(\.name))
        for name in ["pos_embed", "mask_token", "patch_embed.proj.bias", "blocks.0.norm1.weight", "blocks.1.norm2.bias",
                     "blocks.0.attn.proj.bias", "blocks.1.mlp.fc1.bias", "norm.weight", "norm.bias",
                     "feature.1.weight", "feature.1.bias", "feature.3.weight", "feature.3.bias"] {
            XCTAssertTrue(noDecay.contains(name), name)
        }
        for name in ["patch_embed.proj.weight", "blocks.0.attn.qkv.weight", "blocks.1.mlp.fc2.weight", "feature.0.weight",
                     "feature.2.weight", "senet.0.weight", "senet.2.weight"] {
            XCTAssertFalse(noDecay.contains(name), name)
        }
        XCTAssertThrowsError(try ParameterGroup.backbone(layout: layout, withoutGradient: ["no.such.tensor"]))
        XCTAssertThrowsError(try ParameterGroup(tensors: [.init(name: "a", offset: 4, count: 4, decay: true),
                                                          .init(name: "b", offset: 6, count: 4, decay: true)]))
    }

    func testGradientClippingByHand() throws {
        let group = try smallGroup()
        let clipper = GradientClipper(group: group)
        var g = [Float](repeating: 100, count: 32)  // outside the group: must not count nor change
        let inside: [Float] = [3, 4, 0, 0, 0, 12, 0, 0]
        for (j, i) in (Array(0..<5) + Array(16..<19)).enumerated() { g[i] = inside[j] }
        // ‖(3,4)‖ = 5, ‖12‖ = 12 → total 13
        var r = try g.withUnsafeMutableBufferPointer { try clipper.clip(gradients: $0, maxNorm: 5) }
        XCTAssertEqual(r.totalNorm, 13, accuracy: 1e-12)
        XCTAssertEqual(r.coefficient, 5 / (13 + 1e-6), accuracy: 1e-15)
        XCTAssertEqual(clipper.tensorNorm(0), 5, accuracy: 1e-12)
        XCTAssertEqual(clipper.tensorNorm(1), 12, accuracy: 1e-12)
        XCTAssertEqual(g[0], Float(3 * r.coefficient))
        XCTAssertEqual(g[16], Float(12 * r.coefficient))
        XCTAssertEqual(g[5], 100)
        // Below the bound: untouched, coefficient 1.
        let before = g
        r = try g.withUnsafeMutableBufferPointer { try clipper.clip(gradients: $0, maxNorm: 10) }
        XCTAssertEqual(r.coefficient, 1)
        XCTAssertEqual(g, before)
        // Extra squared norm (gradients held elsewhere) joins the total.
        let t = try g.withUnsafeBufferPointer { try clipper.totalNorm(gradients: $0, extraSquaredNorm: 144) }
        let c = 5 / (13 + 1e-6)
        XCTAssertEqual(t, (169 * c * c + 144).squareRoot(), accuracy: 1e-5)
        // Non-finite: NaN coefficient, gradients untouched, the finite check names the tensor.
        g[17] = .infinity
        let withInf = g
        r = try g.withUnsafeMutableBufferPointer { try clipper.clip(gradients: $0, maxNorm: 5) }
        XCTAssertTrue(r.coefficient.isNaN)
        XCTAssertEqual(g, withInf)
        let bad = try g.withUnsafeBufferPointer { try GradientClipping.firstNonFinite($0, group: group) }
        XCTAssertEqual(bad?.tensor, "a.bias")
        XCTAssertEqual(bad?.index, 1)
        g[17] = 1
        g[20] = .nan  // outside the group
        XCTAssertTrue(try g.withUnsafeBufferPointer { try GradientClipping.allFinite($0, group: group) })
        var short = [Float](repeating: 0, count: 8)
        XCTAssertThrowsError(try short.withUnsafeMutableBufferPointer { try clipper.clip(gradients: $0, maxNorm: 5) })
    }

    /// The per-element update of AdamW's first step is about lr·sign(g) (plus decay): a sanity
    /// check of the bias corrections.
    func testAdamWFirstStepIsSignLike() throws {
        let group = try ParameterGroup.single(name: "w", count: 4, decay: false)
        let opt = try AdamW(group: group, learningRate: 1e-3, weightDecay: 0)
        var p: [Float] = [0, 0, 0, 0]
        let g: [Float] = [1e3, -2, 1e-3, 0]
        try p.withUnsafeMutableBufferPointer { pp in try g.withUnsafeBufferPointer { try opt.step(parameters: pp, gradients: $0, pool: nil) } }
        XCTAssertEqual(p[0], -1e-3, accuracy: 1e-9)
        XCTAssertEqual(p[1], 1e-3, accuracy: 1e-9)
        XCTAssertEqual(p[2], -1e-3 * 1e-3 / (1e-3 + 1e-8), accuracy: 1e-9)
        XCTAssertEqual(p[3], 0)
    }
}
