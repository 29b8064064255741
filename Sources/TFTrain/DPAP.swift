import TFCore

/// DPAP settings. `official` is train.py's: top-7 patches, each image with probability 0.2,
/// λ ~ U(0, 1), the whole spectrum (ratio 1), 9×9 patches of a 112×112 image (a 12×12 grid;
/// pixels 108…111 are never touched).
public struct DPAPConfig: Equatable, Sendable {
    public var topK: Int
    public var probability: Double
    public var alpha: Double
    public var ratio: Double
    public var imageSize: Int
    public var patchSize: Int
    /// Channels per pixel (RGB).
    public var channels: Int

    public init(topK: Int = 7, probability: Double = 0.2, alpha: Double = 1, ratio: Double = 1,
                imageSize: Int = 112, patchSize: Int = 9, channels: Int = 3) {
        self.topK = topK
        self.probability = probability
        self.alpha = alpha
        self.ratio = ratio
        self.imageSize = imageSize
        self.patchSize = patchSize
        self.channels = channels
    }

    public static let official = DPAPConfig()

    /// Patches per side (official 12).
    public var grid: Int { imageSize / patchSize }
    /// Patches per image (official 144), the length of a row of SE patch weights.
    public var numPatches: Int { grid * grid }

    public func validate() throws {
        try require(imageSize >= 1 && imageSize <= 4096, "DPAP image size \(imageSize) is outside 1...4096")
        try require(patchSize >= 1 && patchSize <= imageSize, "DPAP patch size \(patchSize) must be in 1...\(imageSize)")
        try require(channels >= 1 && channels <= 64, "DPAP channels \(channels) is outside 1...64")
        try require(topK >= 0 && topK <= numPatches, "DPAP top-K \(topK) is outside 0...\(numPatches)")
        try require(probability.isFinite && probability >= 0 && probability <= 1,
                    "DPAP probability \(probability) is outside 0...1")
        try require(alpha.isFinite && alpha >= 0, "DPAP alpha \(alpha) must be finite and non-negative")
        try require(ratio >= 0 && ratio <= 1, "DPAP ratio \(ratio) is outside 0...1")
    }
}

/// Where DPAP's random draws come from, called in train.py's loop order: per image one
/// `applyDraw` (`random.random()`; DPAP applies iff it is ≤ the probability), then, if applied,
/// per top-K patch `randomImage` (`np.random.randint(0, B)`), `randomCell` (`randint(0, 12)`
/// for h, then for w) and `lambda` (`np.random.uniform(0, alpha)`, drawn inside
/// `amplitude_spectrum_mix`).
public protocol DPAPRandomSource {
    /// Uniform in [0, 1).
    mutating func applyDraw() -> Double
    /// Uniform in 0..<batch.
    mutating func randomImage(batch: Int) -> Int
    /// Two uniform draws in 0..<grid: h, then w.
    mutating func randomCell(grid: Int) -> (h: Int, w: Int)
    /// Uniform in [0, alpha).
    mutating func lambda(alpha: Double) -> Double
}

/// The library's DPAP randomness: four independent `SeededRNG` streams of one seed, one per
/// kind of draw, so whether an image is augmented never depends on how many mixes came before:
///
///     apply decisions  stream base + 4·s + 0     uniformDouble()
///     partner images   stream base + 4·s + 1     uniform integer (see `uniformInt`)
///     partner cells    stream base + 4·s + 2     h then w, uniform integers
///     λ                stream base + 4·s + 3     alpha · uniformDouble()
///
/// with base = 0x4450_4150_0000_0000 ("DPAP") and s the caller's `stream` (e.g. 0 for one
/// continuous sequence over a run, saved in checkpoints through `states`).
public struct SeededDPAPRandom: DPAPRandomSource {
    public static let streamBase: UInt64 = 0x4450_4150_0000_0000
    public private(set) var applyStream: SeededRNG
    public private(set) var imageStream: SeededRNG
    public private(set) var cellStream: SeededRNG
    public private(set) var lambdaStream: SeededRNG

    public init(seed: UInt64, stream: UInt64 = 0) {
        let base = SeededDPAPRandom.streamBase &+ stream &* 4
        applyStream = SeededRNG(seed: seed, stream: base)
        imageStream = SeededRNG(seed: seed, stream: base &+ 1)
        cellStream = SeededRNG(seed: seed, stream: base &+ 2)
        lambdaStream = SeededRNG(seed: seed, stream: base &+ 3)
    }

    public typealias StreamState = (UInt64, UInt64, UInt64, UInt64)

    /// The four stream states (apply, image, cell, λ), for checkpoints.
    public var states: [StreamState] { [applyStream.state, imageStream.state, cellStream.state, lambdaStream.state] }

    /// Continues from saved `states`.
    public init(states: [StreamState]) throws {
        try require(states.count == 4, "DPAP random state needs 4 streams, got \(states.count)")
        applyStream = SeededRNG(state: states[0])
        imageStream = SeededRNG(state: states[1])
        cellStream = SeededRNG(state: states[2])
        lambdaStream = SeededRNG(state: states[3])
    }

    public mutating func applyDraw() -> Double { applyStream.uniformDouble() }
    public mutating func randomImage(batch: Int) -> Int { SeededDPAPRandom.uniformInt(batch, &imageStream) }
    public mutating func randomCell(grid: Int) -> (h: Int, w: Int) {
        let h = SeededDPAPRandom.uniformInt(grid, &cellStream)
        let w = SeededDPAPRandom.uniformInt(grid, &cellStream)
        return (h, w)
    }
    public mutating func lambda(alpha: Double) -> Double { alpha * lambdaStream.uniformDouble() }

    /// Unbiased integer in 0..<n (n ≥ 1): Lemire's multiply-shift with rejection, written out
    /// here so that the sequence never depends on the standard library's algorithm.
    public static func uniformInt(_ n: Int, _ rng: inout SeededRNG) -> Int {
        precondition(n >= 1, "uniformInt needs n >= 1")
        let bound = UInt64(n)
        var m = rng.next().multipliedFullWidth(by: bound)
        if m.low < bound {
            let threshold = (0 &- bound) % bound
            while m.low < threshold { m = rng.next().multipliedFullWidth(by: bound) }
        }
        return Int(m.high)
    }
}

/// One patch replacement, in loop order (the `mix_*` arrays of the reference).
public struct DPAPMix: Equatable, Sendable {
    /// Image whose patch is replaced (`mix_batch_index`) and its rank in the image's top-K (`mix_j`).
    public var image: Int
    public var rank: Int
    /// Patch index (`mix_patch`): row patch / grid, column patch % grid.
    public var patch: Int
    /// The partner: image (`mix_random_index`) and grid cell (`mix_random_h`, `mix_random_w`).
    public var partnerImage: Int
    public var partnerH: Int
    public var partnerW: Int
    public var lambda: Double
}

/// What a DPAP step did, for logs and tests. Reuse one log across steps (`apply` resets it,
/// keeping capacity) and nothing is allocated in steady state.
public struct DPAPLog {
    /// One apply draw per image.
    public var draws: [Double] = []
    /// Whether each image was augmented (draw ≤ probability).
    public var applied: [Bool] = []
    /// Top-K patch indices per image, batch × K, by descending weight.
    public var topK: [Int] = []
    public var mixes: [DPAPMix] = []
    /// Set to also keep each mix's source and partner patches (float, HWC) and output (uint8).
    public var capturePatches = false
    public var sourcePatches: [Float] = []
    public var partnerPatches: [Float] = []
    public var outputPatches: [UInt8] = []

    public init(capturePatches: Bool = false) { self.capturePatches = capturePatches }

    public mutating func reset() {
        draws.removeAll(keepingCapacity: true)
        applied.removeAll(keepingCapacity: true)
        topK.removeAll(keepingCapacity: true)
        mixes.removeAll(keepingCapacity: true)
        sourcePatches.removeAll(keepingCapacity: true)
        partnerPatches.removeAll(keepingCapacity: true)
        outputPatches.removeAll(keepingCapacity: true)
    }

    public var appliedCount: Int { applied.reduce(0) { $0 + ($1 ? 1 : 0) } }
}

/// DPAP (Dominant Patch Amplitude Perturbation) as train.py runs it between the no-grad pass and
/// the training pass:
///
/// 1. `imgOriginal` = ((x·0.5)+0.5)·255 of the normalised batch, float32 B×H×W×C
///    (`originalScale(fromRGB8:)` builds it from uint8 images through the official float32 chain);
/// 2. top-K patches of each image by the no-grad pass's SE patch weight (softmax of the gate),
///    `torch.argsort(weight, descending=True)[:, :K]`;
/// 3. per image in order: one draw r; if r ≤ probability, per top-K patch in order: a random
///    partner cell (image, h, w) of the current batch — itself included and possibly already
///    mixed: replacement is in place and sequential — λ ~ U(0, alpha), and the patch is replaced
///    by `amplitude_spectrum_mix(patch, partner, λ)` (uint8, written back as floats);
/// 4. the training pass reads `normalizedInput` = ((x/255)−0.5)/0.5 in float32.
///
/// train.py hard-codes mean = std = 0.5 in steps 1 and 4, as its data loader does; here both use
/// the model's preprocessing (`PixelNormalization`), which is the same float32 chain for the
/// official values, so a trainer started from a model with other mean/std normalises both passes
/// alike.
///
/// Ties in the patch weights: PyTorch's CPU argsort is unstable (x86-simd-sort or std::sort
/// decide, machine-dependently); here equal weights keep ascending patch index (a stable
/// descending sort), and NaN weights rank first as in PyTorch's descending comparator.
///
/// The step is sequential by definition; its cost is a few 9×9 FFTs per augmented patch.
public final class DPAP {
    public let config: DPAPConfig
    private let fft: PatchFFT

    public init(config: DPAPConfig = .official) throws {
        try config.validate()
        self.config = config
        fft = try PatchFFT(height: config.patchSize, width: config.patchSize, channels: config.channels)
    }

    /// Values per image (H · W · C).
    public var imageValues: Int { config.imageSize * config.imageSize * config.channels }

    /// Writes the top `k` patch indices of one image's weights (`count` of them) into `out`,
    /// by descending weight; ties keep ascending index, NaN first (a stable descending sort's
    /// first k), in one pass with insertion into the k kept so far.
    public static func topK(weights: UnsafePointer<Float>, count: Int, k: Int, into out: UnsafeMutablePointer<Int>) {
        let k = min(k, count)
        guard k > 0 else { return }
        @inline(__always) func better(_ a: Float, _ b: Float) -> Bool { (a.isNaN && !b.isNaN) || a > b }
        var filled = 0
        for i in 0..<count {
            let w = weights[i]
            if filled == k && !better(w, weights[out[k - 1]]) { continue }
            // Insert after every kept entry that is at least as good (equal weights stay in index order).
            var pos = filled == k ? k - 1 : filled
            while pos > 0 && better(w, weights[out[pos - 1]]) {
                out[pos] = out[pos - 1]
                pos -= 1
            }
            out[pos] = i
            if filled < k { filled += 1 }
        }
    }

    /// Applies DPAP in place to `images` (batch × H × W × C floats in the 0…255 scale) with the
    /// no-grad pass's `patchWeights` (batch × numPatches). `log` is reset and filled. Throws if
    /// the random source returns a cell outside the batch (the images may then be partly mixed).
    public func apply<R: DPAPRandomSource>(images: UnsafeMutablePointer<Float>, batch: Int,
                                           patchWeights: UnsafePointer<Float>, random: inout R,
                                           log: inout DPAPLog) throws {
        try require(batch >= 1, "DPAP needs at least one image, got \(batch)")
        let c = config, k = c.topK, p = c.patchSize, s = c.imageSize, ch = c.channels
        let grid = c.grid, patches = c.numPatches, rowStride = s * ch, patchValues = p * p * ch
        log.reset()
        log.topK.reserveCapacity(batch * k)
        for _ in 0..<(batch * k) { log.topK.append(0) }
        log.topK.withUnsafeMutableBufferPointer { out in
            for b in 0..<batch {
                DPAP.topK(weights: patchWeights + b * patches, count: patches, k: k, into: out.baseAddress! + b * k)
            }
        }
        func cell(_ image: Int, _ h: Int, _ w: Int) -> UnsafeMutablePointer<Float> {
            images + ((image * s + h * p) * s + w * p) * ch
        }
        for b in 0..<batch {
            let r = random.applyDraw()
            let applied = r <= c.probability
            log.draws.append(r)
            log.applied.append(applied)
            guard applied else { continue }
            for j in 0..<k {
                let patch = log.topK[b * k + j]
                let ph = patch / grid, pw = patch - ph * grid
                let source = cell(b, ph, pw)
                let partnerImage = random.randomImage(batch: batch)
                let (rh, rw) = random.randomCell(grid: grid)
                try require(partnerImage >= 0 && partnerImage < batch && rh >= 0 && rh < grid && rw >= 0 && rw < grid,
                            "DPAP random source gave cell (\(partnerImage), \(rh), \(rw)) outside the batch of \(batch) x \(grid)x\(grid)")
                let lambda = random.lambda(alpha: c.alpha)
                let partner = cell(partnerImage, rh, rw)
                if log.capturePatches {
                    DPAP.appendPatch(source, rows: p, rowValues: p * ch, rowStride: rowStride, to: &log.sourcePatches)
                    DPAP.appendPatch(partner, rows: p, rowValues: p * ch, rowStride: rowStride, to: &log.partnerPatches)
                }
                fft.mix(source: source, partner: partner, lambda: lambda, ratio: c.ratio,
                        sourceRowStride: rowStride, partnerRowStride: rowStride)
                let out = fft.output
                for y in 0..<p {
                    let dst = source + y * rowStride, row = y * p * ch
                    for i in 0..<(p * ch) { dst[i] = Float(out[row + i]) }
                }
                if log.capturePatches { log.outputPatches.append(contentsOf: out.prefix(patchValues)) }
                log.mixes.append(DPAPMix(image: b, rank: j, patch: patch, partnerImage: partnerImage, partnerH: rh,
                                         partnerW: rw, lambda: lambda))
            }
        }
    }

    /// `apply` returning a new log.
    @discardableResult
    public func apply<R: DPAPRandomSource>(images: UnsafeMutablePointer<Float>, batch: Int,
                                           patchWeights: UnsafePointer<Float>, random: inout R,
                                           capturePatches: Bool = false) throws -> DPAPLog {
        var log = DPAPLog(capturePatches: capturePatches)
        try apply(images: images, batch: batch, patchWeights: patchWeights, random: &random, log: &log)
        return log
    }

    /// Array version: `images` holds batch × H × W × C floats, `patchWeights` batch × numPatches.
    @discardableResult
    public func apply<R: DPAPRandomSource>(images: inout [Float], patchWeights: [Float], random: inout R,
                                           capturePatches: Bool = false) throws -> DPAPLog {
        let per = imageValues
        try require(per > 0 && images.count % per == 0 && images.count > 0,
                    "DPAP images hold \(images.count) values, not a multiple of \(per)")
        let batch = images.count / per
        try require(patchWeights.count == batch * config.numPatches,
                    "DPAP patch weights hold \(patchWeights.count) values, expected \(batch) x \(config.numPatches)")
        return try images.withUnsafeMutableBufferPointer { img in
            try patchWeights.withUnsafeBufferPointer { w in
                try apply(images: img.baseAddress!, batch: batch, patchWeights: w.baseAddress!, random: &random,
                          capturePatches: capturePatches)
            }
        }
    }

    private static func appendPatch(_ p: UnsafeMutablePointer<Float>, rows: Int, rowValues: Int, rowStride: Int,
                                    to array: inout [Float]) {
        for y in 0..<rows {
            array.append(contentsOf: UnsafeBufferPointer(start: p + y * rowStride, count: rowValues))
        }
    }

    // MARK: - The float32 chains around DPAP

    /// float32 ((x·0.5)+0.5)·255 of the official normalised input x = (u8/255 − 0.5)/0.5, per
    /// byte value (train.py's `img_original` before DPAP).
    public static var originalScaleTable: [Float] { PixelNormalization.official.originalScaleTables[0] }

    /// ((x·0.5)+0.5)·255 in float32, as train.py computes `img_original` from the normalised tensor.
    public static func originalScale(_ normalized: Float) -> Float { PixelNormalization.official.originalScale(normalized, channel: 0) }

    /// ((x/255)−0.5)/0.5 in float32, as train.py normalises `img_fft` for the training pass.
    public static func normalize(_ original: Float) -> Float { PixelNormalization.official.normalize(original, channel: 0) }

    /// `img_original` (HWC) from uint8 RGB images under the official normalisation.
    public static func originalScale(fromRGB8 images: [UInt8]) -> [Float] {
        var out = [Float](repeating: 0, count: images.count)
        PixelNormalization.official.originalScale(fromRGB8: images, count: images.count, into: &out)
        return out
    }

    /// The training pass's input (HWC) from `img_original` under the official normalisation.
    public static func normalizedInput(from images: [Float]) -> [Float] {
        var out = [Float](repeating: 0, count: images.count)
        PixelNormalization.official.normalizedInput(from: images, count: images.count, into: &out)
        return out
    }
}
