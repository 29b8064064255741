import CTransFace
import TFCore
import TFImage

/// Image decoding and face alignment.

@c public func transface_decode_default_params() -> transface_decode_params {
    var p = transface_decode_params()
    p.struct_size = UInt32(MemoryLayout<transface_decode_params>.size)
    p.max_pixels = DecodeOptions.defaultMaxPixels
    p.accept_damaged = 0
    return p
}

@c public func transface_decode_params_init(_ params: UnsafeMutablePointer<transface_decode_params>?, _ size: UInt32) -> transface_status {
    guarded("transface_decode_params_init") { try initStruct(params, size: size, defaults: transface_decode_default_params()) }
}

@c public func transface_decode_image(_ data: UnsafePointer<UInt8>?, _ size: Int,
                                      _ params: UnsafePointer<transface_decode_params>?,
                                      _ outRGB: UnsafeMutablePointer<UInt8>?, _ capacity: Int,
                                      _ outInfo: UnsafeMutablePointer<transface_image_info>?) -> transface_status {
    guarded("transface_decode_image") {
        let data = try required(data, "data")
        try require(size >= 0, "size is negative")
        try decode(UnsafeRawBufferPointer(start: data, count: size), params, outRGB, capacity, outInfo)
    }
}

@c public func transface_decode_file(_ path: UnsafePointer<CChar>?, _ params: UnsafePointer<transface_decode_params>?,
                                     _ outRGB: UnsafeMutablePointer<UInt8>?, _ capacity: Int,
                                     _ outInfo: UnsafeMutablePointer<transface_image_info>?) -> transface_status {
    guarded("transface_decode_file") {
        let path = try string(path, "path")
        _ = try decodeOptions(params)  // argument errors before touching the file
        try checkStruct(outInfo, "out_info")
        let bytes = try ImageDecoder.readImageFile(path)
        try ImageDecoder.naming(path) {
            try bytes.withUnsafeBytes { try decode($0, params, outRGB, capacity, outInfo) }
        }
    }
}

private func decodeOptions(_ params: UnsafePointer<transface_decode_params>?) throws -> DecodeOptions {
    let p = try readStruct(params, defaults: transface_decode_default_params())
    try require(p.accept_damaged == 0 || p.accept_damaged == 1, "accept_damaged must be 0 or 1, got \(p.accept_damaged)")
    return DecodeOptions(maxPixels: p.max_pixels, acceptDamaged: p.accept_damaged == 1)
}

private func decode(_ bytes: UnsafeRawBufferPointer, _ params: UnsafePointer<transface_decode_params>?,
                    _ outRGB: UnsafeMutablePointer<UInt8>?, _ capacity: Int,
                    _ outInfo: UnsafeMutablePointer<transface_image_info>?) throws {
    let options = try decodeOptions(params)
    try checkStruct(outInfo, "out_info")
    try require(capacity >= 0, "capacity is negative")
    func fill(_ i: ImageInfo) throws {
        var info = transface_image_info()
        info.width = Int32(i.width)
        info.height = Int32(i.height)
        info.format = i.format.rawValue
        info.channels = Int32(i.channels)
        try writeStruct(info, to: outInfo, "out_info")
    }
    guard let out = outRGB else {
        try require(capacity == 0, "out_rgb is NULL but capacity is \(capacity) (NULL with 0 reads the header only)")
        try fill(try ImageDecoder.info(bytes, options: options))
        return
    }
    try ImageDecoder.decode(bytes, options: options) { i in
        try fill(i)
        try require(capacity >= i.rgbByteCount,
                    "capacity \(capacity) is less than the \(i.width)x\(i.height)x3 = \(i.rgbByteCount) bytes of the image")
        return out
    }
}

@c public func transface_alignment_template(_ size: Int32, _ outPoints: UnsafeMutablePointer<Float>?) -> transface_status {
    guarded("transface_alignment_template") {
        let out = try required(outPoints, "out_points")
        let points = try FaceAlignment.template(size: Int(size))
        for i in 0..<10 { out[i] = points[i] }
    }
}

@c public func transface_estimate_similarity(_ src: UnsafePointer<Float>?, _ dst: UnsafePointer<Float>?,
                                             _ outMatrix: UnsafeMutablePointer<Double>?) -> transface_status {
    guarded("transface_estimate_similarity") {
        let src = try required(src, "src"), dst = try required(dst, "dst")
        let out = try required(outMatrix, "out_matrix")
        let m = try FaceAlignment.estimateSimilarity(source: (0..<10).map { Double(src[$0]) },
                                                     destination: (0..<10).map { Double(dst[$0]) })
        write(m, out)
    }
}

@c public func transface_warp_affine(_ image: UnsafePointer<UInt8>?, _ width: Int32, _ height: Int32, _ stride: Int,
                                     _ format: transface_pixel_format, _ matrix: UnsafePointer<Double>?,
                                     _ outWidth: Int32, _ outHeight: Int32, _ outRGB: UnsafeMutablePointer<UInt8>?,
                                     _ capacity: Int) -> transface_status {
    guarded("transface_warp_affine") {
        let view = try imageView(image, width, height, stride, format)
        let matrix = try required(matrix, "matrix")
        let out = try required(outRGB, "out_rgb")
        try require(outWidth >= 1 && outHeight >= 1, "output size \(outWidth)x\(outHeight) must be positive")
        let needed = try checkedProduct([Int(outWidth), Int(outHeight), 3], what: "output")
        try require(capacity >= needed, "capacity \(capacity) is less than the \(outWidth)x\(outHeight)x3 = \(needed) bytes of the output")
        try FaceAlignment.warpAffine(view, matrix: AffineMatrix((0..<6).map { matrix[$0] }),
                                     width: Int(outWidth), height: Int(outHeight), into: out)
    }
}

@c public func transface_align_face(_ image: UnsafePointer<UInt8>?, _ width: Int32, _ height: Int32, _ stride: Int,
                                    _ format: transface_pixel_format, _ landmarks: UnsafePointer<Float>?,
                                    _ templatePoints: UnsafePointer<Float>?, _ outSize: Int32,
                                    _ outRGB: UnsafeMutablePointer<UInt8>?, _ capacity: Int,
                                    _ outMatrix: UnsafeMutablePointer<Double>?) -> transface_status {
    guarded("transface_align_face") {
        let view = try imageView(image, width, height, stride, format)
        let landmarks = try required(landmarks, "landmarks")
        let out = try required(outRGB, "out_rgb")
        try require(outSize >= 1, "out_size \(outSize) must be positive")
        let needed = try checkedProduct([Int(outSize), Int(outSize), 3], what: "output")
        try require(capacity >= needed, "capacity \(capacity) is less than the \(outSize)x\(outSize)x3 = \(needed) bytes of the crop")
        let m = try FaceAlignment.align(view, landmarks: (0..<10).map { landmarks[$0] },
                                        template: templatePoints.map { t in (0..<10).map { t[$0] } },
                                        size: Int(outSize), into: out)
        if let outMatrix { write(m, outMatrix) }
    }
}

private func imageView(_ image: UnsafePointer<UInt8>?, _ width: Int32, _ height: Int32, _ stride: Int,
                       _ format: transface_pixel_format) throws -> ImageView {
    let base = try required(image, "image")
    guard let f = PixelFormat(rawValue: Int32(bitPattern: format.rawValue)) else {
        throw TransFaceError.invalidArgument("unknown pixel format \(format.rawValue)")
    }
    try require(width >= 1 && height >= 1, "image size \(width)x\(height) must be positive")
    try require(stride >= 0, "stride is negative")
    return try ImageView(base: base, width: Int(width), height: Int(height), stride: stride, format: f)
}

private func write(_ m: AffineMatrix, _ out: UnsafeMutablePointer<Double>) {
    for i in 0..<6 { out[i] = m.values[i] }
}
