import XCTest
import TFCore
import TFTestSupport
@testable import TFTrain

/// The head (ArcFace s 64 m 0.5, all 10 centres, EHSM) against the official numbers of
/// `reference/tiny` and `reference/tiny_nondetached`, fed with the reference's train-mode
/// embeddings, patch std, centres and labels.
///
/// Tolerances (`atol + rtol·max|ref|`): forward outputs rtol 1e-4 (atol 1e-6), the centre
/// gradient rtol 2e-3 (atol 1e-5), as the fixtures' README supports.
final class MarginLossReferenceTests: XCTestCase {
    struct Inputs {
        let embedding: [Float], patchStd: [Float], centres: [Float], labels: [Int]
        let batch: Int, dim: Int, classes: Int, patches: Int
    }

    func loadInputs() throws -> Inputs {
        let emb = try Reference.load("tiny/train/embedding")
        let std = try Reference.load("tiny/train/patch_std")
        let w = try Reference.load("tiny/param/partial_fc.weight")
        let labels = try Reference.load("tiny/input/labels").values.map { Int($0) }
        return Inputs(embedding: emb.values, patchStd: std.values, centres: w.values, labels: labels,
                      batch: emb.shape[0], dim: emb.shape[1], classes: w.shape[0], patches: std.shape[1])
    }

    func makeHead(_ inp: Inputs) throws -> PartialFC {
        let head = try PartialFC(numClasses: inp.classes, embeddingSize: inp.dim, maxBatch: inp.batch, margin: try .arcFace())
        inp.centres.withUnsafeBufferPointer { head.weight.all.baseAddress!.update(from: $0.baseAddress!, count: $0.count) }
        return head
    }

    func check(_ name: String, _ actual: [Float], _ expected: [Float], rtol: Double, atol: Double,
               file: StaticString = #filePath, line: UInt = #line) {
        let c = Comparison(actual, expected, rtol: rtol, atol: atol)
        print("[parity] \(name): \(c)")
        XCTAssertTrue(c.passed, "\(name): \(c)", file: file, line: line)
    }

    func testTinyOfficialLossLogitsAndCentreGradient() throws {
        let inp = try loadInputs()
        let ehsm = try EHSM(config: .official, patches: inp.patches)
        let w = try ehsm.weights(patchStd: inp.patchStd, batch: inp.batch)
        check("tiny sample_weight", w, try Reference.load("tiny/loss/sample_weight").values, rtol: 1e-6, atol: 0)

        let head = try makeHead(inp)
        let loss = try head.forward(embeddings: inp.embedding, labels: inp.labels, sampleWeights: w)
        let refLoss = try Reference.load("tiny/loss/value").values[0]
        check("tiny loss/value", [Float(loss)], [refLoss], rtol: 1e-4, atol: 0)
        check("tiny loss/cos_logits", try head.cosLogits(), try Reference.load("tiny/loss/cos_logits").values, rtol: 1e-4, atol: 1e-6)
        check("tiny loss/margin_logits", try head.marginLogits(), try Reference.load("tiny/loss/margin_logits").values, rtol: 1e-4, atol: 1e-6)
        check("tiny loss/per_sample_nll", Array(head.perSampleNLL), try Reference.load("tiny/loss/per_sample_nll").values,
              rtol: 1e-4, atol: 1e-6)
        XCTAssertEqual(head.activeCount, inp.classes)

        var dEmb = [Float](repeating: .nan, count: inp.batch * inp.dim)
        try dEmb.withUnsafeMutableBufferPointer { try head.backward(embeddingGradient: $0) }
        check("tiny grad/partial_fc.weight", Array(head.gradient.all), try Reference.load("tiny/grad/partial_fc.weight").values,
              rtol: 2e-3, atol: 1e-5)
        XCTAssertTrue(dEmb.allSatisfy { $0.isFinite })
        // A second backward for one forward is a misuse.
        XCTAssertThrowsError(try dEmb.withUnsafeMutableBufferPointer { try head.backward(embeddingGradient: $0) })
    }

    /// tiny_nondetached: the EHSM weight stays in the graph. Loss and weights are the official
    /// ones; dL/d(patch std) is checked against central differences of the Double model
    /// `L(σ) = mean_b(w_b(σ) · nll_b)`.
    func testTinyNondetachedLossWeightsAndPatchStdGradient() throws {
        let inp = try loadInputs()
        let labelsND = try Reference.load("tiny_nondetached/input/labels").values.map { Int($0) }
        XCTAssertEqual(labelsND, inp.labels)
        let config = EHSMConfig(mode: .paper)
        let ehsm = try EHSM(config: config, patches: inp.patches)
        let w = try ehsm.weights(patchStd: inp.patchStd, batch: inp.batch)
        check("tiny_nondetached sample_weight", w, try Reference.load("tiny_nondetached/loss/sample_weight").values, rtol: 1e-6, atol: 0)

        let head = try makeHead(inp)
        let loss = try head.forward(embeddings: inp.embedding, labels: inp.labels, sampleWeights: w)
        check("tiny_nondetached loss/value", [Float(loss)], try Reference.load("tiny_nondetached/loss/value").values, rtol: 1e-4, atol: 0)

        var dEmb = [Float](repeating: 0, count: inp.batch * inp.dim)
        var dW = [Float](repeating: 0, count: inp.batch)
        try dEmb.withUnsafeMutableBufferPointer { e in
            try dW.withUnsafeMutableBufferPointer { try head.backward(embeddingGradient: e, sampleWeightGradient: $0) }
        }
        check("tiny_nondetached grad/partial_fc.weight", Array(head.gradient.all),
              try Reference.load("tiny_nondetached/grad/partial_fc.weight").values, rtol: 2e-3, atol: 1e-5)
        var dStd = [Float](repeating: .nan, count: inp.batch * inp.patches)
        try inp.patchStd.withUnsafeBufferPointer { s in
            try dW.withUnsafeBufferPointer { g in
                try dStd.withUnsafeMutableBufferPointer { try ehsm.backward(patchStd: s, batch: inp.batch, weightGradient: g, into: $0) }
            }
        }

        // Double model: nll from the Double head at the same (float) inputs.
        let ref = HeadReference(batch: inp.batch, dim: inp.dim, classes: inp.classes, margin: try .arcFace(), labels: inp.labels)
        let nll = ref.nll(logits: ref.marginLogits(cos: ref.cosines(x: HeadReference.doubles(inp.embedding), w: HeadReference.doubles(inp.centres))).logits,
                          floored: true)
        let sigma = HeadReference.doubles(inp.patchStd)
        let fd = HeadReference.finiteDifference(sigma, h: 1e-6) { s in
            let ws = HeadReference.ehsmWeights(sigma: s, batch: inp.batch, patches: inp.patches, config: config)
            return zip(ws, nll).reduce(0) { $0 + $1.0 * $1.1 } / Double(inp.batch)
        }
        check("tiny_nondetached dL/dpatch_std vs finite differences", dStd, HeadReference.floats(fd), rtol: 1e-3, atol: 1e-8)
        // Double loss agrees with the official value too.
        let ws = HeadReference.ehsmWeights(sigma: sigma, batch: inp.batch, patches: inp.patches, config: config)
        let lossDouble = zip(ws, nll).reduce(0) { $0 + $1.0 * $1.1 } / Double(inp.batch)
        XCTAssertEqual(lossDouble, Double(try Reference.load("tiny_nondetached/loss/value").values[0]), accuracy: 1e-3)
    }
}
