/// BatchNorm1d over `rows` samples of `features` values.
///  - eval (`runningUpdate == nil` and `useBatchStatistics == false`): normalises with the
///    running statistics;
///  - train (`useBatchStatistics`): normalises with the batch mean and biased variance and,
///    when `runningUpdate` is given, moves the running statistics by `momentum` using the
///    unbiased variance (PyTorch's semantics). Needs at least 2 rows.
/// `saveMean`/`saveRstd` (per feature) receive the statistics used, for the backward pass.
public func batchNormForward(
    out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, rows: Int, features: Int,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
    runningMean: UnsafeMutablePointer<Float>, runningVar: UnsafeMutablePointer<Float>,
    eps: Float, useBatchStatistics: Bool, updateRunning: Bool, momentum: Float = 0.1,
    saveMean: UnsafeMutablePointer<Float>? = nil, saveRstd: UnsafeMutablePointer<Float>? = nil
) {
    for f in 0..<features {
        var mu: Float, variance: Float
        if useBatchStatistics {
            var s: Float = 0
            for r in 0..<rows { s += x[r * features + f] }
            mu = s / Float(rows)
            var v: Float = 0
            for r in 0..<rows { let d = x[r * features + f] - mu; v += d * d }
            variance = v / Float(rows)
            if updateRunning {
                let unbiased = rows > 1 ? v / Float(rows - 1) : variance
                runningMean[f] = (1 - momentum) * runningMean[f] + momentum * mu
                runningVar[f] = (1 - momentum) * runningVar[f] + momentum * unbiased
            }
        } else {
            mu = runningMean[f]
            variance = runningVar[f]
        }
        let rs = 1 / (variance + eps).squareRoot()
        saveMean?[f] = mu
        saveRstd?[f] = rs
        let w = weight[f], b = bias[f]
        for r in 0..<rows { out[r * features + f] = (x[r * features + f] - mu) * rs * w + b }
    }
}
