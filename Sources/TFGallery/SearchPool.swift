import TFCore
#if canImport(Glibc)
import Glibc
#endif

/// The worker threads of a gallery's searches, used by one search at a time; a search that
/// finds them busy runs on its own thread instead of waiting.
final class SearchPool: @unchecked Sendable {
    let pool: WorkerPool
    private var mutex = pthread_mutex_t()

    init(threads: Int) throws {
        pool = try WorkerPool(threadCount: threads)
        pthread_mutex_init(&mutex, nil)
    }

    deinit { pthread_mutex_destroy(&mutex) }

    /// Runs `body(pool)` if the pool is free, else returns false at once.
    func tryUse(_ body: (WorkerPool) -> Void) -> Bool {
        guard pthread_mutex_trylock(&mutex) == 0 else { return false }
        defer { pthread_mutex_unlock(&mutex) }
        body(pool)
        return true
    }
}
