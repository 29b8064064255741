/// `exp` of 16 lanes at once: Cephes' `expf` (range reduction by ln 2 in two parts, degree-6
/// polynomial, scaling by 2ⁿ through the exponent bits). Relative error ≤ 2 ulp over the
/// normal range; inputs below −87.3 give ~1e-38 instead of 0 (softmax's max-subtracted
/// logits never need more), inputs above 88.7 give the largest finite power.
@inlinable @inline(__always)
func fastExp(_ x: SIMD16<Float>) -> SIMD16<Float> {
    // Lane-wise selects (the generic `clamped`/`pointwiseMax` compile to scalar loops).
    var x = x
    let lo = SIMD16<Float>(repeating: -87.33654), hi = SIMD16<Float>(repeating: 88.72283)
    x.replace(with: lo, where: x .< lo)
    x.replace(with: hi, where: x .> hi)
    // n = round(x / ln 2) by the 1.5·2²³ trick: the sum's low mantissa bits hold n.
    let magic = SIMD16<Float>(repeating: 12582912)
    let shifted = x * SIMD16(repeating: 1.44269504088896341) + magic
    let n = shifted - magic
    var r = x - n * SIMD16(repeating: 0.693359375)
    r = r + n * SIMD16(repeating: 2.12194440e-4)
    var p = SIMD16<Float>(repeating: 1.9875691500e-4)
    p = p * r + SIMD16(repeating: 1.3981999507e-3)
    p = p * r + SIMD16(repeating: 8.3334519073e-3)
    p = p * r + SIMD16(repeating: 4.1665795894e-2)
    p = p * r + SIMD16(repeating: 1.6666665459e-1)
    p = p * r + SIMD16(repeating: 5.0000001201e-1)
    p = p * (r * r) + r + SIMD16(repeating: 1)
    let bits = unsafeBitCast(shifted, to: SIMD16<UInt32>.self) &- unsafeBitCast(magic, to: SIMD16<UInt32>.self)
    let scale = unsafeBitCast((bits &+ 127) &<< 23, to: SIMD16<Float>.self)
    return p * scale
}
