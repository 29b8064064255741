import CTransFace
import TFCore
import TFDetect
import TFImage
import TFModel

/// Face detection: detectors, faces, the photo-to-embedding pipeline.

extension transface_detector_params: ABIStruct {
    static var abiName: String { "transface_detector_params" }
    static var firstReleasedSize: Int { 32 }
}
extension transface_face: ABIStruct {
    static var abiName: String { "transface_face" }
    static var firstReleasedSize: Int { 64 }
}
/// What a `transface_detector *` points to: the detector and the decoding mode of its params.
final class DetectorHandle: HandleObject {
    static var handleKind: HandleKind { .detector }
    let detector: FaceDetector
    let options: DetectionOptions
    init(_ detector: FaceDetector, _ options: DetectionOptions) { self.detector = detector; self.options = options }
}

@c public func transface_detector_default_params() -> transface_detector_params {
    var p = transface_detector_params()
    p.struct_size = UInt32(MemoryLayout<transface_detector_params>.size)
    p.num_threads = 1
    p.landmark_box = Int32(TRANSFACE_LANDMARKS_TRUNCATED.rawValue)
    return p
}

@c public func transface_detector_params_init(_ params: UnsafeMutablePointer<transface_detector_params>?, _ size: UInt32) -> transface_status {
    guarded("transface_detector_params_init") { try initStruct(params, size: size, defaults: transface_detector_default_params()) }
}

@c public func transface_detector_load(_ path: UnsafePointer<CChar>?, _ params: UnsafePointer<transface_detector_params>?,
                                       _ out: UnsafeMutablePointer<OpaquePointer?>?) -> transface_status {
    guarded("transface_detector_load") {
        let out = try required(out, "out_detector")
        out.pointee = nil
        let path = try string(path, "path")
        let p = try readStruct(params, defaults: transface_detector_default_params())
        try require(p.num_threads >= 1 && p.num_threads <= 256, "num_threads must be 1...256, got \(p.num_threads)")
        let mode: DetectionOptions.LandmarkBox
        switch UInt32(bitPattern: p.landmark_box) {
        case TRANSFACE_LANDMARKS_TRUNCATED.rawValue: mode = .truncated
        case TRANSFACE_LANDMARKS_FACENET.rawValue: mode = .facenet
        default: throw TransFaceError.invalidArgument("landmark_box \(p.landmark_box) is not a transface_landmark_box")
        }
        var model = try DetectorModelFile.load(path: path)
        if p.min_face_size != 0 { model.config.minFaceSize = Int(p.min_face_size) }
        if p.scale_factor != 0 { model.config.scaleFactor = p.scale_factor }
        withUnsafeBytes(of: p.thresholds) { raw in
            for (i, t) in raw.bindMemory(to: Float.self).enumerated() where t != 0 { model.config.thresholds[i] = t }
        }
        try model.config.validate()
        out.pointee = Handle.make(DetectorHandle(try FaceDetector(model: model, threads: Int(p.num_threads)),
                                                 DetectionOptions(landmarkBox: mode)))
    }
}

@c public func transface_detector_free(_ detector: OpaquePointer?) { Handle.release(detector, DetectorHandle.self, "transface_detector_free") }

/// The faces of a caller's image, highest score first.
private func faces(_ detector: OpaquePointer?, _ image: UnsafePointer<UInt8>?, _ width: Int32, _ height: Int32, _ stride: Int,
                   _ format: transface_pixel_format) throws -> (faces: [DetectedFace], view: ImageView) {
    let h = try Handle.get(detector, DetectorHandle.self, "detector")
    let base = try required(image, "image")
    guard let f = PixelFormat(rawValue: Int32(bitPattern: format.rawValue)) else {
        throw TransFaceError.invalidArgument("unknown pixel format \(format.rawValue)")
    }
    try require(width >= 1 && height >= 1, "image size \(width)x\(height) must be positive")
    try require(Int(width) <= FaceDetector.maxPixels / Int(height),
                "image of \(width) x \(height) pixels exceeds the detector's limit of \(FaceDetector.maxPixels)")
    let view = try ImageView(base: base, width: Int(width), height: Int(height), stride: stride, format: f)
    var found: [DetectedFace]
    if f == .rgb {
        found = try h.detector.detect(rgb: base, width: view.width, height: view.height, stride: view.stride, options: h.options)
    } else {
        let rgb = view.packedRGB()
        found = try rgb.withUnsafeBufferPointer {
            try h.detector.detect(rgb: $0.baseAddress!, width: view.width, height: view.height, stride: view.width * 3, options: h.options)
        }
    }
    found = found.enumerated().sorted { ($0.element.score, -$0.offset) > ($1.element.score, -$1.offset) }.map(\.element)
    return (found, view)
}

private func cFace(_ f: DetectedFace) -> transface_face {
    var c = transface_face()
    withUnsafeMutableBytes(of: &c.box) { $0.bindMemory(to: Float.self).update(from: f.box) }
    c.score = f.score
    withUnsafeMutableBytes(of: &c.landmarks) { $0.bindMemory(to: Float.self).update(from: f.landmarks) }
    return c
}

@c public func transface_detect(_ detector: OpaquePointer?, _ image: UnsafePointer<UInt8>?, _ width: Int32, _ height: Int32,
                                _ stride: Int, _ format: transface_pixel_format, _ outFaces: UnsafeMutablePointer<transface_face>?,
                                _ capacity: Int, _ outCount: UnsafeMutablePointer<Int>?) -> transface_status {
    guarded("transface_detect") {
        let count = try required(outCount, "out_count")
        try require(capacity >= 0, "capacity is negative")
        var element = 0
        if capacity > 0 {
            let first = try checkStruct(outFaces, "out_faces")
            element = Int(UnsafeRawPointer(first).loadUnaligned(as: UInt32.self))
        }
        let found = try faces(detector, image, width, height, stride, format).faces
        count.pointee = found.count
        guard let outFaces, capacity > 0 else { return }
        let raw = UnsafeMutableRawPointer(outFaces)
        for (i, f) in found.prefix(capacity).enumerated() {
            let slot = raw + i * element
            slot.storeBytes(of: UInt32(element), as: UInt32.self)  // each element states the caller's size
            try writeStruct(cFace(f), to: slot.assumingMemoryBound(to: transface_face.self), "out_faces")
        }
    }
}

/// The main face of a photo, or notFound.
private func mainFace(_ detector: OpaquePointer?, _ image: UnsafePointer<UInt8>?, _ width: Int32, _ height: Int32, _ stride: Int,
                      _ format: transface_pixel_format) throws -> (face: DetectedFace, view: ImageView) {
    let (found, view) = try faces(detector, image, width, height, stride, format)
    guard let i = FaceDetector.pickMain(found, width: view.width, height: view.height) else {
        throw TransFaceError.notFound("no face found in the \(width) x \(height) image")
    }
    return (found[i], view)
}

@c public func transface_detect_main_face(_ detector: OpaquePointer?, _ image: UnsafePointer<UInt8>?, _ width: Int32, _ height: Int32,
                                          _ stride: Int, _ format: transface_pixel_format,
                                          _ outFace: UnsafeMutablePointer<transface_face>?) -> transface_status {
    guarded("transface_detect_main_face") {
        try checkStruct(outFace, "out_face")
        try writeStruct(cFace(try mainFace(detector, image, width, height, stride, format).face), to: outFace, "out_face")
    }
}

@c public func transface_embed_photo(_ context: OpaquePointer?, _ detector: OpaquePointer?, _ image: UnsafePointer<UInt8>?,
                                     _ width: Int32, _ height: Int32, _ stride: Int, _ format: transface_pixel_format, _ flags: UInt32,
                                     _ embedding: UnsafeMutablePointer<Float>?, _ capacity: Int,
                                     _ outFace: UnsafeMutablePointer<transface_face>?) -> transface_status {
    guarded("transface_embed_photo") {
        let embedder = try Handle.get(context, Embedder.self, "context")
        if outFace != nil { try checkStruct(outFace, "out_face") }
        let (face, view) = try mainFace(detector, image, width, height, stride, format)
        let p = embedder.model.preprocess
        try require(p.inputWidth == p.inputHeight, "the model's input is \(p.inputWidth)x\(p.inputHeight), not square")
        let aligned = try FaceAlignment.align(view, landmarks: face.landmarks, template: p.alignTemplate, size: p.inputWidth).image
        try aligned.pixels.withUnsafeBufferPointer { px in
            try embed(context, px.baseAddress!, 1, Int32(p.inputWidth), Int32(p.inputHeight), flags,
                      .init(embeddings: try buffer(try required(embedding, "embedding"), capacity, "capacity")))
        }
        if outFace != nil { try writeStruct(cFace(face), to: outFace, "out_face") }
    }
}
