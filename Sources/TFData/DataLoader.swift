import TFCore

#if canImport(Glibc)
import Glibc
#endif

/// Decodes one encoded image to interleaved RGB bytes. Called from several loader threads at
/// once, so it must be thread-safe. `name` is for error messages.
public typealias ImageDecodeFunction = (_ bytes: [UInt8], _ name: String) throws -> (pixels: [UInt8], width: Int, height: Int)

/// Where a loader stands: the next sample of an epoch and the state of the flip stream. Taken
/// after any batch (`DataLoader.position`, `Batch.position`) and given back to a new loader, it
/// continues with exactly the batches the first loader would have produced.
public struct LoaderPosition: Equatable {
    /// Epoch of the next sample (0-based).
    public var epoch: Int
    /// Position of the next sample in that epoch's order.
    public var index: Int
    /// State of the random-flip stream (xoshiro256**).
    public var flipState: [UInt64]
    /// The seed and dataset size the position belongs to (checked on resume).
    public var seed: UInt64
    public var datasetCount: Int

    /// The start of epoch 0 for a seed.
    public static func start(seed: UInt64, datasetCount: Int) -> LoaderPosition {
        let s = SeededRNG(seed: seed, stream: DataLoader.flipStream).state
        return LoaderPosition(epoch: 0, index: 0, flipState: [s.0, s.1, s.2, s.3], seed: seed, datasetCount: datasetCount)
    }

    /// 8 words for checkpoint files: epoch, index, flip state (4), seed, dataset count.
    public var words: [UInt64] {
        [UInt64(epoch), UInt64(index)] + flipState + [seed, UInt64(datasetCount)]
    }

    public init(words: [UInt64]) throws {
        guard words.count == 8, words[0] < 1 << 62, words[1] < 1 << 62, words[7] < 1 << 62 else {
            throw TransFaceError.invalidArgument("a loader position is 8 words (epoch, index, 4 flip-state words, seed, count)")
        }
        self.init(epoch: Int(words[0]), index: Int(words[1]), flipState: Array(words[2..<6]), seed: words[6], datasetCount: Int(words[7]))
    }

    public init(epoch: Int, index: Int, flipState: [UInt64], seed: UInt64, datasetCount: Int) {
        self.epoch = epoch; self.index = index; self.flipState = flipState; self.seed = seed; self.datasetCount = datasetCount
    }
}

/// Batches of decoded training images from a `FaceDataset`, decoded on worker threads.
///
/// * Order: each epoch visits the samples in a permutation drawn from `SeededRNG(seed, stream:
///   permutationStream + epoch)` (Fisher-Yates), or in dataset order without shuffling.
/// * Flips: one draw per sample from a flip stream (`SeededRNG(seed, stream: flipStream)`),
///   taken in sample order across epochs; a sample is mirrored when the draw's top bit is set.
/// * Batches are handed out in order whatever the thread timing, so a run is reproducible, and
///   `position` after a batch resumes exactly (`init(..., resume:)`).
/// * `dropLast` (arcface_torch's default) skips an epoch's last partial batch.
/// * Workers decode whole batches; at most `prefetch` batches are decoded or waiting at once.
/// * A sample that cannot be read or decoded, or has the wrong size, stops the loader with an
///   error naming it (`next()` throws at that batch), or with `skipCorrupt` is left out of its
///   batch and listed in `Batch.skipped`.
public final class DataLoader {
    public static let flipStream: UInt64 = 0x464C_4950  // "FLIP"
    public static let permutationStream: UInt64 = 0x5045_524D_0000_0000  // "PERM" + epoch

    public struct Options {
        public var batchSize = 128
        /// Decoding threads (besides the caller's).
        public var threads = 2
        /// Batches decoded ahead (in work or waiting); at least 1.
        public var prefetch = 4
        public var seed: UInt64 = 0
        public var shuffle = true
        /// Random horizontal flip with probability 1/2.
        public var flip = true
        public var dropLast = true
        public var skipCorrupt = false
        /// The size every decoded image must have (aligned faces).
        public var width = 112
        public var height = 112
        /// Stop after this many epochs (nil: never).
        public var epochs: Int?
        /// Distributed training: this rank's share of each global batch. A global batch of
        /// `batchSize × worldSize` samples is drawn, flipped and dropped exactly as one process with
        /// that batch size draws it, and dealt by stride (its sample j goes to rank j mod
        /// `worldSize`, as `DistributedSampler` deals indices), so the ranks together see per step
        /// what one process with batch W·B sees. Positions are global (the same on every rank).
        /// Needs `dropLast` when `worldSize > 1`.
        public var rank = 0
        public var worldSize = 1
        public init() {}
    }

    public struct Batch {
        /// count × height × width × 3 bytes, RGB.
        public var images: [UInt8]
        public var labels: [Int32]
        /// Dataset indices of the samples, and whether each was mirrored.
        public var indices: [Int]
        public var flipped: [Bool]
        public var epoch: Int
        /// Samples left out (`skipCorrupt`): dataset index and the error.
        public var skipped: [(index: Int, message: String)]
        /// The position after this batch.
        public var position: LoaderPosition
        public var count: Int { labels.count }
    }

    public let options: Options
    public let dataset: FaceDataset
    private let shared: Shared
    private var threads: [pthread_t] = []
    private var closed = false
    /// The position after the last batch `next()` returned (the start position before any).
    public private(set) var position: LoaderPosition

    public init(dataset: FaceDataset, decode: @escaping ImageDecodeFunction, options: Options = Options(),
                resume: LoaderPosition? = nil) throws {
        let n = dataset.count
        try require(n > 0, "the dataset is empty")
        try require(options.batchSize >= 1, "batch size must be at least 1, got \(options.batchSize)")
        try require(options.worldSize >= 1 && options.rank >= 0 && options.rank < options.worldSize,
                    "rank \(options.rank) is outside a world of \(options.worldSize)")
        try require(options.worldSize == 1 || options.dropLast, "a distributed loader (world \(options.worldSize)) needs dropLast")
        try require(options.threads >= 1 && options.threads <= 256, "loader threads must be in 1...256, got \(options.threads)")
        try require(options.prefetch >= 1, "prefetch must be at least 1, got \(options.prefetch)")
        try require(options.width >= 1 && options.height >= 1, "image size must be positive")
        _ = try checkedProduct([options.batchSize, options.worldSize, options.width, options.height, 3], what: "batch buffer")
        try require(!options.dropLast || n >= options.batchSize * options.worldSize,
                    "dropLast with \(n) samples and batch size \(options.batchSize) × \(options.worldSize) ranks would never produce a batch")
        let start = resume ?? LoaderPosition.start(seed: options.seed, datasetCount: n)
        if let r = resume {
            try require(r.seed == options.seed, "the resume position belongs to seed \(r.seed), the loader has seed \(options.seed)")
            try require(r.datasetCount == n, "the resume position belongs to a dataset of \(r.datasetCount) samples, this one has \(n)")
            try require(r.flipState.count == 4 && r.flipState != [0, 0, 0, 0], "the resume position has an invalid flip state")
            try require(r.epoch >= 0 && r.index >= 0 && r.index <= n, "the resume position (epoch \(r.epoch), index \(r.index)) is outside the dataset")
        }
        self.options = options
        self.dataset = dataset
        self.position = start
        shared = Shared(dataset: dataset, decode: decode, options: options, start: start)
        for _ in 0..<options.threads {
            let arg = Unmanaged.passRetained(shared).toOpaque()
            var t = pthread_t()
            let rc = pthread_create(&t, nil, { arg in
                let s = Unmanaged<Shared>.fromOpaque(arg!).takeRetainedValue()
                s.workerLoop()
                return nil
            }, arg)
            if rc != 0 {
                Unmanaged<Shared>.fromOpaque(arg).release()
                close()
                throw TransFaceError(.outOfMemory, "cannot start loader thread (error \(rc))")
            }
            threads.append(t)
        }
    }

    deinit { close() }

    /// The next batch, in order; nil after the last epoch (`options.epochs`).
    public func next() throws -> Batch? {
        guard !closed else { throw TransFaceError(.misuse, "the loader is closed") }
        guard let batch = try shared.take() else { return nil }
        position = batch.position
        return batch
    }

    /// Stops the workers (waiting for the batch each is decoding) and releases them.
    public func close() {
        if closed { return }
        closed = true
        shared.stop()
        for t in threads { pthread_join(t, nil) }
        threads.removeAll()
    }

    /// Batches per epoch.
    public var batchesPerEpoch: Int {
        let n = dataset.count, b = options.batchSize * options.worldSize
        return options.dropLast ? n / b : (n + b - 1) / b
    }

    /// The order of the samples of an epoch.
    public static func permutation(count: Int, epoch: Int, seed: UInt64, shuffle: Bool) -> [Int] {
        var order = Array(0..<count)
        guard shuffle, count > 1 else { return order }
        var rng = SeededRNG(seed: seed, stream: permutationStream &+ UInt64(epoch))
        var i = count - 1
        while i > 0 {
            let j = Int(rng.next() % UInt64(i + 1))
            order.swapAt(i, j)
            i -= 1
        }
        return order
    }

    // MARK: - shared state

    private struct Job {
        var seq: Int
        var epoch: Int
        var indices: [Int]
        var flips: [Bool]
        var after: LoaderPosition
    }

    private enum Outcome {
        case batch(Batch)
        case failure(Error)
    }

    private final class Shared {
        let dataset: FaceDataset
        let decode: ImageDecodeFunction
        let options: Options
        var mutex = pthread_mutex_t()
        var workCond = pthread_cond_t()
        var readyCond = pthread_cond_t()
        var shutdown = false

        // scheduling cursor (under mutex)
        var epoch: Int
        var index: Int
        var order: [Int]
        var orderEpoch: Int
        var flipRNG: SeededRNG
        var nextClaim = 0
        var endSeq: Int?  // first sequence number past the last batch
        // delivery (under mutex)
        var nextDeliver = 0
        var results: [Int: Outcome] = [:]
        var failure: Error?

        init(dataset: FaceDataset, decode: @escaping ImageDecodeFunction, options: Options, start: LoaderPosition) {
            self.dataset = dataset
            self.decode = decode
            self.options = options
            epoch = start.epoch
            index = start.index
            orderEpoch = start.epoch
            order = DataLoader.permutation(count: dataset.count, epoch: start.epoch, seed: options.seed, shuffle: options.shuffle)
            let f = start.flipState
            flipRNG = SeededRNG(state: (f[0], f[1], f[2], f[3]))
            pthread_mutex_init(&mutex, nil)
            pthread_cond_init(&workCond, nil)
            pthread_cond_init(&readyCond, nil)
        }

        deinit {
            pthread_mutex_destroy(&mutex)
            pthread_cond_destroy(&workCond)
            pthread_cond_destroy(&readyCond)
        }

        /// The next job, under the mutex; nil once the epochs are exhausted.
        func claim() -> Job? {
            if endSeq != nil { return nil }
            let n = dataset.count, b = options.batchSize * options.worldSize
            if index >= n || (options.dropLast && n - index < b) {
                epoch += 1
                index = 0
            }
            if let limit = options.epochs, epoch >= limit {
                endSeq = nextClaim
                return nil
            }
            if orderEpoch != epoch {
                order = DataLoader.permutation(count: n, epoch: epoch, seed: options.seed, shuffle: options.shuffle)
                orderEpoch = epoch
            }
            let count = min(b, n - index)
            let indices = Array(order[index..<(index + count)])
            var flips = [Bool](repeating: false, count: count)
            if options.flip {
                for k in 0..<count { flips[k] = flipRNG.next() >> 63 == 1 }
            }
            index += count
            let s = flipRNG.state
            let w = options.worldSize, mine = stride(from: options.rank, to: count, by: w)
            let job = Job(seq: nextClaim, epoch: epoch, indices: w == 1 ? indices : mine.map { indices[$0] },
                          flips: w == 1 ? flips : mine.map { flips[$0] },
                          after: LoaderPosition(epoch: epoch, index: index, flipState: [s.0, s.1, s.2, s.3],
                                                seed: options.seed, datasetCount: n))
            nextClaim += 1
            return job
        }

        func workerLoop() {
            while true {
                pthread_mutex_lock(&mutex)
                while !shutdown && endSeq == nil && nextClaim >= nextDeliver + options.prefetch {
                    pthread_cond_wait(&workCond, &mutex)
                }
                if shutdown || endSeq != nil {
                    pthread_mutex_unlock(&mutex)
                    return
                }
                let job = claim()
                if job == nil { pthread_cond_broadcast(&readyCond) }
                pthread_mutex_unlock(&mutex)
                guard let job else { return }
                let outcome = run(job)
                pthread_mutex_lock(&mutex)
                results[job.seq] = outcome
                pthread_cond_broadcast(&readyCond)
                pthread_mutex_unlock(&mutex)
            }
        }

        func run(_ job: Job) -> Outcome {
            let w = options.width, h = options.height, imageBytes = w * h * 3
            var images = [UInt8](repeating: 0, count: job.indices.count * imageBytes)
            var labels: [Int32] = [], indices: [Int] = [], flipped: [Bool] = []
            var skipped: [(index: Int, message: String)] = []
            labels.reserveCapacity(job.indices.count)
            for (k, i) in job.indices.enumerated() {
                do {
                    let sample = try dataset.sample(at: i)
                    let name = dataset.name(at: i)
                    let img: (pixels: [UInt8], width: Int, height: Int)
                    do { img = try decode(sample.image, name) } catch let e as TransFaceError {
                        throw TransFaceError(e.kind, e.message.contains(name) ? e.message : "\(name): \(e.message)")
                    }
                    guard img.width == w, img.height == h, img.pixels.count == imageBytes else {
                        throw TransFaceError.format("\(name): image is \(img.width)x\(img.height), the loader needs \(w)x\(h) aligned faces")
                    }
                    let slot = labels.count * imageBytes
                    images.withUnsafeMutableBufferPointer { dst in
                        img.pixels.withUnsafeBufferPointer { src in
                            if job.flips[k] {
                                for y in 0..<h {
                                    let row = y * w * 3
                                    for x in 0..<w {
                                        let s = row + (w - 1 - x) * 3, d = slot + row + x * 3
                                        dst[d] = src[s]; dst[d + 1] = src[s + 1]; dst[d + 2] = src[s + 2]
                                    }
                                }
                            } else {
                                dst.baseAddress!.advanced(by: slot).update(from: src.baseAddress!, count: imageBytes)
                            }
                        }
                    }
                    labels.append(sample.label)
                    indices.append(i)
                    flipped.append(job.flips[k])
                } catch {
                    let message = (error as? TransFaceError)?.message ?? "\(error)"
                    if options.skipCorrupt {
                        skipped.append((i, message))
                    } else {
                        let kind = (error as? TransFaceError)?.kind ?? .format
                        let text = message.contains(dataset.name(at: i)) ? message : "\(dataset.name(at: i)): \(message)"
                        return .failure(TransFaceError(kind, text))
                    }
                }
            }
            images.removeSubrange((labels.count * imageBytes)...)
            return .batch(Batch(images: images, labels: labels, indices: indices, flipped: flipped, epoch: job.epoch,
                                skipped: skipped, position: job.after))
        }

        /// The next batch in order (blocks); nil at the end.
        func take() throws -> Batch? {
            pthread_mutex_lock(&mutex)
            defer { pthread_mutex_unlock(&mutex) }
            if let f = failure { throw f }
            while results[nextDeliver] == nil {
                if let end = endSeq, nextDeliver >= end { return nil }
                pthread_cond_wait(&readyCond, &mutex)
            }
            let outcome = results.removeValue(forKey: nextDeliver)!
            nextDeliver += 1
            pthread_cond_broadcast(&workCond)
            switch outcome {
            case .batch(let b): return b
            case .failure(let e):
                failure = e
                throw e
            }
        }

        func stop() {
            pthread_mutex_lock(&mutex)
            shutdown = true
            pthread_cond_broadcast(&workCond)
            pthread_cond_broadcast(&readyCond)
            pthread_mutex_unlock(&mutex)
        }
    }
}
