import TFCore
#if canImport(Glibc)
import Glibc
#endif

/// The writer lock of a gallery across processes: an exclusive advisory `flock` on the file
/// `<gallery>.lock` beside it (never deleted: deleting a lock file races with its next taker).
/// A separate file because compaction renames a new gallery file into place, and a lock on the
/// old file would not exclude a writer that opens the new one. Released on close or exit.
final class GalleryLock {
    let path: String
    private var fd: Int32

    init(galleryPath: String) throws {
        path = galleryPath + ".lock"
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw TransFaceError.io("cannot open the lock file '\(path)' of gallery '\(galleryPath)': \(String(cString: strerror(errno)))")
        }
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            if errno == EINTR { continue }
            let busy = errno == EWOULDBLOCK
            let message = String(cString: strerror(errno))
            close(fd)
            fd = -1
            throw TransFaceError.io(busy
                ? "gallery '\(galleryPath)' is open for writing in another process (it holds '\(path)'); open it read-only, or close the other writer"
                : "cannot lock '\(path)' of gallery '\(galleryPath)': \(message)")
        }
    }

    func release() {
        if fd >= 0 { close(fd) }  // closing the last descriptor drops the flock
        fd = -1
    }

    deinit { release() }
}
