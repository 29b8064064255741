import TFCore

/// Pixel layouts of 8-bit images given to the aligner.
public enum PixelFormat: Int32, Sendable, CaseIterable {
    case rgb = 0, bgr = 1, rgba = 2, bgra = 3, gray = 4

    public var channels: Int {
        switch self {
        case .rgb, .bgr: return 3
        case .rgba, .bgra: return 4
        case .gray: return 1
        }
    }

    /// Byte offsets of red, green and blue within a pixel.
    var rgbOffsets: (Int, Int, Int) {
        switch self {
        case .rgb, .rgba: return (0, 1, 2)
        case .bgr, .bgra: return (2, 1, 0)
        case .gray: return (0, 0, 0)
        }
    }
}

/// A borrowed 8-bit image: `height` rows `stride` bytes apart, each `width` pixels of `format`.
public struct ImageView {
    public let base: UnsafePointer<UInt8>
    public let width: Int
    public let height: Int
    public let stride: Int
    public let format: PixelFormat

    /// `stride` 0 means rows are packed (width * channels bytes).
    public init(base: UnsafePointer<UInt8>, width: Int, height: Int, stride: Int = 0, format: PixelFormat) throws {
        try require(width >= 1 && height >= 1, "image size \(width)x\(height) must be positive")
        let row = try checkedProduct([width, format.channels], what: "image row")
        let stride = stride == 0 ? row : stride
        try require(stride >= row, "stride \(stride) is smaller than a row of \(width) pixels (\(row) bytes)")
        _ = try checkedProduct([stride, height], what: "image")
        self.base = base
        self.width = width
        self.height = height
        self.stride = stride
        self.format = format
    }
}

/// A 2x3 affine matrix [a b c; d e f] mapping (x, y) to (a x + b y + c, d x + e y + f).
public struct AffineMatrix: Equatable, Sendable {
    public var values: [Double]

    public init(_ values: [Double]) {
        precondition(values.count == 6, "an affine matrix has 6 values")
        self.values = values
    }

    public func apply(x: Double, y: Double) -> (x: Double, y: Double) {
        (values[0] * x + values[1] * y + values[2], values[3] * x + values[4] * y + values[5])
    }

    /// The inverse, computed as OpenCV's warpAffine does (double precision).
    public func inverted() throws -> AffineMatrix {
        var m = values
        guard m.allSatisfy(\.isFinite) else { throw TransFaceError(.numeric, "affine matrix is not finite: \(values)") }
        let det = m[0] * m[4] - m[1] * m[3]
        guard det != 0 && det.isFinite else { throw TransFaceError(.numeric, "affine matrix is singular: \(values)") }
        let d = 1 / det
        let a11 = m[4] * d, a22 = m[0] * d
        m[0] = a11; m[1] *= -d; m[3] *= -d; m[4] = a22
        let b1 = -m[0] * m[2] - m[1] * m[5]
        let b2 = -m[3] * m[2] - m[4] * m[5]
        m[2] = b1; m[5] = b2
        guard m.allSatisfy(\.isFinite) else { throw TransFaceError(.numeric, "affine matrix cannot be inverted: \(values)") }
        return AffineMatrix(m)
    }
}

/// 5-point face alignment as insightface's `norm_crop`: a least-squares similarity transform
/// (scikit-image `SimilarityTransform.estimate`, Umeyama) from the landmarks to the ArcFace
/// template, then a bilinear warp with a black border (`cv2.warpAffine(img, M, (s, s),
/// borderValue=0)`).
///
/// Landmark order: image-left eye, image-right eye, nose tip, image-left mouth corner,
/// image-right mouth corner (x, y pixel coordinates, pixel centres at integers).
public enum FaceAlignment {
    /// insightface `arcface_dst` for 112x112 (float32, as insightface stores it).
    public static let arcfaceTemplate112: [Float] = [
        38.2946, 51.6963, 73.5318, 51.5014, 56.0252, 71.7366, 41.5493, 92.3655, 70.7299, 92.2041,
    ]

    /// The ArcFace template for a `size`x`size` crop (insightface `estimate_norm`): for a
    /// multiple of 112, scaled by size/112; otherwise, for a multiple of 128, scaled by size/128
    /// with 8*size/128 added to x. Computed in float32 as numpy does. Other sizes are refused.
    public static func template(size: Int) throws -> [Float] {
        let ratio: Float, shift: Float
        if size >= 112 && size % 112 == 0 {
            ratio = Float(Double(size) / 112)
            shift = 0
        } else if size >= 128 && size % 128 == 0 {
            let r = Double(size) / 128
            ratio = Float(r)
            shift = Float(8 * r)
        } else {
            throw TransFaceError.invalidArgument(
                "the ArcFace template is defined for sizes that are multiples of 112 or 128, not \(size)")
        }
        return arcfaceTemplate112.enumerated().map { i, v in i % 2 == 0 ? v * ratio + shift : v * ratio }
    }

    /// The least-squares similarity transform (rotation, uniform scale, translation; no
    /// reflection) mapping `source` points onto `destination` points, both given as x0, y0,
    /// x1, y1, ... (at least 2 points).
    ///
    /// In 2D, Umeyama's estimate with its reflection handling (the `d = diag(1, -1)` correction
    /// when det(A) < 0, and the rank-1 case) is exactly the minimiser over proper rotations,
    /// which has the closed form a = sum(s.d) / sum|s|^2, b = sum(s x d) / sum|s|^2 over centred
    /// points, M = [a -b tx; b a ty]; it is computed that way here, in double precision.
    /// (scikit-image keeps float32 inputs in float32; its matrix then differs from this one by
    /// about 2e-5.) Fails with `.numeric` when the source points coincide or the best fit has
    /// scale 0.
    public static func estimateSimilarity(source: [Double], destination: [Double]) throws -> AffineMatrix {
        try require(source.count == destination.count && source.count % 2 == 0 && source.count >= 4,
                    "similarity: need the same number (at least 2) of source and destination points, got \(source.count / 2) and \(destination.count / 2)")
        guard source.allSatisfy(\.isFinite) && destination.allSatisfy(\.isFinite) else {
            throw TransFaceError(.numeric, "similarity: points must be finite")
        }
        let n = source.count / 2
        var sx = 0.0, sy = 0.0, dx = 0.0, dy = 0.0
        for i in 0..<n {
            sx += source[2 * i]; sy += source[2 * i + 1]
            dx += destination[2 * i]; dy += destination[2 * i + 1]
        }
        sx /= Double(n); sy /= Double(n); dx /= Double(n); dy /= Double(n)
        var variance = 0.0, dot = 0.0, cross = 0.0
        for i in 0..<n {
            let px = source[2 * i] - sx, py = source[2 * i + 1] - sy
            let qx = destination[2 * i] - dx, qy = destination[2 * i + 1] - dy
            variance += px * px + py * py
            dot += px * qx + py * qy
            cross += px * qy - py * qx
        }
        guard variance > 0 else { throw TransFaceError(.numeric, "similarity: the source points all coincide") }
        let a = dot / variance, b = cross / variance
        guard a != 0 || b != 0 else {
            throw TransFaceError(.numeric, "similarity: the best fit has scale 0 (destination points coincide or mirror the source)")
        }
        let tx = dx - (a * sx - b * sy)
        let ty = dy - (b * sx + a * sy)
        let m = AffineMatrix([a, -b, tx, b, a, ty])
        guard m.values.allSatisfy(\.isFinite) else { throw TransFaceError(.numeric, "similarity: the transform is not finite") }
        return m
    }

    /// Warps `image` by `matrix` (source to destination pixel coordinates) into an RGB
    /// `width`x`height` image at `out` (rows packed). Each destination pixel samples the source
    /// bilinearly at the inverse-mapped position; source pixels outside the image count as
    /// black (0). The arithmetic is OpenCV's (4.11 and later, 5.x) for 8-bit images: the
    /// inverse matrix (computed in double) rounded to float32, x = fma(m0, col, float(row * m1)
    /// + m2) (same for y), interpolation by fma in float32, rounding half to even. (OpenCV up to
    /// 4.10 used 5-bit fixed-point weights instead: its results differ from these by one level
    /// on a few per cent of pixels.)
    public static func warpAffine(_ image: ImageView, matrix: AffineMatrix, width: Int, height: Int,
                                  into out: UnsafeMutablePointer<UInt8>) throws {
        try require(width >= 1 && height >= 1 && width <= 1 << 16 && height <= 1 << 16,
                    "output size \(width)x\(height) must be 1 to 65536 a side")
        let inverse = try matrix.inverted().values.map { Float($0) }
        let m0 = inverse[0], m1 = inverse[1], m2 = inverse[2], m3 = inverse[3], m4 = inverse[4], m5 = inverse[5]
        let src = image.base, stride = image.stride, cn = image.format.channels
        let (r, g, b) = image.format.rgbOffsets
        let w = image.width, h = image.height
        let fw = Float(w), fh = Float(h)
        for y in 0..<height {
            let fy = Float(y)
            let rowX = fy * m1 + m2   // rounded product, then rounded sum (not fused), as OpenCV
            let rowY = fy * m4 + m5
            var o = out + y * width * 3
            for x in 0..<width {
                let fx = Float(x)
                let sx = rowX.addingProduct(m0, fx)  // fused: one rounding
                let sy = rowY.addingProduct(m3, fx)
                // Entirely outside (or not finite): all four neighbours are border.
                guard sx >= -1 && sx < fw && sy >= -1 && sy < fh else {
                    o[0] = 0; o[1] = 0; o[2] = 0
                    o += 3
                    continue
                }
                let ix = floorInt(sx), iy = floorInt(sy)
                let ax = sx - Float(ix), ay = sy - Float(iy)
                let p = src + iy * stride + ix * cn   // may point outside; only dereferenced when inside
                if ix >= 0 && ix < w - 1 && iy >= 0 && iy < h - 1 {
                    o[0] = lerp(Float(p[r]), Float(p[cn + r]), Float(p[stride + r]), Float(p[stride + cn + r]), ax, ay)
                    o[1] = lerp(Float(p[g]), Float(p[cn + g]), Float(p[stride + g]), Float(p[stride + cn + g]), ax, ay)
                    o[2] = lerp(Float(p[b]), Float(p[cn + b]), Float(p[stride + b]), Float(p[stride + cn + b]), ax, ay)
                } else {
                    let in00 = ix >= 0 && iy >= 0, in01 = ix + 1 < w && iy >= 0
                    let in10 = ix >= 0 && iy + 1 < h, in11 = ix + 1 < w && iy + 1 < h
                    for (k, c) in [r, g, b].enumerated() {
                        let p00: Float = in00 ? Float(p[c]) : 0
                        let p01: Float = in01 ? Float(p[cn + c]) : 0
                        let p10: Float = in10 ? Float(p[stride + c]) : 0
                        let p11: Float = in11 ? Float(p[stride + cn + c]) : 0
                        o[k] = lerp(p00, p01, p10, p11, ax, ay)
                    }
                }
                o += 3
            }
        }
    }

    /// OpenCV's bilinear step: v0 = fma(ax, p01 - p00, p00), v1 likewise, fma(ay, v1 - v0, v0),
    /// rounded half to even and saturated.
    @inline(__always)
    private static func lerp(_ p00: Float, _ p01: Float, _ p10: Float, _ p11: Float, _ ax: Float, _ ay: Float) -> UInt8 {
        let v0 = p00.addingProduct(ax, p01 - p00)
        let v1 = p10.addingProduct(ax, p11 - p10)
        return byte(v0.addingProduct(ay, v1 - v0))
    }

    /// v in [0, 255] rounded half to even and clamped, without libm or trap checks: for
    /// |v| < 2^22, v + 1.5 * 2^23 holds the rounded integer in its low mantissa bits.
    @inline(__always)
    private static func byte(_ v: Float) -> UInt8 {
        let n = Int32(bitPattern: (v + 12_582_912).bitPattern) &- 0x4B40_0000
        return UInt8(truncatingIfNeeded: min(max(n, 0), 255))
    }

    /// floor(v) for finite |v| < 2^50, without libm or trap checks (v + 1.5 * 2^52 rounds to
    /// the nearest integer in its low mantissa bits; step down when that overshoots).
    @inline(__always)
    private static func floorInt(_ v: Float) -> Int {
        let d = Double(v)
        let n = Int64(bitPattern: (d + 6_755_399_441_055_744).bitPattern) &- 0x4338_0000_0000_0000
        return Int(n) &- (Double(n) > d ? 1 : 0)
    }

    /// Aligns a face: the similarity transform from `landmarks` (5 points, 10 values) to
    /// `template` (nil: the ArcFace template for `size`), then the warp to a `size`x`size` RGB
    /// crop at `out`. Returns the matrix (landmarks to template).
    @discardableResult
    public static func align(_ image: ImageView, landmarks: [Float], template: [Float]? = nil, size: Int = 112,
                             into out: UnsafeMutablePointer<UInt8>) throws -> AffineMatrix {
        try require(landmarks.count == 10, "alignment needs 5 landmarks (10 values), got \(landmarks.count) values")
        let target = try template ?? FaceAlignment.template(size: size)
        try require(target.count == 10, "the alignment template needs 5 points (10 values), got \(target.count) values")
        guard landmarks.allSatisfy(\.isFinite) else { throw TransFaceError(.numeric, "landmarks must be finite: \(landmarks)") }
        guard target.allSatisfy(\.isFinite) else { throw TransFaceError(.numeric, "template points must be finite") }
        let m = try estimateSimilarity(source: landmarks.map(Double.init), destination: target.map(Double.init))
        try warpAffine(image, matrix: m, width: size, height: size, into: out)
        return m
    }

    /// As `align(_:landmarks:template:size:into:)`, returning a new image.
    public static func align(_ image: ImageView, landmarks: [Float], template: [Float]? = nil,
                             size: Int = 112) throws -> (image: RGBImage, matrix: AffineMatrix) {
        try require(size >= 1 && size <= 1 << 16, "output size \(size) must be 1 to 65536")
        var matrix = AffineMatrix([1, 0, 0, 0, 1, 0])
        let pixels = try [UInt8](unsafeUninitializedCapacity: size * size * 3) { buffer, count in
            matrix = try align(image, landmarks: landmarks, template: template, size: size, into: buffer.baseAddress!)
            count = size * size * 3
        }
        return (RGBImage(width: size, height: size, pixels: pixels), matrix)
    }
}
