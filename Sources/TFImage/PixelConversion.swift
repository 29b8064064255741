import TFCore

extension ImageView {
    /// The image as packed 8-bit RGB (width × height × 3 bytes), whatever its format (gray is
    /// replicated to the three channels, alpha dropped).
    public func packedRGB() -> [UInt8] {
        let (r, g, b) = format.rgbOffsets, channels = format.channels
        return [UInt8](unsafeUninitializedCapacity: width * height * 3) { out, count in
            for y in 0..<height {
                let row = base + y * stride, dst = out.baseAddress! + y * width * 3
                for x in 0..<width {
                    let p = row + x * channels
                    dst[3 * x] = p[r]; dst[3 * x + 1] = p[g]; dst[3 * x + 2] = p[b]
                }
            }
            count = width * height * 3
        }
    }
}
