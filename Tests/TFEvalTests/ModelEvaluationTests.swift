import TFCore
import TFData
@testable import TFEval
import TFImage
import TFModel
import TFTestSupport
import TFWiring
import XCTest

/// The model path: the tiny reference model on a few LFW devtest pairs, aligned by the
/// library, against the same pipeline written out with TFImage and the Embedder.
final class ModelEvaluationTests: XCTestCase {
    func testPairsThroughTheModelMatchTheManualPipeline() throws {
        let lfw = Reference.shared + "/data/lfw"
        var pairs = try PairList.load(lfw + "/splits/devtest_pairs.tsv")
        pairs.pairs = Array(pairs.pairs[0..<10] + pairs.pairs[500..<510])
        let table = try LandmarkTable(path: lfw + "/landmarks/included_5pt.tsv")
        let embedder = try Embedder(model: try Reference.tinyModel(), threads: 1, maxBatch: 8)
        var o = Verification.Options()
        o.folds = 5; o.interleavedFolds = true
        let report = try Evaluation.verify(pairs: pairs, root: lfw, landmarks: table, embedder: embedder, options: o)

        // manual: decode, align, embed with the embedder's own flip-sum, distances from unit vectors
        func face(_ p: String) throws -> [UInt8] {
            let img = try ImageDecoder.decodeFile(lfw + "/" + p)
            return try img.pixels.withUnsafeBufferPointer { b in
                try FaceAlignment.align(try ImageView(base: b.baseAddress!, width: img.width, height: img.height, format: .rgb),
                                        landmarks: table.points(for: p)!).image.pixels
            }
        }
        var faces: [UInt8] = []
        for p in pairs.pairs { faces += try face(p.path1); faces += try face(p.path2) }
        let e = embedder.model.config.embeddingSize
        var emb = [Float](repeating: 0, count: 40 * e)
        try faces.withUnsafeBufferPointer { f in
            try emb.withUnsafeMutableBufferPointer { out in
                try embedder.embed(images: f.baseAddress!, count: 40, width: 112, height: 112, flip: true, normalize: false,
                                   into: .init(embeddings: out))
            }
        }
        let manual = try Verification.evaluate(embeddings1: emb, embeddings2: nil, issame: pairs.issame, dim: e, options: o)
        XCTAssertEqual(report.foldAccuracy, manual.foldAccuracy)
        XCTAssertEqual(report.foldThreshold, manual.foldThreshold)
        XCTAssertEqual(zip(report.distances, manual.distances).map { abs($0 - $1) }.max()!, 0, accuracy: 1e-6)
        XCTAssertEqual(report.images, pairs.uniqueImages().paths.count)
        XCTAssertGreaterThan(report.xnorm, 0)
        print("tiny model, 20 devtest pairs: accuracy \(report.accuracyMean), XNorm \(report.xnorm)")
    }
}
