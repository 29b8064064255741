import TFCore

/// Copies `n` rows of `dim` floats, each scaled to unit L2 norm, into `dst`; throws naming the
/// first row that is not finite or has norm zero (`what`: "embedding" or "query").
func normalizeRows(_ src: UnsafePointer<Float>, rows n: Int, dim: Int, into dst: UnsafeMutablePointer<Float>, what: String) throws {
    for r in 0..<n {
        let row = src + r * dim
        var sum: Double = 0
        for j in 0..<dim { sum += Double(row[j]) * Double(row[j]) }
        guard sum.isFinite, sum > 0 else {
            throw TransFaceError.invalidArgument("\(what) \(r) has \(sum.isFinite ? "norm zero" : "a non-finite value"); it cannot be normalised")
        }
        let scale = Float(1 / sum.squareRoot())
        for j in 0..<dim { dst[r * dim + j] = row[j] * scale }
    }
}
