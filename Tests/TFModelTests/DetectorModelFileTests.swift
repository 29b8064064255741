import Foundation
import TFCore
import TFModel
import TFTestSupport
import XCTest

/// Detector files (`DetectorModelFile`) and the header's kind: round trips, each loader refusing
/// the other kind, damage refused, and model files written before kinds existed unchanged.
final class DetectorModelFileTests: XCTestCase {
    var folder = ""
    override func setUpWithError() throws { folder = try Reference.temporaryFolder() }
    override func tearDown() { Reference.removeTree(folder) }

    static let fixtures: String = {
        let file = "\(#filePath)"
        return String(file[..<file.range(of: "/DetectorModelFileTests.swift")!.lowerBound]) + "/Fixtures"
    }()

    static func randomDetector(seed: UInt64 = 5) throws -> DetectorModel {
        var rng = SeededRNG(seed: seed)
        var tensors: [String: DetectorModel.Tensor] = [:]
        for e in DetectorModel.layout {
            tensors[e.name] = .init(shape: e.shape, values: (0..<e.shape.reduce(1, *)).map { _ in Float(Int(rng.next() % 2001) - 1000) / 997 })
        }
        var config = DetectorConfig()
        config.minFaceSize = 40; config.scaleFactor = 0.6; config.thresholds = [0, 0.5, 0.95]
        config.nmsWithinScale = 0.4; config.nmsAcrossScales = 0.6; config.nmsRefine = 0.65; config.nmsOutput = 1
        return try DetectorModel(config: config, tensors: tensors)
    }

    func message(_ body: () throws -> Any) -> String {
        do { _ = try body(); return "(no error)" } catch let e as TransFaceError { return e.message } catch { return "not a TransFaceError: \(error)" }
    }

    func testRoundTripKeepsEverything() throws {
        let model = try Self.randomDetector()
        let path = folder + "/d.tfd"
        try DetectorModelFile.save(model, to: path, metadata: [("source", "unit test")])
        let back = try DetectorModelFile.load(path: path)
        XCTAssertEqual(back.config, model.config)
        XCTAssertEqual(back.tensors, model.tensors)
        let opened = try TensorContainer.open(.model, path: path)
        XCTAssertEqual(opened.header.kind, .detector)
        XCTAssertEqual(opened.header.tensors.map(\.name), DetectorModel.layout.map(\.name))
        XCTAssertEqual(opened.header.metadata.map { "\($0.key)=\($0.value)" }, ["source=unit test"])
    }

    func testEachLoaderRefusesTheOtherKind() throws {
        let path = folder + "/d.tfd"
        try DetectorModelFile.save(try Self.randomDetector(), to: path)
        XCTAssertEqual(message { try ModelFile.load(path: path) }, "'\(path)' is a face detector, not an embedding model")
        let embedder = Self.fixtures + "/before-kinds-f32.tfm"
        XCTAssertEqual(message { try DetectorModelFile.load(path: embedder) }, "'\(embedder)' is a face embedding model, not a detector")
    }

    /// Files written by libtransface before the header had a kind (Fixtures/, the fuzz seeds of
    /// that version) load, and writing their header and weights again gives the same bytes: the
    /// embedder encoding is unchanged.
    func testFilesFromBeforeKindsLoadUnchanged() throws {
        for (name, dtype) in [("before-kinds-f32.tfm", StoredDType.f32), ("before-kinds-bf16.tfm", .bf16)] {
            let path = Self.fixtures + "/" + name
            let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            let model = try ModelFile.load(path: path)
            let opened = try TensorContainer.open(.model, path: path)
            XCTAssertEqual(opened.header.kind, .embedder)
            XCTAssertNil(opened.header.detector)
            let again = folder + "/again.tfm"
            try model.withFloat32Parameters {
                try TensorContainer.write(.model, header: opened.header, tensors: ModelFile.tensors(of: $0, layout: model.layout), to: again, dtype: dtype)
            }
            XCTAssertEqual(try [UInt8](Data(contentsOf: URL(fileURLWithPath: again))), original, name)
        }
    }

    func testDamageIsRefused() throws {
        let path = folder + "/d.tfd"
        try DetectorModelFile.save(try Self.randomDetector(), to: path)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let cut = folder + "/cut.tfd"
        // every cut in the header and padding, then every 4099th byte of the tensors
        for n in Array(0..<1024) + Array(stride(from: 1024, to: bytes.count, by: 4099)) {
            try Data(bytes[0..<n]).write(to: URL(fileURLWithPath: cut))
            let m = message { try DetectorModelFile.load(path: cut) }
            XCTAssertTrue(m.contains("cut.tfd"), "cut at \(n): \(m)")
        }
        var flipped = bytes
        flipped[bytes.count - 3] ^= 0x10
        try Data(flipped).write(to: URL(fileURLWithPath: cut))
        XCTAssertEqual(message { try DetectorModelFile.load(path: cut) }, "'\(cut)': checksum mismatch in tensor 'onet.dense6_3.bias' (corrupt file)")
    }

    /// A detector header whose settings are out of range is refused naming the setting.
    func testInvalidConfigIsRefused() throws {
        var model = try Self.randomDetector()
        model.config.thresholds = [0.5, 0.5]
        let path = folder + "/d.tfd"
        try DetectorModelFile.save(model, to: path)
        XCTAssertTrue(message { try DetectorModelFile.load(path: path) }.contains("detector thresholds [0.5, 0.5] must be 3 values"))
    }
}
