#if canImport(Glibc)
import Glibc
#endif
import TFCore
import TFModel

/// Which tensors get weight decay.
public enum WeightDecayPolicy: Sendable, Equatable {
    /// Every tensor, as the official code (LN/BN weights and biases, biases, pos_embed, centres).
    case everyTensor
    /// Exempt 1-D tensors (in this layout exactly the LayerNorm/BatchNorm weights and biases and
    /// every bias), names ending in `.bias`, and the tokens `pos_embed`, `mask_token`, `cls_token`.
    case exemptNormsBiasesAndTokens

    public static let tokenNames: Set<String> = ["pos_embed", "mask_token", "cls_token"]

    public func decays(name: String, shape: [Int]) -> Bool {
        switch self {
        case .everyTensor: return true
        case .exemptNormsBiasesAndTokens:
            return !(shape.count <= 1 || name.hasSuffix(".bias") || Self.tokenNames.contains(name))
        }
    }
}

/// The tensors an optimizer (or the gradient clipper) works on: ranges of one flat parameter
/// buffer, with the gradient buffer and every moment slab laid out at the same offsets (for the
/// backbone, the offsets of `ParameterLayout`).
public struct ParameterGroup: Sendable, Equatable {
    public struct Tensor: Sendable, Equatable {
        public let name: String
        public let offset: Int
        public let count: Int
        public let decay: Bool

        public init(name: String, offset: Int, count: Int, decay: Bool) {
            self.name = name
            self.offset = offset
            self.count = count
            self.decay = decay
        }
    }

    public let tensors: [Tensor]
    /// Floats a parameter/gradient/moment buffer must hold (≥ every `offset + count`).
    public let extent: Int
    /// Sum of the tensors' counts.
    public let elementCount: Int
    /// Flat start of each tensor in the concatenation of the group's tensors.
    let starts: [Int]

    /// Tensors must be sorted by offset and must not overlap.
    public init(tensors: [Tensor], extent: Int? = nil) throws {
        var end = 0, starts: [Int] = [], total = 0
        for t in tensors {
            try require(t.count >= 0, "parameter group: tensor '\(t.name)' has a negative size")
            try require(t.offset >= end, "parameter group: tensor '\(t.name)' at \(t.offset) overlaps or is out of order")
            end = t.offset + t.count
            starts.append(total)
            total += t.count
        }
        let ext = extent ?? end
        try require(ext >= end, "parameter group: extent \(ext) is smaller than the tensors' end \(end)")
        self.tensors = tensors
        self.extent = ext
        self.elementCount = total
        self.starts = starts
    }

    /// The trainable backbone tensors of `layout` (BatchNorm running statistics are not
    /// parameters), leaving out `withoutGradient` (tensors that get no gradient: torch skips them
    /// entirely, weight decay included). `extent` is `layout.totalCount`.
    public static func backbone(layout: ParameterLayout, decay: WeightDecayPolicy = .everyTensor,
                                withoutGradient: Set<String> = ["mask_token"]) throws -> ParameterGroup {
        for name in withoutGradient { _ = try layout.entry(name) }
        let tensors = layout.entries.filter { $0.trainable && !withoutGradient.contains($0.name) }.map {
            Tensor(name: $0.name, offset: $0.offset, count: $0.count, decay: decay.decays(name: $0.name, shape: $0.shape))
        }
        return try ParameterGroup(tensors: tensors, extent: layout.totalCount)
    }

    /// The backbone group for a configuration: `mask_token` gets a gradient (and so is updated)
    /// only when the configuration masks tokens in training (`maskRatio > 0`).
    public static func backbone(layout: ParameterLayout, config: ViTConfig, decay: WeightDecayPolicy = .everyTensor) throws -> ParameterGroup {
        try backbone(layout: layout, decay: decay, withoutGradient: config.maskRatio > 0 ? [] : ["mask_token"])
    }

    /// One tensor filling its own buffer (e.g. the class centres, `partial_fc.weight`).
    public static func single(name: String, count: Int, decay: Bool = true) throws -> ParameterGroup {
        try ParameterGroup(tensors: [Tensor(name: name, offset: 0, count: count, decay: decay)])
    }

    public func tensor(named name: String) -> Tensor? { tensors.first { $0.name == name } }

    /// Calls `body(tensor, elementRange)` for the parts of each tensor inside `flat`, a range of
    /// the concatenation of the group's tensors.
    @inline(__always)
    func forEachSegment(in flat: Range<Int>, _ body: (Tensor, Range<Int>) -> Void) {
        for (i, t) in tensors.enumerated() {
            let lo = max(flat.lowerBound, starts[i]), hi = min(flat.upperBound, starts[i] + t.count)
            if lo < hi { body(t, (t.offset + lo - starts[i])..<(t.offset + hi - starts[i])) }
        }
    }

    /// Splits the group's elements over the pool's workers (one `run`) and calls `body` per segment.
    func parallelSegments(_ pool: WorkerPool?, _ body: (Tensor, Range<Int>) -> Void) {
        guard elementCount > 0 else { return }
        guard let pool, pool.threadCount > 1, elementCount >= 4096 else {
            forEachSegment(in: 0..<elementCount, body)
            return
        }
        pool.run { w in
            let r = WorkerPool.split(elementCount, parts: pool.threadCount, index: w)
            if !r.isEmpty { forEachSegment(in: r, body) }
        }
    }

    func checkBuffers(_ parameters: Int, _ gradients: Int) throws {
        try require(parameters >= extent, "optimizer: parameters hold \(parameters) floats, the group needs \(extent)")
        try require(gradients >= extent, "optimizer: gradients hold \(gradients) floats, the group needs \(extent)")
    }

    func checkRows(_ rows: UnsafeBufferPointer<Int32>, rowLength: Int) throws -> Tensor {
        try require(tensors.count == 1, "optimizer: row updates need a group of one tensor, this one has \(tensors.count)")
        let t = tensors[0]
        try require(rowLength >= 1 && t.count % rowLength == 0, "optimizer: row length \(rowLength) does not divide '\(t.name)' (\(t.count))")
        let rowCount = t.count / rowLength
        for r in rows {
            try require(r >= 0 && Int(r) < rowCount, "optimizer: row \(r) is outside 0..<\(rowCount) of '\(t.name)'")
        }
        return t
    }
}

/// An optimizer over a `ParameterGroup`: its moments live in slabs of `group.extent` floats at
/// the parameters' offsets. The step counter is explicit (checkpoints restore it).
public protocol ParameterOptimizer: AnyObject {
    var group: ParameterGroup { get }
    var learningRate: Double { get set }
    var weightDecay: Double { get set }
    /// Steps taken (torch's `state["step"]`); the next step uses `stepCount + 1`.
    var stepCount: Int { get set }
    /// One step over every tensor of the group.
    func step(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeBufferPointer<Float>, pool: WorkerPool?) throws
    /// One step over the given rows (`rowLength` floats each) of the group's only tensor (the
    /// sampled class centres); other rows and their moments are untouched.
    func stepRows(_ rows: UnsafeBufferPointer<Int32>, rowLength: Int, parameters: UnsafeMutableBufferPointer<Float>,
                  gradients: UnsafeBufferPointer<Float>, pool: WorkerPool?) throws
}

/// `torch.optim.AdamW`, single-tensor implementation (what torch runs for CPU tensors), element
/// by element in float32 with torch's operation order:
/// `p *= 1 − lr·wd` (decaying tensors); `m.lerp_(g, 1 − β1)`; `v = v·β2 + (1 − β2)·g·g`;
/// bias corrections in Double; `denom = sqrt(v)/sqrt(bc2) + eps`; `p += (−lr/bc1)·m / denom`.
public final class AdamW: ParameterOptimizer {
    public let group: ParameterGroup
    public var learningRate: Double
    public var beta1: Double
    public var beta2: Double
    public var eps: Double
    public var weightDecay: Double
    public var stepCount = 0
    /// First and second moments (`exp_avg`, `exp_avg_sq`), laid out as the parameters.
    public let expAvg: FloatSlab
    public let expAvgSq: FloatSlab

    public init(group: ParameterGroup, learningRate: Double = 1e-3, betas: (Double, Double) = (0.9, 0.999),
                eps: Double = 1e-8, weightDecay: Double = 1e-2) throws {
        try require(learningRate.isFinite && learningRate >= 0, "adamw: learning rate \(learningRate) is invalid")
        try require((0..<1).contains(betas.0) && (0..<1).contains(betas.1), "adamw: betas \(betas) must be in [0, 1)")
        try require(eps.isFinite && eps >= 0, "adamw: eps \(eps) is invalid")
        try require(weightDecay.isFinite && weightDecay >= 0, "adamw: weight decay \(weightDecay) is invalid")
        self.group = group
        self.learningRate = learningRate
        self.beta1 = betas.0
        self.beta2 = betas.1
        self.eps = eps
        self.weightDecay = weightDecay
        expAvg = try FloatSlab(count: group.extent)
        expAvgSq = try FloatSlab(count: group.extent)
    }

    struct Constants {
        let decayFactor: Float, lerpWeight: Float, beta2: Float, oneMinusBeta2: Float
        let negativeStepSize: Float, bc2Sqrt: Float, eps: Float
    }

    private func constants(step: Int) -> Constants {
        let bc1 = 1 - pow(beta1, Double(step))
        let bc2 = 1 - pow(beta2, Double(step))
        return Constants(decayFactor: Float(1 - learningRate * weightDecay), lerpWeight: Float(1 - beta1),
                         beta2: Float(beta2), oneMinusBeta2: Float(1 - beta2),
                         negativeStepSize: Float(-(learningRate / bc1)), bc2Sqrt: Float(bc2.squareRoot()), eps: Float(eps))
    }

    @inline(__always)
    static func update(_ p: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, _ m: UnsafeMutablePointer<Float>,
                       _ v: UnsafeMutablePointer<Float>, _ range: Range<Int>, decay: Bool, _ k: Constants) {
        let small = k.lerpWeight < 0.5
        for i in range {
            var param = p[i]
            if decay { param *= k.decayFactor }
            let grad = g[i]
            var mi = m[i]
            // torch.lerp: fused self + w·(end − self) for w < 0.5, else end − (end − self)·(1 − w)
            mi = small ? mi.addingProduct(k.lerpWeight, grad - mi) : grad - (grad - mi) * (1 - k.lerpWeight)
            var vi = v[i] * k.beta2
            vi = vi + k.oneMinusBeta2 * grad * grad
            let denom = vi.squareRoot() / k.bc2Sqrt + k.eps
            param = param + k.negativeStepSize * mi / denom
            m[i] = mi
            v[i] = vi
            p[i] = param
        }
    }

    public func step(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeBufferPointer<Float>, pool: WorkerPool? = nil) throws {
        try group.checkBuffers(parameters.count, gradients.count)
        stepCount += 1
        let k = constants(step: stepCount)
        let decays = weightDecay != 0
        let p = parameters.baseAddress!, g = gradients.baseAddress!, m = expAvg.base, v = expAvgSq.base
        group.parallelSegments(pool) { t, r in
            AdamW.update(p, g, m, v, r, decay: decays && t.decay, k)
        }
    }

    public func stepRows(_ rows: UnsafeBufferPointer<Int32>, rowLength: Int, parameters: UnsafeMutableBufferPointer<Float>,
                         gradients: UnsafeBufferPointer<Float>, pool: WorkerPool? = nil) throws {
        try group.checkBuffers(parameters.count, gradients.count)
        let t = try group.checkRows(rows, rowLength: rowLength)
        stepCount += 1
        let k = constants(step: stepCount)
        let decay = weightDecay != 0 && t.decay
        let p = parameters.baseAddress!, g = gradients.baseAddress!, m = expAvg.base, v = expAvgSq.base
        PartialFC.parallel(pool, rows.count) { r in
            for i in r {
                let start = t.offset + Int(rows[i]) * rowLength
                AdamW.update(p, g, m, v, start..<(start + rowLength), decay: decay, k)
            }
        }
    }
}

/// `torch.optim.SGD` with momentum (dampening 0), single-tensor implementation:
/// `d = g + wd·p` (decaying tensors); `buf = momentum·buf + d` (the first step's `buf = d` is the
/// same value from a zero buffer); `d = nesterov ? d + momentum·buf : buf`; `p −= lr·d`.
public final class SGD: ParameterOptimizer {
    public let group: ParameterGroup
    public var learningRate: Double
    public var momentum: Double
    public var nesterov: Bool
    public var weightDecay: Double
    public var stepCount = 0
    /// `momentum_buffer`, laid out as the parameters (unused when momentum is 0).
    public let momentumBuffer: FloatSlab

    public init(group: ParameterGroup, learningRate: Double, momentum: Double = 0.9, weightDecay: Double = 0,
                nesterov: Bool = false) throws {
        try require(learningRate.isFinite && learningRate >= 0, "sgd: learning rate \(learningRate) is invalid")
        try require(momentum.isFinite && momentum >= 0, "sgd: momentum \(momentum) is invalid")
        try require(weightDecay.isFinite && weightDecay >= 0, "sgd: weight decay \(weightDecay) is invalid")
        try require(!nesterov || momentum > 0, "sgd: nesterov needs a momentum")
        self.group = group
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
        self.nesterov = nesterov
        momentumBuffer = try FloatSlab(count: momentum > 0 ? group.extent : 0)
    }

    @inline(__always)
    static func update(_ p: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, _ buf: UnsafeMutablePointer<Float>,
                       _ range: Range<Int>, weightDecay wd: Float, momentum mu: Float, nesterov: Bool, learningRate lr: Float) {
        for i in range {
            var d = g[i]
            if wd != 0 { d = d.addingProduct(wd, p[i]) }
            if mu != 0 {
                let b = buf[i] * mu + d
                buf[i] = b
                d = nesterov ? d.addingProduct(mu, b) : b
            }
            p[i] = p[i].addingProduct(-lr, d)
        }
    }

    public func step(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeBufferPointer<Float>, pool: WorkerPool? = nil) throws {
        try group.checkBuffers(parameters.count, gradients.count)
        stepCount += 1
        let p = parameters.baseAddress!, g = gradients.baseAddress!, buf = momentumBuffer.base
        let mu = Float(momentum), lr = Float(learningRate), wd = Float(weightDecay), nesterov = self.nesterov
        group.parallelSegments(pool) { t, r in
            SGD.update(p, g, buf, r, weightDecay: t.decay ? wd : 0, momentum: mu, nesterov: nesterov, learningRate: lr)
        }
    }

    public func stepRows(_ rows: UnsafeBufferPointer<Int32>, rowLength: Int, parameters: UnsafeMutableBufferPointer<Float>,
                         gradients: UnsafeBufferPointer<Float>, pool: WorkerPool? = nil) throws {
        try group.checkBuffers(parameters.count, gradients.count)
        let t = try group.checkRows(rows, rowLength: rowLength)
        stepCount += 1
        let p = parameters.baseAddress!, g = gradients.baseAddress!, buf = momentumBuffer.base
        let mu = Float(momentum), lr = Float(learningRate), wd = t.decay ? Float(weightDecay) : 0, nesterov = self.nesterov
        PartialFC.parallel(pool, rows.count) { r in
            for i in r {
                let start = t.offset + Int(rows[i]) * rowLength
                SGD.update(p, g, buf, start..<(start + rowLength), weightDecay: wd, momentum: mu, nesterov: nesterov, learningRate: lr)
            }
        }
    }
}
