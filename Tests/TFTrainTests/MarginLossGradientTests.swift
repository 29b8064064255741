import XCTest
import TFCore
import TFTestSupport
@testable import TFTrain

/// Finite-difference checks in Double of the head's backward (normalisation of embeddings and
/// centres, straight-through margins, weighted cross entropy, EHSM in paper mode) on odd shapes.
/// Gradients compare with `atol 1e-6 + rtol 1e-4·max|fd|` (measured: ~1e-7 relative).
final class MarginLossGradientTests: XCTestCase {
    let batch = 3, dim = 5, classes = 7, patches = 11
    let labels = [2, 6, 2]

    struct Result {
        let dx: [Float], dw: [Float], dSigma: [Float]
        let loss: Double, margin: [Float], cos: [Float]
    }

    /// Runs the Float head (and EHSM) and returns its outputs and gradients.
    func runHead(margin: MarginConfig, ehsm config: EHSMConfig?, x: [Float], w: [Float], sigma: [Float],
                 pool: WorkerPool? = nil) throws -> Result {
        let head = try PartialFC(numClasses: classes, embeddingSize: dim, maxBatch: batch, margin: margin)
        w.withUnsafeBufferPointer { head.weight.all.baseAddress!.update(from: $0.baseAddress!, count: $0.count) }
        var weights: [Float]? = nil
        var ehsm: EHSM? = nil
        if let config {
            ehsm = try EHSM(config: config, patches: patches)
            weights = try ehsm!.weights(patchStd: sigma, batch: batch)
        }
        let loss = try head.forward(embeddings: x, labels: labels, sampleWeights: weights, pool: pool)
        let margin = try head.marginLogits(), cos = try head.cosLogits()
        var dx = [Float](repeating: .nan, count: batch * dim)
        var dWeights = [Float](repeating: .nan, count: batch)
        try dx.withUnsafeMutableBufferPointer { e in
            try dWeights.withUnsafeMutableBufferPointer { try head.backward(embeddingGradient: e, sampleWeightGradient: $0, pool: pool) }
        }
        var dSigma = [Float](repeating: 0, count: batch * patches)
        if let ehsm {
            try sigma.withUnsafeBufferPointer { s in
                try dWeights.withUnsafeBufferPointer { g in
                    try dSigma.withUnsafeMutableBufferPointer { try ehsm.backward(patchStd: s, batch: batch, weightGradient: g, into: $0) }
                }
            }
        }
        return Result(dx: dx, dw: Array(head.gradient.all), dSigma: dSigma, loss: loss, margin: margin, cos: cos)
    }

    func check(_ name: String, _ actual: [Float], _ expected: [Double], rtol: Double = 1e-4, atol: Double = 1e-6,
               file: StaticString = #filePath, line: UInt = #line) {
        let c = Comparison(actual, HeadReference.floats(expected), rtol: rtol, atol: atol)
        print("[fd] \(name): \(c)")
        XCTAssertTrue(c.passed, "\(name): \(c)", file: file, line: line)
    }

    /// The full check for one margin / EHSM setting.
    func gradientCheck(_ name: String, margin: MarginConfig, ehsm: EHSMConfig?, seed: UInt64 = 7,
                       expectFiltered: Bool = false) throws {
        let x = HeadReference.doubles(HeadReference.floats(HeadReference.randomNormals(batch * dim, seed: seed, stream: 1)))
        let w = HeadReference.doubles(HeadReference.floats(HeadReference.randomNormals(classes * dim, seed: seed, stream: 2, std: 0.05)))
        let sigma = HeadReference.doubles(HeadReference.floats(HeadReference.randomNormals(batch * patches, seed: seed, stream: 3, std: 0.2).map { abs(0.6 + $0) + 0.05 }))
        let result = try runHead(margin: margin, ehsm: ehsm, x: HeadReference.floats(x), w: HeadReference.floats(w), sigma: HeadReference.floats(sigma))

        let ref = HeadReference(batch: batch, dim: dim, classes: classes, margin: margin, labels: labels)
        let sur = HeadSurrogate(ref: ref, x: x, w: w)
        if expectFiltered { XCTAssertTrue(sur.mask.contains(0), "\(name): the filter zeroed nothing; pick another seed") }
        // Stay away from the filter threshold and the clamp, where the surrogate is not smooth.
        for (i, c) in sur.baseCos.enumerated() {
            XCTAssertLessThan(abs(c), 0.999, "\(name): cos \(i) too close to ±1")
            if margin.interclassFilteringThreshold > 0 {
                XCTAssertGreaterThan(abs(c - Double(margin.interclassFilteringThreshold)), 1e-3, "\(name): cos \(i) on the threshold")
            }
        }
        let weights = ehsm.map { HeadReference.ehsmWeights(sigma: sigma, batch: batch, patches: patches, config: $0) }
            ?? [Double](repeating: 1, count: batch)

        // Forward: margin logits and the loss against the Double model.
        let (zRef, _) = ref.marginLogits(cos: ref.cosines(x: x, w: w))
        check("\(name) margin logits", result.margin, zRef, rtol: 1e-5, atol: 1e-5)
        let lossRef = sur.loss(x: x, w: w, weights: weights, floored: true)
        XCTAssertEqual(result.loss, lossRef, accuracy: 1e-5 * max(1, abs(lossRef)), name)

        check("\(name) dL/dembedding", result.dx, HeadReference.finiteDifference(x) { sur.loss(x: $0, w: w, weights: weights) })
        check("\(name) dL/dcentres", result.dw, HeadReference.finiteDifference(w) { sur.loss(x: x, w: $0, weights: weights) })
        if let ehsm, ehsm.mode == .paper {
            let nll = sur.nll(x: x, w: w, floored: true)
            let fd = HeadReference.finiteDifference(sigma) { s in
                let ws = HeadReference.ehsmWeights(sigma: s, batch: batch, patches: patches, config: ehsm)
                return zip(ws, nll).reduce(0) { $0 + $1.0 * $1.1 } / Double(batch)
            }
            check("\(name) dL/dpatch_std", result.dSigma, fd)
            XCTAssertTrue(result.dSigma.contains { $0 != 0 })
        } else {
            XCTAssertTrue(result.dSigma.allSatisfy { $0 == 0 }, "official EHSM mode must give no patch std gradient")
        }
    }

    func testArcFace() throws {
        try gradientCheck("arcface s64 m0.5", margin: try .arcFace(), ehsm: nil)
        try gradientCheck("arcface s16 m0.3 + EHSM official", margin: try .arcFace(scale: 16, margin: 0.3), ehsm: .official)
    }

    func testArcFacePaperEHSM() throws {
        try gradientCheck("arcface + EHSM paper", margin: try .arcFace(scale: 16), ehsm: EHSMConfig(mode: .paper))
        try gradientCheck("arcface + EHSM paper gaussian γ2 top4", margin: try .arcFace(scale: 16),
                          ehsm: EHSMConfig(entropy: .gaussianBound, gamma: 2, topK: 4, mode: .paper))
    }

    func testCosFace() throws {
        try gradientCheck("cosface s64 m0.35", margin: try .cosFace(), ehsm: nil)
        try gradientCheck("cosface + EHSM paper top5", margin: try .cosFace(scale: 16, margin: 0.4),
                          ehsm: EHSMConfig(gamma: 0.5, topK: 5, mode: .paper))
    }

    func testCombined() throws {
        try gradientCheck("combined (0.9, 0.4, 0.15)", margin: try .combined(scale: 32, m1: 0.9, m2: 0.4, m3: 0.15), ehsm: nil)
        try gradientCheck("combined + EHSM paper gaussian", margin: try .combined(scale: 16, m1: 1.1, m2: 0.2, m3: 0.1),
                          ehsm: EHSMConfig(entropy: .gaussianBound, mode: .paper))
    }

    func testInterclassFiltering() throws {
        try gradientCheck("arcface filter 0.1", margin: try .arcFace(scale: 16, interclassFilteringThreshold: 0.1),
                          ehsm: EHSMConfig(mode: .paper), expectFiltered: true)
        try gradientCheck("cosface filter 0.1", margin: try .cosFace(scale: 16, interclassFilteringThreshold: 0.1),
                          ehsm: nil, expectFiltered: true)
    }

    /// Official dispatch of `margin_list`.
    func testOfficialMarginDispatch() throws {
        XCTAssertEqual(try MarginConfig.official(m1: 1, m2: 0.5, m3: 0).kind, .arcFace)
        let cos = try MarginConfig.official(m1: 1, m2: 0.5, m3: 0.35)
        XCTAssertEqual(cos.kind, .cosFace)
        XCTAssertEqual(cos.m2, 0)  // the official code ignores m1, m2 when m3 > 0
        XCTAssertEqual(try MarginConfig.official(m1: 0.9, m2: 0.4, m3: 0).kind, .combined)
        XCTAssertThrowsError(try MarginConfig.arcFace(scale: 0))
        XCTAssertThrowsError(try MarginConfig.arcFace(margin: .nan))
    }

    /// ArcFace non-target logits are cos(acos(x))·s in float32, as the official no-grad path.
    func testArcFaceNonTargetsRoundTrip() throws {
        var config = try MarginConfig.arcFace()
        let raw: [Float] = [0.3, -0.7, 1.2, 0.0, -1.5]
        var out = [Float](repeating: 0, count: raw.count)
        MarginSoftmax.forwardRow(config, raw: raw, out: &out, classes: raw.count, label: 1)
        XCTAssertEqual(out[0], cosf(acosf(0.3)) * 64)
        XCTAssertEqual(out[2], cosf(acosf(1)) * 64)
        XCTAssertEqual(out[3], cosf(acosf(0)) * 64)
        XCTAssertEqual(out[4], cosf(acosf(-1)) * 64)
        XCTAssertEqual(out[1], cosf(acosf(-0.7) + 0.5) * 64)
        config.roundTripNonTargets = false
        MarginSoftmax.forwardRow(config, raw: raw, out: &out, classes: raw.count, label: 1)
        XCTAssertEqual(out[0], 0.3 * 64)
        // Clamp backward passes only inside [−1, 1].
        var g: [Float] = [1, 1, 1, 1, 1]
        MarginSoftmax.backwardRow(config, raw: raw, gradient: &g, classes: raw.count, label: 1)
        XCTAssertEqual(g, [64, 64, 0, 64, 0])
    }

    /// Two workers give the same results as one (GEMMs split by classes and columns).
    func testWorkerPoolMatchesSingleThread() throws {
        let pool = try WorkerPool(threadCount: 2)
        let b = 3, e = 40, c = 70
        let head1 = try PartialFC(numClasses: c, embeddingSize: e, maxBatch: b, margin: try .arcFace())
        let head2 = try PartialFC(numClasses: c, embeddingSize: e, maxBatch: b, margin: try .arcFace())
        let w = HeadReference.floats(HeadReference.randomNormals(c * e, seed: 3, std: 0.01))
        for h in [head1, head2] { w.withUnsafeBufferPointer { h.weight.all.baseAddress!.update(from: $0.baseAddress!, count: $0.count) } }
        let x = HeadReference.floats(HeadReference.randomNormals(b * e, seed: 4))
        let l1 = try head1.forward(embeddings: x, labels: [5, 69, 0])
        let l2 = try head2.forward(embeddings: x, labels: [5, 69, 0], pool: pool)
        XCTAssertEqual(l1, l2, accuracy: 1e-6 * abs(l1))
        var d1 = [Float](repeating: 0, count: b * e), d2 = d1
        try d1.withUnsafeMutableBufferPointer { try head1.backward(embeddingGradient: $0) }
        try d2.withUnsafeMutableBufferPointer { try head2.backward(embeddingGradient: $0, pool: pool) }
        XCTAssertTrue(Comparison(d2, d1, rtol: 1e-6, atol: 0).passed)
        XCTAssertTrue(Comparison(Array(head2.gradient.all), Array(head1.gradient.all), rtol: 1e-6, atol: 0).passed)
    }

    /// The standalone cross-entropy API against Double: loss, nll, floor, backward.
    func testWeightedCrossEntropyStandalone() throws {
        let b = 3, c = 4
        var logits: [Float] = [2, -1, 0.5, 3, 100, -100, 0, 1, -3, -2, -1, 0]
        let base = logits
        let labels: [Int32] = [1, 1, 3]  // sample 1: p_y = e^-200 → floored at 1e-30
        let w: [Float] = [1.2, 1.5, 0.8]
        var nll = [Float](repeating: 0, count: b)
        let loss = try logits.withUnsafeMutableBufferPointer { l in
            try labels.withUnsafeBufferPointer { y in
                try w.withUnsafeBufferPointer { ww in
                    try nll.withUnsafeMutableBufferPointer {
                        try WeightedCrossEntropy.forward(logits: l, batch: b, classes: c, labels: y, weights: ww, nll: $0)
                    }
                }
            }
        }
        var expectLoss = 0.0
        for r in 0..<b {
            let row = base[(r * c)..<((r + 1) * c)].map(Double.init)
            let m = row.max()!
            let z = row.map { exp($0 - m) }.reduce(0, +)
            let p = row.map { exp($0 - m) / z }
            let n = min(-log(p[Int(labels[r])]), -log(Double(Float(1e-30))))
            XCTAssertEqual(Double(nll[r]), n, accuracy: 1e-5 * max(1, n))
            expectLoss += Double(w[r]) * n / Double(b)
            for k in 0..<c { XCTAssertEqual(Double(logits[r * c + k]), p[k], accuracy: 1e-6) }
        }
        XCTAssertEqual(loss, expectLoss, accuracy: 1e-5 * expectLoss)
        let probs = logits
        try logits.withUnsafeMutableBufferPointer { l in
            try labels.withUnsafeBufferPointer { y in
                try w.withUnsafeBufferPointer { try WeightedCrossEntropy.backward(probabilities: l, batch: b, classes: c, labels: y, weights: $0) }
            }
        }
        for r in 0..<b {
            for k in 0..<c {
                let expect = (Double(probs[r * c + k]) - (k == Int(labels[r]) ? 1 : 0)) * Double(w[r]) / Double(b)
                XCTAssertEqual(Double(logits[r * c + k]), expect, accuracy: 1e-7)
            }
        }
        let bad: [Int32] = [0, 4, 0]
        XCTAssertThrowsError(try logits.withUnsafeMutableBufferPointer { l in
            try bad.withUnsafeBufferPointer { y in
                try nll.withUnsafeMutableBufferPointer { try WeightedCrossEntropy.forward(logits: l, batch: b, classes: c, labels: y, weights: nil, nll: $0) }
            }
        })
    }

    /// EHSM weights of every option against the Double formula; the official one by hand.
    func testEHSMWeights() throws {
        let sigma = HeadReference.doubles(HeadReference.floats(HeadReference.randomNormals(batch * patches, seed: 5, std: 0.3).map { abs($0) + 0.1 }))
        for config in [EHSMConfig.official, EHSMConfig(gamma: 2), EHSMConfig(topK: 3), EHSMConfig(entropy: .gaussianBound),
                       EHSMConfig(entropy: .gaussianBound, gamma: 0.5, topK: 7, mode: .paper)] {
            let w = try EHSM(config: config, patches: patches).weights(patchStd: HeadReference.floats(sigma), batch: batch)
            let expect = HeadReference.ehsmWeights(sigma: sigma, batch: batch, patches: patches, config: config)
            check("ehsm weights \(config)", w, expect, rtol: 1e-6, atol: 0)
        }
        let row = sigma[0..<patches]
        let official = try EHSM(patches: patches).weights(patchStd: HeadReference.floats(sigma), batch: batch)
        XCTAssertEqual(Double(official[0]), 1 + exp(-row.reduce(0, +) / Double(patches)), accuracy: 1e-6)
    }

    func testInvalidInputsThrow() throws {
        let head = try PartialFC(numClasses: 4, embeddingSize: 3, maxBatch: 2, margin: try .arcFace())
        XCTAssertThrowsError(try head.forward(embeddings: [Float](repeating: 1, count: 6), labels: [0, 4]))
        XCTAssertThrowsError(try head.forward(embeddings: [Float](repeating: 1, count: 9), labels: [0, 1, 2]))
        XCTAssertThrowsError(try head.forward(embeddings: [Float](repeating: 1, count: 5), labels: [0, 1]))
        var d = [Float](repeating: 0, count: 6)
        XCTAssertThrowsError(try d.withUnsafeMutableBufferPointer { try head.backward(embeddingGradient: $0) })
        XCTAssertThrowsError(try PartialFC(numClasses: 4, embeddingSize: 3, maxBatch: 2, sampleRate: 0, margin: try .arcFace()))
        XCTAssertThrowsError(try EHSM(config: EHSMConfig(topK: 12), patches: 11))
    }
}
