#if canImport(Glibc)
import Glibc
#endif

private func errnoText() -> String { String(cString: strerror(errno)) }

/// A file opened for reading, with exact-length positioned reads. Closed on deinit.
public final class ReadableFile {
    public let path: String
    public let size: UInt64
    private let fd: Int32

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw TransFaceError.io("cannot open '\(path)': \(errnoText())") }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let msg = errnoText(); close(fd)
            throw TransFaceError.io("cannot stat '\(path)': \(msg)")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw TransFaceError.io("'\(path)' is not a regular file")
        }
        self.fd = fd
        self.size = UInt64(st.st_size)
    }

    deinit { close(fd) }

    /// Reads exactly `destination.count` bytes at `offset`, or throws naming what was missing.
    public func read(into destination: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        var done = 0
        while done < destination.count {
            let n = pread(fd, destination.baseAddress! + done, destination.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw TransFaceError.io("cannot read '\(path)': \(errnoText())")
            }
            if n == 0 {
                throw TransFaceError.format("'\(path)' is truncated: \(destination.count) bytes needed at offset \(offset), file has \(size)")
            }
            done += n
        }
    }

    /// Reads `count` bytes at `offset` into a new array.
    public func readBytes(at offset: UInt64, count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { try read(into: $0, at: offset) }
        return bytes
    }
}

/// Writes a file atomically: a temporary file beside the target is written, fsynced, renamed
/// over the target and the folder fsynced. On any error the temporary file is removed and the
/// previous target (if any) is untouched.
public final class AtomicFileWriter {
    public let path: String
    private let temporaryPath: String
    private var fd: Int32
    public private(set) var bytesWritten: UInt64 = 0

    public init(path: String) throws {
        guard !path.isEmpty else { throw TransFaceError.invalidArgument("empty output path") }
        self.path = path
        self.temporaryPath = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        fd = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw TransFaceError.io("cannot write '\(path)': cannot create its temporary file '\(temporaryPath)': \(errnoText())")
        }
    }

    deinit { abandon() }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                let msg = errnoText()
                abandon()
                throw TransFaceError.io("cannot write '\(path)': \(msg)")
            }
            done += n
        }
        bytesWritten += UInt64(bytes.count)
    }

    public func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

    /// Flushes to disk and moves the file into place.
    public func commit() throws {
        guard fd >= 0 else { throw TransFaceError(.misuse, "write of '\(path)' already finished") }
        if fsync(fd) != 0 {
            let msg = errnoText(); abandon()
            throw TransFaceError.io("cannot sync '\(path)': \(msg)")
        }
        close(fd)
        fd = -1
        if rename(temporaryPath, path) != 0 {
            let msg = errnoText()
            unlink(temporaryPath)
            throw TransFaceError.io("cannot move the new file to '\(path)': \(msg)")
        }
        let folder = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        let dfd = open(folder.isEmpty ? "/" : folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }

    /// Drops the temporary file (no-op after commit).
    public func abandon() {
        guard fd >= 0 else { return }
        close(fd)
        fd = -1
        unlink(temporaryPath)
    }
}
