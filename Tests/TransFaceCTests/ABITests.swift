import CTransFace
import Foundation
import TFTestSupport
import XCTest

import TransFaceC  // links the exported symbols; the calls below go through the C declarations

/// The header, the compile-time signature checks and the built library's exports agree.
final class ABITests: XCTestCase {
    /// Function names declared in include/transface.h.
    static func headerFunctions() throws -> Set<String> {
        let header = try String(contentsOfFile: Reference.repoRoot + "/include/transface.h", encoding: .utf8)
        let regex = try NSRegularExpression(pattern: #"^[a-z0-9_ \*]*?\b(transface_[a-z_]+)\("#, options: .anchorsMatchLines)
        let ns = header as NSString
        return Set(regex.matches(in: header, range: NSRange(location: 0, length: ns.length)).map { ns.substring(with: $0.range(at: 1)) })
    }

    func testEveryHeaderFunctionIsSignatureChecked() throws {
        let source = try String(contentsOfFile: Reference.repoRoot + "/Sources/TransFaceC/SignatureCheck.swift", encoding: .utf8)
        let checked = Set(source.split(separator: "\n").compactMap { line -> String? in
            guard let r = line.range(of: "same(CTransFace.") else { return nil }
            return String(line[r.upperBound...].prefix { $0 != "," })
        })
        let declared = try Self.headerFunctions()
        XCTAssertGreaterThan(declared.count, 30)
        XCTAssertEqual(checked, declared)
    }

    func testBuiltLibraryExportsExactlyTheHeaderFunctions() throws {
        let library = ProcessInfo.processInfo.environment["TRANSFACE_LIBRARY"] ?? Reference.repoRoot + "/.build/debug/libtransface.so"
        guard FileManager.default.fileExists(atPath: library) else {
            return XCTFail("\(library) is missing: run `swift build` before the tests")
        }
        let nm = Process()
        nm.executableURL = URL(fileURLWithPath: "/usr/bin/nm")
        nm.arguments = ["-D", "--defined-only", library]
        let pipe = Pipe()
        nm.standardOutput = pipe
        try nm.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        nm.waitUntilExit()
        let exported = Set(output.split(separator: "\n").compactMap { line -> String? in
            let parts = line.split(separator: " ")
            guard parts.count == 3, parts[1] == "T", parts[2].hasPrefix("transface_") else { return nil }
            return String(parts[2])
        })
        XCTAssertEqual(exported, try Self.headerFunctions())
    }

    func testLastErrorIsPerThreadAndNamesTheFunction() throws {
        var model: OpaquePointer?
        XCTAssertEqual(CTransFace.transface_model_load("/nonexistent/model.tfm", nil, &model), TRANSFACE_IO)
        XCTAssertNil(model)
        let mine = String(cString: CTransFace.transface_last_error())
        XCTAssertTrue(mine.hasPrefix("transface_model_load: cannot open '/nonexistent/model.tfm'"), mine)
        let other = Thread { _ = CTransFace.transface_compare(nil, nil, 0, nil) }
        other.start()
        while !other.isFinished { usleep(1000) }
        XCTAssertEqual(String(cString: CTransFace.transface_last_error()), mine)
        XCTAssertEqual(String(cString: CTransFace.transface_status_string(TRANSFACE_FORMAT)), "bad file format")
        XCTAssertEqual(CTransFace.transface_version_number(),
                       UInt32(TRANSFACE_VERSION_MAJOR * 10000 + TRANSFACE_VERSION_MINOR * 100 + TRANSFACE_VERSION_PATCH))
        XCTAssertEqual(CTransFace.transface_format_version(), UInt32(TRANSFACE_FORMAT_VERSION))
    }
}
