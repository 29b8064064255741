import TFCore

/// Writes a state_dict (or any tree of dicts, lists and tensors: `Node`) in torch's legacy format
/// the way `torch.save(..., _use_new_zipfile_serialization=False)` does (pickle protocol 2), for
/// tests and fuzz seeds of `TorchLegacyFile`: tensors are views
/// (`offset`, `shape`, `stride`) on named float32 or float64 storages, which may be shared.
public enum TorchLegacyWriter {
    public struct Tensor {
        public var name: String
        public var storage: String
        public var offset: Int
        public var shape: [Int]
        public var stride: [Int]
        /// A contiguous view when `stride` is nil.
        public init(name: String, storage: String, offset: Int = 0, shape: [Int], stride: [Int]? = nil) {
            self.name = name; self.storage = storage; self.offset = offset; self.shape = shape
            self.stride = stride ?? shape.indices.map { shape[($0 + 1)...].reduce(1, *) }
        }
    }

    public struct Storage {
        public var key: String
        public var values: [Double]
        public var float64: Bool
        public init(key: String, values: [Double], float64: Bool = false) { self.key = key; self.values = values; self.float64 = float64 }
    }

    public static func encode(tensors: [Tensor], storages: [Storage]) -> [UInt8] {
        encode(.orderedDict(tensors.map { ($0.name, .tensor($0)) }), storages: storages)
    }

    /// A value of the pickled object tree (`torch.save(obj)` of nested dicts, lists and tensors:
    /// e.g. a training checkpoint). A tensor's `name` is not used here.
    public indirect enum Node {
        case dict([(key: Node, value: Node)])
        case orderedDict([(key: String, value: Node)])
        case list([Node])
        case tuple([Node])
        case int(Int)
        case float(Double)
        case bool(Bool)
        case none
        case string(String)
        case tensor(Tensor)
    }

    /// `torch.save(root, _use_new_zipfile_serialization=False)` with `storages` (ints must fit 32 bits).
    public static func encode(_ root: Node, storages: [Storage]) -> [UInt8] {
        var out: [UInt8] = [0x80, 0x02, 0x8A, 0x0A] + TorchLegacyFile.magic + [0x2E]
        out += [0x80, 0x02, 0x4D, 0xE9, 0x03, 0x2E]  // 1001
        var info = Pickle2()
        info.op([0x7D, 0x28])
        info.str("protocol_version"); info.int(1001)
        info.str("little_endian"); info.op([0x88])
        info.str("type_sizes"); info.op([0x7D, 0x28])
        for (k, v) in [("short", 2), ("int", 4), ("long", 4)] { info.str(k); info.int(v) }
        info.op([0x75, 0x75])
        out += info.finished()

        let byKey = Dictionary(storages.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        var obj = Pickle2()
        obj.node(root, byKey)
        out += obj.finished()

        var keys = Pickle2()
        keys.op([0x5D, 0x28])
        storages.forEach { keys.str($0.key) }
        keys.op([0x65])
        out += keys.finished()
        for s in storages {
            withUnsafeBytes(of: Int64(s.values.count).littleEndian) { out += $0 }
            for v in s.values {
                if s.float64 { withUnsafeBytes(of: v.bitPattern.littleEndian) { out += $0 } } else {
                    withUnsafeBytes(of: Float(v).bitPattern.littleEndian) { out += $0 }
                }
            }
        }
        return out
    }

    /// A protocol-2 pickle under construction (no memo: torch's pickles use one, readers need not).
    struct Pickle2 {
        var bytes: [UInt8] = [0x80, 0x02]
        mutating func op(_ b: [UInt8]) { bytes += b }
        mutating func str(_ s: String) {
            let u = Array(s.utf8)
            bytes.append(0x58)
            withUnsafeBytes(of: UInt32(u.count).littleEndian) { bytes += $0 }
            bytes += u
        }
        mutating func int(_ v: Int) {
            bytes.append(0x4A)
            withUnsafeBytes(of: Int32(v).littleEndian) { bytes += $0 }
        }
        mutating func global(_ module: String, _ name: String) { bytes += [0x63] + Array("\(module)\n\(name)\n".utf8) }
        func finished() -> [UInt8] { bytes + [0x2E] }

        mutating func node(_ n: Node, _ storages: [String: Storage]) {
            switch n {
            case .dict(let items):
                op([0x7D, 0x28])  // EMPTY_DICT MARK ... SETITEMS
                for (k, v) in items { node(k, storages); node(v, storages) }
                op([0x75])
            case .orderedDict(let items):
                global("collections", "OrderedDict"); op([0x29, 0x52, 0x28])
                for (k, v) in items { str(k); node(v, storages) }
                op([0x75])
            case .list(let items):
                op([0x5D, 0x28]); items.forEach { node($0, storages) }; op([0x65])
            case .tuple(let items):
                op([0x28]); items.forEach { node($0, storages) }; op([0x74])
            case .int(let v): int(v)
            case .float(let v):  // BINFLOAT, big-endian
                bytes.append(0x47)
                withUnsafeBytes(of: v.bitPattern.bigEndian) { bytes += $0 }
            case .bool(let b): op([b ? 0x88 : 0x89])
            case .none: op([0x4E])
            case .string(let s): str(s)
            case .tensor(let t):
                global("torch._utils", "_rebuild_tensor_v2")
                op([0x28, 0x28])
                let s = storages[t.storage]
                str("storage"); global("torch", s?.float64 == true ? "DoubleStorage" : "FloatStorage")
                str(t.storage); str("cpu"); int(s?.values.count ?? 0); op([0x4E, 0x74, 0x51])
                int(t.offset)
                op([0x28]); t.shape.forEach { int($0) }; op([0x74])
                op([0x28]); t.stride.forEach { int($0) }; op([0x74])
                op([0x89]); global("collections", "OrderedDict"); op([0x29, 0x52, 0x74, 0x52])
            }
        }
    }
}
