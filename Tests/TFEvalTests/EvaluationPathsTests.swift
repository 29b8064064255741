import TFCore
import TFData
@testable import TFEval
import TFTestSupport
import XCTest

/// The same embeddings through the `.bin` path and the pairs-list path give the same report.
final class EvaluationPathsTests: XCTestCase {
    let lfw = Reference.shared + "/data/lfw"

    func testBinAndPairsListAgree() throws {
        let pairs = try PairList.load(lfw + "/splits/devtest_pairs.tsv")
        let bin = try VerificationBin.fromPairs(pairs, root: lfw)
        let dir = try Reference.temporaryFolder()
        defer { Reference.removeTree(dir) }
        try bin.write(path: dir + "/devtest.bin")
        for interleaved in [false, true] {
            var o = Verification.Options()
            o.interleavedFolds = interleaved
            let source = HashEmbeddingSource(dim: 24)
            let viaBin = try Evaluation.verify(binPath: dir + "/devtest.bin", source: source, options: o)
            let viaPairs = try Evaluation.verify(pairs: pairs, root: lfw, source: source, options: o)
            XCTAssertEqual(viaBin.images, 2000)
            XCTAssertEqual(viaPairs.images, 1549)
            XCTAssertEqual(viaBin.distances, viaPairs.distances)
            XCTAssertEqual(viaBin.foldAccuracy, viaPairs.foldAccuracy)
            XCTAssertEqual(viaBin.accuracyMean, viaPairs.accuracyMean)
            XCTAssertEqual(viaBin.tpr, viaPairs.tpr)
            XCTAssertFalse(viaBin.xnorm.isNaN)
            // random embeddings: chance level with interleaved folds; contiguous folds of this
            // class-sorted file are pathological (each fold holds one class), as data/README says
            if interleaved { XCTAssertEqual(viaBin.accuracyMean, 0.5, accuracy: 0.1) }
            print("hash embeddings on devtest (\(interleaved ? "interleaved" : "contiguous") folds): accuracy \(viaBin.accuracyMean) ± \(viaBin.accuracyStd), XNorm bin \(viaBin.xnorm) pairs \(viaPairs.xnorm)")
        }
        // landmarks are looked up by the pair paths and handed to the source
        let table = try LandmarkTable(path: lfw + "/landmarks/included_5pt.tsv")
        let source = HashEmbeddingSource(dim: 8)
        _ = try Evaluation.verify(pairs: pairs, root: lfw, landmarks: table, preferring: ["cuhk_manual"], source: source)
        XCTAssertEqual(source.landmarksSeen, 1549)
        var missing = pairs
        missing.pairs[0].path1 = "images/AJ_Lamas/AJ_Lamas_0001.jpg.missing"
        XCTAssertThrowsError(try Evaluation.verify(pairs: missing, root: lfw, landmarks: table, source: source))
    }

    func testMirrorImages() {
        var img: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]  // 1 image 3x2
        mirrorImages(&img, count: 1, width: 3, height: 2)
        XCTAssertEqual(img, [7, 8, 9, 4, 5, 6, 1, 2, 3, 16, 17, 18, 13, 14, 15, 10, 11, 12])
    }
}
