import XCTest
@testable import TFDetect
import TFModel

/// The detector's kernels and box rules on small hand-checked cases (no weights needed).
final class KernelTests: XCTestCase {
    func testAreaResampleAveragesPyTorchWindows() {
        // 3 × 1 pixels to 2 × 1: windows [0, 2) and [1, 3) (⌊i·3/2⌋ ... ⌈(i+1)·3/2⌉).
        let px: [UInt8] = [0, 0, 0, 100, 100, 100, 255, 255, 255]
        var out = [Float](repeating: 0, count: 6)
        areaResampleNormalised(rgb: px, stride: 9, x0: 0, y0: 0, width: 3, height: 1, outWidth: 2, outHeight: 1, out: &out, rows: 0..<1)
        XCTAssertEqual(out[0], (50 - 127.5) * 0.0078125)
        XCTAssertEqual(out[3], (177.5 - 127.5) * 0.0078125)
    }

    func testCeilModePooling() {
        XCTAssertEqual(pooledSize(10, kernel: 2, stride: 2), 5)
        XCTAssertEqual(pooledSize(11, kernel: 2, stride: 2), 6)
        XCTAssertEqual(pooledSize(22, kernel: 3, stride: 2), 11)
        XCTAssertEqual(pooledSize(9, kernel: 3, stride: 2), 4)
        // 3 × 1 map, one channel, 2 × 2 / 2: the second window is clipped to the last column.
        let x: [Float] = [1, 5, 3]
        var out = [Float](repeating: 0, count: 2)
        maxPoolCeil(x, width: 3, height: 1, channels: 1, kernel: 2, stride: 2, lines: 0..<1, out: &out)
        XCTAssertEqual(out, [5, 3])
    }

    func testIm2colOrdersPatchesByRowColumnChannel() {
        let x: [Float] = (0..<18).map(Float.init)  // 3 × 3 × 2
        var col = [Float](repeating: -1, count: 4 * 8)
        im2col(x, width: 3, channels: 2, kernel: 2, lines: 0..<2, col: &col)
        XCTAssertEqual(Array(col[0..<8]), [0, 1, 2, 3, 6, 7, 8, 9])
        XCTAssertEqual(Array(col[24..<32]), [8, 9, 10, 11, 14, 15, 16, 17])
    }

    func testNMSRules() {
        let a = Candidate(x1: 0, y1: 0, x2: 10, y2: 10, score: 0.9)
        let b = Candidate(x1: 0, y1: 0, x2: 10, y2: 7, score: 0.95)   // IoU 0.7 with a: kept at > 0.7
        let c = Candidate(x1: 1, y1: 1, x2: 10, y2: 10, score: 0.8)   // IoU 0.81 with a
        XCTAssertEqual(nmsIoU([a, b, c], threshold: 0.7), [1, 0])
        XCTAssertEqual(nmsIoU([a, a, a], threshold: 0.5), [0], "equal scores keep the first")
        // "Min" with +1 areas: b lies inside a, overlap 88 / 88 = 1.
        XCTAssertEqual(nmsMin([a, b], threshold: 0.7), [1])
        let far = Candidate(x1: 20, y1: 20, x2: 30, y2: 30, score: 0.99)
        XCTAssertEqual(nmsMin([a, far], threshold: 0.7), [1, 0])
    }

    func testBoxArithmetic() {
        var c = Candidate(x1: 10, y1: 20, x2: 30, y2: 60, score: 1)
        c.reg = (0.1, 0, -0.1, 0.5)
        XCTAssertEqual(c.regressedPNet().x1, 12)
        XCTAssertEqual(c.regressed().x1, 12.1)
        XCTAssertEqual(c.regressed().y2, 60 + 0.5 * 41)
        let s = c.squared()
        XCTAssertEqual([s.x1, s.y1, s.x2, s.y2], [0, 20, 40, 60])
        XCTAssertEqual(Candidate(x1: -0.5, y1: 2.7, x2: 9.9, y2: 10, score: 0).truncated().x1, 0)
        // pad: x, y raised to 1, ex, ey capped at the size; the crop starts at x − 1.
        let r = Candidate(x1: -5.5, y1: 3.2, x2: 120.9, y2: 50, score: 0).cropRect(width: 100, height: 80)!
        XCTAssertTrue(r == (0, 2, 100, 48))
        XCTAssertNil(Candidate(x1: 150, y1: 3, x2: 170, y2: 50, score: 0).cropRect(width: 100, height: 80))
    }

    func testPickMainWeighsDistanceFromTheCentre() {
        let big = DetectedFace(box: [0, 0, 60, 60], score: 1, landmarks: [])       // 3600 − 2·(70²+70²) < 0
        let centred = DetectedFace(box: [80, 80, 120, 120], score: 1, landmarks: [])  // 1600
        XCTAssertEqual(FaceDetector.pickMain([big, centred], width: 200, height: 200), 1)
        XCTAssertEqual(FaceDetector.pickMain([big], width: 200, height: 200), 0)
        XCTAssertNil(FaceDetector.pickMain([], width: 200, height: 200))
    }

    func testLevelPlanSplitsOnlyLevelsLargerThanAShare() {
        XCTAssertEqual(FaceDetector.levelPlan(areas: [100, 10, 10], threads: 1), [nil, nil, nil])
        XCTAssertEqual(FaceDetector.levelPlan(areas: [100, 10, 10], threads: 2), [nil, 0, 1])
        XCTAssertEqual(FaceDetector.levelPlan(areas: [30, 30, 30, 10], threads: 3), [0, 1, 2, 0])
        // LFW's 250 × 250 pyramid (levels 151², 107², …, 14²): the largest level on worker 0, the rest on 1.
        let lfw = [151, 107, 76, 54, 38, 27, 19, 14].map { $0 * $0 }
        XCTAssertEqual(FaceDetector.levelPlan(areas: lfw, threads: 2), [0, 1, 1, 1, 1, 1, 1, 1])
    }
}
