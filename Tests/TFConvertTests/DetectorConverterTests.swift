import Foundation
import TFConvert
import TFCore
import TFData
import TFModel
import TFTestSupport
import XCTest

/// facenet-pytorch's MTCNN weights to a `DetectorModel`: the real wheel when it is at hand
/// (`TRANSFACE_FACENET_WHEEL` or /tmp/fnp), checked bit for bit against torch.load (when torch
/// is installed) and against values taken from it once; synthetic state_dicts otherwise.
final class DetectorConverterTests: XCTestCase {
    var folder = ""
    override func setUpWithError() throws { folder = try Reference.temporaryFolder() }
    override func tearDown() { Reference.removeTree(folder) }

    static var wheel: String? { FacenetWheel.path() }

    func requireWheel() throws -> String {
        guard let w = Self.wheel else {
            let reason = "no facenet-pytorch wheel (set TRANSFACE_FACENET_WHEEL, or pip download facenet-pytorch==2.6.0 --no-deps -d /tmp/fnp)"
            print("skipped: \(reason)")
            throw XCTSkip(reason)
        }
        return w
    }

    static func crc(_ v: [Float]) -> UInt32 { v.withUnsafeBytes { crc32($0) } }

    /// First and last value and the CRC-32 of the float32 bytes, from torch.load (torch 2.x).
    static let known: [(String, [Int], Float, Float, UInt32)] = [
        ("pnet.conv1.weight", [10, 3, 3, 3], -0x1.4e6d4p-4, 0x1.0476f2p-1, 0x91a3227a),
        ("pnet.conv1.bias", [10], -0x1.534ccp-4, 0x1.55aaa8p-1, 0x0f5d67c8),
        ("pnet.conv4_2.bias", [4], 0x1.613f4cp-6, -0x1.8f5c38p-7, 0xb82b02df),
        ("rnet.conv1.weight", [28, 3, 3, 3], -0x1.019d9p-1, -0x1.0745fp-2, 0x6a919b14),
        ("rnet.conv1.bias", [28], -0x1.698ccp-2, -0x1.2b91a4p-2, 0x8a4194b8),
        ("rnet.dense5_2.bias", [4], 0x1.48e984p-6, -0x1.c434f2p-5, 0x5fe3245c),
        ("onet.conv1.weight", [32, 3, 3, 3], 0x1.ed0664p-2, 0x1.886442p-5, 0xa26cc5d9),
        ("onet.conv1.bias", [32], 0x1.74c1bap-4, -0x1.574b4ep-2, 0xd90d799d),
        ("onet.dense6_3.bias", [10], 0x1.5c07dap-2, 0x1.7e64p-1, 0x94430d46),
    ]

    func testRealWheelMatchesTorch() throws {
        let wheel = try requireWheel()
        let model = try DetectorConverter.convert(facenetWheel: wheel)
        XCTAssertEqual(model.config, DetectorConfig())
        for (name, shape, first, last, crc) in Self.known {
            let t = try XCTUnwrap(model.tensors[name], name)
            XCTAssertEqual(t.shape, shape, name)
            XCTAssertEqual(t.values.first?.bitPattern, first.bitPattern, name)
            XCTAssertEqual(t.values.last?.bitPattern, last.bitPattern, name)
            XCTAssertEqual(Self.crc(t.values), crc, name)
        }
        // every tensor against torch.load, when torch is installed
        let script = """
            import io, sys, zipfile, zlib
            try:
                import torch
            except ImportError:
                sys.exit(3)
            z = zipfile.ZipFile(sys.argv[1])
            for net in ("pnet", "rnet", "onet"):
                sd = torch.load(io.BytesIO(z.read(f"facenet_pytorch/data/{net}.pt")), map_location="cpu", weights_only=False)
                for k, v in sd.items():
                    a = v.detach().contiguous().float().numpy()
                    print(f"{net}.{k}", "x".join(map(str, a.shape)), zlib.crc32(a.tobytes()))
            """
        guard let text = runPython(script, [wheel], needs: "torch, for the comparison with torch.load") else { return }
        let lines = text.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        XCTAssertEqual(lines.count, DetectorModel.layout.count)
        for l in lines {
            let t = try XCTUnwrap(model.tensors[l[0]], l[0])
            XCTAssertEqual(t.shape.map(String.init).joined(separator: "x"), l[1], l[0])
            XCTAssertEqual(String(Self.crc(t.values)), l[2], "\(l[0]) differs from torch.load")
        }
        print("all \(lines.count) tensors equal torch.load bit for bit")
    }

    /// The three files given separately convert to the same model, and through a detector file.
    func testSeparateFilesAndFileRoundTrip() throws {
        let wheel = try requireWheel()
        let zip = try ZipArchive(path: wheel)
        var paths: [String] = []
        for net in DetectorConverter.networks {
            let path = folder + "/\(net).pt"
            try Data(try zip.read(DetectorConverter.wheelMember(net))).write(to: URL(fileURLWithPath: path))
            paths.append(path)
        }
        let a = try DetectorConverter.convert(pnet: paths[0], rnet: paths[1], onet: paths[2])
        let b = try DetectorConverter.convert(facenetWheel: wheel)
        XCTAssertEqual(a.tensors, b.tensors)
        try DetectorModelFile.save(a, to: folder + "/m.tfd", metadata: DetectorConverter.metadata(sources: paths))
        let back = try DetectorModelFile.load(path: folder + "/m.tfd")
        XCTAssertEqual(back.tensors, a.tensors)
        XCTAssertEqual(back.config, a.config)
        // the networks in the wrong order are refused naming the file and the names
        XCTAssertThrowsError(try DetectorConverter.convert(pnet: paths[1], rnet: paths[0], onet: paths[2])) { error in
            let m = (error as? TransFaceError)?.message ?? "\(error)"
            XCTAssertTrue(m.contains("rnet.pt' is not facenet-pytorch's pnet state_dict"), m)
        }
    }

    /// Synthetic legacy state_dicts of the layout's names (no wheel needed).
    func testSyntheticStateDicts() throws {
        var paths: [String] = []
        var expected: [String: [Float]] = [:]
        for net in DetectorConverter.networks {
            var tensors: [TorchLegacyWriter.Tensor] = [], storages: [TorchLegacyWriter.Storage] = []
            for (i, e) in DetectorModel.layout.enumerated() where e.name.hasPrefix(net + ".") {
                let values = (0..<e.shape.reduce(1, *)).map { Double(($0 * 7 + i) % 23) / 8 - 1 }
                tensors.append(.init(name: String(e.name.dropFirst(5)), storage: "\(i)", shape: e.shape))
                storages.append(.init(key: "\(i)", values: values, float64: i % 2 == 0))
                expected[e.name] = values.map(Float.init)
            }
            let path = folder + "/\(net).pt"
            try Data(TorchLegacyWriter.encode(tensors: tensors, storages: storages)).write(to: URL(fileURLWithPath: path))
            paths.append(path)
        }
        let model = try DetectorConverter.convert(pnet: paths[0], rnet: paths[1], onet: paths[2])
        for (name, values) in expected { XCTAssertEqual(model.values(name), values, name) }
        // a missing tensor is named
        let short = TorchLegacyWriter.encode(tensors: [.init(name: "conv1.weight", storage: "0", shape: [10, 3, 3, 3])],
                                             storages: [.init(key: "0", values: [Double](repeating: 0, count: 270))])
        try Data(short).write(to: URL(fileURLWithPath: paths[0]))
        XCTAssertThrowsError(try DetectorConverter.convert(pnet: paths[0], rnet: paths[1], onet: paths[2])) { error in
            let m = (error as? TransFaceError)?.message ?? "\(error)"
            XCTAssertTrue(m.contains("pnet.pt' is not facenet-pytorch's pnet state_dict: missing pnet.conv1.bias"), m)
        }
    }
}
