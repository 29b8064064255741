import CZip
import TFCore

/// A zip archive opened read-only with libzip: entry names, sizes and whole-entry reads (each
/// checked against its CRC). Used for torch.save files and `.npz` archives.
public final class ZipArchive {
    public let path: String
    private let handle: OpaquePointer
    /// Entry names in archive order.
    public let names: [String]
    private let index: [String: UInt64]
    /// Bytes of the archive file (nil if unknown), bounding what an entry can store.
    private let fileSize: UInt64?

    /// True when `path` starts like a zip archive (local-file or end-of-central-directory magic).
    public static func looksLikeZip(_ path: String) -> Bool {
        guard let f = try? ReadableFile(path: path), f.size >= 4, let head = try? f.readBytes(at: 0, count: 4) else { return false }
        return head == [0x50, 0x4B, 0x03, 0x04] || head == [0x50, 0x4B, 0x05, 0x06]
    }

    public init(path: String) throws {
        self.path = path
        fileSize = (try? ReadableFile(path: path)).map { UInt64($0.size) }
        var code: Int32 = 0
        guard let h = zip_open(path, ZIP_RDONLY, &code) else {
            var err = zip_error_t()
            zip_error_init_with_code(&err, code)
            defer { zip_error_fini(&err) }
            throw TransFaceError.format("'\(path)': not a readable zip archive: \(String(cString: zip_error_strerror(&err)))")
        }
        handle = h
        let n = zip_get_num_entries(h, 0)
        var names: [String] = [], index: [String: UInt64] = [:]
        for i in 0..<UInt64(max(n, 0)) {
            guard let c = zip_get_name(h, i, 0) else { continue }
            let name = String(cString: c)
            names.append(name)
            if index[name] == nil { index[name] = i }
        }
        self.names = names
        self.index = index
    }

    deinit { zip_discard(handle) }

    public func contains(_ name: String) -> Bool { index[name] != nil }

    /// The uncompressed size of an entry.
    public func size(of name: String) throws -> UInt64 {
        guard let i = index[name] else { throw TransFaceError.notFound("'\(path)': no entry '\(name)'") }
        var st = zip_stat_t()
        zip_stat_init(&st)
        guard zip_stat_index(handle, i, 0, &st) == 0, st.valid & UInt64(ZIP_STAT_SIZE) != 0 else {
            throw TransFaceError.format("'\(path)': cannot read the size of entry '\(name)'")
        }
        return st.size
    }

    /// The first (up to) `count` bytes of an entry.
    public func readPrefix(_ name: String, count: Int) throws -> [UInt8] {
        guard let i = index[name] else { throw TransFaceError.notFound("'\(path)': no entry '\(name)'") }
        guard let f = zip_fopen_index(handle, i, 0) else {
            throw TransFaceError.format("'\(path)': cannot open entry '\(name)': \(String(cString: zip_strerror(handle)))")
        }
        defer { zip_fclose(f) }
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let got = out.withUnsafeMutableBytes { zip_fread(f, $0.baseAddress! + done, UInt64(count - done)) }
            guard got >= 0 else { throw TransFaceError.format("'\(path)': entry '\(name)' is damaged: \(String(cString: zip_file_strerror(f)))") }
            if got == 0 { break }
            done += Int(got)
        }
        return Array(out[0..<done])
    }

    /// Refuses, before anything is allocated, an entry claiming more bytes than its stored data
    /// can hold: a damaged size field would otherwise cost an allocation of up to `limit`.
    /// Deflate expands at most 1032:1; stored entries (torch.save's) not at all.
    private func checkPlausibleSize(_ name: String, _ size: UInt64) throws {
        var st = zip_stat_t()
        zip_stat_init(&st)
        let need = UInt64(ZIP_STAT_COMP_SIZE) | UInt64(ZIP_STAT_COMP_METHOD)
        guard zip_stat_index(handle, index[name]!, 0, &st) == 0, st.valid & need == need else { return }
        if let fileSize, st.comp_size > fileSize {
            throw TransFaceError.format("'\(path)': entry '\(name)' is damaged: it claims \(st.comp_size) stored bytes in a file of \(fileSize)")
        }
        let bound = st.comp_method == UInt16(ZIP_CM_STORE) ? st.comp_size : st.comp_size.multipliedReportingOverflow(by: 1032).partialValue + 64
        guard size <= bound else {
            throw TransFaceError.format("'\(path)': entry '\(name)' is damaged: it claims \(size) bytes from \(st.comp_size) stored")
        }
    }

    /// An entry's bytes (at most `limit`; the archive's CRC is checked by libzip on reading to the end).
    public func read(_ name: String, limit: UInt64 = 1 << 34) throws -> [UInt8] {
        let size = try self.size(of: name)
        guard size <= limit, size <= UInt64(Int.max) else { throw TransFaceError.invalidArgument("'\(path)': entry '\(name)' of \(size) bytes is too large") }
        try checkPlausibleSize(name, size)
        guard let f = zip_fopen_index(handle, index[name]!, 0) else {
            throw TransFaceError.format("'\(path)': cannot open entry '\(name)': \(String(cString: zip_strerror(handle)))")
        }
        defer { zip_fclose(f) }
        var out = [UInt8](repeating: 0, count: Int(size))
        var done = 0
        while done < out.count {
            let got = out.withUnsafeMutableBytes { zip_fread(f, $0.baseAddress! + done, UInt64($0.count - done)) }
            guard got > 0 else {
                throw TransFaceError.format("'\(path)': entry '\(name)' is damaged: \(got < 0 ? String(cString: zip_file_strerror(f)) : "ends early")")
            }
            done += Int(got)
        }
        var extra: UInt8 = 0
        let tail = zip_fread(f, &extra, 1)  // reaching the end makes libzip check the CRC
        guard tail == 0 else { throw TransFaceError.format("'\(path)': entry '\(name)' is damaged (CRC or size mismatch)") }
        return out
    }
}
