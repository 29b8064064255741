/// Comparison against a reference with `atol + rtol · max|ref|`, as the fixtures' README asks.
public struct Comparison: CustomStringConvertible {
    public let maxAbs: Double
    public let maxRel: Double
    public let worstIndex: Int
    public let bound: Double
    public var passed: Bool { maxAbs <= bound }
    public var description: String {
        "max|diff| \(maxAbs) at \(worstIndex) (relative to max|ref| \(maxRel)), bound \(bound)"
    }

    public init<A: Collection, B: Collection>(_ actual: A, _ expected: B, rtol: Double, atol: Double = 1e-6)
    where A.Element == Float, B.Element == Float {
        precondition(actual.count == expected.count, "compared sizes differ: \(actual.count) vs \(expected.count)")
        var worst = 0.0, index = 0, refMax = 0.0
        for (i, (a, b)) in zip(actual, expected).enumerated() {
            refMax = max(refMax, abs(Double(b)))
            let d = abs(Double(a) - Double(b))
            if !(d <= worst) { worst = d.isNaN ? .infinity : d; index = i }
        }
        maxAbs = worst
        maxRel = refMax > 0 ? worst / refMax : worst
        worstIndex = index
        bound = atol + rtol * refMax
    }
}
