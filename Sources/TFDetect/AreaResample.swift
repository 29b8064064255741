/// PyTorch's `F.interpolate(mode="area")` (adaptive average pooling) of a region of an 8-bit
/// RGB image to `outWidth × outHeight`, followed by MTCNN's normalisation
/// `(v − 127.5) × 0.0078125`, written HWC float32. Output cell `i` of `n` over `size` input
/// pixels averages `[⌊i·size/n⌋, ⌈(i+1)·size/n⌉)`; the mean is `sum / kh / kw` in float32 as
/// PyTorch's CPU kernel computes it (sums of 8-bit values are exact in float32, so the order of
/// summation does not matter).
public func areaResampleNormalised(
    rgb: UnsafePointer<UInt8>, stride: Int, x0: Int, y0: Int, width: Int, height: Int,
    outWidth: Int, outHeight: Int, out: UnsafeMutablePointer<Float>, rows: Range<Int>
) {
    for oy in rows {
        let ys = oy * height / outHeight, ye = ((oy + 1) * height + outHeight - 1) / outHeight
        let kh = Float(ye - ys)
        for ox in 0..<outWidth {
            let xs = ox * width / outWidth, xe = ((ox + 1) * width + outWidth - 1) / outWidth
            let kw = Float(xe - xs)
            var r: Float = 0, g: Float = 0, b: Float = 0
            for y in ys..<ye {
                var p = rgb + (y0 + y) * stride + (x0 + xs) * 3
                for _ in xs..<xe {
                    r += Float(p[0]); g += Float(p[1]); b += Float(p[2])
                    p += 3
                }
            }
            let o = out + (oy * outWidth + ox) * 3
            o[0] = (r / kh / kw - 127.5) * 0.0078125
            o[1] = (g / kh / kw - 127.5) * 0.0078125
            o[2] = (b / kh / kw - 127.5) * 0.0078125
        }
    }
}
