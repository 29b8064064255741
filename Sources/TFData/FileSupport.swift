import TFCore

#if canImport(Glibc)
import Glibc
#endif

/// Small file-system helpers of the dataset readers (Glibc only: the library links no Foundation).
public enum DataFiles {
    /// The whole file as bytes, refusing files larger than `limit` bytes.
    public static func readAll(_ path: String, limit: UInt64 = 1 << 34) throws -> [UInt8] {
        let file = try ReadableFile(path: path)
        guard file.size <= limit else {
            throw TransFaceError.format("'\(path)' is \(file.size) bytes, more than the \(limit) allowed")
        }
        return try file.readBytes(at: 0, count: Int(file.size))
    }

    /// The file as UTF-8 text (invalid sequences replaced).
    public static func readText(_ path: String, limit: UInt64 = 1 << 31) throws -> String {
        String(decoding: try readAll(path, limit: limit), as: UTF8.self)
    }

    /// Lines of a text, without their "\n" / "\r\n" endings; a final empty line is dropped.
    public static func lines(_ text: String) -> [Substring] {
        // "\r\n" is one Character in Swift: split on both forms
        var lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
        if lines.last?.isEmpty == true { lines.removeLast() }
        return lines.map { $0.hasSuffix("\r") ? $0.dropLast() : $0 }
    }

    /// Splits a line on tabs (or runs of blanks when it holds no tab).
    public static func fields(_ line: Substring) -> [Substring] {
        if line.contains("\t") { return line.split(separator: "\t", omittingEmptySubsequences: false).map(trim) }
        return line.split(whereSeparator: { $0 == " " }).map(trim)
    }

    public static func trim(_ s: Substring) -> Substring {
        var s = s
        while let f = s.first, f == " " || f == "\r" || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\r" || l == "\t" { s = s.dropLast() }
        return s
    }

    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    public static func isFile(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }

    /// Names in a folder (no "." / ".."), sorted by their UTF-8 bytes.
    public static func list(_ folder: String) throws -> [String] {
        guard let dir = opendir(folder) else {
            throw TransFaceError.io("cannot list '\(folder)': \(String(cString: strerror(errno)))")
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw -> String in
                let bytes = raw.bindMemory(to: UInt8.self)
                let end = bytes.firstIndex(of: 0) ?? bytes.count
                return String(decoding: UnsafeBufferPointer(rebasing: bytes[..<end]), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    /// Creates a folder (and its parents) if missing.
    public static func makeDirectories(_ path: String) throws {
        if isDirectory(path) { return }
        var prefix = path.hasPrefix("/") ? "/" : ""
        for part in path.split(separator: "/") {
            prefix += part
            if !isDirectory(prefix) && mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                throw TransFaceError.io("cannot create folder '\(prefix)': \(String(cString: strerror(errno)))")
            }
            prefix += "/"
        }
    }

    /// The folder part of a path ("." when there is none).
    public static func folder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let f = String(path[..<slash])
        return f.isEmpty ? "/" : f
    }

    /// `root/relative` for a path read from a dataset file. Such paths must stay under the
    /// dataset root: absolute paths, `..` components, empty paths and NUL bytes are refused,
    /// so a list, pairs or RecordIO file can never name a file outside its root.
    public static func resolve(_ relative: Substring, under root: String, what: String) throws -> String {
        guard !relative.isEmpty else { throw TransFaceError.format("\(what): empty path") }
        guard !relative.hasPrefix("/") else {
            throw TransFaceError.format("\(what): absolute path '\(relative)' is not allowed (paths are relative to the dataset root)")
        }
        guard !relative.utf8.contains(0) else { throw TransFaceError.format("\(what): path contains a NUL byte") }
        for component in relative.split(separator: "/") where component == ".." {
            throw TransFaceError.format("\(what): path '\(relative)' leaves the dataset root ('..')")
        }
        if root.isEmpty || root == "." { return String(relative) }
        return root.hasSuffix("/") ? root + relative : root + "/" + relative
    }
}

/// A buffered writer on top of `AtomicFileWriter` (the file appears only on `commit`).
final class BufferedAtomicWriter {
    let writer: AtomicFileWriter
    private var buffer: [UInt8] = []
    private(set) var offset: UInt64 = 0

    init(path: String) throws {
        writer = try AtomicFileWriter(path: path)
        buffer.reserveCapacity(1 << 20)
    }

    func write<C: Collection>(_ bytes: C) throws where C.Element == UInt8 {
        buffer.append(contentsOf: bytes)
        offset += UInt64(bytes.count)
        if buffer.count >= 1 << 20 { try flush() }
    }

    func write(_ s: String) throws { try write(Array(s.utf8)) }

    func flush() throws {
        if buffer.isEmpty { return }
        try writer.write(buffer)
        buffer.removeAll(keepingCapacity: true)
    }

    func commit() throws {
        try flush()
        try writer.commit()
    }

    func abandon() { writer.abandon() }
}

/// Little-endian loads and stores on byte arrays.
@inline(__always) func loadLE32(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
    UInt32(littleEndian: b.loadUnaligned(fromByteOffset: at, as: UInt32.self))
}

@inline(__always) func loadLE64(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt64 {
    UInt64(littleEndian: b.loadUnaligned(fromByteOffset: at, as: UInt64.self))
}

@inline(__always) func appendLE32(_ out: inout [UInt8], _ v: UInt32) {
    withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
}

@inline(__always) func appendLE64(_ out: inout [UInt8], _ v: UInt64) {
    withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
}
