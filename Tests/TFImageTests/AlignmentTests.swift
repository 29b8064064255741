import Foundation
import TFCore
import TFImage
import TFModel
import TFTestSupport
import XCTest

/// Umeyama's estimate exactly as scikit-image writes it (`_umeyama` with estimate_scale), with
/// the 2x2 SVD in closed form (numpy's convention: singular values non-negative, descending).
/// An independent oracle for `FaceAlignment.estimateSimilarity`'s closed form.
func umeyamaOracle(_ src: [Double], _ dst: [Double]) -> [Double] {
    let n = src.count / 2
    var sm = [0.0, 0.0], dm = [0.0, 0.0]
    for i in 0..<n { for k in 0..<2 { sm[k] += src[2 * i + k] / Double(n); dm[k] += dst[2 * i + k] / Double(n) } }
    var a = [[0.0, 0.0], [0.0, 0.0]], variance = 0.0
    for i in 0..<n {
        let s = [src[2 * i] - sm[0], src[2 * i + 1] - sm[1]], d = [dst[2 * i] - dm[0], dst[2 * i + 1] - dm[1]]
        for r in 0..<2 { for c in 0..<2 { a[r][c] += d[r] * s[c] / Double(n) } }
        variance += (s[0] * s[0] + s[1] * s[1]) / Double(n)
    }
    // Signed 2x2 SVD: A = Rot(phi) diag(sx, sy) Rot(theta).
    let e = (a[0][0] + a[1][1]) / 2, f = (a[0][0] - a[1][1]) / 2, g = (a[1][0] + a[0][1]) / 2, h = (a[1][0] - a[0][1]) / 2
    let q = (e * e + h * h).squareRoot(), r = (f * f + g * g).squareRoot()
    let a1 = atan2(g, f), a2 = atan2(h, e)
    let theta = (a2 - a1) / 2, phi = (a2 + a1) / 2
    var s = [q + r, q - r]
    var u = [[cos(phi), -sin(phi)], [sin(phi), cos(phi)]]
    let vt = [[cos(theta), -sin(theta)], [sin(theta), cos(theta)]]
    if s[1] < 0 { s[1] = -s[1]; u[0][1] = -u[0][1]; u[1][1] = -u[1][1] }
    let detA = a[0][0] * a[1][1] - a[0][1] * a[1][0]
    var d = [1.0, detA < 0 ? -1.0 : 1.0]
    let tol = s[0] * 2 * Double.ulpOfOne
    let rank = s.filter { $0 > tol }.count
    if rank == 0 { return [Double](repeating: .nan, count: 6) }
    func det2(_ m: [[Double]]) -> Double { m[0][0] * m[1][1] - m[0][1] * m[1][0] }
    var rot = [[0.0, 0.0], [0.0, 0.0]]
    func product(_ dd: [Double]) -> [[Double]] {
        var out = [[0.0, 0.0], [0.0, 0.0]]
        for i in 0..<2 { for j in 0..<2 { for k in 0..<2 { out[i][j] += u[i][k] * dd[k] * vt[k][j] } } }
        return out
    }
    if rank == 1 {
        if det2(u) * det2(vt) > 0 {
            rot = product([1, 1])
        } else {
            let saved = d[1]; d[1] = -1
            rot = product(d)
            d[1] = saved
        }
    } else {
        rot = product(d)
    }
    let scale = (s[0] * d[0] + s[1] * d[1]) / variance
    let tx = dm[0] - scale * (rot[0][0] * sm[0] + rot[0][1] * sm[1])
    let ty = dm[1] - scale * (rot[1][0] * sm[0] + rot[1][1] * sm[1])
    return [scale * rot[0][0], scale * rot[0][1], tx, scale * rot[1][0], scale * rot[1][1], ty]
}

/// Float64 values of an .npy file ('<f8', C order): its last count * 8 bytes.
func npyDoubles(_ path: String, count: Int) throws -> [Double] {
    let bytes = try ImageTestData.read(path)
    return bytes.suffix(count * 8).withUnsafeBytes { raw in (0..<count).map { raw.loadUnaligned(fromByteOffset: 8 * $0, as: Double.self) } }
}

final class AlignmentTemplateTests: XCTestCase {
    func testTemplateMatchesFormatsAndTheModelModule() throws {
        XCTAssertEqual(FaceAlignment.arcfaceTemplate112,
                       [38.2946, 51.6963, 73.5318, 51.5014, 56.0252, 71.7366, 41.5493, 92.3655, 70.7299, 92.2041])
        XCTAssertEqual(FaceAlignment.arcfaceTemplate112, Preprocess.arcfaceTemplate112, "TFModel keeps the same template")
        XCTAssertEqual(try FaceAlignment.template(size: 112), FaceAlignment.arcfaceTemplate112)
        XCTAssertEqual(Preprocess.official(size: 224).alignTemplate, try FaceAlignment.template(size: 224))
        if FileManager.default.fileExists(atPath: ImageTestData.align + "/template.npy") {
            XCTAssertEqual(try NPYArray(path: ImageTestData.align + "/template.npy").values, FaceAlignment.arcfaceTemplate112)
        }
    }

    func testTemplateScalingRule() throws {
        let t = FaceAlignment.arcfaceTemplate112
        XCTAssertEqual(try FaceAlignment.template(size: 224), t.map { $0 * 2 })
        XCTAssertEqual(try FaceAlignment.template(size: 448), t.map { $0 * 4 })
        // 128: ratio 1, x + 8 (the 96-wide SphereFace template plus 8, twice).
        let t128 = try FaceAlignment.template(size: 128)
        for i in 0..<10 { XCTAssertEqual(t128[i], i % 2 == 0 ? t[i] + 8 : t[i]) }
        let t256 = try FaceAlignment.template(size: 256)
        for i in 0..<10 { XCTAssertEqual(t256[i], i % 2 == 0 ? t[i] * 2 + 16 : t[i] * 2) }
        // 896 is a multiple of both: the 112 rule wins, as in insightface.
        XCTAssertEqual(try FaceAlignment.template(size: 896), t.map { $0 * 8 })
        for bad in [0, -112, 96, 100, 113, 150] {
            XCTAssertThrowsError(try FaceAlignment.template(size: bad)) { XCTAssertEqual(($0 as? TransFaceError)?.kind, .invalidArgument) }
        }
    }
}

final class SimilarityTests: XCTestCase {
    func testClosedFormEqualsUmeyamaWithSVD() throws {
        var rng = SeededRNG(seed: 11)
        var worst = 0.0
        var reflections = 0
        for trial in 0..<2000 {
            var src = (0..<10).map { _ in rng.uniformDouble() * 200 - 50 }
            var dst = (0..<10).map { _ in rng.uniformDouble() * 112 }
            switch trial % 4 {
            case 0:  // a noisy similarity of the source
                let angle = rng.uniformDouble() * 2 * .pi, scale = 0.2 + rng.uniformDouble() * 3
                for i in 0..<5 {
                    let x = src[2 * i], y = src[2 * i + 1]
                    let u: Double = scale * (cos(angle) * x - sin(angle) * y) + 10
                    let v: Double = scale * (sin(angle) * x + cos(angle) * y) - 7
                    dst[2 * i] = u + rng.normal()
                    dst[2 * i + 1] = v + rng.normal()
                }
            case 1:  // a mirrored source: det(A) < 0, Umeyama's reflection correction
                for i in 0..<5 {
                    dst[2 * i] = -src[2 * i] + rng.normal() * 3
                    dst[2 * i + 1] = src[2 * i + 1] + rng.normal() * 3
                }
            case 2:  // collinear source points: rank 1
                let (dx, dy) = (rng.normal(), rng.normal())
                for i in 0..<5 {
                    let t = rng.normal() * 30
                    src[2 * i] = 5 + t * dx
                    src[2 * i + 1] = 9 + t * dy
                }
            default:
                break
            }
            let m = try FaceAlignment.estimateSimilarity(source: src, destination: dst).values
            let oracle = umeyamaOracle(src, dst)
            let scale = oracle.map(abs).max()!
            let err = zip(m, oracle).map { abs($0 - $1) }.max()! / max(scale, 1)
            worst = max(worst, err)
            XCTAssertLessThan(err, 1e-9, "trial \(trial): \(m) vs \(oracle)")
            XCTAssertGreaterThan(m[0] * m[4] - m[1] * m[3], 0, "never a reflection")
            if trial % 4 == 1 { reflections += 1 }
        }
        print("similarity closed form vs Umeyama/SVD oracle: max relative error \(worst) over 2000 cases (\(reflections) mirrored)")
    }

    func testRecoversAnExactTransformAndRefusesDegenerateInput() throws {
        let src: [Double] = [10, 20, 50, 22, 30, 40, 15, 60, 45, 61]
        let truth = AffineMatrix([0.8, -0.6, 12, 0.6, 0.8, -3])
        let dst = (0..<5).flatMap { i -> [Double] in let p = truth.apply(x: src[2 * i], y: src[2 * i + 1]); return [p.x, p.y] }
        let m = try FaceAlignment.estimateSimilarity(source: src, destination: dst)
        for i in 0..<6 { XCTAssertEqual(m.values[i], truth.values[i], accuracy: 1e-12) }
        // Coincident sources, coincident destinations, exact mirror, NaN, wrong counts.
        let same = [Double](repeating: 3, count: 10)
        let mirror = (0..<5).flatMap { i in [-src[2 * i], src[2 * i + 1]] }
        let symmetric: [Double] = [-1, 0, 1, 0, 0, -1, 0, 1, 0, 0]  // symmetric under x-mirroring
        let mirroredSymmetric: [Double] = [1, 0, -1, 0, 0, -1, 0, 1, 0, 0]
        for (s, d, kind) in [(same, dst, TransFaceError.Kind.numeric), (src, same, .numeric),
                             (symmetric, mirroredSymmetric, .numeric),
                             ([Double.nan] + src.dropFirst(), dst, .numeric), (Array(src.prefix(2)), Array(dst.prefix(2)), .invalidArgument)] {
            XCTAssertThrowsError(try FaceAlignment.estimateSimilarity(source: s, destination: d)) {
                XCTAssertEqual(($0 as? TransFaceError)?.kind, kind, "\($0)")
            }
        }
        _ = try FaceAlignment.estimateSimilarity(source: src, destination: mirror)  // a fit exists (scale > 0)
    }

    /// Profile faces (insightface #171/#1559: a port gave upside-down crops): eyes stay above
    /// the mouth, the matrix is a proper rotation and equals the SVD oracle.
    func testProfileFacesAreNotUpsideDown() throws {
        let profiles: [[Float]] = [
            [120, 100, 132, 101, 98, 126, 118, 146, 128, 147],    // looking left, nose beyond both eyes
            [100, 100, 112, 99, 136, 125, 104, 146, 114, 145],    // looking right
            [100, 100, 104, 100, 80, 120, 101, 140, 104, 140],    // extreme profile, eyes almost merged
            [60, 140, 58, 100, 85, 118, 100, 141, 98, 104],       // rotated 90 degrees
        ]
        let template = FaceAlignment.arcfaceTemplate112.map(Double.init)
        for lm in profiles {
            let src = lm.map(Double.init)
            let m = try FaceAlignment.estimateSimilarity(source: src, destination: template)
            let oracle = umeyamaOracle(src, template)
            for i in 0..<6 { XCTAssertEqual(m.values[i], oracle[i], accuracy: 1e-9) }
            XCTAssertGreaterThan(m.values[0] * m.values[4] - m.values[1] * m.values[3], 0)
            let eyes = m.apply(x: (src[0] + src[2]) / 2, y: (src[1] + src[3]) / 2)
            let mouth = m.apply(x: (src[6] + src[8]) / 2, y: (src[7] + src[9]) / 2)
            XCTAssertLessThan(eyes.y, mouth.y, "eyes above the mouth for \(lm)")
        }
    }
}

final class AlignmentParityTests: XCTestCase {
    /// Matrices, decoded pixels and aligned crops against the official recipe's outputs.
    func testAlignmentMatchesTheReference() throws {
        try ImageTestData.skipUnlessPresent(ImageTestData.align)
        let dir = ImageTestData.align
        let paths = try String(contentsOfFile: dir + "/paths.txt", encoding: .utf8).split(separator: "\n").map(String.init)
        let n = paths.count
        let landmarks = try NPYArray(path: dir + "/landmarks.npy")
        XCTAssertEqual(landmarks.shape, [n, 5, 2])
        let matrices = try npyDoubles(dir + "/matrix.npy", count: n * 6)
        let aligned = try NPYArray(path: dir + "/aligned_rgb.npy")
        XCTAssertEqual(aligned.shape, [n, 112, 112, 3])
        let crop = 112 * 112 * 3
        var matrixError = 0.0, meanDiffs: [Double] = [], maxPixelDiff = 0, exactWithReferenceMatrix = 0
        for i in 0..<n {
            let image = try ImageDecoder.decodeFile(ImageTestData.data + "/" + paths[i])
            let lm = Array(landmarks.values[(10 * i)..<(10 * i + 10)])
            let view = try image.pixels.withUnsafeBufferPointer {
                try ImageView(base: $0.baseAddress!, width: image.width, height: image.height, format: .rgb)
            }
            let ref = Array(aligned.bytes[(i * crop)..<((i + 1) * crop)])
            let refMatrix = Array(matrices[(6 * i)..<(6 * i + 6)])
            try image.pixels.withUnsafeBufferPointer { _ in
                let (ours, m) = try FaceAlignment.align(view, landmarks: lm)
                matrixError = max(matrixError, zip(m.values, refMatrix).map { abs($0 - $1) }.max()!)
                let diffs = zip(ours.pixels, ref).map { abs(Int($0) - Int($1)) }
                meanDiffs.append(Double(diffs.reduce(0, +)) / Double(crop))
                maxPixelDiff = max(maxPixelDiff, diffs.max()!)
                // The warp alone, with the reference's own matrix: bit-exact.
                var out = [UInt8](repeating: 7, count: crop)
                try FaceAlignment.warpAffine(view, matrix: AffineMatrix(refMatrix), width: 112, height: 112, into: &out)
                if out == ref { exactWithReferenceMatrix += 1 }
            }
        }
        let worst = meanDiffs.max()!, mean = meanDiffs.reduce(0, +) / Double(n)
        print("""
            alignment vs reference (\(n) LFW photos): matrix max |diff| \(matrixError); \
            aligned mean |diff| per image max \(worst), mean \(mean); max pixel |diff| \(maxPixelDiff); \
            warp with the reference matrix bit-exact on \(exactWithReferenceMatrix)/\(n)
            """)
        XCTAssertLessThan(matrixError, 1e-4)
        XCTAssertLessThan(worst, 0.5)
        XCTAssertEqual(exactWithReferenceMatrix, n)
    }
}

final class WarpTests: XCTestCase {
    static func noiseImage(width: Int, height: Int, seed: UInt64) -> [UInt8] {
        var rng = SeededRNG(seed: seed)
        return (0..<(width * height * 3)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    }

    private func warp(_ pixels: [UInt8], _ w: Int, _ h: Int, _ format: PixelFormat, stride: Int = 0,
                      _ m: AffineMatrix, _ ow: Int, _ oh: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 99, count: ow * oh * 3)
        try pixels.withUnsafeBufferPointer { p in
            let view = try ImageView(base: p.baseAddress!, width: w, height: h, stride: stride, format: format)
            try FaceAlignment.warpAffine(view, matrix: m, width: ow, height: oh, into: &out)
        }
        return out
    }

    func testIdentityAndIntegerShifts() throws {
        let (w, h) = (23, 17)
        let img = Self.noiseImage(width: w, height: h, seed: 1)
        XCTAssertEqual(try warp(img, w, h, .rgb, AffineMatrix([1, 0, 0, 0, 1, 0]), w, h), img)
        // dst(x, y) = src(x + 5, y + 3), black beyond the source.
        let out = try warp(img, w, h, .rgb, AffineMatrix([1, 0, -5, 0, 1, -3]), w, h)
        for y in 0..<h {
            for x in 0..<w {
                for c in 0..<3 {
                    let expected: UInt8 = x + 5 < w && y + 3 < h ? img[3 * ((y + 3) * w + x + 5) + c] : 0
                    XCTAssertEqual(out[3 * (y * w + x) + c], expected, "(\(x), \(y))")
                }
            }
        }
    }

    /// Against a double-precision bilinear with black outside, over random similarities that
    /// push parts of the crop outside the image.
    func testAgreesWithDoublePrecisionBilinear() throws {
        let (w, h) = (40, 31)
        let img = Self.noiseImage(width: w, height: h, seed: 2)
        var rng = SeededRNG(seed: 3)
        var worst = 0, total = 0, count = 0
        for _ in 0..<20 {
            let angle = rng.uniformDouble() * 2 * .pi, scale = 0.5 + rng.uniformDouble() * 2
            let m = AffineMatrix([scale * cos(angle), -scale * sin(angle), rng.normal() * 20,
                                  scale * sin(angle), scale * cos(angle), rng.normal() * 20])
            let out = try warp(img, w, h, .rgb, m, 32, 32)
            let inv = try m.inverted()
            for y in 0..<32 {
                for x in 0..<32 {
                    let s = inv.apply(x: Double(x), y: Double(y))
                    let x0 = floor(s.x), y0 = floor(s.y), ax = s.x - x0, ay = s.y - y0
                    for c in 0..<3 {
                        func px(_ xx: Double, _ yy: Double) -> Double {
                            let ix = Int(xx), iy = Int(yy)
                            return ix >= 0 && ix < w && iy >= 0 && iy < h ? Double(img[3 * (iy * w + ix) + c]) : 0
                        }
                        var v = 0.0
                        if s.x > -2 && s.x < Double(w) + 1 && s.y > -2 && s.y < Double(h) + 1 {
                            v = (1 - ay) * ((1 - ax) * px(x0, y0) + ax * px(x0 + 1, y0)) + ay * ((1 - ax) * px(x0, y0 + 1) + ax * px(x0 + 1, y0 + 1))
                        }
                        let d = abs(Int(out[3 * (y * 32 + x) + c]) - Int(v.rounded()))
                        worst = max(worst, d); total += d; count += 1
                    }
                }
            }
        }
        print("warp vs double bilinear: max |diff| \(worst), mean \(Double(total) / Double(count))")
        XCTAssertLessThanOrEqual(worst, 1)
    }

    /// BGR, RGBA, BGRA (with row padding) and grey inputs give what RGB gives.
    func testPixelFormatsAndStride() throws {
        let (w, h) = (29, 21)
        let rgb = Self.noiseImage(width: w, height: h, seed: 4)
        let m = AffineMatrix([1.3, 0.4, -6, -0.4, 1.3, 3])
        let expected = try warp(rgb, w, h, .rgb, m, 24, 24)
        let stride = w * 4 + 13
        var bgr = rgb, rgba = [UInt8](repeating: 0, count: stride * h), bgra = rgba
        for p in 0..<(w * h) {
            bgr[3 * p] = rgb[3 * p + 2]; bgr[3 * p + 2] = rgb[3 * p]
            let (y, x) = (p / w, p % w)
            for c in 0..<3 {
                rgba[y * stride + 4 * x + c] = rgb[3 * p + c]
                bgra[y * stride + 4 * x + (2 - c)] = rgb[3 * p + c]
            }
            rgba[y * stride + 4 * x + 3] = 17; bgra[y * stride + 4 * x + 3] = 200
        }
        XCTAssertEqual(try warp(bgr, w, h, .bgr, m, 24, 24), expected)
        XCTAssertEqual(try warp(rgba, w, h, .rgba, stride: stride, m, 24, 24), expected)
        XCTAssertEqual(try warp(bgra, w, h, .bgra, stride: stride, m, 24, 24), expected)
        let grey = (0..<(w * h)).map { rgb[3 * $0 + 1] }
        let greyAsRGB = grey.flatMap { [$0, $0, $0] }
        XCTAssertEqual(try warp(grey, w, h, .gray, m, 24, 24), try warp(greyAsRGB, w, h, .rgb, m, 24, 24))
        // Bad arguments.
        XCTAssertThrowsError(try warp(rgb, w, h, .rgb, stride: w * 3 - 1, m, 24, 24))
        XCTAssertThrowsError(try warp(rgb, w, h, .rgb, AffineMatrix([1, 2, 0, 2, 4, 0]), 24, 24)) {
            XCTAssertEqual(($0 as? TransFaceError)?.kind, .numeric)
        }
        XCTAssertThrowsError(try warp(rgb, w, h, .rgb, AffineMatrix([.nan, 0, 0, 0, 1, 0]), 24, 24))
        XCTAssertThrowsError(try warp(rgb, w, h, .rgb, m, 0, 24))
        // A crop far outside the image is black.
        XCTAssertEqual(try warp(rgb, w, h, .rgb, AffineMatrix([1, 0, 1000, 0, 1, 0]), 8, 8), [UInt8](repeating: 0, count: 192))
        // Extreme but finite matrices do not trap (coordinates beyond Int range are outside).
        _ = try warp(rgb, w, h, .rgb, AffineMatrix([1e-30, 0, 0, 0, 1e-30, 0]), 8, 8)
        _ = try warp(rgb, w, h, .rgb, AffineMatrix([1e30, 1e29, -1e33, 1e29, 1e30, 5e32]), 8, 8)
    }

    /// `align` with a custom template and size, and the 128-family template.
    func testAlignWithTemplatesAndSizes() throws {
        let (w, h) = (250, 250)
        let img = Self.noiseImage(width: w, height: h, seed: 5)
        let lm: [Float] = [108, 112, 142, 116, 117, 139, 107, 156, 138, 158]
        try img.withUnsafeBufferPointer { p in
            let view = try ImageView(base: p.baseAddress!, width: w, height: h, format: .rgb)
            for size in [112, 128, 224, 256] {
                let (crop, m) = try FaceAlignment.align(view, landmarks: lm, size: size)
                XCTAssertEqual([crop.width, crop.height], [size, size])
                // The landmarks land near the template.
                let t = try FaceAlignment.template(size: size)
                for k in 0..<5 {
                    let q = m.apply(x: Double(lm[2 * k]), y: Double(lm[2 * k + 1]))
                    XCTAssertLessThan(hypot(q.x - Double(t[2 * k]), q.y - Double(t[2 * k + 1])), 0.1 * Double(size))
                }
            }
            XCTAssertThrowsError(try FaceAlignment.align(view, landmarks: lm, size: 100))
            let custom: [Float] = [30, 40, 70, 40, 50, 60, 35, 80, 65, 80]
            let (crop, m) = try FaceAlignment.align(view, landmarks: lm, template: custom, size: 100)
            XCTAssertEqual(crop.width, 100)
            let oracle = umeyamaOracle(lm.map(Double.init), custom.map(Double.init))
            for i in 0..<6 { XCTAssertEqual(m.values[i], oracle[i], accuracy: 1e-9) }
            XCTAssertThrowsError(try FaceAlignment.align(view, landmarks: Array(lm.prefix(8))))
            XCTAssertThrowsError(try FaceAlignment.align(view, landmarks: [Float.infinity] + lm.dropFirst()))
        }
    }
}
