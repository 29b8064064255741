import TFCore
import TFData

/// torch.save's legacy format (torch < 1.6, `_use_new_zipfile_serialization=False`; torch's
/// `serialization._legacy_load`), read without torch: five pickles back to back — the magic
/// number 0x1950a86a20f9469cfc6c, the protocol version 1001, `sys_info` (a dict), the object
/// (storages are persistent ids `('storage', torch.XStorage, key, location, numel, view)`) and
/// the list of storage keys — then, for each key in that order, the storage as an int64
/// little-endian element count and the raw little-endian elements. The object is read with
/// `TorchFile`'s allowlist; every count and offset is checked against the file before anything
/// is allocated, and every byte of the file must belong to a pickle or a storage.
public enum TorchLegacyFile {
    /// `MAGIC_NUMBER` as pickle's LONG1 stores it (10 bytes, little-endian).
    static let magic: [UInt8] = [0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]
    static let protocolVersion: Int64 = 1001
    /// The pickles are read from a window of the file that grows up to this size.
    static let maxPickleBytes: UInt64 = 1 << 30

    /// Random access to the bytes of a file or of a zip entry held in memory.
    struct Source {
        let name: String
        let size: UInt64
        let read: (_ offset: UInt64, _ count: Int) throws -> [UInt8]
        func bad(_ message: String) -> TransFaceError { .format("'\(name)': \(message)") }
    }

    /// The object of a legacy file in memory (a member of a wheel), named `name` in errors.
    public static func load(bytes: [UInt8], name: String) throws -> Pickle.Value {
        try load(Source(name: name, size: UInt64(bytes.count)) { offset, count in
            guard offset <= UInt64(bytes.count), count <= bytes.count - Int(offset) else {
                throw TransFaceError.format("'\(name)': \(count) bytes at offset \(offset) are past the end (\(bytes.count) bytes)")
            }
            return Array(bytes[Int(offset)..<(Int(offset) + count)])
        })
    }

    static func load(_ file: ReadableFile) throws -> Pickle.Value {
        try load(Source(name: file.path, size: file.size) { try file.readBytes(at: $0, count: $1) })
    }

    /// Where each storage's elements start in the file, filled in once the pickles are read.
    final class Offsets { var byKey: [String: UInt64] = [:] }

    /// The pickles' content: the object, the storages it uses and the listed keys.
    struct Pickles {
        var root: Pickle.Value
        var storages: [String: (dtype: String, numel: Int)]
        var keys: [String]
        var end: UInt64
    }

    static func load(_ src: Source) throws -> Pickle.Value {
        let offsets = Offsets()
        // the pickles are small: read a window, and a larger one only when they do not fit
        var window = min(src.size, 1 << 20)
        var pickles: Pickles
        while true {
            do {
                pickles = try readPickles(try src.read(0, Int(window)), src, offsets)
                break
            } catch let e as TransFaceError {
                let most = min(src.size, maxPickleBytes)
                guard window < most, Pickle.isTruncation(e) else { throw e }
                window = min(window * 16, most)
            }
        }
        var at = pickles.end, listed = Set<String>()
        for key in pickles.keys {
            guard listed.insert(key).inserted else { throw src.bad("storage \(key) is listed twice") }
            guard let s = pickles.storages[key] else { throw src.bad("storage \(key) is listed but no tensor uses it") }
            guard src.size - at >= 8 else {
                throw src.bad("truncated: the element count of storage \(key) would be at offset \(at), the file has \(src.size) bytes")
            }
            let count = try src.read(at, 8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            guard count == UInt64(s.numel) else { throw src.bad("storage \(key) at offset \(at) holds \(Int64(bitPattern: count)) elements, the pickle says \(s.numel)") }
            let bytes = UInt64(s.numel * SourceTensor.itemSize(s.dtype))
            guard src.size - at - 8 >= bytes else {
                throw src.bad("truncated: storage \(key) needs \(bytes) bytes at offset \(at + 8), the file has \(src.size)")
            }
            offsets.byKey[key] = at + 8
            at += 8 + bytes
        }
        if let missing = pickles.storages.keys.sorted().first(where: { !listed.contains($0) }) {
            throw src.bad("storage \(missing) is used but not in the list of storages")
        }
        guard at == src.size else { throw src.bad("\(src.size - at) unexpected bytes after the last storage (offset \(at))") }
        return TorchFile.wrap(pickles.root)
    }

    /// Parses the five pickles at the start of `bytes`.
    static func readPickles(_ bytes: [UInt8], _ src: Source, _ offsets: Offsets) throws -> Pickles {
        let what = "'\(src.name)' (legacy torch.save)"
        let (version, p1) = try Pickle.load(bytes, from: try magicEnd(bytes, src), what: "\(what) protocol version")
        guard case .int(protocolVersion) = version else {
            throw src.bad("legacy torch.save protocol version is \(version.kind == "int" ? "\(version)" : "a \(version.kind)"), not \(protocolVersion)")
        }
        let (info, p2) = try Pickle.load(bytes, from: p1, what: "\(what) sys_info", extension: Pickle.Extension(dicts: true))
        guard case .dict = info else { throw src.bad("legacy torch.save sys_info is a \(info.kind), not a dict") }
        var storages: [String: (dtype: String, numel: Int)] = [:]
        var made: [String: (storage: TorchFile.Storage, root: String, base: Int)] = [:]
        let ext = Pickle.Extension(dicts: true, persistentLoad: { pid in
            let ref = try TorchFile.storageReference(pid, legacy: true)
            if let s = storages[ref.key] {
                guard s.dtype == ref.dtype, s.numel == ref.numel else {
                    throw TransFaceError.format("storage \(ref.key) is used with two element types or sizes")
                }
            } else {
                storages[ref.key] = (ref.dtype, ref.numel)
            }
            let key = ref.view?.key ?? ref.key, base = ref.view?.offset ?? 0
            if let m = made[key] {
                guard m.root == ref.key, m.base == base, m.storage.numel == (ref.view?.numel ?? ref.numel) else {
                    throw TransFaceError.format("storage view \(key) is used with two different extents")
                }
                return .object(m.storage)
            }
            let rootKey = ref.key, count = ref.numel * SourceTensor.itemSize(ref.dtype)
            let s = TorchFile.Storage(dtype: ref.dtype, numel: ref.view?.numel ?? ref.numel, base: base) {
                guard let at = offsets.byKey[rootKey] else { throw src.bad("storage \(rootKey) has no data") }
                return try src.read(at, count)
            }
            made[key] = (s, ref.key, base)
            return .object(s)
        }, call: { module, name, args in try TorchFile.call(module, name, args) })
        let (root, p3) = try Pickle.load(bytes, from: p2, what: "\(what) object", extension: ext)
        let (list, p4) = try Pickle.load(bytes, from: p3, what: "\(what) storage keys")
        guard case .list(let l) = list else { throw src.bad("legacy torch.save storage keys are a \(list.kind), not a list") }
        let keys = try l.items.map {
            guard let k = TorchFile.text($0) else { throw src.bad("a legacy torch.save storage key is a \($0.kind), not a str") }
            return k
        }
        return Pickles(root: root, storages: storages, keys: keys, end: UInt64(p4))
    }

    /// Checks the first pickle, the magic number (protocol 2 to 5, LONG1 of 10 bytes, STOP);
    /// returns where the next pickle starts.
    static func magicEnd(_ b: [UInt8], _ src: Source) throws -> Int {
        guard b.count >= 2, b[0] == 0x80, (2...5).contains(b[1]) else {
            throw src.bad("not a legacy torch.save file (it does not start with a pickle of protocol 2 to 5)")
        }
        var p = 2
        if b[1] >= 4, b.count > p, b[p] == 0x95 { p += 9 }  // FRAME
        guard b.count >= p + 13 else { throw src.bad("truncated: a legacy torch.save file ends inside its magic number") }
        guard b[p] == 0x8A, b[p + 1] == 10, Array(b[(p + 2)..<(p + 12)]) == magic, b[p + 12] == 0x2E else {
            throw src.bad("not a legacy torch.save file (no magic number 0x1950a86a20f9469cfc6c at the start)")
        }
        return p + 13
    }
}
