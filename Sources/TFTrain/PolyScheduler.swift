import TFCore

#if canImport(Glibc)
import Glibc
#endif

/// The official learning-rate schedule (arcface_torch `lr_scheduler.PolyScheduler`, as train.py
/// drives it), reproduced to the bit in Double:
///
///     lr(e) = base · e / W                      e < W   (warm-up)
///     lr(e) = base · (1 − (e − W) / (M − W))²   e ≥ W   (no clamp: it rises again past M)
///
/// with W = `warmupSteps`, M = `maxSteps`. PyTorch's scheduler constructor already takes one
/// step (epoch 0) and then resets `last_epoch` to −1, so the optimizer's first step runs with
/// lr(0), `step()` after it sets lr(0) again, and optimizer step i (0-based) uses lr(max(i − 1, 0)):
/// with warm-up the first two steps use lr 0. `warmupLRInit` (0.0001) is the official attribute
/// for epoch −1, which the official loop never reaches; it is kept for completeness.
///
/// Usage, as train.py: `optimizer.step(lr: scheduler.lr)`, then `scheduler.step()`.
public struct PolyScheduler: Equatable, Sendable {
    public let baseLR: Double
    public let maxSteps: Int
    public let warmupSteps: Int
    public let power: Double
    public let warmupLRInit: Double

    /// PyTorch's `last_epoch`: −1 before the first `step()`, then the number of steps taken − 1.
    public private(set) var lastEpoch: Int
    /// The learning rate the optimizer uses for its next step (PyTorch's param_group['lr']).
    public private(set) var lr: Double

    /// A new schedule, as `PolyScheduler(opt, base_lr, max_steps, warmup_steps, last_epoch=-1)`.
    /// maxSteps must exceed warmupSteps (the official code divides by M − W).
    public init(baseLR: Double, maxSteps: Int, warmupSteps: Int) throws {
        try require(baseLR.isFinite && baseLR >= 0, "base learning rate \(baseLR) must be finite and non-negative")
        try require(warmupSteps >= 0, "warm-up steps \(warmupSteps) is negative")
        try require(maxSteps > warmupSteps, "max steps \(maxSteps) must exceed the warm-up steps \(warmupSteps)")
        self.baseLR = baseLR
        self.maxSteps = maxSteps
        self.warmupSteps = warmupSteps
        self.power = 2
        self.warmupLRInit = 0.0001
        lastEpoch = 0
        lr = 0
        lr = learningRate(epoch: 0)  // the constructor's initial step
        lastEpoch = -1               // then `self.last_epoch = last_epoch`
    }

    /// The official `get_lr()` at `last_epoch == epoch`.
    public func learningRate(epoch: Int) -> Double {
        if epoch == -1 { return warmupLRInit }
        if epoch < warmupSteps {
            let alpha = Double(epoch) / Double(warmupSteps)
            return baseLR * alpha
        }
        let alpha = pow(1 - Double(epoch - warmupSteps) / Double(maxSteps - warmupSteps), power)
        return baseLR * alpha
    }

    /// `lr_scheduler.step()`: advances `lastEpoch` and sets the next learning rate.
    public mutating func step() {
        lastEpoch += 1
        lr = learningRate(epoch: lastEpoch)
    }

    /// The learning rate optimizer step `index` (0-based, counted from a fresh schedule) uses.
    public func learningRate(forOptimizerStep index: Int) -> Double { learningRate(epoch: max(index - 1, 0)) }

    /// What a checkpoint stores (PyTorch's `state_dict()` keeps the hyper-parameters too, and
    /// `load_state_dict` restores them, so a resumed run keeps its original schedule).
    public struct State: Equatable, Sendable {
        public var baseLR: Double
        public var maxSteps: Int
        public var warmupSteps: Int
        public var lastEpoch: Int
        public var lr: Double

        public init(baseLR: Double, maxSteps: Int, warmupSteps: Int, lastEpoch: Int, lr: Double) {
            self.baseLR = baseLR
            self.maxSteps = maxSteps
            self.warmupSteps = warmupSteps
            self.lastEpoch = lastEpoch
            self.lr = lr
        }
    }

    public var state: State {
        State(baseLR: baseLR, maxSteps: maxSteps, warmupSteps: warmupSteps, lastEpoch: lastEpoch, lr: lr)
    }

    /// Restores a saved schedule exactly (the learning rate is taken as saved).
    public init(state: State) throws {
        try self.init(baseLR: state.baseLR, maxSteps: state.maxSteps, warmupSteps: state.warmupSteps)
        try require(state.lastEpoch >= -1, "saved last_epoch \(state.lastEpoch) is below -1")
        try require(state.lr.isFinite && state.lr >= 0, "saved learning rate \(state.lr) must be finite and non-negative")
        lastEpoch = state.lastEpoch
        lr = state.lr
    }
}
