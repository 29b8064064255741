import TFCore

/// The file container shared by model files and training checkpoints:
/// `[magic][version][header CRC][header length][protobuf header][zero pad to 64][tensor data]`
/// (include/transface.proto). Tensors are stored back to back, so every byte of a file is
/// covered by a check: magic, version, header CRC, zero padding, exact tiling, tensor CRCs.
public enum TensorContainer {
    public enum Kind: Sendable {
        case model, checkpoint
        public var magic: [UInt8] { Array((self == .model ? "TFMODEL" : "TFCKPT\0").utf8) + [0] }
        var name: String { self == .model ? "libtransface model file" : "libtransface checkpoint" }
    }

    public static let formatVersion: UInt32 = 1
    public static let preambleSize = 24
    public static let maxHeaderBytes: UInt64 = 64 << 20
    static let chunkBytes = 1 << 20

    /// A named float32 tensor to store.
    public struct Tensor {
        public let name: String
        public let shape: [Int]
        public let values: UnsafeBufferPointer<Float>
        public init(name: String, shape: [Int], values: UnsafeBufferPointer<Float>) {
            self.name = name; self.shape = shape; self.values = values
        }
    }

    // MARK: writing

    /// Writes the header (its `tensors` are filled in here) and `tensors` atomically, stored as
    /// `dtype`.
    public static func write(_ kind: Kind, header template: ModelHeader, tensors: [Tensor], to path: String,
                             dtype: StoredDType = .f32) throws {
        var header = template
        header.formatVersion = formatVersion
        header.tensors = []
        var offset: UInt64 = 0
        for t in tensors {
            var crc: UInt32 = 0
            forEachStoredChunk(t.values, dtype) { crc = crc32($0, previous: crc) }
            let length = UInt64(t.values.count * dtype.size)
            header.tensors.append(TensorRecord(name: t.name, dtype: dtype, dims: t.shape, offset: offset, length: length, crc32: crc))
            offset += length
        }
        let headerBytes = try header.encode()
        var preamble = kind.magic
        appendLE(&preamble, formatVersion)
        appendLE(&preamble, headerBytes.withUnsafeBytes { crc32($0) })
        appendLE(&preamble, UInt64(headerBytes.count))
        let padding = dataStart(headerLength: UInt64(headerBytes.count)) - UInt64(preambleSize + headerBytes.count)

        let writer = try AtomicFileWriter(path: path)
        try writer.write(preamble)
        try writer.write(headerBytes)
        try writer.write([UInt8](repeating: 0, count: Int(padding)))
        for t in tensors {
            var failure: Error?
            forEachStoredChunk(t.values, dtype) { chunk in
                if failure == nil { do { try writer.write(chunk) } catch { failure = error } }
            }
            if let failure { throw failure }
        }
        try writer.commit()
    }

    /// Calls `body` with the stored bytes of `values`, in chunks.
    private static func forEachStoredChunk(_ values: UnsafeBufferPointer<Float>, _ dtype: StoredDType,
                                           _ body: (UnsafeRawBufferPointer) -> Void) {
        if dtype == .f32 { body(UnsafeRawBufferPointer(values)); return }
        var halfs = [UInt16](repeating: 0, count: min(values.count, chunkBytes / 2))
        var start = 0
        while start < values.count {
            let n = min(halfs.count, values.count - start)
            for i in 0..<n { halfs[i] = HalfPrecision.encode(values[start + i], dtype) }
            halfs.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[0..<(n * 2)])) }
            start += n
        }
    }

    static func dataStart(headerLength: UInt64) -> UInt64 { (UInt64(preambleSize) + headerLength + 63) / 64 * 64 }

    private static func appendLE<T: FixedWidthInteger>(_ bytes: inout [UInt8], _ v: T) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }

    // MARK: reading

    /// An opened, structurally checked container: the header is decoded and the records tile
    /// the data section exactly; tensor bytes are read (and their CRCs checked) on demand.
    public struct Opened {
        public let path: String
        public let header: ModelHeader
        let file: ReadableFile
        let dataStart: UInt64

        /// Checks that each record's length fits its shape and that the records tile the data
        /// section exactly (called after the caller has checked the names and shapes).
        public func checkLayout() throws {
            var expectedOffset: UInt64 = 0
            for t in header.tensors.sorted(by: { $0.offset < $1.offset }) {
                guard t.dims.count <= 8, t.dims.allSatisfy({ $0 >= 0 }),
                      let count = try? checkedProduct(t.dims, what: t.name),
                      UInt64(count).multipliedReportingOverflow(by: UInt64(t.dtype.size)) == (t.length, false) else {
                    throw bad("tensor '\(t.name)' has \(t.length) bytes for shape \(t.dims)")
                }
                guard t.offset == expectedOffset else { throw bad("tensor '\(t.name)' is not where the data layout puts it") }
                let (next, overflow) = expectedOffset.addingReportingOverflow(t.length)
                guard !overflow, next <= file.size else { throw bad("truncated: tensor '\(t.name)' lies beyond the end of the file") }
                expectedOffset = next
            }
            guard file.size >= dataStart + expectedOffset else {
                throw bad("truncated: \(dataStart + expectedOffset) bytes expected, the file has \(file.size)")
            }
            guard file.size == dataStart + expectedOffset else {
                throw bad("\(file.size - dataStart - expectedOffset) unexpected bytes after the tensor data")
            }
        }

        /// Refuses a file of another kind: "'PATH' is a face detector, not an embedding model".
        public func require(_ kind: ModelKind) throws {
            guard header.kind == kind else {
                throw TransFaceError.format("'\(path)' is \(header.kind.described), not \(kind == .embedder ? "an embedding model" : "a detector")")
            }
        }

        /// The records by name, once they are exactly `expected` (names and shapes; `extra` names
        /// may be there too) and tile the data section (`checkLayout`); `of` names the set in errors.
        public func records(matching expected: [(name: String, shape: [Int])], extra: Set<String> = [],
                            of what: String) throws -> [String: TensorRecord] {
            let byName = try recordsByName()
            let known = Set(expected.map(\.name))
            for t in header.tensors where !known.contains(t.name) && !extra.contains(t.name) {
                throw bad("unknown tensor '\(t.name)' for \(what)")
            }
            let missing = expected.filter { byName[$0.name] == nil }.map(\.name)
            guard missing.isEmpty else {
                throw bad("missing tensor\(missing.count > 1 ? "s" : "") \(missing.prefix(5).joined(separator: ", "))\(missing.count > 5 ? ", ..." : "")")
            }
            for e in expected where byName[e.name]!.dims != e.shape {
                throw bad("tensor '\(e.name)' has shape \(byName[e.name]!.dims), expected \(e.shape)")
            }
            try checkLayout()
            return byName
        }

        /// A format error naming the file.
        public func bad(_ message: String) -> TransFaceError { .format("'\(path)': \(message)") }

        /// The records by name; refuses duplicates.
        public func recordsByName() throws -> [String: TensorRecord] {
            var byName: [String: TensorRecord] = [:]
            for t in header.tensors {
                guard byName.updateValue(t, forKey: t.name) == nil else { throw bad("tensor '\(t.name)' appears twice") }
            }
            return byName
        }

        /// Reads a tensor into `destination` (converting half precision), checking its CRC.
        public func read(_ r: TensorRecord, into destination: UnsafeMutableBufferPointer<Float>, verify: Bool) throws {
            guard destination.count * r.dtype.size == Int(r.length) else {
                throw bad("tensor '\(r.name)' has \(r.length) bytes, expected \(destination.count * r.dtype.size)")
            }
            let at = dataStart + r.offset
            var crc: UInt32 = 0
            if r.dtype == .f32 {
                let raw = UnsafeMutableRawBufferPointer(destination)
                try file.read(into: raw, at: at)
                crc = crc32(UnsafeRawBufferPointer(raw))
            } else {
                var halfs = [UInt16](repeating: 0, count: min(destination.count, chunkBytes / 2))
                var done = 0
                while done < destination.count {
                    let n = min(halfs.count, destination.count - done)
                    try halfs.withUnsafeMutableBytes { buf in
                        let part = UnsafeMutableRawBufferPointer(rebasing: buf[0..<(n * 2)])
                        try file.read(into: part, at: at + UInt64(done * 2))
                        crc = crc32(UnsafeRawBufferPointer(part), previous: crc)
                    }
                    for i in 0..<n { destination[done + i] = HalfPrecision.decode(UInt16(littleEndian: halfs[i]), r.dtype) }
                    done += n
                }
            }
            if verify && crc != r.crc32 { throw bad("checksum mismatch in tensor '\(r.name)' (corrupt file)") }
        }
    }

    /// Opens and checks everything but the tensor bytes.
    public static func open(_ kind: Kind, path: String, verifyChecksums: Bool = true) throws -> Opened {
        let file = try ReadableFile(path: path)
        func bad(_ message: String) -> TransFaceError { .format("'\(path)': \(message)") }
        guard file.size > 0 else { throw bad("the file is empty") }
        guard file.size >= UInt64(preambleSize) else { throw bad("\(file.size) bytes is too short for a \(kind.name)") }
        let pre = try file.readBytes(at: 0, count: preambleSize)
        guard Array(pre[0..<8]) == kind.magic else { throw bad("not a \(kind.name) (bad magic)") }
        func le<T: FixedWidthInteger>(_ at: Int, _: T.Type) -> T {
            pre[at..<(at + MemoryLayout<T>.size)].reversed().reduce(T(0)) { $0 << 8 | T($1) }
        }
        let version = le(8, UInt32.self), headerCRC = le(12, UInt32.self), headerLength = le(16, UInt64.self)
        guard version != 0 else { throw bad("format version 0 is invalid") }
        guard version <= formatVersion else {
            throw bad("file format version \(version) is newer than this library reads (\(formatVersion)); upgrade libtransface")
        }
        guard headerLength > 0, headerLength <= maxHeaderBytes else { throw bad("header length \(headerLength) is implausible") }
        guard UInt64(preambleSize) + headerLength <= file.size else {
            throw bad("truncated: the header needs \(headerLength) bytes, the file has \(file.size)")
        }
        let headerBytes = try file.readBytes(at: UInt64(preambleSize), count: Int(headerLength))
        if verifyChecksums {
            guard headerBytes.withUnsafeBytes({ crc32($0) }) == headerCRC else { throw bad("header checksum mismatch (corrupt file)") }
        }
        let header = try headerBytes.withUnsafeBytes { try ModelHeader.decode($0) }
        guard header.formatVersion == version else {
            throw bad("header says format version \(header.formatVersion), preamble \(version)")
        }
        let start = dataStart(headerLength: headerLength)
        guard start <= file.size else { throw bad("truncated: the data section would start at \(start), the file has \(file.size)") }
        let padding = try file.readBytes(at: UInt64(preambleSize) + headerLength, count: Int(start - UInt64(preambleSize) - headerLength))
        guard padding.allSatisfy({ $0 == 0 }) else { throw bad("non-zero padding after the header (corrupt file)") }
        return Opened(path: path, header: header, file: file, dataStart: start)
    }
}
