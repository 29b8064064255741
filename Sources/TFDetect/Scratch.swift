#if canImport(Glibc)
import Glibc
#endif

/// A float32 buffer that only grows: reused between calls, so steady-state detection allocates
/// nothing for images no larger than those seen before.
final class Scratch {
    private(set) var pointer = UnsafeMutablePointer<Float>.allocate(capacity: 16)
    private(set) var capacity = 16

    deinit { pointer.deallocate() }

    /// At least `count` floats (contents are not kept when it grows).
    func floats(_ count: Int) -> UnsafeMutablePointer<Float> {
        if count > capacity {
            pointer.deallocate()
            capacity = max(count, capacity * 3 / 2)
            pointer = .allocate(capacity: capacity)
        }
        return pointer
    }
}
