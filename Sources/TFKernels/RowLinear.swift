/// Weights a row Linear reads: float32, or bfloat16 (the upper half of a float32's bits).
protocol RowLinearWeights {
    /// 16 weights from index `i`, as float32.
    func weights16(_ i: Int) -> SIMD16<Float>
    /// Weight `i` as float32.
    func weight(_ i: Int) -> Float
    /// The weights from row `o` of a [outFeatures × k] matrix.
    func row(_ o: Int, _ k: Int) -> Self
}

extension UnsafePointer: RowLinearWeights where Pointee == Float {
    @inline(__always) func weights16(_ i: Int) -> SIMD16<Float> { load16(i) }
    @inline(__always) func weight(_ i: Int) -> Float { self[i] }
    func row(_ o: Int, _ k: Int) -> Self { self + o * k }
}

/// bfloat16 weights: each is the upper 16 bits of a float32 (rounded to nearest, ties to even).
public struct BF16Weights: RowLinearWeights {
    public let base: UnsafePointer<UInt16>
    public init(_ base: UnsafePointer<UInt16>) { self.base = base }

    @inline(__always)
    func weights16(_ i: Int) -> SIMD16<Float> {
        let h = UnsafeRawPointer(base + i).loadUnaligned(as: SIMD16<UInt16>.self)
        return unsafeBitCast(SIMD16<UInt32>(truncatingIfNeeded: h) &<< 16, to: SIMD16<Float>.self)
    }

    @inline(__always)
    func weight(_ i: Int) -> Float { Float(bitPattern: UInt32(base[i]) << 16) }

    func row(_ o: Int, _ k: Int) -> BF16Weights { BF16Weights(base + o * k) }

    /// `value` rounded to bfloat16 (nearest, ties to even; NaN stays NaN).
    public static func round(_ value: Float) -> UInt16 {
        let u = value.bitPattern
        if value.isNaN { return UInt16(u >> 16) | 0x40 }
        return UInt16((u &+ 0x7fff &+ ((u >> 16) & 1)) >> 16)
    }
}

/// `out[r, o] = Σ_k x[r, k] · w[o, k]` for outputs `o` in `outputs`, every row of `x`
/// (PyTorch Linear without bias, W stored [outFeatures × inFeatures]). For few rows and long
/// rows (the SE and head layers). Rows are processed four at a time sharing each weight load,
/// with the same arithmetic for every row, so a row's result never depends on the others.
public func rowLinearForward(out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                             rows: Int, inFeatures k: Int, outFeatures: Int, outputs: Range<Int>) {
    rowLinear(out: out, x: x, weight: weight, rows: rows, inFeatures: k, outFeatures: outFeatures, outputs: outputs)
}

/// `rowLinearForward` with bf16 weights (products and sums in float32).
public func rowLinearForward(out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, weight: BF16Weights,
                             rows: Int, inFeatures k: Int, outFeatures: Int, outputs: Range<Int>) {
    rowLinear(out: out, x: x, weight: weight, rows: rows, inFeatures: k, outFeatures: outFeatures, outputs: outputs)
}

/// The row kernel, specialised inside this module for each weight type.
private func rowLinear<W: RowLinearWeights>(
    out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, weight: W,
    rows: Int, inFeatures k: Int, outFeatures: Int, outputs: Range<Int>
) {
    var r0 = 0
    while r0 < rows {
        let n = min(4, rows - r0)
        if n == 1 {  // a lone row: the same arithmetic as in a group, without the three copies
            singleRow(out: out + r0 * outFeatures, x: x + r0 * k, weight: weight, k: k, outputs: outputs)
            return
        }
        // Missing rows of the last group repeat a real row; their results are not stored.
        let x0 = x + r0 * k, x1 = x + (r0 + min(1, n - 1)) * k
        let x2 = x + (r0 + min(2, n - 1)) * k, x3 = x + (r0 + min(3, n - 1)) * k
        for o in outputs {
            let w = weight.row(o, k)
            var a0 = SIMD16<Float>(), b0 = SIMD16<Float>(), a1 = SIMD16<Float>(), b1 = SIMD16<Float>()
            var a2 = SIMD16<Float>(), b2 = SIMD16<Float>(), a3 = SIMD16<Float>(), b3 = SIMD16<Float>()
            var i = 0
            while i + 32 <= k {
                let wa = w.weights16(i), wb = w.weights16(i + 16)
                a0.addProduct(x0.load16(i), wa); b0.addProduct(x0.load16(i + 16), wb)
                a1.addProduct(x1.load16(i), wa); b1.addProduct(x1.load16(i + 16), wb)
                a2.addProduct(x2.load16(i), wa); b2.addProduct(x2.load16(i + 16), wb)
                a3.addProduct(x3.load16(i), wa); b3.addProduct(x3.load16(i + 16), wb)
                i += 32
            }
            var s0 = (a0 + b0).sum(), s1 = (a1 + b1).sum(), s2 = (a2 + b2).sum(), s3 = (a3 + b3).sum()
            while i < k {
                let wi = w.weight(i)
                s0 += x0[i] * wi; s1 += x1[i] * wi; s2 += x2[i] * wi; s3 += x3[i] * wi
                i += 1
            }
            let dst = out + r0 * outFeatures + o
            dst[0] = s0
            if n > 1 { dst[outFeatures] = s1 }
            if n > 2 { dst[2 * outFeatures] = s2 }
            if n > 3 { dst[3 * outFeatures] = s3 }
        }
        r0 += 4
    }
}

/// One row of `rowLinear`, accumulated exactly as the first row of a group.
@inline(__always)
private func singleRow<W: RowLinearWeights>(out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, weight: W, k: Int,
                                            outputs: Range<Int>) {
    for o in outputs {
        let w = weight.row(o, k)
        var a = SIMD16<Float>(), b = SIMD16<Float>()
        var i = 0
        while i + 32 <= k {
            a.addProduct(x.load16(i), w.weights16(i)); b.addProduct(x.load16(i + 16), w.weights16(i + 16))
            i += 32
        }
        var s = (a + b).sum()
        while i < k { s += x[i] * w.weight(i); i += 1 }
        out[o] = s
    }
}
