import TFCore

/// Reads and writes model files: `[magic][version][header CRC][header length][protobuf header]
/// [zero pad to 64][tensor data]` (layout documented in include/transface.proto). Tensors are
/// stored back to back in layout order, so every byte of the file is covered by a check.
public enum ModelFile {
    public static let magic: [UInt8] = Array("TFMODEL".utf8) + [0]
    public static let formatVersion: UInt32 = 1
    public static let preambleSize = 24
    public static let maxHeaderBytes: UInt64 = 64 << 20
    static let chunkBytes = 1 << 20

    public struct LoadOptions {
        public var verifyChecksums = true
        /// Refuse files whose float32 weights would exceed this many bytes (0: no limit).
        public var maxWeightBytes: UInt64 = 0
        public init() {}
    }

    // MARK: writing

    /// Writes `model` atomically; tensors are stored as `dtype` (float32 unless testing).
    public static func write(_ model: TransFaceModel, to path: String, dtype: StoredDType = .f32) throws {
        var records: [TensorRecord] = []
        var offset: UInt64 = 0
        for e in model.layout.entries {
            var crc: UInt32 = 0
            forEachStoredChunk(model, e, dtype) { crc = crc32($0, previous: crc) }
            let length = UInt64(e.count * dtype.size)
            records.append(TensorRecord(name: e.name, dtype: dtype, dims: e.shape, offset: offset, length: length, crc32: crc))
            offset += length
        }
        let header = ModelHeader(formatVersion: formatVersion, producer: "libtransface \(LibraryVersion.string)",
                                 config: model.config, preprocess: model.preprocess,
                                 metadata: model.metadata.map { .init(key: $0.key, value: $0.value) }, tensors: records)
        let headerBytes = try header.encode()
        var preamble = magic
        appendLE(&preamble, formatVersion)
        appendLE(&preamble, headerBytes.withUnsafeBytes { crc32($0) })
        appendLE(&preamble, UInt64(headerBytes.count))
        let padding = dataStart(headerLength: UInt64(headerBytes.count)) - UInt64(preambleSize + headerBytes.count)

        let writer = try AtomicFileWriter(path: path)
        try writer.write(preamble)
        try writer.write(headerBytes)
        try writer.write([UInt8](repeating: 0, count: Int(padding)))
        for e in model.layout.entries {
            var failure: Error?
            forEachStoredChunk(model, e, dtype) { chunk in
                if failure == nil { do { try writer.write(chunk) } catch { failure = error } }
            }
            if let failure { throw failure }
        }
        try writer.commit()
    }

    /// Calls `body` with the stored bytes of one tensor, in chunks.
    private static func forEachStoredChunk(_ model: TransFaceModel, _ e: TensorEntry, _ dtype: StoredDType,
                                           _ body: (UnsafeRawBufferPointer) -> Void) {
        let values = UnsafeBufferPointer(model.parameters.view(e.offset, e.count))
        if dtype == .f32 { body(UnsafeRawBufferPointer(values)); return }
        var halfs = [UInt16](repeating: 0, count: min(e.count, chunkBytes / 2))
        var start = 0
        while start < e.count {
            let n = min(halfs.count, e.count - start)
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

    /// Loads a model; every problem is a thrown error naming the file and what is wrong.
    public static func load(path: String, options: LoadOptions = LoadOptions()) throws -> TransFaceModel {
        let file = try ReadableFile(path: path)
        func bad(_ message: String) -> TransFaceError { .format("'\(path)': \(message)") }
        guard file.size > 0 else { throw bad("the file is empty") }
        guard file.size >= UInt64(preambleSize) else { throw bad("\(file.size) bytes is too short for a model file") }
        let pre = try file.readBytes(at: 0, count: preambleSize)
        guard Array(pre[0..<8]) == magic else { throw bad("not a libtransface model file (bad magic)") }
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
        if options.verifyChecksums {
            let actual = headerBytes.withUnsafeBytes { crc32($0) }
            guard actual == headerCRC else { throw bad("header checksum mismatch (corrupt file)") }
        }
        let header = try headerBytes.withUnsafeBytes { try ModelHeader.decode($0) }
        guard header.formatVersion == version else {
            throw bad("header says format version \(header.formatVersion), preamble \(version)")
        }
        do {
            try header.config.validate()
            try header.preprocess.validate(for: header.config)
        } catch let e as TransFaceError { throw bad(e.message) }

        let layout = ParameterLayout(config: header.config)
        let records = try matchRecords(header.tensors, layout, bad)
        let start = dataStart(headerLength: headerLength)
        let dataLength = header.tensors.reduce(UInt64(0)) { $0 + $1.length }
        guard file.size >= start + dataLength else {
            throw bad("truncated: \(start + dataLength) bytes expected, the file has \(file.size)")
        }
        guard file.size == start + dataLength else {
            throw bad("\(file.size - start - dataLength) unexpected bytes after the tensor data")
        }
        let padding = try file.readBytes(at: UInt64(preambleSize) + headerLength, count: Int(start - UInt64(preambleSize) - headerLength))
        guard padding.allSatisfy({ $0 == 0 }) else { throw bad("non-zero padding after the header (corrupt file)") }
        if options.maxWeightBytes > 0 && UInt64(layout.weightBytes) > options.maxWeightBytes {
            throw TransFaceError.invalidArgument("'\(path)': \(layout.weightBytes) bytes of weights exceed the limit of \(options.maxWeightBytes)")
        }

        let slab = try FloatSlab(count: layout.totalCount)
        for (entry, record) in records {
            let crc = try readTensor(file, record, into: slab.view(entry.offset, entry.count), dataStart: start)
            if options.verifyChecksums && crc != record.crc32 {
                throw bad("checksum mismatch in tensor '\(record.name)' (corrupt file)")
            }
        }
        do {
            return try TransFaceModel(config: header.config, preprocess: header.preprocess,
                                      metadata: header.metadata.map { ($0.key, $0.value) }, parameters: slab)
        } catch let e as TransFaceError { throw bad(e.message) }
    }

    /// Pairs every layout entry with its record; refuses missing, unknown, duplicated or
    /// mis-shaped tensors and records that do not tile the data section exactly.
    private static func matchRecords(_ tensors: [TensorRecord], _ layout: ParameterLayout,
                                      _ bad: (String) -> TransFaceError) throws -> [(TensorEntry, TensorRecord)] {
        var byName: [String: TensorRecord] = [:]
        for t in tensors {
            guard layout[t.name] != nil else { throw bad("unknown tensor '\(t.name)' for this architecture") }
            guard byName.updateValue(t, forKey: t.name) == nil else { throw bad("tensor '\(t.name)' appears twice") }
        }
        let missing = layout.entries.filter { byName[$0.name] == nil }.map(\.name)
        guard missing.isEmpty else {
            throw bad("missing tensor\(missing.count > 1 ? "s" : "") \(missing.prefix(5).joined(separator: ", "))\(missing.count > 5 ? ", ..." : "")")
        }
        var expectedOffset: UInt64 = 0
        for t in tensors.sorted(by: { $0.offset < $1.offset }) {
            let e = layout[t.name]!
            guard t.dims == e.shape else { throw bad("tensor '\(t.name)' has shape \(t.dims), expected \(e.shape)") }
            guard t.length == UInt64(e.count * t.dtype.size) else {
                throw bad("tensor '\(t.name)' has \(t.length) bytes, expected \(e.count * t.dtype.size)")
            }
            guard t.offset == expectedOffset else { throw bad("tensor '\(t.name)' is not where the data layout puts it") }
            expectedOffset += t.length
        }
        return layout.entries.map { ($0, byName[$0.name]!) }
    }

    /// Reads one tensor into `destination` (converting half precision), returning the CRC of its bytes.
    private static func readTensor(_ file: ReadableFile, _ r: TensorRecord, into destination: UnsafeMutableBufferPointer<Float>,
                                   dataStart: UInt64) throws -> UInt32 {
        let at = dataStart + r.offset
        if r.dtype == .f32 {
            let raw = UnsafeMutableRawBufferPointer(destination)
            try file.read(into: raw, at: at)
            #if _endian(big)
            for i in destination.indices { destination[i] = Float(bitPattern: UInt32(littleEndian: destination[i].bitPattern)) }
            #endif
            return crc32(UnsafeRawBufferPointer(raw))
        }
        var crc: UInt32 = 0
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
        return crc
    }
}

/// float16 / bfloat16 conversions (round to nearest even).
public enum HalfPrecision {
    public static func encode(_ v: Float, _ dtype: StoredDType) -> UInt16 {
        switch dtype {
        case .f16: return Float16(v).bitPattern
        case .bf16:
            if v.isNaN { return 0x7FC0 }
            let bits = v.bitPattern
            return UInt16(truncatingIfNeeded: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16)
        case .f32: fatalError("not a half type")
        }
    }

    public static func decode(_ h: UInt16, _ dtype: StoredDType) -> Float {
        dtype == .f16 ? Float(Float16(bitPattern: h)) : Float(bitPattern: UInt32(h) << 16)
    }
}
