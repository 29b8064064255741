/// im2col for the patch-embedding convolution (kernel = stride = patch, no padding) on one
/// uint8 HWC image: writes [grid² × channels·patch²] rows ordered (c, ky, kx) like the
/// PyTorch Conv2d weight, with each byte mapped through `lut[c · 256 + byte]` (normalisation).
/// Only the top-left grid·patch pixels are read, as in the official model. `mirror` reads the
/// horizontally flipped image; `reverseChannels` feeds network channel c from image channel
/// `channels − 1 − c` (an RGB image into a BGR network).
public func patchIm2col(
    out: UnsafeMutablePointer<Float>, image: UnsafePointer<UInt8>, width: Int, channels: Int,
    patch: Int, grid: Int, lut: UnsafePointer<Float>, mirror: Bool, reverseChannels: Bool = false
) {
    let rowLength = channels * patch * patch
    for gy in 0..<grid {
        for gx in 0..<grid {
            let dst = out + (gy * grid + gx) * rowLength
            for ky in 0..<patch {
                let y = gy * patch + ky
                let src = image + y * width * channels
                for kx in 0..<patch {
                    let x0 = gx * patch + kx
                    let x = mirror ? width - 1 - x0 : x0
                    let px = src + x * channels
                    for c in 0..<channels {
                        let source = reverseChannels ? channels - 1 - c : c
                        dst[c * patch * patch + ky * patch + kx] = lut[c * 256 + Int(px[source])]
                    }
                }
            }
        }
    }
}

/// im2col as `patchIm2col` for an image already normalised, float HWC.
public func patchIm2colFloat(
    out: UnsafeMutablePointer<Float>, image: UnsafePointer<Float>, width: Int, channels: Int,
    patch: Int, grid: Int, mirror: Bool, reverseChannels: Bool = false
) {
    let rowLength = channels * patch * patch
    for gy in 0..<grid {
        for gx in 0..<grid {
            let dst = out + (gy * grid + gx) * rowLength
            for ky in 0..<patch {
                let src = image + (gy * patch + ky) * width * channels
                for kx in 0..<patch {
                    let x0 = gx * patch + kx
                    let px = src + (mirror ? width - 1 - x0 : x0) * channels
                    for c in 0..<channels {
                        dst[c * patch * patch + ky * patch + kx] = px[reverseChannels ? channels - 1 - c : c]
                    }
                }
            }
        }
    }
}
