import TFCore
import TFData

/// One `checkpoint_gpu_{rank}.pt` of the official TransFace `train.py` (arcface_torch's layout),
/// read torch-free through `TorchFile`: `{"epoch", "global_step", "state_dict_backbone",
/// "state_dict_softmax_fc": {"weight": this rank's class centres}, "state_optimizer":
/// torch.optim's state_dict ({"state": {param index: {...}}, "param_groups": [...]}),
/// "state_lr_scheduler": the PolyScheduler's __dict__}`. Tensors are read on demand.
public struct OfficialCheckpointFile {
    /// A value of an optimizer's per-parameter state: a tensor (`exp_avg`, and `step` in torch ≥ 1.12)
    /// or a plain number (`step` of older torch, and of the official sampled Partial FC).
    public enum StateValue {
        case tensor(SourceTensor)
        case number(Double)
        case none
    }

    /// One of torch's `param_groups`: parameter indices into `state`, hyper-parameters as numbers.
    public struct ParamGroup {
        public var params: [Int]
        public var numbers: [String: Double]
    }

    public let path: String
    public let epoch: Int
    public let globalStep: Int
    /// `state_dict_backbone` in file (module) order, `module.` stripped.
    public let backbone: [(name: String, tensor: SourceTensor)]
    /// `state_dict_softmax_fc["weight"]`: the rank's centres `[num_local, embedding_size]`.
    public let centres: SourceTensor
    public let paramGroups: [ParamGroup]
    public let state: [Int: [String: StateValue]]
    /// The scheduler's numeric attributes (`last_epoch`, `base_lr`, `max_steps`, `warmup_steps`, ...).
    public let scheduler: [String: Double]

    public static let keys = ["epoch", "global_step", "state_dict_backbone", "state_dict_softmax_fc", "state_optimizer", "state_lr_scheduler"]

    /// Reads and checks the structure (not yet the sizes: that needs a configuration).
    public init(path: String) throws {
        self.path = path
        let root = try TorchFile.load(path: path)
        func fail(_ m: String) -> TransFaceError { TransFaceError.format("'\(path)': \(m)") }
        guard case .dict(let top) = root else { throw fail("holds a \(root.kind), not the dict train.py saves") }
        let entries = Self.strings(top)
        let missing = Self.keys.filter { entries[$0] == nil }
        guard missing.isEmpty else {
            throw fail("not an official training checkpoint: missing \(missing.joined(separator: ", ")) (it has \(entries.keys.sorted().joined(separator: ", ")))")
        }
        guard case .int(let e) = entries["epoch"]!, e >= 0, e < Int64(Int32.max) else { throw fail("'epoch' is not a non-negative int") }
        guard case .int(let g) = entries["global_step"]!, g >= 0, g < Int64(Int32.max) else { throw fail("'global_step' is not a non-negative int") }
        epoch = Int(e)
        globalStep = Int(g)
        var notes: [String] = []
        do { backbone = try Converter.selectStateDict(entries["state_dict_backbone"]!, notes: &notes).map { (name: $0.0, tensor: $0.1) } } catch let x as TransFaceError {
            throw fail("state_dict_backbone: \(x.message)")
        }
        guard case .dict(let fc) = entries["state_dict_softmax_fc"]!, case .object(let w as SourceTensor)? = Self.strings(fc)["weight"] else {
            throw fail("state_dict_softmax_fc has no 'weight' tensor")
        }
        centres = w
        let optimizerMessage = "state_optimizer is not a torch.optim state_dict ({\"state\": dict, \"param_groups\": list})"
        guard case .dict(let opt) = entries["state_optimizer"]! else { throw fail(optimizerMessage) }
        let optEntries = Self.strings(opt)
        guard case .dict(let st)? = optEntries["state"], case .list(let groups)? = optEntries["param_groups"] else {
            throw fail(optimizerMessage)
        }
        var state: [Int: [String: StateValue]] = [:]
        for item in st.items {
            guard case .int(let index) = item.key, index >= 0, index < Int64(Int32.max), case .dict(let d) = item.value else {
                throw fail("state_optimizer.state maps a \(item.key.kind) to a \(item.value.kind), not a parameter index to a dict")
            }
            var values: [String: StateValue] = [:]
            for (k, v) in Self.strings(d) {
                switch v {
                case .object(let t as SourceTensor): values[k] = .tensor(t)
                case .int(let n): values[k] = .number(Double(n))
                case .float(let x): values[k] = .number(x)
                case .none: values[k] = StateValue.none
                default: throw fail("state_optimizer.state[\(index)].\(k) is a \(v.kind)")
                }
            }
            guard state.updateValue(values, forKey: Int(index)) == nil else { throw fail("state_optimizer.state has parameter \(index) twice") }
        }
        self.state = state
        paramGroups = try groups.items.enumerated().map { i, g in
            guard case .dict(let d) = g, case .list(let p)? = Self.strings(d)["params"] else {
                throw fail("state_optimizer.param_groups[\(i)] has no 'params' list")
            }
            let params = try p.items.map { v -> Int in
                guard case .int(let n) = v, n >= 0, n < Int64(Int32.max) else { throw fail("state_optimizer.param_groups[\(i)].params holds a \(v.kind)") }
                return Int(n)
            }
            return ParamGroup(params: params, numbers: Self.numbers(d))
        }
        guard case .dict(let sched) = entries["state_lr_scheduler"]! else { throw fail("state_lr_scheduler is a \(entries["state_lr_scheduler"]!.kind), not a dict") }
        scheduler = Self.numbers(sched)
        guard scheduler["last_epoch"] != nil else { throw fail("state_lr_scheduler has no 'last_epoch'") }
    }

    /// The entries of a dict with string keys (others are left out).
    static func strings(_ d: Pickle.Dict) -> [String: Pickle.Value] {
        var out: [String: Pickle.Value] = [:]
        for item in d.items { if case .string(let k) = item.key { out[k] = item.value } }
        return out
    }

    /// The numeric entries of a dict (ints, floats, bools, and the elements of numeric tuples
    /// as `key.0`, `key.1`: torch's `betas`).
    static func numbers(_ d: Pickle.Dict) -> [String: Double] {
        var out: [String: Double] = [:]
        func number(_ v: Pickle.Value) -> Double? {
            switch v {
            case .int(let n): return Double(n)
            case .float(let x): return x
            case .bool(let b): return b ? 1 : 0
            default: return nil
            }
        }
        for (k, v) in strings(d) {
            if let x = number(v) { out[k] = x }
            if case .tuple(let t) = v { for (i, e) in t.enumerated() { if let x = number(e) { out["\(k).\(i)"] = x } } }
        }
        return out
    }
}
