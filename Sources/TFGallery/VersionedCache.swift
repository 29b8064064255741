#if canImport(Glibc)
import Glibc
#endif

/// One value computed from a versioned state and kept until the version changes; safe to use
/// from many readers at once (a mutex around the check and the computation).
final class VersionedCache<Value>: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var cached: (version: UInt64, value: Value)?

    init() { pthread_mutex_init(&mutex, nil) }
    deinit { pthread_mutex_destroy(&mutex) }

    /// The value kept for `version`, or `make()`'s (then kept).
    func value(for version: UInt64, _ make: () -> Value) -> Value {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        if let cached, cached.version == version { return cached.value }
        let value = make()
        cached = (version, value)
        return value
    }
}
