import TFCore

/// MXNet / dmlc-core RecordIO, as InsightFace's `train.rec` + `train.idx` use it
/// (FORMATS.md §1). No MXNet involved: this is the byte format itself.
///
/// A physical record is `magic (u32) | lrecord (u32) | payload | zero padding to 4 bytes`, with
/// `lrecord = cflag << 29 | length`. A payload holding the magic word at a 4-byte-aligned offset is
/// split there into parts (cflag 1 first, 2 middle, 3 last; 0 for an unsplit record) and the
/// reader puts the magic word back between the parts, exactly as dmlc-core's
/// `RecordIOWriter::WriteRecord` / `RecordIOReader::NextRecord` do.
public enum RecordIO {
    public static let magic: UInt32 = 0xCED7_230A
    /// Largest logical record dmlc-core writes (`size < 1 << 29`).
    public static let maxRecordLength = (1 << 29) - 1

    /// Appends the physical encoding of one logical record to `out`.
    public static func encode<C: RandomAccessCollection>(_ payload: C, into out: inout [UInt8]) throws
    where C.Element == UInt8, C.Index == Int {
        guard payload.count <= maxRecordLength else {
            throw TransFaceError.invalidArgument("RecordIO record of \(payload.count) bytes: records must be smaller than 2^29 bytes")
        }
        let start = payload.startIndex
        let length = payload.count
        let lowerAlign = length / 4 * 4
        var dptr = 0
        var i = 0
        let m0 = UInt8(magic & 0xFF), m1 = UInt8((magic >> 8) & 0xFF), m2 = UInt8((magic >> 16) & 0xFF), m3 = UInt8(magic >> 24)
        while i < lowerAlign {
            if payload[start + i] == m0 && payload[start + i + 1] == m1 && payload[start + i + 2] == m2 && payload[start + i + 3] == m3 {
                appendLE32(&out, magic)
                appendLE32(&out, (dptr == 0 ? 1 : 2) << 29 | UInt32(i - dptr))
                out.append(contentsOf: payload[(start + dptr)..<(start + i)])
                dptr = i + 4
            }
            i += 4
        }
        appendLE32(&out, magic)
        appendLE32(&out, (dptr != 0 ? 3 : 0) << 29 | UInt32(length - dptr))
        out.append(contentsOf: payload[(start + dptr)..<(start + length)])
        let pad = (4 - length % 4) % 4
        if pad > 0 { out.append(contentsOf: repeatElement(0, count: pad)) }
    }

    public static func encode(_ payload: [UInt8]) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(payload.count + 16)
        try encode(payload, into: &out)
        return out
    }

    /// Reads the logical record whose first part starts at `offset`; returns its payload and the
    /// offset just past it. Every length is checked against the file, so a corrupt file throws.
    public static func readRecord(_ file: ReadableFile, at offset: UInt64) throws -> (payload: [UInt8], next: UInt64) {
        var payload: [UInt8] = []
        var position = offset
        var part = 0
        while true {
            guard position <= file.size, file.size - position >= 8 else {
                throw TransFaceError.format("'\(file.path)': record at offset \(offset) is truncated (part \(part) header at \(position), file has \(file.size) bytes)")
            }
            var header = (UInt32(0), UInt32(0))
            try withUnsafeMutableBytes(of: &header) { try file.read(into: $0, at: position) }
            let m = UInt32(littleEndian: header.0), lrec = UInt32(littleEndian: header.1)
            guard m == magic else {
                throw TransFaceError.format("'\(file.path)': no RecordIO magic at offset \(position) (found 0x\(String(m, radix: 16)), record at \(offset))")
            }
            let cflag = lrec >> 29, length = Int(lrec & ((1 << 29) - 1))
            let expectFirst = part == 0
            guard expectFirst ? (cflag == 0 || cflag == 1) : (cflag == 2 || cflag == 3) else {
                throw TransFaceError.format("'\(file.path)': record at offset \(offset): part \(part) has continuation flag \(cflag)")
            }
            let padded = UInt64((length + 3) / 4 * 4)
            guard file.size - position - 8 >= padded else {
                throw TransFaceError.format("'\(file.path)': record at offset \(offset) is truncated (\(length) payload bytes at \(position + 8), file has \(file.size) bytes)")
            }
            if length > 0 {
                let before = payload.count
                payload.append(contentsOf: repeatElement(0, count: length))
                try payload.withUnsafeMutableBytes { raw in
                    try file.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[before...]), at: position + 8)
                }
            }
            position += 8 + padded
            if cflag == 0 || cflag == 3 { break }
            appendLE32(&payload, magic)
            part += 1
        }
        return (payload, position)
    }

    /// Offsets of every record of a `.rec` file by scanning it (for files without `.idx`).
    public static func scanOffsets(_ file: ReadableFile) throws -> [UInt64] {
        var offsets: [UInt64] = []
        var position: UInt64 = 0
        while position < file.size {
            offsets.append(position)
            position = try skipRecord(file, at: position)
        }
        return offsets
    }

    private static func skipRecord(_ file: ReadableFile, at offset: UInt64) throws -> UInt64 {
        var position = offset
        while true {
            guard file.size - position >= 8 else {
                throw TransFaceError.format("'\(file.path)': record at offset \(offset) is truncated")
            }
            var header = (UInt32(0), UInt32(0))
            try withUnsafeMutableBytes(of: &header) { try file.read(into: $0, at: position) }
            guard UInt32(littleEndian: header.0) == magic else {
                throw TransFaceError.format("'\(file.path)': no RecordIO magic at offset \(position)")
            }
            let lrec = UInt32(littleEndian: header.1)
            let padded = UInt64(((Int(lrec & ((1 << 29) - 1))) + 3) / 4 * 4)
            guard file.size - position - 8 >= padded else {
                throw TransFaceError.format("'\(file.path)': record at offset \(offset) is truncated")
            }
            position += 8 + padded
            let cflag = lrec >> 29
            if cflag == 0 || cflag == 3 { return position }
        }
    }
}

/// MXNet's `IRHeader` (`struct.pack('IfQQ')`, 24 bytes) and the optional float labels after it.
public struct IRHeader: Equatable {
    /// 0: the single label is `label`; N > 0: N float32 labels follow the header.
    public var flag: UInt32
    public var label: Float
    public var id: UInt64
    public var id2: UInt64
    /// The `flag` labels when `flag > 0`, else empty.
    public var labels: [Float]

    public static let size = 24

    public init(label: Float, id: UInt64, id2: UInt64 = 0) {
        flag = 0; self.label = label; self.id = id; self.id2 = id2; labels = []
    }

    /// A header with several float labels (as `mxnet.recordio.pack` writes for array labels:
    /// flag = count, label = 0).
    public init(labels: [Float], id: UInt64, id2: UInt64 = 0) {
        flag = UInt32(labels.count); label = 0; self.id = id; self.id2 = id2; self.labels = labels
    }

    /// The class of an image record: `label`, or `labels[0]` when the record has several
    /// (arcface_torch's `MXFaceDataset`), truncated to an integer as `torch.long` does.
    public func classLabel() throws -> Int32 {
        let value = flag > 0 ? labels[0] : label
        guard value.isFinite, value >= -2_147_483_648, value < 2_147_483_648 else {
            throw TransFaceError.format("record \(id): label \(value) is not a usable class id")
        }
        return Int32(value.rounded(.towardZero))
    }

    /// `mxnet.recordio.pack(header, image)`.
    public func pack<C: Collection>(image: C) -> [UInt8] where C.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(IRHeader.size + labels.count * 4 + image.count)
        appendLE32(&out, flag > 0 ? UInt32(labels.count) : 0)
        appendLE32(&out, (flag > 0 ? Float(0) : label).bitPattern)
        appendLE64(&out, id)
        appendLE64(&out, id2)
        if flag > 0 { for l in labels { appendLE32(&out, l.bitPattern) } }
        out.append(contentsOf: image)
        return out
    }

    /// `mxnet.recordio.unpack(payload)`: the header and where the image bytes start.
    public static func unpack(_ payload: [UInt8], what: @autoclosure () -> String = "record") throws -> (header: IRHeader, imageStart: Int) {
        guard payload.count >= size else {
            throw TransFaceError.format("\(what()): payload of \(payload.count) bytes is shorter than the 24-byte IRHeader")
        }
        return try payload.withUnsafeBytes { raw in
            var h = IRHeader(label: Float(bitPattern: loadLE32(raw, 4)), id: loadLE64(raw, 8), id2: loadLE64(raw, 16))
            h.flag = loadLE32(raw, 0)
            var start = size
            if h.flag > 0 {
                let need = UInt64(h.flag) * 4
                guard UInt64(payload.count - size) >= need else {
                    throw TransFaceError.format("\(what()): IRHeader announces \(h.flag) labels, the payload holds \(payload.count - size) bytes after the header")
                }
                h.labels = (0..<Int(h.flag)).map { Float(bitPattern: loadLE32(raw, size + 4 * $0)) }
                start += Int(need)
            }
            return (h, start)
        }
    }
}

/// `train.idx`: one `key<TAB>offset` line per record (mxnet `MXIndexedRecordIO`).
public struct RecordIOIndex {
    public private(set) var keys: [Int] = []
    public private(set) var offsets: [UInt64] = []
    private var positionOfKey: [Int: Int] = [:]

    public init() {}

    /// Parses an index, checking every offset against the size of the `.rec` file.
    public init(text: String, recordFileSize: UInt64, path: String = "train.idx") throws {
        for (n, line) in DataFiles.lines(text).enumerated() {
            let f = DataFiles.fields(line)
            if f.isEmpty || (f.count == 1 && f[0].isEmpty) { continue }
            guard f.count == 2, let key = Int(f[0]), let offset = UInt64(f[1]) else {
                throw TransFaceError.format("'\(path)' line \(n + 1): expected 'key<TAB>offset', got '\(line.prefix(80))'")
            }
            guard offset < recordFileSize else {
                throw TransFaceError.format("'\(path)' line \(n + 1): offset \(offset) is past the end of the .rec file (\(recordFileSize) bytes)")
            }
            guard positionOfKey[key] == nil else {
                throw TransFaceError.format("'\(path)' line \(n + 1): key \(key) appears twice")
            }
            try append(key: key, offset: offset)
        }
    }

    public mutating func append(key: Int, offset: UInt64) throws {
        guard positionOfKey[key] == nil else { throw TransFaceError.invalidArgument("RecordIO key \(key) written twice") }
        positionOfKey[key] = keys.count
        keys.append(key)
        offsets.append(offset)
    }

    public var count: Int { keys.count }

    public func offset(ofKey key: Int) -> UInt64? { positionOfKey[key].map { offsets[$0] } }

    /// The file text, `"%d\t%d\n"` per record in write order.
    public var text: String {
        var s = ""
        for (k, o) in zip(keys, offsets) { s += "\(k)\t\(o)\n" }
        return s
    }
}

/// An indexed RecordIO file pair: random access to logical records by key. Thread-safe for
/// reading (positioned reads on one descriptor).
public final class IndexedRecordIO {
    public let recordPath: String
    public let index: RecordIOIndex
    let file: ReadableFile

    /// Opens `train.rec` and its `train.idx`; without an index file (`indexPath` nil and no
    /// `.idx` beside the `.rec`), the file is scanned and records get keys 0, 1, 2, ...
    public init(recordPath: String, indexPath: String? = nil) throws {
        self.recordPath = recordPath
        file = try ReadableFile(path: recordPath)
        let idx = indexPath ?? IndexedRecordIO.defaultIndexPath(recordPath)
        if indexPath != nil || DataFiles.isFile(idx) {
            index = try RecordIOIndex(text: try DataFiles.readText(idx), recordFileSize: file.size, path: idx)
        } else {
            var ix = RecordIOIndex()
            for (k, o) in try RecordIO.scanOffsets(file).enumerated() { try ix.append(key: k, offset: o) }
            index = ix
        }
    }

    static func defaultIndexPath(_ rec: String) -> String {
        (rec.hasSuffix(".rec") ? String(rec.dropLast(4)) : rec) + ".idx"
    }

    public var count: Int { index.count }

    /// The payload of the record with this key (`read_idx`).
    public func read(key: Int) throws -> [UInt8] {
        guard let offset = index.offset(ofKey: key) else {
            throw TransFaceError.notFound("'\(recordPath)': no record with key \(key) in the index")
        }
        return try RecordIO.readRecord(file, at: offset).payload
    }

    /// The payload of the record at this position of the index.
    public func read(position: Int) throws -> [UInt8] {
        guard position >= 0 && position < index.count else {
            throw TransFaceError.invalidArgument("record position \(position) is outside 0..<\(index.count)")
        }
        return try RecordIO.readRecord(file, at: index.offsets[position]).payload
    }
}

/// Writes `train.rec` + `train.idx` (both appear atomically on `finish`).
public final class RecordIOWriter {
    public let recordPath: String
    public let indexPath: String
    private let rec: BufferedAtomicWriter
    private let idx: BufferedAtomicWriter
    public private(set) var index = RecordIOIndex()
    private var scratch: [UInt8] = []
    private var finished = false

    public init(recordPath: String, indexPath: String? = nil) throws {
        self.recordPath = recordPath
        self.indexPath = indexPath ?? IndexedRecordIO.defaultIndexPath(recordPath)
        rec = try BufferedAtomicWriter(path: recordPath)
        idx = try BufferedAtomicWriter(path: self.indexPath)
    }

    deinit { if !finished { rec.abandon(); idx.abandon() } }

    public var count: Int { index.count }

    /// `write_idx(key, payload)`.
    public func write(key: Int, payload: [UInt8]) throws {
        guard !finished else { throw TransFaceError(.misuse, "RecordIO writer for '\(recordPath)' is finished") }
        let offset = rec.offset
        try index.append(key: key, offset: offset)
        scratch.removeAll(keepingCapacity: true)
        try RecordIO.encode(payload, into: &scratch)
        try rec.write(scratch)
        try idx.write("\(key)\t\(offset)\n")
    }

    /// Writes an image record: `pack(IRHeader(0, label, id, 0), image)`.
    public func writeImage(key: Int, label: Float, id: UInt64, image: [UInt8]) throws {
        try write(key: key, payload: IRHeader(label: label, id: id).pack(image: image))
    }

    public func finish() throws {
        guard !finished else { return }
        try rec.commit()
        try idx.commit()
        finished = true
    }

    public func abandon() {
        guard !finished else { return }
        finished = true
        rec.abandon(); idx.abandon()
    }
}

/// The InsightFace `property` file: `num_classes,height,width` then the image count.
public struct DatasetProperty: Equatable {
    public var numClasses: Int
    public var width: Int
    public var height: Int
    public var imageCount: Int?

    public init(numClasses: Int, width: Int = 112, height: Int = 112, imageCount: Int? = nil) {
        self.numClasses = numClasses; self.width = width; self.height = height; self.imageCount = imageCount
    }

    public init(text: String, path: String = "property") throws {
        let lines = DataFiles.lines(text).map { DataFiles.trim($0) }.filter { !$0.isEmpty }
        guard let first = lines.first else { throw TransFaceError.format("'\(path)' is empty") }
        let f = first.split(separator: ",").map { DataFiles.trim($0) }
        guard f.count >= 3, let c = Int(f[0]), let h = Int(f[1]), let w = Int(f[2]), c >= 0, h >= 0, w >= 0 else {
            throw TransFaceError.format("'\(path)': first line must be 'num_classes,height,width', got '\(first.prefix(80))'")
        }
        numClasses = c; height = h; width = w
        imageCount = lines.count > 1 ? Int(lines[1]) : nil
    }

    /// What RecBuilder writes: `"%d,%d,%d\n" % (classes, size[0], size[1])` then `"%d\n" % count`.
    public var text: String {
        "\(numClasses),\(height),\(width)\n" + (imageCount.map { "\($0)\n" } ?? "")
    }
}
