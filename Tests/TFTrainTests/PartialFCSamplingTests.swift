import XCTest
import TFCore
import TFTestSupport
@testable import TFTrain

/// Partial FC sampling: positives kept, labels remapped, sampled head == a full head over the
/// sampled centres, only sampled rows get gradients and optimizer updates.
final class PartialFCSamplingTests: XCTestCase {
    let classes = 50, dim = 6

    func makeHead(sampleRate: Double, maxBatch: Int = 5, seed: UInt64 = 11) throws -> PartialFC {
        let head = try PartialFC(numClasses: classes, embeddingSize: dim, maxBatch: maxBatch, sampleRate: sampleRate,
                                 margin: try .arcFace(), rng: SeededRNG(seed: seed, stream: 5))
        var rng = SeededRNG(seed: 1, stream: 9)
        head.initializeCentres(rng: &rng)
        return head
    }

    func testSampleKeepsPositivesAndRemapsLabels() throws {
        let head = try makeHead(sampleRate: 0.2)
        XCTAssertEqual(head.numSample, 10)
        let labels = [3, 17, 3, 42, 8]
        let x = HeadReference.floats(HeadReference.randomNormals(labels.count * dim, seed: 2))
        for _ in 0..<20 {
            try head.forward(embeddings: x, labels: labels)
            let s = Array(head.sampledClasses).map { Int($0) }
            XCTAssertEqual(s.count, 10)
            XCTAssertEqual(s, s.sorted())
            XCTAssertEqual(Set(s).count, s.count)
            XCTAssertTrue(Set([3, 8, 17, 42]).isSubset(of: Set(s)))
            XCTAssertTrue(s.allSatisfy { (0..<classes).contains($0) })
            for (b, y) in labels.enumerated() { XCTAssertEqual(s[Int(head.activeLabels[b])], y) }
        }
    }

    func testMorePositivesThanSamplesUsesPositivesOnly() throws {
        let head = try makeHead(sampleRate: 0.05)  // numSample = 2 < 4 positives
        XCTAssertEqual(head.numSample, 2)
        let labels = [9, 1, 30, 9, 44]
        try head.forward(embeddings: HeadReference.floats(HeadReference.randomNormals(labels.count * dim, seed: 2)), labels: labels)
        XCTAssertEqual(Array(head.sampledClasses), [1, 9, 30, 44])
        XCTAssertEqual(Array(head.activeLabels), [1, 0, 2, 1, 3])
    }

    func testSamplingIsSeededAndUniform() throws {
        let a = try makeHead(sampleRate: 0.2, seed: 4), b = try makeHead(sampleRate: 0.2, seed: 4), c = try makeHead(sampleRate: 0.2, seed: 5)
        let labels = [0, 0, 0, 0, 0]
        let x = HeadReference.floats(HeadReference.randomNormals(labels.count * dim, seed: 2))
        var counts = [Int](repeating: 0, count: classes)
        var differs = false
        let draws = 3000
        for _ in 0..<draws {
            try a.forward(embeddings: x, labels: labels)
            try b.forward(embeddings: x, labels: labels)
            try c.forward(embeddings: x, labels: labels)
            XCTAssertEqual(Array(a.sampledClasses), Array(b.sampledClasses))
            if Array(a.sampledClasses) != Array(c.sampledClasses) { differs = true }
            for k in a.sampledClasses { counts[Int(k)] += 1 }
        }
        XCTAssertTrue(differs)
        XCTAssertEqual(counts[0], draws)
        // Each negative is drawn with probability 9/49.
        let p = 9.0 / 49.0, sd = (p * (1 - p) / Double(draws)).squareRoot()
        for k in 1..<classes {
            XCTAssertEqual(Double(counts[k]) / Double(draws), p, accuracy: 5 * sd, "class \(k)")
        }
    }

    /// The sampled head computes exactly what a full head over the gathered centres computes, and
    /// writes gradients only into the sampled rows.
    func testSampledHeadEqualsFullHeadOverSampledCentres() throws {
        let head = try makeHead(sampleRate: 0.3)
        let labels = [12, 40, 12, 7]
        let x = HeadReference.floats(HeadReference.randomNormals(labels.count * dim, seed: 6))
        let sentinel: Float = 12345
        head.gradient.all.update(repeating: sentinel)
        let ehsmWeights: [Float] = [1.5, 1.6, 1.55, 1.7]
        let loss = try head.forward(embeddings: x, labels: labels, sampleWeights: ehsmWeights)
        var dx = [Float](repeating: 0, count: x.count)
        try dx.withUnsafeMutableBufferPointer { try head.backward(embeddingGradient: $0) }
        let sampled = Array(head.sampledClasses).map { Int($0) }
        XCTAssertEqual(sampled.count, 15)

        let full = try PartialFC(numClasses: sampled.count, embeddingSize: dim, maxBatch: labels.count, margin: try .arcFace())
        for (i, k) in sampled.enumerated() {
            (full.weight.base + i * dim).update(from: head.weight.base + k * dim, count: dim)
        }
        let fullLoss = try full.forward(embeddings: x, labels: Array(head.activeLabels).map { Int($0) }, sampleWeights: ehsmWeights)
        XCTAssertEqual(loss, fullLoss)
        XCTAssertEqual(try head.cosLogits(), try full.cosLogits())
        XCTAssertEqual(try head.marginLogits(), try full.marginLogits())
        var dxFull = [Float](repeating: 0, count: x.count)
        try dxFull.withUnsafeMutableBufferPointer { try full.backward(embeddingGradient: $0) }
        XCTAssertEqual(dx, dxFull)
        for c in 0..<classes {
            let row = Array(head.gradient.all[(c * dim)..<((c + 1) * dim)])
            if let i = sampled.firstIndex(of: c) {
                XCTAssertEqual(row, Array(full.gradient.all[(i * dim)..<((i + 1) * dim)]), "class \(c)")
            } else {
                XCTAssertEqual(row, [Float](repeating: sentinel, count: dim), "unsampled class \(c) got a gradient")
            }
        }
    }

    /// Only sampled centres move and only their moments change; an unsampled centre keeps its
    /// moments from the last step that sampled it.
    func testOptimizerTouchesOnlySampledCentres() throws {
        for makeOptimizer in [
            { (g: ParameterGroup) throws -> any ParameterOptimizer in try AdamW(group: g, learningRate: 1e-2, weightDecay: 0.1) },
            { (g: ParameterGroup) throws -> any ParameterOptimizer in try SGD(group: g, learningRate: 0.1, momentum: 0.9, weightDecay: 5e-4) },
        ] {
            let head = try makeHead(sampleRate: 0.2)
            let opt = try makeOptimizer(try .single(name: PartialFC.tensorName, count: classes * dim))
            func moments() -> [Float] {
                if let a = opt as? AdamW { return Array(a.expAvg.all) + Array(a.expAvgSq.all) }
                return Array((opt as! SGD).momentumBuffer.all)
            }
            func rows(_ v: [Float], _ c: Int, _ stride: Int) -> [Float] {
                stride == classes * dim ? Array(v[(c * dim)..<((c + 1) * dim)]) + Array(v[(stride + c * dim)..<(stride + (c + 1) * dim)])
                    : Array(v[(c * dim)..<((c + 1) * dim)])
            }
            let stride = opt is AdamW ? classes * dim : 0
            var dx = [Float](repeating: 0, count: 5 * dim)
            let x = HeadReference.floats(HeadReference.randomNormals(5 * dim, seed: 8))

            let w0 = Array(head.weight.all)
            try head.forward(embeddings: x, labels: [1, 2, 3, 4, 5])
            try dx.withUnsafeMutableBufferPointer { try head.backward(embeddingGradient: $0) }
            let first = Set(head.sampledClasses.map { Int($0) })
            try head.step(optimizer: opt)
            let w1 = Array(head.weight.all), m1 = moments()
            for c in 0..<classes {
                let moved = rows(w1, c, 0) != rows(w0, c, 0)
                XCTAssertEqual(moved, first.contains(c), "centre \(c)")
                let hasMoments = rows(m1, c, stride).contains { $0 != 0 }
                XCTAssertEqual(hasMoments, first.contains(c), "moments of centre \(c)")
            }

            try head.forward(embeddings: x, labels: [30, 31, 32, 33, 34])
            try dx.withUnsafeMutableBufferPointer { try head.backward(embeddingGradient: $0) }
            let second = Set(head.sampledClasses.map { Int($0) })
            try head.step(optimizer: opt)
            let w2 = Array(head.weight.all), m2 = moments()
            XCTAssertEqual(opt.stepCount, 2)
            var keptSome = false
            for c in 0..<classes where !second.contains(c) {
                XCTAssertEqual(rows(w2, c, 0), rows(w1, c, 0), "unsampled centre \(c) moved")
                XCTAssertEqual(rows(m2, c, stride), rows(m1, c, stride), "moments of unsampled centre \(c) changed")
                if first.contains(c) { keptSome = true }
            }
            XCTAssertTrue(keptSome, "no centre sampled in step 1 only; pick other labels")
        }
    }

    func testStepBeforeBackwardIsMisuse() throws {
        let head = try makeHead(sampleRate: 0.2)
        let opt = try AdamW(group: try .single(name: PartialFC.tensorName, count: classes * dim))
        XCTAssertThrowsError(try head.step(optimizer: opt))
        let bad: [Int32] = [Int32(classes)]
        try bad.withUnsafeBufferPointer { rows in
            XCTAssertThrowsError(try opt.stepRows(rows, rowLength: dim, parameters: head.weight.all,
                                                  gradients: UnsafeBufferPointer(head.gradient.all), pool: nil))
        }
    }
}
