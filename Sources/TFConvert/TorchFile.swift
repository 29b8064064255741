import TFCore
import TFData

/// Reads torch.save files without torch, safely, in both formats: the zip format of torch ≥ 1.6
/// (here) and the legacy one of earlier versions (`TorchLegacyFile`). The pickle of the object is
/// unpickled by the safe reader of TFData (`Pickle`) with only `collections.OrderedDict`,
/// `torch._utils._rebuild_tensor` (`_v2`), `_rebuild_parameter` (`_with_state`) and the
/// `torch.*Storage` types allowed; storages are persistent ids `('storage', torch.FloatStorage,
/// key, location, numel[, view])`, in the zip format naming the record `<name>/data/<key>`.
/// Tensors come back as `SourceTensor`s read on demand; nothing is executed.
public enum TorchFile {
    static let storages: [String: String] = [
        "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16",
        "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
        "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool",
    ]

    /// A storage: `numel` elements starting at element `base` of the bytes `read` returns (a
    /// legacy view starts inside its root storage; otherwise `base` is 0).
    final class Storage {
        let dtype: String
        let numel: Int
        let base: Int
        let bigEndian: Bool
        let read: () throws -> [UInt8]
        init(dtype: String, numel: Int, base: Int = 0, bigEndian: Bool = false, read: @escaping () throws -> [UInt8]) {
            self.dtype = dtype; self.numel = numel; self.base = base; self.bigEndian = bigEndian; self.read = read
        }
    }

    /// `_rebuild_tensor_v2`'s result: a view on a storage.
    final class Tensor {
        let storage: Storage
        let offset: Int
        let shape: [Int]
        let stride: [Int]
        init(storage: Storage, offset: Int, shape: [Int], stride: [Int]) {
            self.storage = storage; self.offset = offset; self.shape = shape; self.stride = stride
        }
    }

    /// A storage persistent id: `('storage', torch.XStorage, key, location, numel)`, legacy files
    /// adding `view` (None or `(view_key, offset, numel)`).
    struct StorageReference {
        var dtype: String
        var key: String
        var numel: Int
        var view: (key: String, offset: Int, numel: Int)?
    }

    /// Parses a storage persistent id; `legacy` accepts the sixth element.
    static func storageReference(_ pid: Pickle.Value, legacy: Bool) throws -> StorageReference {
        guard case .tuple(let t) = pid, t.count == 5 || (legacy && t.count == 6), text(t[0]) == "storage" else {
            throw TransFaceError.format("unsupported persistent id (a \(pid.kind))")
        }
        guard case .global("torch", let typeName) = t[1], let dtype = storages[typeName] else {
            throw TransFaceError.format("unsupported storage type \(t[1].kind)")
        }
        guard let key = text(t[2]), let numel = size(t[4]) else { throw TransFaceError.format("bad storage reference") }
        var ref = StorageReference(dtype: dtype, key: key, numel: numel)
        if t.count == 6, case .tuple(let v) = t[5] {
            guard v.count == 3, let viewKey = text(v[0]), let offset = size(v[1]), let n = size(v[2]) else {
                throw TransFaceError.format("bad storage view reference")
            }
            guard offset <= numel, n <= numel - offset else {
                throw TransFaceError.format("storage view \(viewKey) of \(n) elements at \(offset) lies outside its storage of \(numel)")
            }
            ref.view = (viewKey, offset, n)
        } else if t.count == 6, case .none = t[5] {} else if t.count == 6 {
            throw TransFaceError.format("storage view metadata is a \(t[5].kind)")
        }
        return ref
    }

    /// A str (or a Python 2 byte string, as torch's `_maybe_decode_ascii` accepts).
    static func text(_ v: Pickle.Value) -> String? {
        switch v {
        case .string(let s): return s
        case .bytes(let b) where b.allSatisfy({ $0 < 0x80 }): return String(decoding: b, as: UTF8.self)
        default: return nil
        }
    }

    /// A non-negative element count small enough for any real file (the caller checks it against
    /// the file's size before anything is allocated).
    static func size(_ v: Pickle.Value) -> Int? {
        guard case .int(let n) = v, n >= 0, n < Int64(Int32.max) * 64 else { return nil }
        return Int(n)
    }

    /// The unpickled object: dicts stay `Pickle.Value.dict`, tensors are `.object(SourceTensor)`.
    /// Either format; anything else is a `format` error naming the file.
    public static func load(path: String) throws -> Pickle.Value {
        if ZipArchive.looksLikeZip(path) { return try loadZip(path: path) }
        let file = try ReadableFile(path: path)
        let head = try file.readBytes(at: 0, count: Int(min(file.size, 2)))
        if head.first == 0x80 { return try TorchLegacyFile.load(file) }
        throw TransFaceError.format("'\(path)': not a torch.save file (neither a zip archive nor a legacy pickle stream)")
    }

    /// The zip format: `<name>/data.pkl` and a record per storage.
    static func loadZip(path: String) throws -> Pickle.Value {
        let archive: ZipArchive
        do { archive = try ZipArchive(path: path) } catch {
            throw TransFaceError.format("'\(path)': not a torch.save zip archive")
        }
        let pickles = archive.names.filter { $0.hasSuffix("/data.pkl") && $0.filter { $0 == "/" }.count == 1 }
        guard pickles.count == 1 else {
            throw TransFaceError.format("'\(path)': expected one <name>/data.pkl record in the archive, found \(pickles.count)")
        }
        let prefix = String(pickles[0].dropLast("data.pkl".count))
        var bigEndian = false
        if archive.contains(prefix + "byteorder") {
            let order = String(decoding: try archive.read(prefix + "byteorder", limit: 64).filter { $0 > 0x20 }, as: UTF8.self)
            guard order == "little" || order == "big" else { throw TransFaceError.format("'\(path)': unknown byteorder '\(order.prefix(20))'") }
            bigEndian = order == "big"
        }
        var seen: [String: Storage] = [:]
        let ext = Pickle.Extension(dicts: true, persistentLoad: { pid in
            let ref = try storageReference(pid, legacy: false)
            if let s = seen[ref.key] {
                guard s.dtype == ref.dtype else { throw TransFaceError.format("storage \(ref.key) is used with two element types") }
                return .object(s)
            }
            let record = prefix + "data/" + ref.key
            guard archive.contains(record) else { throw TransFaceError.format("storage record \(record) is missing from the archive") }
            let need = UInt64(ref.numel * SourceTensor.itemSize(ref.dtype))
            let size = try archive.size(of: record)
            guard size >= need else { throw TransFaceError.format("storage record \(record) holds \(size) bytes, \(need) expected") }
            let s = Storage(dtype: ref.dtype, numel: ref.numel, bigEndian: bigEndian) { try archive.read(record) }
            seen[ref.key] = s
            return .object(s)
        }, call: { module, name, args in try call(module, name, args) })
        let bytes = try archive.read(pickles[0], limit: 1 << 30)
        let root = try Pickle.load(bytes, what: "'\(path)' \(pickles[0])", extension: ext)
        return wrap(root)
    }

    /// The whitelisted callables (nil: not one of ours, the reader refuses it).
    static func call(_ module: String, _ name: String, _ a: [Pickle.Value]) throws -> Pickle.Value? {
        switch (module, name) {
        case ("collections", "OrderedDict"):
            if a.isEmpty { return .dict(Pickle.Dict()) }
            throw TransFaceError.format("collections.OrderedDict is only accepted without arguments")
        case ("torch._utils", "_rebuild_tensor"), ("torch._utils", "_rebuild_tensor_v2"):
            guard a.count >= 4, a.count <= (name == "_rebuild_tensor" ? 4 : 7) else {
                throw TransFaceError.format("torch._utils.\(name) with \(a.count) arguments")
            }
            guard case .object(let o) = a[0], let storage = o as? Storage else {
                throw TransFaceError.format("tensor storage is a \(a[0].kind), not a storage record")
            }
            guard case .int(let off64) = a[1], off64 >= 0, off64 <= Int64(storage.numel) else { throw TransFaceError.format("bad tensor storage offset") }
            let size = try ints(a[2], "size"), stride = try ints(a[3], "stride")
            guard size.count == stride.count, size.allSatisfy({ $0 >= 0 }), stride.allSatisfy({ $0 >= 0 }) else {
                throw TransFaceError.format("bad tensor size \(size) / stride \(stride)")
            }
            let offset = Int(off64)
            if size.allSatisfy({ $0 > 0 }) {
                var last = offset
                for (n, s) in zip(size, stride) {
                    let (m, o1) = (n - 1).multipliedReportingOverflow(by: s)
                    let (l, o2) = last.addingReportingOverflow(m)
                    guard !o1, !o2 else { throw TransFaceError.format("tensor of size \(size) overflows") }
                    last = l
                }
                guard last < storage.numel else {
                    throw TransFaceError.format("tensor of size \(size) at offset \(offset) reaches element \(last) of a storage of \(storage.numel)")
                }
            }
            _ = try checkedProduct(size, what: "tensor size")
            return .object(Tensor(storage: storage, offset: offset, shape: size, stride: stride))
        case ("torch._utils", "_rebuild_parameter"), ("torch._utils", "_rebuild_parameter_with_state"):
            guard (1...4).contains(a.count), case .object(let o) = a[0], o is Tensor else {
                throw TransFaceError.format("a Parameter must wrap a tensor")
            }
            return a[0]
        default:
            return nil
        }
    }

    static func ints(_ v: Pickle.Value, _ what: String) throws -> [Int] {
        guard case .tuple(let t) = v else { throw TransFaceError.format("tensor \(what) must be a tuple of ints, got a \(v.kind)") }
        return try t.map {
            guard case .int(let x) = $0, abs(x) < Int64(Int32.max) * 1024 else { throw TransFaceError.format("tensor \(what) must be a tuple of ints") }
            return Int(x)
        }
    }

    /// Replaces the tensors of the tree by `SourceTensor`s reading their storage on demand.
    static func wrap(_ v: Pickle.Value) -> Pickle.Value {
        switch v {
        case .object(let o as Tensor):
            return .object(SourceTensor(shape: o.shape, dtype: o.storage.dtype) {
                let s = o.storage, item = SourceTensor.itemSize(s.dtype)
                let raw = try s.read()
                guard raw.count >= (s.base + s.numel) * item else {
                    throw TransFaceError.format("storage of \(raw.count) bytes is shorter than its \(s.base + s.numel) elements")
                }
                return SourceTensor.gather(raw, itemSize: item, offset: s.base + o.offset, shape: o.shape, stride: o.stride,
                                           swap: s.bigEndian && item > 1)
            })
        case .dict(let d):
            return .dict(Pickle.Dict(d.items.map { ($0.key, wrap($0.value)) }))
        default:
            return v
        }
    }
}
