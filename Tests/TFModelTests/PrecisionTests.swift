import TFCore
import TFKernels
import TFModel
import TFTestSupport
import XCTest

/// The bf16 inference mode against float32: every reference face (the official tiny model's 4
/// inputs; the 24 aligned LFW crops through the tiny model and an official-init vit_t) embeds to
/// cosine ≥ 0.9995 of its fp32 embedding, the bound. On CPUs without bf16 instructions
/// the mode must be refused with a clear error instead.
final class PrecisionTests: XCTestCase {
    static let cosineBound: Float = 0.9995

    private func embeddings(_ model: TransFaceModel, _ images: [UInt8], precision: Precision, threads: Int = 2) throws -> [Float] {
        let n = images.count / (112 * 112 * 3), e = model.config.embeddingSize
        let embedder = try Embedder(model: model, threads: threads, maxBatch: 8, precision: precision)
        var out = [Float](repeating: .nan, count: n * e)
        try out.withUnsafeMutableBufferPointer {
            try embedder.embed(images: images, count: n, width: 112, height: 112, flip: true, into: .init(embeddings: $0))
        }
        return out
    }

    func testBF16EmbeddingsAgreeWithFP32OnEveryReferenceFace() throws {
        guard MatmulBackend.supportsBF16 else {
            XCTAssertThrowsError(try Embedder(model: try Reference.tinyModel(), precision: .bf16)) {
                XCTAssertTrue("\($0)".contains("AVX512_BF16"), "\($0)")
            }
            throw XCTSkip("no bf16 instructions on this CPU (\(MatmulBackend.isaName)): the refusal was checked")
        }
        let tiny = try Reference.tinyModel()
        let vitT: TransFaceModel = try {
            let b = try ModelBuilder(config: try ViTConfig.preset("vit_t"))
            b.initializeWeights(seed: 11)
            return try b.build()
        }()
        let aligned = try Reference.load("align/aligned_rgb").bytes, inputs = try Reference.load("tiny/input/u8_hwc").bytes
        for (name, model, images) in [("tiny/inputs", tiny, inputs), ("tiny/aligned", tiny, aligned), ("vit_t/aligned", vitT, aligned)] {
            let fp32 = try embeddings(model, images, precision: .fp32)
            let bf16 = try embeddings(model, images, precision: .bf16)
            let e = model.config.embeddingSize
            var worst: Float = 1
            for i in 0..<(fp32.count / e) {
                let cosine = (0..<e).reduce(Float(0)) { $0 + fp32[i * e + $1] * bf16[i * e + $1] }  // unit vectors
                worst = min(worst, cosine)
            }
            print("bf16 vs fp32, \(name): worst cosine \(worst) over \(fp32.count / e) faces")
            XCTAssertGreaterThanOrEqual(worst, Self.cosineBound, name)
        }
    }

    func testBF16BatchSplitsAreBitIdentical() throws {
        guard MatmulBackend.supportsBF16 else { throw XCTSkip("no bf16 instructions on this CPU") }
        let model = try Reference.tinyModel(), images = try Reference.load("align/aligned_rgb").bytes
        let whole = try embeddings(model, images, precision: .bf16)
        let e = model.config.embeddingSize, size = 112 * 112 * 3
        for i in [0, 7, 23] {
            XCTAssertEqual(try embeddings(model, Array(images[(i * size)..<((i + 1) * size)]), precision: .bf16),
                           Array(whole[(i * e)..<((i + 1) * e)]), "face \(i)")
        }
    }
}
