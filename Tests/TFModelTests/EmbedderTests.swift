import TFCore
import TFModel
import TFTestSupport
import XCTest

/// The embedding API: batching, threads, flip-TTA, normalisation and argument checks.
final class EmbedderTests: XCTestCase {
    static let config = ViTConfig(embedDim: 64, depth: 2, numHeads: 4, mlpHiddenDim: 128, embeddingSize: 32)

    static func model() throws -> TransFaceModel {
        let b = try ModelBuilder(config: config)
        b.initializeWeights(seed: 7)
        return try b.build()
    }

    static func images(_ n: Int, seed: UInt64 = 3) -> [UInt8] {
        var rng = SeededRNG(seed: seed)
        return (0..<(n * 112 * 112 * 3)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    }

    private func embed(_ e: Embedder, _ images: [UInt8], _ n: Int, flip: Bool = false, normalize: Bool = true) throws -> [Float] {
        var out = [Float](repeating: .nan, count: n * e.model.config.embeddingSize)
        try out.withUnsafeMutableBufferPointer { o in
            try e.embed(images: images, count: n, width: 112, height: 112, flip: flip, normalize: normalize, into: .init(embeddings: o))
        }
        return out
    }

    func testBatchSplitsAreBitIdentical() throws {
        let model = try Self.model(), imgs = Self.images(5)
        for threads in [1, 2] {
            let whole = try embed(try Embedder(model: model, threads: threads, maxBatch: 8), imgs, 5)
            for maxBatch in [1, 2, 3] {
                XCTAssertEqual(try embed(try Embedder(model: model, threads: threads, maxBatch: maxBatch), imgs, 5), whole,
                               "threads \(threads) max batch \(maxBatch)")
            }
            let single = try Embedder(model: model, threads: threads, maxBatch: 1)
            for i in 0..<5 {
                let one = Array(imgs[(i * 37632)..<((i + 1) * 37632)])
                XCTAssertEqual(try embed(single, one, 1), Array(whole[(i * 32)..<((i + 1) * 32)]))
            }
        }
    }

    func testThreadCountsAgreeWithin1e6() throws {
        let model = try Self.model(), imgs = Self.images(3)
        let one = try embed(try Embedder(model: model, threads: 1, maxBatch: 4), imgs, 3)
        let two = try embed(try Embedder(model: model, threads: 2, maxBatch: 4), imgs, 3)
        let c = Comparison(two, one, rtol: 0, atol: 1e-6)
        print("threads 1 vs 2: \(c)")
        XCTAssertTrue(c.passed, "\(c)")
    }

    func testFlipSumsTheMirroredEmbeddingThenNormalises() throws {
        let model = try Self.model(), imgs = Self.images(2)
        let e = try Embedder(model: model, maxBatch: 2)
        var mirrored = imgs
        for b in 0..<2 { for y in 0..<112 { for x in 0..<112 { for c in 0..<3 {
            mirrored[((b * 112 + y) * 112 + x) * 3 + c] = imgs[((b * 112 + y) * 112 + (111 - x)) * 3 + c]
        } } } }
        let raw = try embed(e, imgs, 2, normalize: false), rawMirror = try embed(e, mirrored, 2, normalize: false)
        var expected = zip(raw, rawMirror).map { $0 + $1 }
        for r in 0..<2 { try expected.withUnsafeMutableBufferPointer { try l2Normalize($0.baseAddress! + r * 32, 32) } }
        let flipped = try embed(e, imgs, 2, flip: true)
        XCTAssertTrue(Comparison(flipped, expected, rtol: 0, atol: 1e-6).passed)
        let unit = try embed(e, imgs, 2)
        for r in 0..<2 {
            let norm = unit[(r * 32)..<((r + 1) * 32)].reduce(0) { $0 + $1 * $1 }
            XCTAssertEqual(norm, 1, accuracy: 1e-5)
        }
    }

    func testPatchOutputsAreADistributionAndNonNegative() throws {
        let model = try Self.model(), e = try Embedder(model: model, maxBatch: 2)
        var weights = [Float](repeating: 0, count: 2 * 144), stds = weights
        try weights.withUnsafeMutableBufferPointer { w in
            try stds.withUnsafeMutableBufferPointer { s in
                try e.embed(images: Self.images(2), count: 2, width: 112, height: 112, into: .init(patchWeights: w, patchStd: s))
            }
        }
        for r in 0..<2 { XCTAssertEqual(weights[(r * 144)..<((r + 1) * 144)].reduce(0, +), 1, accuracy: 1e-5) }
        XCTAssertTrue(stds.allSatisfy { $0 >= 0 && $0.isFinite })
    }

    func testArgumentErrorsAreNamed() throws {
        let e = try Embedder(model: try Self.model(), maxBatch: 2)
        var small = [Float](repeating: 0, count: 31)
        func message(_ body: () throws -> Void) -> String {
            do { try body(); return "" } catch { return (error as? TransFaceError)?.message ?? "\(error)" }
        }
        let img = Self.images(1)
        XCTAssertTrue(message { try small.withUnsafeMutableBufferPointer { try e.embed(images: img, count: 1, width: 112, height: 112, into: .init(embeddings: $0)) } }.contains("capacity 31"))
        XCTAssertTrue(message { try small.withUnsafeMutableBufferPointer { try e.embed(images: img, count: 1, width: 100, height: 100, into: .init(embeddings: $0)) } }.contains("100x100"))
        XCTAssertTrue(message { try small.withUnsafeMutableBufferPointer { try e.embed(images: img, count: 0, width: 112, height: 112, into: .init(embeddings: $0)) } }.contains("at least 1"))
        XCTAssertThrowsError(try Embedder(model: try Self.model(), threads: 0))
        XCTAssertThrowsError(try Embedder(model: try Self.model(), maxBatch: 0))
    }
}
