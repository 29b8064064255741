import TFCore
import TFData

/// Reads torch.save files (torch ≥ 1.6 zip format) without torch, safely: `<name>/data.pkl` is unpickled by the safe
/// reader of TFData (`Pickle`) with only `collections.OrderedDict`, `torch._utils._rebuild_tensor`
/// (`_v2`), `_rebuild_parameter` (`_with_state`) and the `torch.*Storage` types allowed; storages
/// are persistent ids `('storage', torch.FloatStorage, key, location, numel)` naming the record
/// `<name>/data/<key>`. Tensors come back as `SourceTensor`s read on demand; nothing is executed.
public enum TorchFile {
    static let storages: [String: String] = [
        "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16",
        "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
        "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool",
    ]

    /// A storage record of the archive.
    final class Storage {
        let record: String
        let dtype: String
        let numel: Int
        init(record: String, dtype: String, numel: Int) { self.record = record; self.dtype = dtype; self.numel = numel }
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

    /// The unpickled object: dicts stay `Pickle.Value.dict`, tensors are `.object(SourceTensor)`.
    public static func load(path: String) throws -> Pickle.Value {
        let archive: ZipArchive
        do { archive = try ZipArchive(path: path) } catch {
            let head = (try? ReadableFile(path: path).readBytes(at: 0, count: 1)) ?? []
            if head == [0x80] {
                throw TransFaceError.format("'\(path)': this is a legacy (pre-1.6, non-zip) torch.save file; only the zip format is read: re-save it with torch>=1.6")
            }
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
            guard case .tuple(let t) = pid, t.count == 5, case .string("storage") = t[0] else {
                throw TransFaceError.format("unsupported persistent id (a \(pid.kind))")
            }
            guard case .global("torch", let typeName) = t[1], let dtype = storages[typeName] else {
                throw TransFaceError.format("unsupported storage type \(t[1].kind)")
            }
            guard case .string(let key) = t[2], case .int(let numel64) = t[4], numel64 >= 0, numel64 < Int64(Int32.max) * 64 else {
                throw TransFaceError.format("bad storage reference")
            }
            let numel = Int(numel64)
            if let s = seen[key] {
                guard s.dtype == dtype else { throw TransFaceError.format("storage \(key) is used with two element types") }
                return .object(s)
            }
            let record = prefix + "data/" + key
            guard archive.contains(record) else { throw TransFaceError.format("storage record \(record) is missing from the archive") }
            let need = UInt64(numel * SourceTensor.itemSize(dtype))
            let size = try archive.size(of: record)
            guard size >= need else { throw TransFaceError.format("storage record \(record) holds \(size) bytes, \(need) expected") }
            let s = Storage(record: record, dtype: dtype, numel: numel)
            seen[key] = s
            return .object(s)
        }, call: { module, name, args in try call(module, name, args) })
        let bytes = try archive.read(pickles[0], limit: 1 << 30)
        let root = try Pickle.load(bytes, what: "'\(path)' \(pickles[0])", extension: ext)
        return wrap(root, archive: archive, bigEndian: bigEndian)
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
    static func wrap(_ v: Pickle.Value, archive: ZipArchive, bigEndian: Bool) -> Pickle.Value {
        switch v {
        case .object(let o as Tensor):
            return .object(SourceTensor(shape: o.shape, dtype: o.storage.dtype) {
                let item = SourceTensor.itemSize(o.storage.dtype)
                let raw = try archive.read(o.storage.record)
                return SourceTensor.gather(raw, itemSize: item, offset: o.offset, shape: o.shape, stride: o.stride, swap: bigEndian && item > 1)
            })
        case .dict(let d):
            return .dict(Pickle.Dict(d.items.map { ($0.key, wrap($0.value, archive: archive, bigEndian: bigEndian)) }))
        default:
            return v
        }
    }
}
