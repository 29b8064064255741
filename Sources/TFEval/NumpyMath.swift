/// The floating-point summation orders of NumPy, so that means, standard deviations and
/// distances agree with the official evaluation code to the last bit.
public enum NumpyMath {
    /// `np.add.reduce` of a contiguous float64 run: NumPy's pairwise summation (blocks of 8
    /// partial sums up to 128 elements, halving above), added to the identity 0.
    public static func sum(_ a: UnsafeBufferPointer<Double>) -> Double {
        0.0 + pairwise(a.baseAddress, a.count)
    }

    public static func sum(_ a: [Double]) -> Double { a.withUnsafeBufferPointer { sum($0) } }

    static func pairwise(_ a: UnsafePointer<Double>?, _ n: Int) -> Double {
        guard let a, n > 0 else { return 0 }
        if n < 8 {
            var res = 0.0
            for i in 0..<n { res += a[i] }
            return res
        } else if n <= 128 {
            var r0 = a[0], r1 = a[1], r2 = a[2], r3 = a[3], r4 = a[4], r5 = a[5], r6 = a[6], r7 = a[7]
            var i = 8
            let end = n - n % 8
            while i < end {
                r0 += a[i]; r1 += a[i + 1]; r2 += a[i + 2]; r3 += a[i + 3]
                r4 += a[i + 4]; r5 += a[i + 5]; r6 += a[i + 6]; r7 += a[i + 7]
                i += 8
            }
            var res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
            while i < n { res += a[i]; i += 1 }
            return res
        } else {
            var n2 = n / 2
            n2 -= n2 % 8
            return pairwise(a, n2) + pairwise(a + n2, n - n2)
        }
    }

    /// `np.mean` of a 1-D float64 array.
    public static func mean(_ a: [Double]) -> Double { sum(a) / Double(a.count) }

    /// `np.std` (ddof 0): `sqrt(sum((a - mean)^2) / n)` with NumPy's summation.
    public static func std(_ a: [Double]) -> Double {
        let m = mean(a)
        let sq = a.map { ($0 - m) * ($0 - m) }
        return (sum(sq) / Double(a.count)).squareRoot()
    }

    /// Length of `np.arange(start, stop, step)`: `ceil((stop - start) / step)`.
    public static func arangeCount(start: Double, stop: Double, step: Double) -> Int {
        let n = ((stop - start) / step).rounded(.up)
        return n > 0 && n.isFinite ? Int(n) : 0
    }

    /// Element `i` of `np.arange(start, stop, step)` as NumPy fills it: `start + i * delta`
    /// with `delta = (start + step) - start`.
    public static func arange(start: Double, stop: Double, step: Double) -> [Double] {
        let delta = (start + step) - start
        return (0..<arangeCount(start: start, stop: stop, step: step)).map { i in i == 0 ? start : (i == 1 ? start + step : start + Double(i) * delta) }
    }
}
