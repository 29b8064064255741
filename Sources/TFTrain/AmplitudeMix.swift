import CFFTW
import TFCore

#if canImport(Glibc)
import Glibc
#endif

/// FFTW's planner (creating and destroying plans) is not thread-safe: every planner call of the
/// library goes through this one process-wide lock. Executing a plan on new arrays
/// (`fftwf_execute_dft`) is thread-safe and takes no lock.
public enum FFTWPlanner {
    nonisolated(unsafe) private static let mutex: UnsafeMutablePointer<pthread_mutex_t> = {
        let m = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        m.initialize(to: pthread_mutex_t())
        pthread_mutex_init(m, nil)
        return m
    }()

    /// Runs `body` holding the planner lock.
    public static func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}

/// DPAP's amplitude-spectrum mix (the official `FFT.amplitude_spectrum_mix(img1, img2, alpha,
/// ratio)` with its λ given) for patches of `height × width × channels` values stored row by row,
/// channels interleaved (HWC, the official layout):
///
///     F1, F2 = fft2(source), fft2(partner)                       per channel
///     A      = |F1|;  A[crop] = λ·|F2|[crop] + (1 − λ)·|F1|[crop] crop: centred, in fftshift order
///     out    = uint8(clip(real(ifft2(A · e^{i·angle(F1)})), 0, 255))   truncated, not rounded
///
/// The crop follows the official code: `h_crop = int(h·√ratio)`, `h_start = h//2 − h_crop//2`
/// (same for w) on the fftshifted spectrum; ratio 1 (what train.py uses) mixes every frequency.
///
/// Numerics follow NumPy ≥ 2 for float32 patches (what train.py passes): the FFT runs in single
/// precision (FFTW `fftwf`), |z| = max·√(fma(r, r, 1)) with r = min/max (NumPy's complex
/// absolute), angle = atan2f, λ and 1 − λ rounded to float32 (a Python float is a weak scalar),
/// `e^{i·φ}` evaluated as NumPy's complex64 power does, `(cos(φ·L), sin(φ·L))` with
/// L = logf(float32(e)) = 0.99999994, and the inverse scaled by float32(1/w) then float32(1/h).
/// uint8 patches use the same single-precision path (NumPy promotes them to complex128): the
/// FFT itself differs from NumPy's pocketfft in rounding (≈2e-5 absolute on 0…255 values), so a
/// uint8 output can differ by one where the exact pre-clip value lies on an integer — which it
/// does whenever the mix reproduces the source (λ = 0, or a patch mixed with itself).
///
/// A channel of the source that is exactly constant gets its exact spectrum (the sum at DC, +0
/// elsewhere), as pocketfft computes it: `angle(F1)` there must be 0, and a rounding residue or a
/// negative zero would give it an arbitrary phase. (FFTW's 9×9 transform already returns exact
/// +0 there; the check guards other sizes and FFTW builds.)
///
/// One object owns its FFTW plans and aligned buffers; nothing is allocated per call. Use one
/// object per thread (plans are created under `FFTWPlanner`'s lock, executions need none).
public final class PatchFFT {
    public let height: Int
    public let width: Int
    public let channels: Int
    /// Values per patch (height · width · channels).
    public let count: Int

    private let forwardPlan: fftwf_plan
    private let backwardPlan: fftwf_plan
    private let storage: UnsafeMutableRawPointer
    private let work: UnsafeMutablePointer<Float>       // interleaved complex, count
    private let spectrum1: UnsafeMutablePointer<Float>  // interleaved complex, count
    private let spectrum2: UnsafeMutablePointer<Float>  // interleaved complex, count
    private let inverse: UnsafeMutablePointer<Float>    // interleaved complex, count
    private let preclipValues: UnsafeMutablePointer<Float>
    private let outputBytes: UnsafeMutablePointer<UInt8>
    private let cropMask: UnsafeMutablePointer<Bool>    // height · width
    private let constantChannel: UnsafeMutablePointer<Bool>  // channels
    private var maskRatio: Double = .nan

    /// NumPy's complex64 `np.e ** (1j·φ)` is `cexpf(1j·φ · clogf(float32(e)))`, and
    /// logf(float32(e)) rounds to 0.99999994, not 1.
    static let phaseScale = Float(bitPattern: 0x3F7F_FFFF)

    /// Plans and buffers for patches of the given size (official: 9 × 9 × 3).
    public init(height: Int = 9, width: Int = 9, channels: Int = 3) throws {
        try require(height >= 1 && height <= 4096 && width >= 1 && width <= 4096,
                    "patch size \(height)x\(width) is outside 1...4096")
        try require(channels >= 1 && channels <= 64, "patch channels \(channels) is outside 1...64")
        self.height = height
        self.width = width
        self.channels = channels
        count = height * width * channels
        let complexFloats = (2 * count + 15) / 16 * 16          // regions start 64-byte aligned
        let realFloats = (count + 15) / 16 * 16
        let bytes = (4 * complexFloats + realFloats) * 4 + count + height * width + channels
        guard let raw = fftwf_malloc(bytes) else {
            throw TransFaceError(.outOfMemory, "cannot allocate \(bytes) bytes of FFT buffers")
        }
        memset(raw, 0, bytes)
        storage = raw
        let floats = raw.bindMemory(to: Float.self, capacity: 4 * complexFloats + realFloats)
        work = floats
        spectrum1 = floats + complexFloats
        spectrum2 = floats + 2 * complexFloats
        inverse = floats + 3 * complexFloats
        preclipValues = floats + 4 * complexFloats
        let tail = raw + (4 * complexFloats + realFloats) * 4
        outputBytes = tail.bindMemory(to: UInt8.self, capacity: count)
        cropMask = (tail + count).bindMemory(to: Bool.self, capacity: height * width + channels)
        constantChannel = cropMask + height * width

        // Rank-2 transforms of height × width, one per channel (stride = channels, distance 1),
        // so the HWC layout is transformed in place without reordering. FFTW_ESTIMATE: the plan
        // does not depend on timing, so results are the same from run to run.
        let dims: [Int32] = [Int32(height), Int32(width)]
        let c32 = Int32(channels)
        func complexPointer(_ p: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<fftwf_complex> {
            UnsafeMutableRawPointer(p).assumingMemoryBound(to: fftwf_complex.self)
        }
        let estimate: UInt32 = 1 << 6  // FFTW_ESTIMATE
        let (work, spectrum1, inverse) = (work, spectrum1, inverse)
        let plans: (fftwf_plan?, fftwf_plan?) = FFTWPlanner.withLock {
            dims.withUnsafeBufferPointer { n in
                let f = fftwf_plan_many_dft(2, n.baseAddress, c32, complexPointer(work), nil, c32, 1,
                                            complexPointer(spectrum1), nil, c32, 1, -1, estimate)
                let b = fftwf_plan_many_dft(2, n.baseAddress, c32, complexPointer(work), nil, c32, 1,
                                            complexPointer(inverse), nil, c32, 1, 1, estimate)
                return (f, b)
            }
        }
        guard let f = plans.0, let b = plans.1 else {
            FFTWPlanner.withLock {
                if let f = plans.0 { fftwf_destroy_plan(f) }
                if let b = plans.1 { fftwf_destroy_plan(b) }
            }
            fftwf_free(raw)
            throw TransFaceError(.internal, "FFTW could not plan a \(height)x\(width)x\(channels) transform")
        }
        forwardPlan = f
        backwardPlan = b
    }

    deinit {
        FFTWPlanner.withLock {
            fftwf_destroy_plan(forwardPlan)
            fftwf_destroy_plan(backwardPlan)
        }
        fftwf_free(storage)
    }

    /// The uint8 result of the last `mix` (count values, HWC); valid until the next call.
    public var output: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(start: outputBytes, count: count) }
    /// The pre-clip values of the last `mix` (real part of the inverse FFT, float32).
    public var preclip: UnsafeBufferPointer<Float> { UnsafeBufferPointer(start: preclipValues, count: count) }

    /// Mixes float patches (official train.py input: ((x·0.5)+0.5)·255 in float32). Row strides
    /// are in elements between the starts of consecutive rows (nil: packed, width · channels),
    /// so patches can be read in place from a larger HWC image. The result is in `output`
    /// (and `preclip`); the inputs may alias each other.
    public func mix(source: UnsafePointer<Float>, partner: UnsafePointer<Float>, lambda: Double, ratio: Double = 1,
                    sourceRowStride: Int? = nil, partnerRowStride: Int? = nil) {
        load(source, rowStride: sourceRowStride ?? width * channels, checkConstant: true) { $0 }
        fftwf_execute_dft(forwardPlan, complex(work), complex(spectrum1))
        load(partner, rowStride: partnerRowStride ?? width * channels, checkConstant: false) { $0 }
        fftwf_execute_dft(forwardPlan, complex(work), complex(spectrum2))
        combine(lambda: lambda, ratio: ratio)
    }

    /// Mixes uint8 patches (same computation; the values are exact in float32).
    public func mix(source: UnsafePointer<UInt8>, partner: UnsafePointer<UInt8>, lambda: Double, ratio: Double = 1,
                    sourceRowStride: Int? = nil, partnerRowStride: Int? = nil) {
        load(source, rowStride: sourceRowStride ?? width * channels, checkConstant: true) { Float($0) }
        fftwf_execute_dft(forwardPlan, complex(work), complex(spectrum1))
        load(partner, rowStride: partnerRowStride ?? width * channels, checkConstant: false) { Float($0) }
        fftwf_execute_dft(forwardPlan, complex(work), complex(spectrum2))
        combine(lambda: lambda, ratio: ratio)
    }

    @inline(__always)
    private func complex(_ p: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<fftwf_complex> {
        UnsafeMutableRawPointer(p).assumingMemoryBound(to: fftwf_complex.self)
    }

    /// Copies a patch into `work` as complex values (imaginary part 0) and, for the source,
    /// records which channels are exactly constant.
    @inline(__always)
    private func load<T>(_ p: UnsafePointer<T>, rowStride: Int, checkConstant: Bool, _ value: (T) -> Float) {
        let rowValues = width * channels
        if checkConstant {
            for c in 0..<channels { constantChannel[c] = true }
        }
        for y in 0..<height {
            let row = p + y * rowStride
            let dst = work + 2 * y * rowValues
            for i in 0..<rowValues {
                let v = value(row[i])
                dst[2 * i] = v
                dst[2 * i + 1] = 0
            }
        }
        if checkConstant {
            for i in channels..<count where work[2 * i] != work[2 * (i % channels)] {
                constantChannel[i % channels] = false
            }
        }
    }

    /// Marks the frequencies inside the centred crop (in unshifted order).
    private func updateMask(ratio: Double) {
        if ratio == maskRatio { return }
        maskRatio = ratio
        let root = ratio.squareRoot()
        let hCrop = Int(Double(height) * root), wCrop = Int(Double(width) * root)
        let hStart = height / 2 - hCrop / 2, wStart = width / 2 - wCrop / 2
        for u in 0..<height {
            let su = (u + height / 2) % height  // fftshift moves index u to (u + h//2) mod h
            let inH = su >= hStart && su < hStart + hCrop
            for v in 0..<width {
                let sv = (v + width / 2) % width
                cropMask[u * width + v] = inH && sv >= wStart && sv < wStart + wCrop
            }
        }
    }

    /// NumPy's complex absolute value (SIMD loop): max · √(fma(r, r, 1)), r = min / max.
    @inline(__always)
    static func magnitude(_ re: Float, _ im: Float) -> Float {
        let a = abs(re), b = abs(im)
        let larger = max(a, b), smaller = min(a, b)
        if larger == 0 { return 0 }
        if larger.isInfinite { return .infinity }
        let r = smaller / larger
        return Float(1).addingProduct(r, r).squareRoot() * larger
    }

    private func combine(lambda: Double, ratio: Double) {
        updateMask(ratio: ratio)
        let l = Float(lambda), m = Float(1 - lambda)
        let pixels = height * width
        // Exactly constant source channels: the exact DFT (DC = the FFT's sum, +0 elsewhere).
        for c in 0..<channels where constantChannel[c] {
            spectrum1[2 * c + 1] = 0
            for q in 1..<max(pixels, 1) {
                spectrum1[2 * (q * channels + c)] = 0
                spectrum1[2 * (q * channels + c) + 1] = 0
            }
        }
        for q in 0..<pixels {
            let inCrop = cropMask[q]
            for c in 0..<channels {
                let i = q * channels + c
                let re1 = spectrum1[2 * i], im1 = spectrum1[2 * i + 1]
                var a = PatchFFT.magnitude(re1, im1)
                if inCrop {
                    let a2 = PatchFFT.magnitude(spectrum2[2 * i], spectrum2[2 * i + 1])
                    let x = l * a2
                    let y = m * a
                    a = x + y
                }
                let t = atan2f(im1, re1) * PatchFFT.phaseScale
                work[2 * i] = a * cosf(t)
                work[2 * i + 1] = a * sinf(t)
            }
        }
        fftwf_execute_dft(backwardPlan, complex(work), complex(inverse))
        let fw = Float(1.0 / Double(width)), fh = Float(1.0 / Double(height))
        for i in 0..<count {
            let v = inverse[2 * i] * fw * fh
            preclipValues[i] = v
            // np.uint8(np.clip(v, 0, 255)): truncation toward zero; NaN gives 0 as on x86.
            outputBytes[i] = v >= 0 ? (v < 255 ? UInt8(v) : 255) : 0
        }
    }
}

/// Standalone amplitude mix for callers that augment their own patches.
public enum AmplitudeMix {
    /// Mixes two HWC patches of `height × width × channels` uint8 values; see `PatchFFT`.
    /// λ must be finite (DPAP draws it from U(0, alpha), alpha 1); ratio in 0...1.
    public static func mix(source: UnsafeBufferPointer<UInt8>, partner: UnsafeBufferPointer<UInt8>,
                           height: Int = 9, width: Int = 9, channels: Int = 3, lambda: Double, ratio: Double = 1,
                           into out: UnsafeMutableBufferPointer<UInt8>) throws {
        let fft = try cached(height: height, width: width, channels: channels)
        try check(source.count, partner.count, out.count, fft.count, lambda: lambda, ratio: ratio)
        fft.mix(source: source.baseAddress!, partner: partner.baseAddress!, lambda: lambda, ratio: ratio)
        _ = out.initialize(from: fft.output)
    }

    /// Mixes two HWC float patches (0...255 scale, as train.py passes them); values must be finite.
    public static func mix(source: UnsafeBufferPointer<Float>, partner: UnsafeBufferPointer<Float>,
                           height: Int = 9, width: Int = 9, channels: Int = 3, lambda: Double, ratio: Double = 1,
                           into out: UnsafeMutableBufferPointer<UInt8>) throws {
        let fft = try cached(height: height, width: width, channels: channels)
        try check(source.count, partner.count, out.count, fft.count, lambda: lambda, ratio: ratio)
        try require(source.allSatisfy { $0.isFinite } && partner.allSatisfy { $0.isFinite },
                    "patches must hold finite values")
        fft.mix(source: source.baseAddress!, partner: partner.baseAddress!, lambda: lambda, ratio: ratio)
        _ = out.initialize(from: fft.output)
    }

    /// Array conveniences.
    public static func mix(source: [UInt8], partner: [UInt8], height: Int = 9, width: Int = 9, channels: Int = 3,
                           lambda: Double, ratio: Double = 1) throws -> [UInt8] {
        try withBuffers(source, partner) { s, p, o in
            try mix(source: s, partner: p, height: height, width: width, channels: channels, lambda: lambda, ratio: ratio, into: o)
        }
    }

    public static func mix(source: [Float], partner: [Float], height: Int = 9, width: Int = 9, channels: Int = 3,
                           lambda: Double, ratio: Double = 1) throws -> [UInt8] {
        try withBuffers(source, partner) { s, p, o in
            try mix(source: s, partner: p, height: height, width: width, channels: channels, lambda: lambda, ratio: ratio, into: o)
        }
    }

    /// Runs `body` over the two arrays' buffers and a new output of `source.count` bytes.
    private static func withBuffers<T>(
        _ source: [T], _ partner: [T],
        _ body: (UnsafeBufferPointer<T>, UnsafeBufferPointer<T>, UnsafeMutableBufferPointer<UInt8>) throws -> Void
    ) rethrows -> [UInt8] {
        var out = [UInt8](repeating: 0, count: source.count)
        try source.withUnsafeBufferPointer { s in
            try partner.withUnsafeBufferPointer { p in try out.withUnsafeMutableBufferPointer { try body(s, p, $0) } }
        }
        return out
    }

    private static func check(_ source: Int, _ partner: Int, _ out: Int, _ expected: Int, lambda: Double,
                              ratio: Double) throws {
        try require(source == expected, "source holds \(source) values, the patch size needs \(expected)")
        try require(partner == expected, "partner holds \(partner) values, the patch size needs \(expected)")
        try require(out >= expected, "output capacity \(out) is below the patch size \(expected)")
        try require(lambda.isFinite, "lambda \(lambda) is not finite")
        try require(ratio >= 0 && ratio <= 1, "ratio \(ratio) is outside 0...1")
    }

    /// One `PatchFFT` per thread and patch size, kept for the thread's lifetime.
    private final class ThreadCache {
        var entries: [PatchFFT] = []
    }

    private static let cacheKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { p in
            if let p { Unmanaged<ThreadCache>.fromOpaque(p).release() }
        }
        return key
    }()

    static func cached(height: Int, width: Int, channels: Int) throws -> PatchFFT {
        let cache: ThreadCache
        if let p = pthread_getspecific(cacheKey) {
            cache = Unmanaged<ThreadCache>.fromOpaque(p).takeUnretainedValue()
        } else {
            cache = ThreadCache()
            pthread_setspecific(cacheKey, Unmanaged.passRetained(cache).toOpaque())
        }
        if let hit = cache.entries.first(where: { $0.height == height && $0.width == width && $0.channels == channels }) {
            return hit
        }
        let fft = try PatchFFT(height: height, width: width, channels: channels)
        if cache.entries.count >= 8 { cache.entries.removeFirst() }
        cache.entries.append(fft)
        return fft
    }
}
