import Foundation
import TFCore
import TFModel
import TFTestSupport
import XCTest

/// Model files: round trips, half-precision storage, and refusal of every kind of damage.
final class ModelFileTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws { folder = try Reference.temporaryFolder() }
    override func tearDown() { Reference.removeTree(folder) }

    /// A miniature random model (18×18 input, 4 patches; a 4 KiB file, so sweeps cover every byte).
    static func smallModel(seed: UInt64 = 1) throws -> TransFaceModel {
        let builder = try ModelBuilder(config: ViTConfig(imgSize: 18, embedDim: 8, depth: 1, numHeads: 2, mlpHiddenDim: 16,
                                                         embeddingSize: 4))
        builder.initializeWeights(seed: seed)
        try builder.setMetadata("source", "unit test")
        return try builder.build()
    }

    private func expectFormatError(_ path: String, _ fragment: String? = nil, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try ModelFile.load(path: path), file: file, line: line) { error in
            guard let e = error as? TransFaceError else { return XCTFail("not a TransFaceError: \(error)", file: file, line: line) }
            XCTAssertFalse(e.message.isEmpty, file: file, line: line)
            if let fragment { XCTAssertTrue(e.message.contains(fragment), "'\(e.message)' lacks '\(fragment)'", file: file, line: line) }
        }
    }

    func testRoundTripKeepsEverything() throws {
        let model = try Reference.tinyModel()
        let path = folder + "/tiny.tfm"
        try ModelFile.write(model, to: path)
        let loaded = try ModelFile.load(path: path)
        XCTAssertEqual(loaded.config, model.config)
        XCTAssertEqual(loaded.preprocess, model.preprocess)
        XCTAssertEqual(try loaded.withFloat32Parameters { Array($0.all) }, Array(model.slab.all))
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
        XCTAssertLessThan(size - model.layout.weightBytes, 8192, "header overhead")
    }

    /// A plain ViT (no SE module) keeps that through a file, has no `senet.*` tensors, and its
    /// head sees the normalised tokens: uniform patch weights, embeddings equal after reload.
    func testPlainViTRoundTrip() throws {
        var config = ViTConfig(imgSize: 18, embedDim: 8, depth: 1, numHeads: 2, mlpHiddenDim: 16, embeddingSize: 4)
        config.seGate = false
        let builder = try ModelBuilder(config: config)
        builder.initializeWeights(seed: 3)
        XCTAssertThrowsError(try builder.setTensor("senet.0.weight", [Float](repeating: 0, count: 4 * 32)))
        let path = folder + "/plain.tfm"
        try builder.save(to: path)
        let loaded = try ModelFile.load(path: path)
        XCTAssertFalse(loaded.config.seGate)
        XCTAssertFalse(loaded.layout.entries.contains { $0.name.hasPrefix("senet") })
        let image = [UInt8](repeating: 90, count: 18 * 18 * 3)
        var e1 = [Float](repeating: 0, count: 4), e2 = e1, weights = [Float](repeating: 0, count: 4)
        try image.withUnsafeBufferPointer { img in
            try e1.withUnsafeMutableBufferPointer { o in
                try weights.withUnsafeMutableBufferPointer { w in
                    try Embedder(model: try builder.build()).embed(images: img.baseAddress!, count: 1, width: 18, height: 18,
                                                                   into: .init(embeddings: o, patchWeights: w))
                }
            }
            try e2.withUnsafeMutableBufferPointer { o in
                try Embedder(model: loaded).embed(images: img.baseAddress!, count: 1, width: 18, height: 18, into: .init(embeddings: o))
            }
        }
        XCTAssertEqual(e1, e2)
        XCTAssertEqual(weights, [0.25, 0.25, 0.25, 0.25])
    }

    func testHalfPrecisionFilesLoadAsFloat32() throws {
        let model = try Self.smallModel()
        for dtype in [StoredDType.f16, .bf16] {
            let path = folder + "/half-\(dtype).tfm"
            try ModelFile.write(model, to: path, dtype: dtype)
            let loaded = try ModelFile.load(path: path)
            let original = Array(model.slab.all), back = try loaded.withFloat32Parameters { Array($0.all) }
            for (a, b) in zip(original, back) {
                XCTAssertEqual(b, HalfPrecision.decode(HalfPrecision.encode(a, dtype), dtype))
                XCTAssertEqual(a, b, accuracy: abs(a) * (dtype == .f16 ? 1e-3 : 8e-3) + 1e-7)
            }
        }
    }

    func testMetadataSurvivesAndMissingFileIsAnIOError() throws {
        let path = folder + "/m.tfm"
        try ModelFile.write(try Self.smallModel(), to: path)
        XCTAssertEqual(try ModelFile.load(path: path).metadataValue("source"), "unit test")
        XCTAssertThrowsError(try ModelFile.load(path: folder + "/nope.tfm")) { XCTAssertEqual(($0 as? TransFaceError)?.kind, .io) }
    }

    func testEmptyAndForeignFilesAreRefused() throws {
        let empty = folder + "/empty.tfm"
        XCTAssertTrue(FileManager.default.createFile(atPath: empty, contents: Data()))
        expectFormatError(empty, "empty")
        let foreign = folder + "/foreign.tfm"
        XCTAssertTrue(FileManager.default.createFile(atPath: foreign, contents: Data(repeating: 0x41, count: 4096)))
        expectFormatError(foreign, "magic")
    }

    func testNewerFormatVersionNamesBothVersions() throws {
        let path = folder + "/v.tfm"
        try ModelFile.write(try Self.smallModel(), to: path)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[8] = 99
        try bytes.write(to: URL(fileURLWithPath: path))
        expectFormatError(path, "version 99 is newer than this library reads (1)")
    }

    func testEveryTruncationIsRefused() throws {
        let path = folder + "/t.tfm", cut = folder + "/cut.tfm"
        try ModelFile.write(try Self.smallModel(), to: path)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        for n in 0..<bytes.count {
            try bytes.prefix(n).write(to: URL(fileURLWithPath: cut))
            expectFormatError(cut)
        }
    }

    func testEveryFlippedByteIsDetected() throws {
        let path = folder + "/f.tfm", bad = folder + "/bad.tfm"
        try ModelFile.write(try Self.smallModel(), to: path)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        for offset in 0..<bytes.count {
            for mask: UInt8 in [0x01, 0x80] {
                var damaged = bytes
                damaged[offset] ^= mask
                try damaged.write(to: URL(fileURLWithPath: bad))
                expectFormatError(bad)
            }
        }
    }

    func testAppendedBytesAreRefused() throws {
        let path = folder + "/a.tfm"
        try ModelFile.write(try Self.smallModel(), to: path)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes.append(0)
        try bytes.write(to: URL(fileURLWithPath: path))
        expectFormatError(path, "unexpected bytes")
    }

    /// Rewrites a valid file's header through `edit` (with a correct checksum).
    private func rewriteHeader(_ edit: (inout ModelHeader) -> Void) throws -> String {
        try Self.rewriteHeader(of: try Self.smallModel(), in: folder, edit)
    }

    /// Writes `model` into `folder`, then a copy whose header went through `edit` (with a correct
    /// checksum); returns the copy's path.
    static func rewriteHeader(of model: TransFaceModel, in folder: String, _ edit: (inout ModelHeader) -> Void) throws -> String {
        try ModelFile.write(model, to: folder + "/h.tfm")
        try Reference.rewriteHeader(of: folder + "/h.tfm", to: folder + "/edited.tfm", edit)
        return folder + "/edited.tfm"
    }

    func testHeaderRewriteHelperProducesLoadableFiles() throws {
        XCTAssertNoThrow(try ModelFile.load(path: try rewriteHeader { _ in }))
    }

    func testMissingExtraAndMisshapedTensorsAreNamed() throws {
        expectFormatError(try rewriteHeader { $0.tensors.removeAll { $0.name == "norm.bias" } }, "missing tensor norm.bias")
        expectFormatError(try rewriteHeader { $0.tensors[3].name = "blocks.9.attn.bias" }, "unknown tensor 'blocks.9.attn.bias'")
        expectFormatError(try rewriteHeader { $0.tensors.append($0.tensors[0]) }, "appears twice")
        expectFormatError(try rewriteHeader { $0.tensors[0].dims = [1, 16, 144] }, "has shape")
        expectFormatError(try rewriteHeader { $0.config.embedDim = 0 }, "embed_dim")
        expectFormatError(try rewriteHeader { $0.config.depth = 2 }, "missing tensor")
        expectFormatError(try rewriteHeader { $0.preprocess.std = [0, 1, 1] }, "std")
        expectFormatError(try rewriteHeader { let o = $0.tensors[0].offset; $0.tensors[0].offset = $0.tensors[1].offset; $0.tensors[1].offset = o }, "not where")
    }

    func testWeightLimitIsCheckedBeforeAllocating() throws {
        let path = folder + "/l.tfm"
        try ModelFile.write(try Self.smallModel(), to: path)
        var options = ModelFile.LoadOptions()
        options.maxWeightBytes = 1000
        XCTAssertThrowsError(try ModelFile.load(path: path, options: options)) {
            XCTAssertTrue(($0 as? TransFaceError)?.message.contains("exceed the limit") == true)
        }
    }

    func testFailedWriteLeavesPreviousFileAndNoTemporaryFiles() throws {
        let path = folder + "/keep.tfm"
        try ModelFile.write(try Self.smallModel(seed: 1), to: path)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try ModelFile.write(try Self.smallModel(seed: 2), to: folder + "/no/such/dir/x.tfm"))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), before)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), ["keep.tfm"])
    }
}
