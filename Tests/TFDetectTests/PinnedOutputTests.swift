import XCTest
import TFCore
import TFDetect
import TFModel
import TFDetectTestSupport

/// Our own outputs (default mode, `.truncated`) on a few photos, pinned when they were first
/// checked against facenet-pytorch: guards against silent changes. Tolerance 1e-3 px (float
/// summation orders may change with the BLAS kernel); plus thread-count and buffer-reuse checks.
final class PinnedOutputTests: XCTestCase {
    static let pinned: [(path: String, faces: [(box: [Float], landmarks: [Float])])] = [
        ("lfw/images/Abdullatif_Sener/Abdullatif_Sener_0001.jpg", [
            (box: [84.1924, 58.3507, 184.5014, 190.7237],
             landmarks: [105.9715, 114.6064, 147.3274, 111.3319, 121.7173, 139.1186, 112.5912, 164.5149, 147.4095, 162.3280]),
        ]),
        ("photos_misc/dlib_examples_faces/2008_001009.jpg", [
            (box: [132.1744, 197.3731, 210.7600, 303.9927],
             landmarks: [149.8581, 240.3211, 185.3006, 233.2855, 166.6428, 255.2595, 157.0249, 276.9554, 191.6434, 271.2964]),
            (box: [148.7709, 72.4898, 213.4442, 159.7837],
             landmarks: [166.1294, 107.2555, 195.1780, 103.1809, 184.5697, 119.9309, 172.0416, 138.1458, 200.7407, 132.9757]),
        ]),
        ("photos_misc/dlib_examples_faces/2009_004587.jpg", [
            (box: [146.2799, 31.1470, 218.2783, 127.9237],
             landmarks: [174.9646, 67.5821, 208.1113, 69.9039, 196.1591, 84.3721, 174.0495, 100.9192, 206.2145, 104.1626]),
            (box: [271.0434, 277.3544, 323.3969, 343.7861],
             landmarks: [285.9163, 298.2428, 312.8340, 296.4211, 302.8121, 313.5206, 287.4358, 323.6669, 315.3087, 321.8184]),
        ]),
    ]

    func testPinnedOutputs() throws {
        let d = try Real.detector()
        for p in Self.pinned {
            let faces = try Real.detect(d, try Real.image(p.path), .truncated)
            XCTAssertEqual(faces.count, p.faces.count, p.path)
            for (f, e) in zip(faces, p.faces) {
                for (a, b) in zip(f.box + f.landmarks, e.box + e.landmarks) { XCTAssertEqual(a, b, accuracy: 1e-3, p.path) }
            }
        }
    }

    func testThreadsAndBufferReuseDoNotChangeResults() throws {
        let one = try Real.detector(threads: 1), two = try Real.detector(threads: 2)
        let big = try Real.image("photos_misc/dlib_examples_faces/bald_guys.jpg")
        let small = try Real.image("lfw/images/Abdullatif_Sener/Abdullatif_Sener_0001.jpg")
        let first = try Real.detect(two, small, .truncated)
        _ = try Real.detect(two, big, .truncated)
        XCTAssertEqual(try Real.detect(two, small, .truncated), first, "buffers reused after a larger image")
        // 2 threads: pyramid levels run whole, one per worker; 3: the largest split by lines, the rest whole.
        let a = try Real.detect(one, big, .truncated)
        for other in [two, try Real.detector(threads: 3)] {
            let b = try Real.detect(other, big, .truncated)
            XCTAssertEqual(a.count, b.count)
            for (x, y) in zip(a, b) {
                for (u, v) in zip(x.box + x.landmarks, y.box + y.landmarks) { XCTAssertEqual(u, v, accuracy: 1e-3) }
            }
        }
    }

    func testDogsHaveNoFaces() throws {
        let d = try Real.detector()
        XCTAssertEqual(try Real.detect(d, try Real.image("photos_misc/dlib_examples_faces/dogs.jpg"), .truncated), [])
    }
}

/// Memory safety on odd shapes: noise images (long thin ones, wider than an im2col chunk) with
/// low thresholds so that many boxes reach R-Net and O-Net, crops past every border included.
final class OddShapeTests: XCTestCase {
    func testNoiseImagesOfOddShapesRunCleanly() throws {
        var config = DetectorConfig()
        config.thresholds = [0.2, 0.2, 0.2]
        guard let model = try TestDetector.model(config: config) else { throw XCTSkip("no facenet-pytorch wheel") }
        let d = try FaceDetector(model: model, threads: 2)
        var rng = SeededRNG(seed: 20261203)
        for (w, h) in [(20, 20), (21, 700), (1500, 21), (640, 31), (97, 353)] {
            let stride = w * 3 + 5
            let px = (0..<(stride * h)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            for mode in DetectionOptions.LandmarkBox.allCases {
                let faces = try d.detect(rgb: px, width: w, height: h, stride: stride, options: DetectionOptions(landmarkBox: mode))
                for f in faces { XCTAssertTrue((f.box + f.landmarks + [f.score]).allSatisfy(\.isFinite)) }
            }
        }
    }
}
