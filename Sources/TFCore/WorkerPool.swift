import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A fixed set of worker threads; the calling thread is worker 0. `run` executes a body once
/// on every worker and returns when all are done. The thread count is explicit: nothing here
/// reads the environment or the number of cores. A forward pass dispatches ~10 bodies per
/// transformer block, so waits first spin (yielding the core) for up to `spinRounds` checks
/// before sleeping on a condition variable: back-to-back dispatches then cost no wake-up.
public final class WorkerPool {
    public let threadCount: Int
    private let shared: Shared
    private var threads: [pthread_t] = []

    /// State shared with the worker threads (they keep it alive, not the pool).
    private final class Shared {
        var mutex = pthread_mutex_t()
        var wake = pthread_cond_t()
        var done = pthread_cond_t()
        let generation = Atomic<UInt64>(0)
        let remaining = Atomic<Int>(0)
        var shutdown = false
        var body: ((Int) -> Void)?

        init() {
            pthread_mutex_init(&mutex, nil)
            pthread_cond_init(&wake, nil)
            pthread_cond_init(&done, nil)
        }

        deinit {
            pthread_mutex_destroy(&mutex)
            pthread_cond_destroy(&wake)
            pthread_cond_destroy(&done)
        }
    }

    private final class Start {
        let shared: Shared
        let index: Int
        init(_ shared: Shared, _ index: Int) { self.shared = shared; self.index = index }
    }

    /// Starts `threadCount - 1` threads. Throws if a thread cannot be created.
    public init(threadCount: Int) throws {
        guard threadCount >= 1 && threadCount <= 256 else {
            throw TransFaceError.invalidArgument("thread count \(threadCount) is outside 1...256")
        }
        self.threadCount = threadCount
        self.shared = Shared()
        for index in 1..<threadCount {
            let start = Unmanaged.passRetained(Start(shared, index)).toOpaque()
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { arg in
                let start = Unmanaged<Start>.fromOpaque(arg!).takeRetainedValue()
                WorkerPool.workerLoop(start.shared, start.index)
                return nil
            }, start)
            if rc != 0 {
                Unmanaged<Start>.fromOpaque(start).release()
                stopThreads()
                throw TransFaceError(.outOfMemory, "cannot start worker thread (error \(rc))")
            }
            threads.append(thread)
        }
    }

    deinit { stopThreads() }

    private func stopThreads() {
        pthread_mutex_lock(&shared.mutex)
        shared.shutdown = true
        pthread_cond_broadcast(&shared.wake)
        pthread_mutex_unlock(&shared.mutex)
        for t in threads { pthread_join(t, nil) }
        threads.removeAll()
    }

    /// Checks of a spinning wait before it sleeps (each yields the core: ~0.2–1 µs when idle).
    static let spinRounds = 2000

    private static func workerLoop(_ s: Shared, _ index: Int) {
        var seen: UInt64 = 0
        while true {
            var spins = 0
            while s.generation.load(ordering: .acquiring) == seen && spins < spinRounds { sched_yield(); spins += 1 }
            pthread_mutex_lock(&s.mutex)
            while !s.shutdown && s.generation.load(ordering: .acquiring) == seen { pthread_cond_wait(&s.wake, &s.mutex) }
            if s.shutdown { pthread_mutex_unlock(&s.mutex); return }
            seen = s.generation.load(ordering: .acquiring)
            var body = s.body
            pthread_mutex_unlock(&s.mutex)
            body!(index)
            body = nil  // drop the reference before `run` may return (the closure is non-escaping)
            if s.remaining.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
                pthread_mutex_lock(&s.mutex)
                pthread_cond_signal(&s.done)
                pthread_mutex_unlock(&s.mutex)
            }
        }
    }

    /// Runs `body(worker)` for every worker index in 0..<threadCount and waits for all.
    public func run(_ body: (Int) -> Void) {
        if threadCount == 1 { body(0); return }
        withoutActuallyEscaping(body) { escaping in
            pthread_mutex_lock(&shared.mutex)
            shared.body = escaping
            shared.remaining.store(threadCount - 1, ordering: .releasing)
            shared.generation.add(1, ordering: .releasing)
            pthread_cond_broadcast(&shared.wake)
            pthread_mutex_unlock(&shared.mutex)
            escaping(0)
            var spins = 0
            while shared.remaining.load(ordering: .acquiring) > 0 && spins < WorkerPool.spinRounds { sched_yield(); spins += 1 }
            pthread_mutex_lock(&shared.mutex)
            while shared.remaining.load(ordering: .acquiring) > 0 { pthread_cond_wait(&shared.done, &shared.mutex) }
            shared.body = nil
            pthread_mutex_unlock(&shared.mutex)
        }
    }

    /// Splits 0..<count into `threadCount` contiguous ranges (in worker order) and runs them.
    public func parallelFor(_ count: Int, _ body: (Range<Int>) -> Void) {
        if count <= 0 { return }
        if threadCount == 1 || count == 1 { body(0..<count); return }
        let workers = min(threadCount, count)
        run { w in
            guard w < workers else { return }
            let r = WorkerPool.split(count, parts: workers, index: w)
            if !r.isEmpty { body(r) }
        }
    }

    /// The `index`-th of `parts` near-equal contiguous ranges of 0..<count.
    public static func split(_ count: Int, parts: Int, index: Int) -> Range<Int> {
        let base = count / parts, extra = count % parts
        let lo = index * base + min(index, extra)
        return lo..<(lo + base + (index < extra ? 1 : 0))
    }
}
