import Foundation
import TFCore
import TFModel
import TFTestSupport
@testable import TFTrain
import XCTest

/// Feeds DPAP the draws recorded in `reference/tiny_official_step/dpap`, in loop order.
struct ReplayDPAPRandom: DPAPRandomSource {
    let draws: [Double], images: [Int], hs: [Int], ws: [Int], lambdas: [Double]
    var nextDraw = 0, nextImage = 0, nextCell = 0, nextLambda = 0
    var batches: Set<Int> = [], grids: Set<Int> = [], alphas: Set<Double> = []

    init(set: String = "tiny_official_step/dpap") throws {
        draws = try NPYExact.doubles("\(set)/random_draws").values
        images = try NPYExact.ints("\(set)/mix_random_index")
        hs = try NPYExact.ints("\(set)/mix_random_h")
        ws = try NPYExact.ints("\(set)/mix_random_w")
        lambdas = try NPYExact.doubles("\(set)/mix_lam").values
    }

    mutating func applyDraw() -> Double { defer { nextDraw += 1 }; return draws[nextDraw] }
    mutating func randomImage(batch: Int) -> Int { batches.insert(batch); defer { nextImage += 1 }; return images[nextImage] }
    mutating func randomCell(grid: Int) -> (h: Int, w: Int) {
        grids.insert(grid)
        defer { nextCell += 1 }
        return (hs[nextCell], ws[nextCell])
    }
    mutating func lambda(alpha: Double) -> Double { alphas.insert(alpha); defer { nextLambda += 1 }; return lambdas[nextLambda] }

    var exhausted: Bool {
        nextDraw == draws.count && nextImage == images.count && nextCell == hs.count && nextLambda == lambdas.count
    }
}

final class DPAPTests: XCTestCase {
    let set = "tiny_official_step/dpap"

    /// `img_original` from uint8 equals train.py's float32 chain through the official tensor.
    func testOriginalScaleFollowsTheOfficialFloatChain() throws {
        let u8 = try Reference.load("tiny/input/u8_hwc"), nchw = try Reference.load("tiny/input/nchw")
        let ours = DPAP.originalScale(fromRGB8: u8.bytes)
        var fromTensor = [Float](repeating: 0, count: ours.count)
        for b in 0..<4 { for c in 0..<3 { for y in 0..<112 { for x in 0..<112 {
            fromTensor[((b * 112 + y) * 112 + x) * 3 + c] = DPAP.originalScale(nchw.values[((b * 3 + c) * 112 + y) * 112 + x])
        } } } }
        XCTAssertEqual(ours, fromTensor)
        // Images the reference left alone (draws > 0.2) come out of DPAP bit-identical.
        let after = try Reference.load("\(set)/img_original_after")
        let per = 112 * 112 * 3
        XCTAssertEqual(Array(ours[0..<(2 * per)]), Array(after.values[0..<(2 * per)]))
        // It is not the identity: (u/255 − 0.5)/0.5 → 0…255 leaves float32 rounding (≤ 4e-6).
        XCTAssertNotEqual(ours, u8.bytes.map(Float.init))
        XCTAssertLessThanOrEqual(zip(ours, u8.bytes).map { abs($0 - Float($1)) }.max()!, 4e-6)
    }

    /// The whole DPAP step of `tiny_official_step` replayed from its recorded draws.
    func testReplayMatchesOfficialStep() throws {
        let u8 = try Reference.load("tiny/input/u8_hwc")
        let weights = try Reference.load("tiny_official_step/pass1/se_weight_softmax")
        XCTAssertEqual(weights.shape, [4, 144])
        var images = DPAP.originalScale(fromRGB8: u8.bytes)
        var random = try ReplayDPAPRandom(set: set)
        let dpap = try DPAP()
        let log = try dpap.apply(images: &images, patchWeights: weights.values, random: &random, capturePatches: true)

        XCTAssertTrue(random.exhausted, "every recorded draw is used, none more")
        XCTAssertEqual(random.batches, [4]); XCTAssertEqual(random.grids, [12]); XCTAssertEqual(random.alphas, [1])
        XCTAssertEqual(log.topK, try NPYExact.ints("\(set)/topk"))
        XCTAssertEqual(log.applied, try NPYExact.ints("\(set)/applied").map { $0 != 0 })
        XCTAssertEqual(log.draws, random.draws)
        let n = try NPYExact.ints("\(set)/mix_batch_index").count
        XCTAssertEqual(log.mixes.count, n)
        XCTAssertEqual(log.mixes.map(\.image), try NPYExact.ints("\(set)/mix_batch_index"))
        XCTAssertEqual(log.mixes.map(\.rank), try NPYExact.ints("\(set)/mix_j"))
        XCTAssertEqual(log.mixes.map(\.patch), try NPYExact.ints("\(set)/mix_patch"))
        XCTAssertEqual(log.mixes.map(\.partnerImage), random.images)
        XCTAssertEqual(log.mixes.map(\.partnerH), random.hs)
        XCTAssertEqual(log.mixes.map(\.partnerW), random.ws)
        XCTAssertEqual(log.mixes.map(\.lambda), random.lambdas)

        // Per mix, in loop order: inputs exactly as the official loop saw them (except pixels an
        // earlier boundary case wrote one lower/higher), outputs within the boundary rule.
        let refSrc = try Reference.load("\(set)/mix_img_src"), refRandom = try Reference.load("\(set)/mix_img_random")
        let refOut = try Reference.load("\(set)/mix_out")
        let per = 112 * 112 * 3, pv = 243
        var flipped = [Bool](repeating: false, count: 4 * per)
        var outCmp = BoundaryComparison()
        var inputDiffs = 0, inputDiffsOutsideFlips = 0
        let fft = try PatchFFT()
        func offsets(_ image: Int, _ h: Int, _ w: Int) -> [Int] {
            var o: [Int] = []
            for y in 0..<9 { for x in 0..<27 { o.append(image * per + (h * 9 + y) * 336 + w * 27 + x) } }
            return o
        }
        for (m, mix) in log.mixes.enumerated() {
            let r = (m * pv)..<((m + 1) * pv)
            let srcCells = offsets(mix.image, mix.patch / 12, mix.patch % 12)
            let partnerCells = offsets(mix.partnerImage, mix.partnerH, mix.partnerW)
            for (i, j) in r.enumerated() {
                for (ours, ref, cell) in [(log.sourcePatches[j], refSrc.values[j], srcCells[i]),
                                          (log.partnerPatches[j], refRandom.values[j], partnerCells[i])] where ours != ref {
                    inputDiffs += 1
                    if !(flipped[cell] && abs(ours - ref) <= 1) { inputDiffsOutsideFlips += 1 }
                }
            }
            Array(log.sourcePatches[r]).withUnsafeBufferPointer { a in
                Array(log.partnerPatches[r]).withUnsafeBufferPointer { b in
                    fft.mix(source: a.baseAddress!, partner: b.baseAddress!, lambda: mix.lambda)
                }
            }
            for (i, j) in r.enumerated() {
                XCTAssertEqual(fft.output[i], log.outputPatches[j])
                outCmp.add(actual: log.outputPatches[j], expected: refOut.bytes[j], referencePreclip: nil,
                           ourPreclip: Double(fft.preclip[i]), boundary: AmplitudeMixTests.boundaryTolerance)
                flipped[srcCells[i]] = log.outputPatches[j] != refOut.bytes[j]
            }
        }
        print("dpap replay: \(n) mixes; inputs: \(inputDiffs) values differ (\(inputDiffsOutsideFlips) not explained by earlier boundary cases); outputs: \(outCmp)")
        XCTAssertEqual(inputDiffsOutsideFlips, 0)
        XCTAssertTrue(outCmp.passed, "\(outCmp)")

        // The final batch: bit-identical except pixels whose last write was a boundary case.
        let after = try Reference.load("\(set)/img_original_after")
        XCTAssertEqual(after.shape, [4, 112, 112, 3])
        var exactMismatch = 0, boundaryDiffs = 0
        for i in 0..<(4 * per) where images[i] != after.values[i] {
            if flipped[i] && abs(images[i] - after.values[i]) == 1 { boundaryDiffs += 1 } else { exactMismatch += 1 }
        }
        print("dpap replay: img_original_after: \(exactMismatch) mismatches, \(boundaryDiffs) boundary (±1) values")
        XCTAssertEqual(exactMismatch, 0)
    }

    /// The batch after DPAP, normalised, through the tiny model in train mode gives the official
    /// second pass; the first pass from uint8 gives the SE weights DPAP ranked.
    func testSecondPassInputMatchesOfficialPass() throws {
        let model = try Reference.tinyModel()
        let forward = try ViTForward(config: model.config, preprocess: model.preprocess, maxBatch: 4,
                                     pool: try WorkerPool(threadCount: 1))
        let weights = ViTWeights(layout: model.layout, config: model.config, base: model.slab.base)
        let u8 = try Reference.load("tiny/input/u8_hwc")
        try u8.bytes.withUnsafeBufferPointer { p in
            try forward.run(weights: weights, images: p.baseAddress!, count: 4, mode: .train(updateRunningStatistics: false))
        }
        let pass1 = Comparison(forward.patchWeights, try Reference.load("tiny_official_step/pass1/se_weight_softmax").values, rtol: 1e-4)
        print("dpap pass 1 SE weights: \(pass1)")
        XCTAssertTrue(pass1.passed, "\(pass1)")
        var topK = [Int](repeating: 0, count: 28)
        for b in 0..<4 {
            topK.withUnsafeMutableBufferPointer { out in
                DPAP.topK(weights: forward.patchWeights.baseAddress! + b * 144, count: 144, k: 7, into: out.baseAddress! + b * 7)
            }
        }
        XCTAssertEqual(topK, try NPYExact.ints("\(set)/topk"))

        var images = DPAP.originalScale(fromRGB8: u8.bytes)
        var random = try ReplayDPAPRandom(set: set)
        try DPAP().apply(images: &images, patchWeights: Array(forward.patchWeights), random: &random)
        let input = DPAP.normalizedInput(from: images)
        try input.withUnsafeBufferPointer { p in
            try forward.run(weights: weights, input: .normalizedHWC(p.baseAddress!), count: 4,
                            mode: .train(updateRunningStatistics: false))
        }
        let emb = Comparison(forward.embeddings, try Reference.load("tiny_official_step/pass2/embedding").values, rtol: 1e-4)
        let se = Comparison(forward.patchWeights, try Reference.load("tiny_official_step/pass2/se_weight_softmax").values, rtol: 1e-4)
        print("dpap pass 2 embedding: \(emb); SE weights: \(se)")
        XCTAssertTrue(emb.passed, "\(emb)")
        XCTAssertTrue(se.passed, "\(se)")
    }

    /// normalizedInput is ((x/255) − 0.5)/0.5 in float32, element by element.
    func testNormalizedInputChain() {
        let xs: [Float] = [0, 1, 37.000004, 127.5, 128, 199.99998, 254.99998, 255]
        let ys = DPAP.normalizedInput(from: xs)
        for (x, y) in zip(xs, ys) {
            let a = x / Float(255), b = a - Float(0.5)
            XCTAssertEqual(y, b / Float(0.5))
        }
        XCTAssertEqual(ys.first, -1)
        XCTAssertEqual(ys.last, 1)
    }

    func testTopKOrderTiesAndNaN() {
        var w = [Float](repeating: 0.5, count: 10)
        w[7] = 0.9; w[3] = 0.9; w[5] = .nan; w[1] = 0.7
        var out = [Int](repeating: -1, count: 5)
        DPAP.topK(weights: w, count: 10, k: 5, into: &out)
        XCTAssertEqual(out, [5, 3, 7, 1, 0])
        // Against a stable descending sort on random weights with many ties (and a few NaNs).
        var rng = SeededRNG(seed: 4)
        for trial in 0..<300 {
            let n = 1 + Int(rng.next() % 160), k = Int(rng.next() % UInt64(n + 1))
            let weights = (0..<n).map { _ -> Float in rng.next() % 41 == 0 ? .nan : Float(rng.next() % 6) / 8 }
            let expected = (0..<n).sorted { a, b in
                let x = weights[a], y = weights[b]
                if x.isNaN != y.isNaN { return x.isNaN }
                if !x.isNaN && x != y { return x > y }
                return a < b
            }.prefix(k)
            var got = [Int](repeating: -1, count: max(k, 1))
            DPAP.topK(weights: weights, count: n, k: k, into: &got)
            XCTAssertEqual(Array(got.prefix(k)), Array(expected), "trial \(trial)")
        }
    }

    /// The seeded source: deterministic, streams independent, restorable, in range.
    func testSeededRandomSource() throws {
        var a = SeededDPAPRandom(seed: 42), b = SeededDPAPRandom(seed: 42), c = SeededDPAPRandom(seed: 42, stream: 1)
        var drawsA: [Double] = [], drawsB: [Double] = []
        for _ in 0..<100 {
            drawsA.append(a.applyDraw())
            _ = a.randomImage(batch: 7); _ = a.randomCell(grid: 12); _ = a.lambda(alpha: 1)  // mixes in between
            drawsB.append(b.applyDraw())
        }
        XCTAssertEqual(drawsA, drawsB, "apply decisions do not depend on the mixes drawn")
        XCTAssertNotEqual(drawsA.first, c.applyDraw())
        let saved = a.states
        var restored = try SeededDPAPRandom(states: saved)
        for _ in 0..<10 {
            XCTAssertEqual(a.randomImage(batch: 5), restored.randomImage(batch: 5))
            let (h1, w1) = a.randomCell(grid: 12), (h2, w2) = restored.randomCell(grid: 12)
            XCTAssertEqual(h1, h2); XCTAssertEqual(w1, w2)
            XCTAssertEqual(a.lambda(alpha: 1), restored.lambda(alpha: 1))
        }
        var counts = [Int](repeating: 0, count: 12), applied = 0
        var r = SeededDPAPRandom(seed: 3)
        for _ in 0..<12000 {
            let (h, w) = r.randomCell(grid: 12)
            XCTAssertTrue((0..<12).contains(h) && (0..<12).contains(w))
            counts[h] += 1
            let l = r.lambda(alpha: 0.5)
            XCTAssertTrue(l >= 0 && l < 0.5)
            if r.applyDraw() <= 0.2 { applied += 1 }
        }
        XCTAssertTrue(counts.allSatisfy { $0 > 850 && $0 < 1150 }, "\(counts)")
        XCTAssertTrue(applied > 2200 && applied < 2600, "\(applied)")
        XCTAssertThrowsError(try SeededDPAPRandom(states: []))
    }

    /// Deterministic from a seed, touches only top-K patches of augmented images, and the
    /// argument checks.
    func testSeededApplyIsDeterministicAndLocal() throws {
        let u8 = try Reference.load("tiny/input/u8_hwc")
        let weights = try Reference.load("tiny_official_step/pass1/se_weight_softmax").values
        let original = DPAP.originalScale(fromRGB8: u8.bytes)
        let dpap = try DPAP(config: DPAPConfig(probability: 1))
        var x1 = original, x2 = original
        var r1 = SeededDPAPRandom(seed: 9), r2 = SeededDPAPRandom(seed: 9)
        let log1 = try dpap.apply(images: &x1, patchWeights: weights, random: &r1)
        let log2 = try dpap.apply(images: &x2, patchWeights: weights, random: &r2)
        XCTAssertEqual(x1, x2)
        XCTAssertEqual(log1.mixes, log2.mixes)
        XCTAssertEqual(log1.appliedCount, 4)
        XCTAssertEqual(log1.mixes.count, 28)
        var allowed = Set<Int>()
        for m in log1.mixes {
            for y in 0..<9 { for x in 0..<27 { allowed.insert(m.image * 37632 + (m.patch / 12 * 9 + y) * 336 + m.patch % 12 * 27 + x) } }
        }
        for i in 0..<x1.count where x1[i] != original[i] { XCTAssertTrue(allowed.contains(i)) }
        XCTAssertTrue(x1.enumerated().allSatisfy { allowed.contains($0.offset) || $0.element == original[$0.offset] })
        // Mixed values are whole numbers 0…255.
        for i in allowed { XCTAssertEqual(x1[i], x1[i].rounded()); XCTAssertTrue(x1[i] >= 0 && x1[i] <= 255) }

        var none = SeededDPAPRandom(seed: 9), y = original
        let off = try DPAP(config: DPAPConfig(probability: 0)).apply(images: &y, patchWeights: weights, random: &none)
        XCTAssertEqual(y, original)
        XCTAssertEqual(off.appliedCount, 0)

        var bad = original
        XCTAssertThrowsError(try dpap.apply(images: &bad, patchWeights: Array(weights.prefix(100)), random: &r1))
        XCTAssertThrowsError(try DPAP(config: DPAPConfig(topK: 200)))
        XCTAssertThrowsError(try DPAP(config: DPAPConfig(probability: 1.5)))
        XCTAssertThrowsError(try DPAP(config: DPAPConfig(ratio: -1)))
    }

    static func threadCPUNanoseconds() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
        return Double(t.tv_sec) * 1e9 + Double(t.tv_nsec)
    }

    /// DPAP's own cost per image (printed; the budget is < 2% of a training step).
    func testCostPerImage() throws {
        let batch = 64
        var rng = SeededRNG(seed: 1)
        let original = (0..<(batch * 37632)).map { _ in Float(rng.next() % 256) }
        let weights = (0..<(batch * 144)).map { _ in rng.uniformFloat() }
        for probability in [0.2, 1.0] {
            let dpap = try DPAP(config: DPAPConfig(probability: probability))
            var random = SeededDPAPRandom(seed: 2)
            var log = DPAPLog()
            var images = original
            try images.withUnsafeMutableBufferPointer { img in try weights.withUnsafeBufferPointer { w in
                try dpap.apply(images: img.baseAddress!, batch: batch, patchWeights: w.baseAddress!, random: &random, log: &log)
            } }
            // Thread CPU time (the machine may be shared): mean per image, best per mixed patch.
            var total = 0.0, totalMixes = 0, bestPerMix = Double.infinity
            let rounds = 15
            for _ in 0..<rounds {
                let start = Self.threadCPUNanoseconds()
                try images.withUnsafeMutableBufferPointer { img in try weights.withUnsafeBufferPointer { w in
                    try dpap.apply(images: img.baseAddress!, batch: batch, patchWeights: w.baseAddress!, random: &random, log: &log)
                } }
                let ns = Self.threadCPUNanoseconds() - start
                total += ns
                totalMixes += log.mixes.count
                if !log.mixes.isEmpty { bestPerMix = min(bestPerMix, ns / Double(log.mixes.count)) }
            }
            print(String(format: "dpap cost: probability %.1f: %.2f us per image (mean of %d images, %.2f mixes per image); best %.2f us per mixed patch",
                         probability, total / 1000 / Double(rounds * batch), rounds * batch,
                         Double(totalMixes) / Double(rounds * batch), bestPerMix / 1000))
        }
    }
}

/// DPAP's two float32 chains follow the model's preprocessing.
final class PixelNormalizationTests: XCTestCase {
    /// With a model's own mean/std (and BGR), the training pass after an unchanged DPAP round
    /// trip sees what the first pass saw: the model's lookup table, within 2 float32 ulps of the
    /// value range (the chain's rounding), per network channel.
    func testBothPassesUseTheModelsNormalisation() {
        let p = Preprocess(inputWidth: 112, inputHeight: 112, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225],
                           channelOrder: .bgr, alignTemplate: Preprocess.arcfaceTemplate112)
        let lut = p.lookupTable(), n = PixelNormalization(p)
        let pixels = (0..<(256 * 3)).map { UInt8(($0 / 3) & 255) }
        var original = [Float](repeating: 0, count: pixels.count), input = original
        n.originalScale(fromRGB8: pixels, count: pixels.count, into: &original)
        n.normalizedInput(from: original, count: original.count, into: &input)
        for i in 0..<pixels.count {
            let imageChannel = i % 3, networkChannel = 2 - imageChannel
            let want = lut[networkChannel * 256 + Int(pixels[i])]
            XCTAssertEqual(input[i], want, accuracy: 2 * Float.ulpOfOne * 3, "pixel \(pixels[i]) channel \(imageChannel)")
            XCTAssertEqual(original[i], Float(pixels[i]), accuracy: 1e-3)
        }
        // The hard-coded official chain would be visibly off for these values.
        XCTAssertGreaterThan(abs(DPAP.normalize(original[0]) - input[0]), 0.1)
    }

    /// The official preprocessing gives train.py's chains bit for bit (as before this type).
    func testOfficialValuesAreTrainPyChains() {
        let n = PixelNormalization(.official(size: 112))
        for u in 0..<256 {
            let x = (Float(u) / 255 - 0.5) / 0.5
            let original = ((x * 0.5) + 0.5) * 255
            XCTAssertEqual(n.originalScaleTables[1][u].bitPattern, original.bitPattern)
            XCTAssertEqual(n.normalize(original, channel: 2).bitPattern, (((original / 255) - 0.5) / 0.5).bitPattern)
        }
    }
}
