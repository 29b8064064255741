import TFCore
import TFKernels
import TFModel
import TFTestSupport
import XCTest

/// A loaded model keeps its block Linears only packed (`TransFaceModel.packedBlocks`): every
/// value must come back bit for bit, and contexts over it must embed exactly as over the
/// float32 model it was saved from.
final class PackedBlockWeightsTests: XCTestCase {
    private var folder = ""
    override func setUpWithError() throws { folder = try Reference.temporaryFolder() }
    override func tearDown() { Reference.removeTree(folder) }

    /// The tiny reference model (dimensions oneDNN pads) and one whose dimensions fill its blocks.
    private func models() throws -> [TransFaceModel] {
        let builder = try ModelBuilder(config: ViTConfig(imgSize: 18, embedDim: 64, depth: 2, numHeads: 2, mlpHiddenDim: 256,
                                                         embeddingSize: 16))
        builder.initializeWeights(seed: 3)
        return [try Reference.tinyModel(), try builder.build()]
    }

    private func bits(_ v: some Sequence<Float>) -> [UInt32] { v.map(\.bitPattern) }

    func testLoadedModelGivesEveryValueBack() throws {
        for (i, model) in try models().enumerated() {
            let path = folder + "/m\(i).tfm"
            try ModelFile.write(model, to: path)
            let loaded = try ModelFile.load(path: path)
            XCTAssertNil(model.packedBlocks)
            let packed = try XCTUnwrap(loaded.packedBlocks)
            XCTAssertEqual(packed.blocks.count, model.config.depth)
            for e in model.layout.entries {
                XCTAssertEqual(bits(try loaded.tensor(e.name)), bits(try model.tensor(e.name)), e.name)
                if packed.weight(e.name) != nil {
                    XCTAssertTrue(loaded.slab.view(e.offset, e.count).allSatisfy { $0 == 0 }, "\(e.name) has no float32 copy")
                }
            }
            XCTAssertEqual(try loaded.withFloat32Parameters { bits($0.all) }, bits(model.slab.all))
            var spans: [Float] = []
            try loaded.forEachFloat32Span { spans += $0 }
            XCTAssertEqual(bits(spans), bits(model.slab.all))

            var options = ModelFile.LoadOptions()
            options.packBlockLinears = false
            let plain = try ModelFile.load(path: path, options: options)
            XCTAssertNil(plain.packedBlocks)
            XCTAssertEqual(bits(plain.slab.all), bits(model.slab.all))

            // Saving a packed model writes the float32 values.
            try ModelFile.write(loaded, to: path + ".again")
            XCTAssertEqual(try ModelFile.load(path: path + ".again").withFloat32Parameters { bits($0.all) }, bits(model.slab.all))
        }
    }

    func testContextsOverPackedWeightsEmbedAsOverFloat32() throws {
        let precisions: [Precision] = MatmulBackend.supportsBF16 ? [.fp32, .bf16] : [.fp32]
        for (i, model) in try models().enumerated() {
            let path = folder + "/e\(i).tfm"
            try ModelFile.write(model, to: path)
            let loaded = try ModelFile.load(path: path)
            let c = model.config, count = 3
            var rng = SeededRNG(seed: UInt64(11 + i))
            let images = (0..<(count * c.imgSize * c.imgSize * 3)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            func embed(_ m: TransFaceModel, _ precision: Precision, _ threads: Int) throws -> [UInt32] {
                let embedder = try Embedder(model: m, threads: threads, maxBatch: 2, precision: precision)
                var out = [Float](repeating: 0, count: count * c.embeddingSize)
                try out.withUnsafeMutableBufferPointer { o in
                    try embedder.embed(images: images, count: count, width: c.imgSize, height: c.imgSize, into: .init(embeddings: o))
                }
                return bits(out)
            }
            for precision in precisions {
                for threads in [1, 2] {
                    XCTAssertEqual(try embed(loaded, precision, threads), try embed(model, precision, threads),
                                   "model \(i), \(precision), \(threads) threads")
                }
            }
            // A float32 context reads the model's packed weights instead of packing its own.
            let own = try Embedder(model: model, threads: 1, maxBatch: 2).workspaceBytes
            let shared = try Embedder(model: loaded, threads: 1, maxBatch: 2).workspaceBytes
            XCTAssertEqual(own - shared, try XCTUnwrap(loaded.packedBlocks).bytes)
        }
    }
}
