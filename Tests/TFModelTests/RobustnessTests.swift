import Foundation
import TFCore
@testable import TFModel
import TFTestSupport
import XCTest

/// Inference on degenerate images stays finite and unit length; model headers claiming
/// enormous sizes are refused before anything is allocated.
final class RobustnessTests: XCTestCase {
    /// All-black, all-white, uniform noise, and a one-pixel checkerboard of 0 and 255.
    static func degenerateImages(side: Int) -> [(String, [UInt8])] {
        var rng = SeededRNG(seed: 11)
        let n = side * side * 3
        return [("black", [UInt8](repeating: 0, count: n)), ("white", [UInt8](repeating: 255, count: n)),
                ("noise", (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }),
                ("checkerboard", (0..<n).map { i in ((i / 3) % side + (i / 3) / side) % 2 == 0 ? 0 : 255 })]
    }

    private func checkFiniteUnitEmbeddings(_ model: TransFaceModel, _ name: String) throws {
        let side = model.config.imgSize, e = model.config.embeddingSize, p = model.config.numPatches
        let cases = Self.degenerateImages(side: side)
        let images = cases.flatMap(\.1)
        let embedder = try Embedder(model: model, threads: 2, maxBatch: 4)
        for flip in [false, true] {
            var out = [Float](repeating: .nan, count: cases.count * e)
            var raw = out, weights = [Float](repeating: .nan, count: cases.count * p)
            try out.withUnsafeMutableBufferPointer { o in
                try weights.withUnsafeMutableBufferPointer { w in
                    try embedder.embed(images: images, count: cases.count, width: side, height: side, flip: flip,
                                       into: .init(embeddings: o, patchWeights: w))
                }
            }
            if !flip { try raw.withUnsafeMutableBufferPointer { o in
                try embedder.embed(images: images, count: cases.count, width: side, height: side, flip: flip, normalize: false,
                                   into: .init(embeddings: o))
            } }
            for (i, (what, _)) in cases.enumerated() {
                let v = out[(i * e)..<((i + 1) * e)]
                XCTAssertTrue(v.allSatisfy(\.isFinite), "\(name) \(what) flip \(flip): non-finite embedding")
                let norm = v.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
                XCTAssertEqual(norm, 1, accuracy: 1e-5, "\(name) \(what) flip \(flip)")
                if !flip { XCTAssertTrue(raw[(i * e)..<((i + 1) * e)].allSatisfy(\.isFinite), "\(name) \(what): raw embedding") }
                let w = weights[(i * p)..<((i + 1) * p)]
                XCTAssertTrue(w.allSatisfy { $0.isFinite && $0 >= 0 }, "\(name) \(what): patch weights")
                XCTAssertEqual(w.reduce(0, +), 1, accuracy: 1e-4, "\(name) \(what): patch weights sum")
            }
        }
    }

    func testDegenerateImagesGiveFiniteUnitEmbeddingsWithTheReferenceTinyModel() throws {
        guard FileManager.default.fileExists(atPath: Reference.path("tiny/param")) else {
            throw XCTSkip("no reference data at \(Reference.path("tiny"))")
        }
        try checkFiniteUnitEmbeddings(try Reference.tinyModel(), "reference tiny")
    }

    func testDegenerateImagesGiveFiniteUnitEmbeddingsWithARandomViTT() throws {
        let builder = try ModelBuilder(config: try ViTConfig.preset("vit_t"))
        builder.initializeWeights(seed: 2024)
        try checkFiniteUnitEmbeddings(try builder.build(), "random vit_t")
    }

    // MARK: headers claiming enormous sizes

    private var folder = ""
    override func setUpWithError() throws { folder = try Reference.temporaryFolder() }
    override func tearDown() { Reference.removeTree(folder) }

    /// A small valid model file whose header is replaced by `edit`'s (checksum recomputed).
    private func craft(_ edit: (inout ModelHeader) -> Void) throws -> String {
        let builder = try ModelBuilder(config: ViTConfig(imgSize: 18, embedDim: 8, depth: 1, numHeads: 2, mlpHiddenDim: 16,
                                                         embeddingSize: 4))
        builder.initializeWeights(seed: 1)
        return try ModelFileTests.rewriteHeader(of: try builder.build(), in: folder, edit)
    }

    /// Records that describe `config`'s tensors consistently (shapes, lengths, back-to-back offsets).
    private static func records(for config: ViTConfig) -> [TensorRecord] {
        var offset: UInt64 = 0
        return ParameterLayout(config: config).entries.map { e in
            defer { offset += UInt64(e.count) * 4 }
            return TensorRecord(name: e.name, dtype: .f32, dims: e.shape, offset: offset, length: UInt64(e.count) * 4, crc32: 0)
        }
    }

    func testHeadersClaimingEnormousSizesAreRefusedBeforeAllocating() throws {
        // A valid but enormous architecture (about 1e15 bytes of weights), described
        // consistently, in a 4 KiB file. Loading must fail on the size check, not allocate.
        let huge = ViTConfig(arch: "custom", imgSize: 112, patchSize: 1, embedDim: 65536, depth: 1024, numHeads: 1,
                             mlpHiddenDim: 1 << 20, embeddingSize: 65536)
        XCTAssertNoThrow(try huge.validate())
        XCTAssertThrowsError(try ModelFile.load(path: try craft { $0.config = huge; $0.preprocess = .official(size: 112); $0.tensors = Self.records(for: huge) })) { e in
            XCTAssertEqual((e as? TransFaceError)?.kind, .format, "\(e)")
            XCTAssertTrue("\(e)".contains("truncated"), "\(e)")
        }
        let big = try ViTConfig.preset("vit_l_dp005_mask_005")
        let start = monotonicSeconds()
        XCTAssertThrowsError(try ModelFile.load(path: try craft { $0.config = big; $0.preprocess = .official(size: 112); $0.tensors = Self.records(for: big) })) { e in
            XCTAssertTrue("\(e)".contains("truncated"), "\(e)")
        }
        XCTAssertLessThan(monotonicSeconds() - start, 2, "refusing a vit_l header on a 4 KiB file took long: was it allocated?")
        // A tensor record claiming 2^62 bytes, and dims whose product overflows.
        XCTAssertThrowsError(try ModelFile.load(path: try craft { $0.tensors[0].length = 1 << 62 })) { e in
            XCTAssertEqual((e as? TransFaceError)?.kind, .format, "\(e)")
        }
        XCTAssertThrowsError(try ModelFile.load(path: try craft { $0.tensors[0].dims = [1 << 40, 1 << 40, 1 << 40] })) { e in
            XCTAssertEqual((e as? TransFaceError)?.kind, .format, "\(e)")
        }
        // A header length of 2^63 in the preamble.
        let path = try craft { _ in }
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes.replaceSubrange(16..<24, with: [0, 0, 0, 0, 0, 0, 0, 0x80])
        try bytes.write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try ModelFile.load(path: path)) { e in XCTAssertTrue("\(e)".contains("implausible"), "\(e)") }
    }
}
