import TFCore
#if canImport(Glibc)
import Glibc
#endif

/// Appends records to a gallery file: each append is one positioned write at the end of the
/// file followed by `fdatasync`, so an append that returned survives kill -9 and power loss.
/// A failed write is cut off again (ftruncate) so that the file keeps ending on a record; if
/// even that fails the writer refuses further appends.
final class GalleryLogWriter {
    let path: String
    private var fd: Int32
    private(set) var end: UInt64
    private var broken: String?

    /// Opens `path` for appending at `end` (the end of its last intact record), cutting off a
    /// torn tail beyond it.
    init(path: String, end: UInt64, fileSize: UInt64) throws {
        self.path = path
        self.end = end
        fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw GalleryLogWriter.error("cannot open gallery '\(path)' for writing") }
        if fileSize != end {
            guard ftruncate(fd, off_t(end)) == 0, fdatasync(fd) == 0 else {
                let e = GalleryLogWriter.error("cannot cut the torn tail off gallery '\(path)'")
                Glibc.close(fd)
                throw e
            }
        }
    }

    deinit { close() }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    private static func error(_ what: String) -> TransFaceError {
        TransFaceError.io("\(what): \(String(cString: strerror(errno)))")
    }

    /// Writes `bytes` at the end and syncs them; on return they are durable.
    func append(_ bytes: [UInt8]) throws {
        if let broken { throw TransFaceError.io("gallery '\(path)' cannot be written any more: \(broken)") }
        guard fd >= 0 else { throw GalleryErrors.misuse("gallery '\(path)' is closed") }
        var done = 0
        var failure: TransFaceError?
        bytes.withUnsafeBytes { b in
            while done < b.count {
                let n = pwrite(fd, b.baseAddress! + done, b.count - done, off_t(end) + off_t(done))
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = GalleryLogWriter.error("cannot write to gallery '\(path)'")
                    return
                }
                done += n
            }
        }
        if failure == nil && fdatasync(fd) != 0 {
            // after a failed sync the kernel may have dropped the pages: nothing written since can be trusted
            failure = GalleryLogWriter.error("cannot sync gallery '\(path)'")
            broken = failure!.message
        }
        if let failure {
            if ftruncate(fd, off_t(end)) != 0 { broken = "after \(failure.message), its end could not be restored" }
            throw failure
        }
        end += UInt64(bytes.count)
    }
}
