import Foundation
import TFCore
import TFTestSupport
@testable import TFTrain
import XCTest

/// Exact float64 / int64 values of a reference `.npy` (NPYArray keeps float32 only).
enum NPYExact {
    static func doubles(_ relative: String) throws -> (shape: [Int], values: [Double]) {
        let path = Reference.path(relative) + ".npy"
        let file = try ReadableFile(path: path)
        let all = try file.readBytes(at: 0, count: Int(file.size))
        guard all.count > 10, all[0] == 0x93 else { throw TransFaceError.format("\(path): not an .npy file") }
        let major = all[6]
        let headerLength = major == 1 ? Int(all[8]) | Int(all[9]) << 8
            : Int(all[8]) | Int(all[9]) << 8 | Int(all[10]) << 16 | Int(all[11]) << 24
        let start = major == 1 ? 10 : 12
        let header = String(decoding: all[start..<(start + headerLength)], as: UTF8.self)
        guard let d = header.range(of: "'descr': '"), let s = header.range(of: "'shape': (") else {
            throw TransFaceError.format("\(path): bad header \(header)")
        }
        let descr = String(header[d.upperBound...].prefix { $0 != "'" })
        let shape = header[s.upperBound...].prefix { $0 != ")" }.split(separator: ",")
            .compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let count = shape.reduce(1, *)
        let data = Array(all[(start + headerLength)...])
        let values: [Double] = data.withUnsafeBytes { raw in
            (0..<count).map { i -> Double in
                switch descr {
                case "<f8": return raw.loadUnaligned(fromByteOffset: i * 8, as: Double.self)
                case "<i8": return Double(raw.loadUnaligned(fromByteOffset: i * 8, as: Int64.self))
                case "<f4": return Double(raw.loadUnaligned(fromByteOffset: i * 4, as: Float.self))
                case "|u1", "|b1": return Double(raw.load(fromByteOffset: i, as: UInt8.self))
                default: return .nan
                }
            }
        }
        guard !values.contains(where: { $0.isNaN }) || descr == "<f4" || descr == "<f8" else {
            throw TransFaceError.format("\(path): unsupported dtype \(descr)")
        }
        return (shape, values)
    }

    static func ints(_ relative: String) throws -> [Int] { try doubles(relative).values.map { Int($0) } }
}

/// Compares uint8 outputs with the README's rule: equal, or off by one where the reference's
/// pre-clip value lies within `boundary` of an integer (float32 FFT rounding decides the side).
struct BoundaryComparison: CustomStringConvertible {
    var compared = 0
    var offByOne = 0
    var offByOneOnBoundary = 0
    var worse = 0
    var maxBoundaryDistance = 0.0

    mutating func add(actual: UInt8, expected: UInt8, referencePreclip: Double?, ourPreclip: Double, boundary: Double) {
        compared += 1
        if actual == expected { return }
        if abs(Int(actual) - Int(expected)) == 1 {
            offByOne += 1
            // The integer the two pre-clip values straddle, and how far the values are from it.
            let n = Double(max(actual, expected))
            let distance = max(abs((referencePreclip ?? ourPreclip) - n), abs(ourPreclip - n))
            maxBoundaryDistance = max(maxBoundaryDistance, distance)
            if distance <= boundary { offByOneOnBoundary += 1 } else { worse += 1 }
        } else {
            worse += 1
        }
    }

    var passed: Bool { worse == 0 }
    var description: String {
        "\(compared) values, \(offByOne) off by one (\(offByOneOnBoundary) on an integer boundary, max distance to it \(maxBoundaryDistance)), \(worse) other differences"
    }
}

final class AmplitudeMixTests: XCTestCase {
    /// |ours − official| on pre-clip values (0…255 scale): float32 FFTs in a different order.
    static let preclipTolerance = 2e-4
    /// An off-by-one uint8 must come from pre-clip values this close to the integer between them.
    static let boundaryTolerance = 2e-4

    private func runFixture(kind: String) throws {
        let lam = try NPYExact.doubles("dpap/dpap/lam").values
        let img1 = try Reference.load("dpap/dpap/\(kind)_img1"), img2 = try Reference.load("dpap/dpap/\(kind)_img2")
        let refOut = try Reference.load("dpap/dpap/\(kind)_out").bytes
        let refPre = try NPYExact.doubles("dpap/dpap/\(kind)_preclip").values
        XCTAssertEqual(img1.shape, [8, 9, 9, 3])
        let fft = try PatchFFT()
        var maxPre = 0.0
        var cmp = BoundaryComparison()
        for c in 0..<8 {
            let range = (c * 243)..<((c + 1) * 243)
            if kind == "u8" {
                Array(img1.bytes[range]).withUnsafeBufferPointer { a in
                    Array(img2.bytes[range]).withUnsafeBufferPointer { b in
                        fft.mix(source: a.baseAddress!, partner: b.baseAddress!, lambda: lam[c])
                    }
                }
            } else {
                Array(img1.values[range]).withUnsafeBufferPointer { a in
                    Array(img2.values[range]).withUnsafeBufferPointer { b in
                        fft.mix(source: a.baseAddress!, partner: b.baseAddress!, lambda: lam[c])
                    }
                }
            }
            var caseMax = 0.0
            var caseCmp = BoundaryComparison()
            for (i, r) in range.enumerated() {
                let ours = Double(fft.preclip[i])
                caseMax = max(caseMax, abs(ours - refPre[r]))
                caseCmp.add(actual: fft.output[i], expected: refOut[r], referencePreclip: refPre[r], ourPreclip: ours,
                            boundary: Self.boundaryTolerance)
                cmp.add(actual: fft.output[i], expected: refOut[r], referencePreclip: refPre[r], ourPreclip: ours,
                        boundary: Self.boundaryTolerance)
            }
            print("dpap \(kind) case \(c) (lam \(lam[c])): max|preclip diff| \(caseMax); uint8: \(caseCmp)")
            maxPre = max(maxPre, caseMax)
        }
        print("dpap \(kind): max|preclip diff| \(maxPre) (tolerance \(Self.preclipTolerance)); uint8: \(cmp)")
        XCTAssertLessThanOrEqual(maxPre, Self.preclipTolerance)
        XCTAssertTrue(cmp.passed, "\(kind): \(cmp)")
    }

    func testFloat32PatchesMatchOfficialFixture() throws { try runFixture(kind: "f32") }

    func testUInt8PatchesMatchOfficialFixture() throws { try runFixture(kind: "u8") }

    /// The standalone API gives the PatchFFT result and checks its arguments.
    func testStandaloneMixAndArgumentChecks() throws {
        let img1 = try Reference.load("dpap/dpap/u8_img1"), img2 = try Reference.load("dpap/dpap/u8_img2")
        let a = Array(img1.bytes[243..<486]), b = Array(img2.bytes[243..<486])
        let out = try AmplitudeMix.mix(source: a, partner: b, lambda: 0.25)
        let fft = try PatchFFT()
        a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in
            fft.mix(source: pa.baseAddress!, partner: pb.baseAddress!, lambda: 0.25)
        } }
        XCTAssertEqual(out, Array(fft.output))
        XCTAssertThrowsError(try AmplitudeMix.mix(source: a, partner: Array(b.prefix(10)), lambda: 0.5))
        XCTAssertThrowsError(try AmplitudeMix.mix(source: a, partner: b, lambda: .nan))
        XCTAssertThrowsError(try AmplitudeMix.mix(source: a, partner: b, lambda: 0.5, ratio: 1.5))
        var bad = a.map(Float.init)
        bad[3] = .infinity
        XCTAssertThrowsError(try AmplitudeMix.mix(source: bad, partner: b.map(Float.init), lambda: 0.5))
        // Other patch sizes work too (a 16×16 RGB patch and a 5×7 grey one).
        let big = try AmplitudeMix.mix(source: [UInt8](repeating: 7, count: 768), partner: [UInt8](repeating: 10, count: 768),
                                       height: 16, width: 16, channels: 3, lambda: 0.25)
        XCTAssertEqual(big, [UInt8](repeating: 7, count: 768))  // 7.75, truncated
        let odd = try AmplitudeMix.mix(source: (0..<35).map { UInt8($0 * 7) }, partner: [UInt8](repeating: 1, count: 35),
                                       height: 5, width: 7, channels: 1, lambda: 0)
        XCTAssertEqual(odd.count, 35)
    }

    /// λ = 0 and ratio 0 reproduce the source up to FFT rounding (off by one only below integers).
    func testIdentityCasesReproduceTheSource() throws {
        let img1 = try Reference.load("dpap/dpap/f32_img1"), img2 = try Reference.load("dpap/dpap/f32_img2")
        let fft = try PatchFFT()
        for (lambda, ratio) in [(0.0, 1.0), (0.7, 0.0)] {
            var worst = 0.0
            for c in 0..<8 {
                let r = (c * 243)..<((c + 1) * 243)
                Array(img1.values[r]).withUnsafeBufferPointer { a in Array(img2.values[r]).withUnsafeBufferPointer { b in
                    fft.mix(source: a.baseAddress!, partner: b.baseAddress!, lambda: lambda, ratio: ratio)
                } }
                for (i, j) in r.enumerated() {
                    worst = max(worst, abs(Double(fft.preclip[i]) - Double(img1.values[j])))
                    let expected = min(max(img1.values[j], 0), 255).rounded(.towardZero)
                    XCTAssertLessThanOrEqual(abs(Float(fft.output[i]) - expected), 1)
                }
            }
            XCTAssertLessThan(worst, 1e-3, "lambda \(lambda) ratio \(ratio)")
        }
    }

    /// The centred crop (ratio < 1) against NumPy's fftshift slicing, computed here in Double
    /// with a direct DFT: only frequencies inside the crop take the partner's amplitude.
    func testPartialRatioMatchesDirectComputation() throws {
        var rng = SeededRNG(seed: 11)
        let a = (0..<243).map { _ in Float(rng.next() % 256) }, b = (0..<243).map { _ in Float(rng.next() % 256) }
        let fft = try PatchFFT()
        for ratio in [0.04, 0.1, 0.25, 0.5, 0.81, 1.0] {
            let lambda = 0.6
            a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in
                fft.mix(source: pa.baseAddress!, partner: pb.baseAddress!, lambda: lambda, ratio: ratio)
            } }
            let expected = Self.directMix(a, b, lambda: lambda, ratio: ratio)
            var worst = 0.0
            for i in 0..<243 { worst = max(worst, abs(Double(fft.preclip[i]) - expected[i])) }
            XCTAssertLessThan(worst, 2e-3, "ratio \(ratio)")
        }
    }

    /// A constant source channel: NumPy gets an exact spectrum (zeros, phase 0); so do we.
    func testConstantSourceChannelUsesExactSpectrum() throws {
        var rng = SeededRNG(seed: 5)
        var a = (0..<243).map { _ in Float(rng.next() % 256) }
        for i in stride(from: 1, to: 243, by: 3) { a[i] = 200.00002 }  // channel 1 constant
        let b = (0..<243).map { _ in Float(rng.next() % 256) }
        let fft = try PatchFFT()
        a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in
            fft.mix(source: pa.baseAddress!, partner: pb.baseAddress!, lambda: 0.5)
        } }
        let expected = Self.directMix(a, b, lambda: 0.5, ratio: 1, exactZeroPhase: true)
        var worst = 0.0
        for i in 0..<243 { worst = max(worst, abs(Double(fft.preclip[i]) - expected[i])) }
        XCTAssertLessThan(worst, 2e-3)
    }

    /// Reference implementation of the official function in Double (direct DFT), with NumPy's
    /// fftshift crop. With `exactZeroPhase`, spectra smaller than 1e-9 of the DC count as zero.
    static func directMix(_ a: [Float], _ b: [Float], lambda: Double, ratio: Double, h: Int = 9, w: Int = 9, c: Int = 3,
                          exactZeroPhase: Bool = false) -> [Double] {
        func dft(_ x: [Double], sign: Double) -> [(Double, Double)] {
            var out = [(Double, Double)](repeating: (0, 0), count: h * w)
            for u in 0..<h { for v in 0..<w {
                var re = 0.0, im = 0.0
                for y in 0..<h { for xx in 0..<w {
                    let ang = sign * 2 * Double.pi * (Double(u * y) / Double(h) + Double(v * xx) / Double(w))
                    re += x[y * w + xx] * cos(ang); im += x[y * w + xx] * sin(ang)
                } }
                out[u * w + v] = (re, im)
            } }
            return out
        }
        let root = ratio.squareRoot()
        let hc = Int(Double(h) * root), wc = Int(Double(w) * root)
        let hs = h / 2 - hc / 2, ws = w / 2 - wc / 2
        var result = [Double](repeating: 0, count: h * w * c)
        for ch in 0..<c {
            let x1 = (0..<(h * w)).map { Double(a[$0 * c + ch]) }, x2 = (0..<(h * w)).map { Double(b[$0 * c + ch]) }
            let f1 = dft(x1, sign: -1), f2 = dft(x2, sign: -1)
            let dc = (f1[0].0 * f1[0].0 + f1[0].1 * f1[0].1).squareRoot()
            var mixed = [Double](repeating: 0, count: h * w * 2)
            for u in 0..<h { for v in 0..<w {
                let q = u * w + v
                var amp = (f1[q].0 * f1[q].0 + f1[q].1 * f1[q].1).squareRoot()
                var phase = atan2(f1[q].1, f1[q].0)
                if exactZeroPhase && amp < 1e-9 * max(dc, 1) { amp = 0; phase = 0 }
                let su = (u + h / 2) % h, sv = (v + w / 2) % w
                if su >= hs && su < hs + hc && sv >= ws && sv < ws + wc {
                    amp = lambda * (f2[q].0 * f2[q].0 + f2[q].1 * f2[q].1).squareRoot() + (1 - lambda) * amp
                }
                mixed[2 * q] = amp * cos(phase); mixed[2 * q + 1] = amp * sin(phase)
            } }
            for y in 0..<h { for xx in 0..<w {
                var re = 0.0
                for u in 0..<h { for v in 0..<w {
                    let ang = 2 * Double.pi * (Double(u * y) / Double(h) + Double(v * xx) / Double(w))
                    re += mixed[2 * (u * w + v)] * cos(ang) - mixed[2 * (u * w + v) + 1] * sin(ang)
                } }
                result[(y * w + xx) * c + ch] = re / Double(h * w)
            } }
        }
        return result
    }

    /// Plans are created under one lock: many threads building and using PatchFFTs at once.
    func testConcurrentPlanCreationAndUse() throws {
        let img1 = try Reference.load("dpap/dpap/f32_img1"), img2 = try Reference.load("dpap/dpap/f32_img2")
        let a = Array(img1.values[0..<243]), b = Array(img2.values[0..<243])
        let expected = try AmplitudeMix.mix(source: a, partner: b, lambda: 0.3)
        let failures = UnsafeMutablePointer<Int>.allocate(capacity: 8)
        failures.initialize(repeating: 0, count: 8)
        defer { failures.deallocate() }
        DispatchQueue.concurrentPerform(iterations: 8) { t in
            for _ in 0..<20 {
                guard let fft = try? PatchFFT() else { failures[t] += 1; continue }
                a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in
                    fft.mix(source: pa.baseAddress!, partner: pb.baseAddress!, lambda: 0.3)
                } }
                if Array(fft.output) != expected { failures[t] += 1 }
                if (try? AmplitudeMix.mix(source: a, partner: b, lambda: 0.3)) != expected { failures[t] += 1 }
            }
        }
        XCTAssertEqual((0..<8).map { failures[$0] }.reduce(0, +), 0)
    }
}
