import Foundation
import TFConvert
import TFCore
import TFData
import TFTestSupport
import XCTest

/// The legacy (pre-1.6) torch.save reader on files of `TorchLegacyWriter`: values, views,
/// refusals, and every truncation refused with a `format` error.
final class TorchLegacyFileTests: XCTestCase {
    var folder = ""
    override func setUpWithError() throws { folder = try Reference.temporaryFolder() }
    override func tearDown() { Reference.removeTree(folder) }

    func write(_ bytes: [UInt8], _ name: String = "x.pt") throws -> String {
        let path = folder + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    static let plain = TorchLegacyWriter.encode(
        tensors: [.init(name: "conv1.weight", storage: "1", shape: [2, 1, 2, 2]), .init(name: "conv1.bias", storage: "2", shape: [2]),
                  .init(name: "t", storage: "3", offset: 1, shape: [2, 3], stride: [1, 2])],
        storages: [.init(key: "1", values: (0..<8).map { Double($0) - 3.5 }), .init(key: "2", values: [0.5, -1]),
                   .init(key: "3", values: (0..<7).map { Double($0) / 4 }, float64: true)])

    func tensors(_ root: Pickle.Value) throws -> [String: SourceTensor] {
        guard case .dict(let d) = root else { throw TransFaceError.format("not a dict") }
        var out: [String: SourceTensor] = [:]
        for item in d.items {
            guard case .string(let k) = item.key, case .object(let o) = item.value, let t = o as? SourceTensor else { continue }
            out[k] = t
        }
        return out
    }

    func testReadsValuesAndViews() throws {
        let t = try tensors(try TorchFile.load(path: try write(Self.plain)))
        XCTAssertEqual(t.count, 3)
        XCTAssertEqual(t["conv1.weight"]?.shape, [2, 1, 2, 2])
        XCTAssertEqual(try t["conv1.weight"]!.floats("w"), (0..<8).map { Float($0) - 3.5 })
        XCTAssertEqual(try t["conv1.bias"]!.floats("b"), [0.5, -1])
        // offset 1, stride (1, 2): rows [1, 3, 5], [2, 4, 6] of i / 4, float64
        XCTAssertEqual(t["t"]?.dtype, "float64")
        XCTAssertEqual(try t["t"]!.floats("t"), [1, 3, 5, 2, 4, 6].map { Float($0) / 4 })
        // the same bytes from memory (a wheel member)
        XCTAssertEqual(try tensors(try TorchLegacyFile.load(bytes: Self.plain, name: "mem")).count, 3)
    }

    func testEveryTruncationIsAFormatError() throws {
        for n in 0..<Self.plain.count {
            let path = try write(Array(Self.plain[0..<n]), "cut.pt")
            XCTAssertThrowsError(try TorchFile.load(path: path), "cut at \(n)") { error in
                guard let e = error as? TransFaceError else { return XCTFail("cut at \(n): not a TransFaceError: \(error)") }
                XCTAssertEqual(e.kind, .format, "cut at \(n): \(e.message)")
                XCTAssertTrue(e.message.contains("cut.pt"), "cut at \(n): '\(e.message)' does not name the file")
            }
        }
    }

    func expectRefused(_ bytes: [UInt8], _ fragment: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let path = try write(bytes, "bad.pt")
        XCTAssertThrowsError(try TorchFile.load(path: path), file: file, line: line) { error in
            guard let e = error as? TransFaceError else { return XCTFail("not a TransFaceError: \(error)", file: file, line: line) }
            XCTAssertTrue(e.message.contains(fragment), "'\(e.message)' lacks '\(fragment)'", file: file, line: line)
        }
    }

    func testRefusals() throws {
        let b = Self.plain
        try expectRefused(b + [0], "1 unexpected bytes after the last storage")
        var magic = b; magic[5] ^= 1
        try expectRefused(magic, "no magic number")
        try expectRefused([0x80, 0x02, 0x8A, 0x0A] + Array("legacy".utf8), "legacy torch.save file ends inside its magic number")
        // the element count of the first storage (key "1", 8 elements) says 9
        let countAt = b.count - (8 + 8 * 4) - (8 + 2 * 4) - (8 + 7 * 8)
        var count = b; count[countAt] = 9
        try expectRefused(count, "storage 1 at offset \(countAt) holds 9 elements, the pickle says 8")
        // a global that is not on the allowlist, and a storage too small for its view
        let evil = TorchLegacyWriter.encode(tensors: [.init(name: "a", storage: "1", shape: [4])], storages: [.init(key: "1", values: [1, 2])])
        try expectRefused(evil, "reaches element 3 of a storage of 2")
        var os = Self.plain
        let at = os.indices.first { Array(os[$0..<($0 + 11)]) == Array("collections".utf8) }!
        os.replaceSubrange(at..<(at + 24), with: Array("subprocess\ncheck_output\n".utf8))
        try expectRefused(os, "global subprocess.check_output is not on the whitelist")
        // listed twice / not listed
        let twice = TorchLegacyWriter.encode(tensors: [.init(name: "a", storage: "1", shape: [1])], storages: [.init(key: "1", values: [1]), .init(key: "1", values: [1])])
        try expectRefused(twice, "storage 1 is listed twice")
        let unused = TorchLegacyWriter.encode(tensors: [], storages: [.init(key: "1", values: [1])])
        try expectRefused(unused, "storage 1 is listed but no tensor uses it")
    }

    /// Files torch itself writes (legacy, protocols 2 and 4, and zip), with views on a shared
    /// storage, a transpose, float64, float16 and a Parameter: values equal torch's bit for bit.
    func testFilesTorchWrites() throws {
        let script = """
            import sys, zlib, collections, warnings
            warnings.filterwarnings("ignore")
            try:
                import torch
            except ImportError:
                sys.exit(3)
            big = torch.arange(24, dtype=torch.float32).reshape(4, 6) / 7
            sd = collections.OrderedDict(a=big, b=big[1:3, 2:5], c=big.t(), d=torch.linspace(-1, 1, 5, dtype=torch.float64),
                                         e=torch.tensor([1.5, -0.25], dtype=torch.float16), p=torch.nn.Parameter(torch.ones(2)))
            d = sys.argv[1]
            torch.save(sd, d + "/legacy2.pt", _use_new_zipfile_serialization=False)
            torch.save(sd, d + "/legacy4.pt", _use_new_zipfile_serialization=False, pickle_protocol=4)
            torch.save(sd, d + "/zip.pt")
            for k, v in sd.items():
                print(k, zlib.crc32(v.detach().float().contiguous().numpy().tobytes()))
            """
        guard let text = runPython(script, [folder], needs: "torch") else { throw XCTSkip("torch is not installed") }
        let expected = text.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        XCTAssertEqual(expected.count, 6)
        for name in ["legacy2.pt", "legacy4.pt", "zip.pt"] {
            let t = try tensors(try TorchFile.load(path: folder + "/" + name))
            for e in expected {
                let values = try XCTUnwrap(t[e[0]], "\(name) \(e[0])").floats(e[0])
                XCTAssertEqual(String(values.withUnsafeBytes { crc32($0) }), e[1], "\(name) \(e[0])")
            }
        }
    }

    /// A legacy state_dict through the embedder converter's front end (`Converter.open`).
    func testConverterOpensLegacyFiles() throws {
        let opened = try Converter.open(try write(Self.plain, "sd.pth"))
        XCTAssertEqual(opened.format, "torch legacy (read without torch)")
        XCTAssertEqual(opened.tensors.map(\.0), ["conv1.weight", "conv1.bias", "t"])
    }
}
