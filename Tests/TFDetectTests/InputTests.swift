import XCTest
import TFCore
import TFDetect
import TFModel

/// Argument checks and the pyramid, on a model of constant weights (no real weights needed).
final class InputTests: XCTestCase {
    static func constantModel(_ v: Float = 0.01) throws -> DetectorModel {
        var t: [String: DetectorModel.Tensor] = [:]
        for (name, shape) in DetectorModel.layout {
            t[name] = .init(shape: shape, values: [Float](repeating: v, count: shape.reduce(1, *)))
        }
        return try DetectorModel(config: DetectorConfig(), tensors: t)
    }

    func testBadImagesAreInvalidArguments() throws {
        let d = try FaceDetector(model: Self.constantModel(), threads: 1)
        let px = [UInt8](repeating: 0, count: 300)
        func check(_ w: Int, _ h: Int, _ stride: Int, _ text: String) {
            XCTAssertThrowsError(try d.detect(rgb: px, width: w, height: h, stride: stride)) { e in
                XCTAssertEqual((e as? TransFaceError)?.kind, .invalidArgument)
                XCTAssertTrue("\(e)".contains(text), "\(e)")
            }
        }
        check(0, 10, 30, "empty")
        check(10, -1, 30, "empty")
        check(10, 10, 29, "stride")
        check(1 << 14, 1 << 13, 3 << 14, "limit")
        XCTAssertThrowsError(try FaceDetector(model: Self.constantModel(), threads: 0))
    }

    func testTinyAndBlankImagesHaveNoFaces() throws {
        let d = try FaceDetector(model: Self.constantModel(), threads: 2)
        let px = [UInt8](repeating: 128, count: 64 * 40 * 3)
        XCTAssertEqual(try d.detect(rgb: px, width: 5, height: 5, stride: 15), [])
        XCTAssertEqual(try d.detect(rgb: px, width: 64, height: 40, stride: 192), [])
    }

    func testPyramidIsFacenets() throws {
        let d = try FaceDetector(model: Self.constantModel(), threads: 1)
        let s = d.scales(width: 250, height: 250)
        // facenet: m = 0.6, minl = 150, ×0.709 while ≥ 12 → 8 scales.
        XCTAssertEqual(s.count, 8)
        XCTAssertEqual(s[0], 0.6)
        XCTAssertEqual(s[1], 0.6 * 0.709)
    }
}
