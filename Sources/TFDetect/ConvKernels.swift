#if canImport(Glibc)
import Glibc
#endif

/// The pieces of MTCNN's convolution stacks over HWC float32 buffers: im2col (patches in
/// (ky, kx, c) order, the order `ConvLayer` lays its weights out in), bias + PReLU, and max
/// pooling with PyTorch's `ceil_mode=True`.

/// Rows `lines` of a valid (no padding, stride 1) `k × k` convolution's patch matrix: one row of
/// `k·k·channels` values per output pixel, written from `col` on (row 0 = first pixel of
/// `lines.lowerBound`).
public func im2col(_ x: UnsafePointer<Float>, width: Int, channels: Int, kernel k: Int,
                   lines: Range<Int>, col: UnsafeMutablePointer<Float>) {
    let outWidth = width - k + 1, patch = k * k * channels
    var row = col
    for oy in lines {
        for ox in 0..<outWidth {
            var dst = row
            for ky in 0..<k {
                let src = x + ((oy + ky) * width + ox) * channels
                dst.update(from: src, count: k * channels)
                dst += k * channels
            }
            row += patch
        }
    }
}

/// `y[r, c] = prelu(y[r, c] + bias[c])` over `count` rows of `channels` (no slope: bias only).
public func addBiasPReLU(_ y: UnsafeMutablePointer<Float>, count: Int, channels: Int,
                         bias: UnsafePointer<Float>, slope: UnsafePointer<Float>?) {
    var p = y
    for _ in 0..<count {
        if let slope {
            for c in 0..<channels {
                let v = p[c] + bias[c]
                p[c] = v >= 0 ? v : v * slope[c]
            }
        } else {
            for c in 0..<channels { p[c] += bias[c] }
        }
        p += channels
    }
}

/// Output size of PyTorch's `MaxPool2d(k, s, ceil_mode=True)` without padding over `size`.
@inlinable
public func pooledSize(_ size: Int, kernel k: Int, stride s: Int) -> Int {
    var n = (size - k + s - 1) / s + 1
    if (n - 1) * s >= size { n -= 1 }   // the last window must start inside the input
    return n
}

/// Max pooling (`k × k`, stride `s`, `ceil_mode=True`: windows clipped at the far edges) of an
/// HWC buffer, output lines `lines`.
public func maxPoolCeil(_ x: UnsafePointer<Float>, width: Int, height: Int, channels: Int, kernel k: Int, stride s: Int,
                        lines: Range<Int>, out: UnsafeMutablePointer<Float>) {
    let outWidth = pooledSize(width, kernel: k, stride: s)
    for oy in lines {
        let ys = oy * s, ye = min(ys + k, height)
        for ox in 0..<outWidth {
            let xs = ox * s, xe = min(xs + k, width)
            let o = out + (oy * outWidth + ox) * channels
            o.update(from: x + (ys * width + xs) * channels, count: channels)
            for y in ys..<ye {
                for xx in xs..<xe {
                    let p = x + (y * width + xx) * channels
                    for c in 0..<channels { o[c] = max(o[c], p[c]) }
                }
            }
        }
    }
}

/// MTCNN's two-class softmax, the face probability: `exp(a1 − m) / (exp(a0 − m) + exp(a1 − m))`.
@inlinable
public func faceProbability(_ a0: Float, _ a1: Float) -> Float {
    let m = max(a0, a1)
    let e0 = expf(a0 - m), e1 = expf(a1 - m)
    return e1 / (e0 + e1)
}
