import Foundation
import TFCore
@testable import TFData
import TFTestSupport
import XCTest

/// Runs `python3 -c script args...`; returns stdout, or skips the test without python3.
func runPython(_ script: String, _ args: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", "-c", script] + args
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    do { try p.run() } catch { throw XCTSkip("python3 is not available: \(error)") }
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let stderr = String(decoding: e, as: UTF8.self)
    if stderr.contains("No module named 'numpy'") { throw XCTSkip("numpy is not available") }
    XCTAssertEqual(p.terminationStatus, 0, "python failed: \(stderr)", file: file, line: line)
    return String(decoding: o, as: UTF8.self)
}

/// Deterministic test images, generated the same way in Swift and Python: image i has
/// `sizes[i % 6]` bytes, byte k = (i * 31 + k * 7) % 256 (every byte value, so non-ASCII).
enum TestImages {
    static let sizes = [0, 1, 255, 256, 70_000, 3000]
    static func make(_ n: Int) -> [[UInt8]] {
        (0..<n).map { i in
            let block = (0..<256).map { k in UInt8((i * 31 + k * 7) % 256) }
            var out: [UInt8] = []
            let size = sizes[i % sizes.count]
            out.reserveCapacity(size + 256)
            while out.count < size { out += block }
            return Array(out.prefix(size))
        }
    }
    static func issame(_ pairs: Int) -> [Bool] { (0..<pairs).map { $0 % 3 != 1 } }
    static let python = """
    sizes = [0, 1, 255, 256, 70000, 3000]
    def make(n):
        out = []
        for i in range(n):
            block = bytes((i * 31 + k * 7) % 256 for k in range(256))
            size = sizes[i % len(sizes)]
            out.append((block * (size // 256 + 1))[:size])
        return out
    def issame(p):
        return [i % 3 != 1 for i in range(p)]
    """
}

final class PickleTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws { dir = try Reference.temporaryFolder() }
    override func tearDown() { Reference.removeTree(dir) }

    func testRoundTripAllProtocols() throws {
        // 1001 pairs: two APPENDS batches + a final APPEND of one item
        let images = TestImages.make(2 * 1001).map { Array($0.prefix(1000)) }, flags = TestImages.issame(1001)
        for proto in 2...5 {
            let bin = try VerificationBin(images: images, issame: flags)
            let bytes = try bin.encoded(protocol: proto)
            let back = try VerificationBin.decode(bytes)
            XCTAssertEqual(back, bin, "protocol \(proto)")
        }
        XCTAssertThrowsError(try VerificationBin(images: [[1]], issame: [true]))
    }

    /// Our files read by Python's own pickle: protocols 3-5 are byte-identical to CPython's
    /// `pickle.dumps((bins, issame), p)`; protocol 2 holds Python 2 `str`s, which Python 3
    /// reads with encoding='bytes' (verification.py's retry) and refuses with the default ASCII.
    func testPythonReadsOurFiles() throws {
        let pairs = 510
        let bin = try VerificationBin(images: TestImages.make(2 * pairs), issame: TestImages.issame(pairs))
        for proto in 2...5 { try bin.write(path: dir + "/p\(proto).bin", protocol: proto) }
        let out = try runPython(TestImages.python + """

        import pickle, sys
        d = sys.argv[1]
        want = (make(2 * \(pairs)), issame(\(pairs)))
        for p in (3, 4, 5):
            raw = open(f"{d}/p{p}.bin", "rb").read()
            assert pickle.loads(raw) == want, p
            ref = pickle.dumps(want, protocol=p)
            if raw == ref:
                print(p, "identical")
            else:
                k = next((i for i in range(min(len(raw), len(ref))) if raw[i] != ref[i]), min(len(raw), len(ref)))
                print(p, "differs at", k, "of", len(raw), len(ref), raw[max(0, k - 12):k + 12], ref[max(0, k - 12):k + 12])
        raw = open(f"{d}/p2.bin", "rb").read()
        try:
            pickle.loads(raw)
            print("2 ascii-loaded")
        except UnicodeDecodeError:
            print("2 needs encoding=bytes")
        got = pickle.loads(raw, encoding="bytes")
        assert got == want
        print("2 ok")
        """, [dir])
        XCTAssertEqual(out, "3 identical\n4 identical\n5 identical\n2 needs encoding=bytes\n2 ok\n")
    }

    /// Files written by Python's pickle, incl. protocol 2 of Python 3 bytes (`_codecs.encode`
    /// and `__builtin__.bytes` REDUCEs) and numpy uint8 arrays (`_reconstruct`, `_frombuffer`).
    func testWeReadPythonFiles() throws {
        let pairs = 30
        let images = TestImages.make(2 * pairs), flags = TestImages.issame(pairs)
        let listing = try runPython(TestImages.python + """

        import pickle, sys
        import numpy as np
        d = sys.argv[1]
        bins, same = make(2 * \(pairs)), issame(\(pairs))
        for p in (2, 3, 4, 5):
            open(f"{d}/bytes{p}.bin", "wb").write(pickle.dumps((bins, same), protocol=p))
            arrays = [np.frombuffer(b, dtype=np.uint8).reshape(-1, 1) if i % 2 else np.frombuffer(b, dtype=np.uint8).copy() for i, b in enumerate(bins)]
            open(f"{d}/numpy{p}.bin", "wb").write(pickle.dumps((arrays, np.array(same)), protocol=p))
            open(f"{d}/npbool{p}.bin", "wb").write(pickle.dumps((bins, [np.bool_(s) for s in same]), protocol=p))
        raw = pickle.dumps((bins, same), protocol=2)
        print(b"_codecs" in raw, b"__builtin__" in raw)
        # numpy < 2 (and Python 2) name the module numpy.core; GLOBAL is text, so renaming is safe
        arrays = [np.frombuffer(b, dtype=np.uint8).copy() for b in bins]
        old = pickle.dumps((arrays, same), protocol=2)
        assert b"numpy._core.multiarray" in old
        open(f"{d}/numpyold2.bin", "wb").write(old.replace(b"numpy._core", b"numpy.core"))
        print(np.__version__)
        """, [dir])
        XCTAssertTrue(listing.hasPrefix("True True\n"), listing)
        for kind in ["bytes", "numpy", "npbool", "numpyold"] {
            for p in (kind == "numpyold" ? 2...2 : 2...5) {
                let got = try VerificationBin.read(path: dir + "/\(kind)\(p).bin")
                XCTAssertEqual(got.images, images, "\(kind) protocol \(p)")
                XCTAssertEqual(got.issame, flags, "\(kind) protocol \(p)")
            }
        }
    }

    func testRefusesCodeAndMalformedInput() throws {
        func refuse(_ bytes: [UInt8], _ fragment: String, line: UInt = #line) {
            XCTAssertThrowsError(try Pickle.load(bytes), line: line) { e in
                XCTAssertEqual((e as? TransFaceError)?.kind, .format, line: line)
                XCTAssertTrue("\(e)".contains(fragment), "\(e)", line: line)
            }
        }
        // the classic: os.system('echo pwned') — never executed, named in the error
        refuse(Array("cos\nsystem\n(S'echo pwned'\ntR.".utf8), "0x53")  // protocol-0 STRING is not even parsed
        refuse([0x80, 0x02] + Array("cos\nsystem\nq".utf8) + [0x00, 0x55, 0x04] + Array("echo".utf8) + [0x71, 0x01, 0x85, 0x52, 0x2E], "os.system")
        refuse([0x80, 0x04, 0x8C, 0x05] + Array("posix".utf8) + [0x8C, 0x06] + Array("system".utf8) + [0x93, 0x29, 0x52, 0x2E], "posix.system")
        refuse([0x80, 0x02, 0x5D, 0x68, 0x07, 0x2E], "memo key 7")
        refuse([0x80, 0x02, 0x61, 0x2E], "underflow")
        refuse([0x80, 0x02, 0x55, 0x10, 0x41], "truncated")
        refuse([0x80, 0x02, 0x4E, 0x4E, 0x2E], "STOP with 2")
        refuse([0x80, 0x02, 0x4E, 0x2E, 0x00], "after STOP")
        refuse([0x80, 0x02, 0x4E], "truncated")
        refuse([0x80, 0x06, 0x4E, 0x2E], "protocol 6")
        refuse([0x80, 0x04, 0x95] + [UInt8](repeating: 0xFF, count: 8) + [0x4E, 0x2E], "frame")
        refuse([0x80, 0x02, 0x54, 0xFF, 0xFF, 0xFF, 0xFF], "negative")
        refuse([0x80, 0x05, 0x97, 0x2E], "0x97")  // NEXT_BUFFER (out-of-band)
        // a (bins, issame) of the wrong shape
        XCTAssertThrowsError(try VerificationBin.decode(try Pickle.dumpBinPair([[1], [2], [3]], [true, false], protocol: 4).dropLast(0)))
        let wrongCount = [0x80, 0x04, 0x5D, 0x94, 0x43, 0x01, 0x41, 0x61, 0x5D, 0x88, 0x61, 0x86, 0x2E] as [UInt8]
        XCTAssertThrowsError(try VerificationBin.decode(wrongCount)) { e in XCTAssertTrue("\(e)".contains("1 images for 1 pairs"), "\(e)") }
        // a list that contains itself does not hang anything
        let selfList: [UInt8] = [0x80, 0x02, 0x5D, 0x71, 0x00, 0x68, 0x00, 0x61, 0x68, 0x00, 0x86, 0x2E]
        XCTAssertThrowsError(try VerificationBin.decode(selfList))
    }

    func testFuzzedPicklesNeverCrash() throws {
        let bin = try VerificationBin(images: TestImages.make(12).map { Array($0.prefix(300)) }, issame: TestImages.issame(6))
        var rng = SeededRNG(seed: 5)
        var ok = 0, refused = 0
        for proto in [2, 4] {
            let good = try bin.encoded(protocol: proto)
            for trial in 0..<400 {
                var b = good
                if trial % 4 == 3 {
                    b = Array(b.prefix(Int(rng.next() % UInt64(b.count))))
                } else {
                    for _ in 0...(trial % 3) { b[Int(rng.next() % UInt64(b.count))] = UInt8(truncatingIfNeeded: rng.next()) }
                }
                do { _ = try VerificationBin.decode(b); ok += 1 } catch { refused += 1 }
            }
        }
        print("fuzzed pickles: \(ok) still decoded, \(refused) refused")
        XCTAssertGreaterThan(refused, 150)
    }
}
