import ArgumentParser
import TFCore
import TFData
import TFDetect
import TFImage
import TFModel

/// Faces in photos: decoding, MTCNN detection (TFDetect) and 5-point alignment onto a model's
/// template. Shared by `detect`, the `--detector` option of `embed`/`compare`/`patches`, and `gallery`.
final class PhotoFaces {
    let detector: FaceDetector
    let options: DetectionOptions

    /// Loads the detector file at `path`; `minFace` (pixels) overrides its smallest face size.
    init(detector path: String, threads: Int = 1, minFace: Int? = nil, landmarkBox: DetectionOptions.LandmarkBox = .truncated) throws {
        guard DataFiles.isFile(path) else { throw TransFaceError.notFound("detector file '\(path)' does not exist") }
        try require((1...256).contains(threads), "--threads \(threads) is outside 1...256")
        var model = try DetectorModelFile.load(path: path)
        if let minFace { model.config.minFaceSize = minFace }
        detector = try FaceDetector(model: model, threads: threads)
        options = DetectionOptions(landmarkBox: landmarkBox)
    }

    /// Decodes an image file (JPEG, PNG, PGM/PPM); errors name it.
    static func decode(_ path: String) throws -> RGBImage {
        guard DataFiles.isFile(path) else { throw TransFaceError.notFound("image '\(path)' does not exist") }
        return try ImageDecoder.decodeFile(path)
    }

    /// Every face in `image` (read from `path`, which errors name), largest box first.
    func faces(in image: RGBImage, path: String) throws -> [DetectedFace] {
        try ImageDecoder.naming(path) {
            try image.pixels.withUnsafeBufferPointer { p in
                try detector.detect(rgb: p.baseAddress!, width: image.width, height: image.height, stride: image.width * 3, options: options)
            }
        }
    }

    /// The main face (largest centre-weighted size: `FaceDetector.pickMain`), nil when there is none.
    func mainFace(in image: RGBImage, path: String) throws -> DetectedFace? {
        let found = try faces(in: image, path: path)
        return FaceDetector.pickMain(found, width: image.width, height: image.height).map { found[$0] }
    }

    /// `image` aligned by its 5 `landmarks` onto `template`: `size` × `size` RGB pixels.
    static func align(_ image: RGBImage, landmarks: [Float], template: [Float], size: Int, path: String) throws -> [UInt8] {
        try ImageDecoder.naming(path) {
            try image.pixels.withUnsafeBufferPointer { p in
                let view = try ImageView(base: p.baseAddress!, width: image.width, height: image.height, format: .rgb)
                return try FaceAlignment.align(view, landmarks: landmarks, template: template, size: size).image.pixels
            }
        }
    }
}

extension DetectionOptions.LandmarkBox: ExpressibleByArgument {}
