import TFCore
import TFModel
import TFTestSupport
import XCTest

/// The speed-motivated paths compute what the plain ones do: huge-page slabs, the profiled
/// forward pass, the spinning worker pool.
final class FastPathTests: XCTestCase {
    func testSlabsOfEverySizeAreZeroedAlignedAndWritable() throws {
        for count in [0, 1, 1000, 524_287, 524_288, 3_000_001] {  // around 2 MiB = 524,288 floats
            let slab = try FloatSlab(count: count)
            XCTAssertEqual(Int(bitPattern: slab.base) % FloatSlab.alignment, 0, "\(count)")
            XCTAssertTrue(slab.all.allSatisfy { $0 == 0 }, "\(count) floats not zeroed")
            if count > 1 {
                slab.base[0] = 1; slab.base[count - 1] = 2
                XCTAssertEqual(slab.base[0] + slab.base[count - 1], 3)
            }
        }
    }

    func testProfilingChangesNothingAndSplitsTheTime() throws {
        let b = try ModelBuilder(config: ViTConfig(embedDim: 64, depth: 2, numHeads: 4, mlpHiddenDim: 128, embeddingSize: 32))
        b.initializeWeights(seed: 3)
        let model = try b.build()
        var rng = SeededRNG(seed: 5)
        let images = (0..<(3 * 112 * 112 * 3)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        func embed(_ profile: OpProfile?) throws -> [Float] {
            let e = try Embedder(model: model, threads: 2, maxBatch: 3)
            e.profile = profile
            var out = [Float](repeating: .nan, count: 3 * 32)
            try out.withUnsafeMutableBufferPointer {
                try e.embed(images: images, count: 3, width: 112, height: 112, into: .init(embeddings: $0))
            }
            return out
        }
        let profile = OpProfile()
        let t0 = monotonicSeconds()
        let profiled = try embed(profile)
        let wall = monotonicSeconds() - t0
        XCTAssertEqual(profiled, try embed(nil))
        for kind in OpProfile.Kind.allCases { XCTAssertGreaterThan(profile.seconds[kind.rawValue], 0, kind.name) }
        XCTAssertLessThanOrEqual(profile.total, wall)
        let flops = model.config.forwardFLOPs
        XCTAssertEqual(flops[.norms], 0)
        // Patch embedding 144·243·64 + 2 blocks × (qkv, proj, fc1, fc2), multiply-adds × 2.
        XCTAssertEqual(flops[.gemm]!, 2 * (144 * 243 * 64 + 2 * (144 * 64 * 192 + 144 * 64 * 64 + 2 * 144 * 64 * 128)))
    }

    func testWorkerPoolRunsEveryWorkerOnceAcrossManyDispatches() throws {
        let pool = try WorkerPool(threadCount: 3)
        let counts = UnsafeMutablePointer<Int>.allocate(capacity: 3)
        defer { counts.deallocate() }
        counts.initialize(repeating: 0, count: 3)
        for round in 0..<20_000 {
            pool.run { w in counts[w] += 1 }
            if round == 10_000 { usleep(20_000) }  // let the workers fall asleep once, then wake them
        }
        XCTAssertEqual([counts[0], counts[1], counts[2]], [20_000, 20_000, 20_000])
    }
}
