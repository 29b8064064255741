import TFCore
import TFModel

/// A valid, stride-1 `k × k` convolution over HWC float32 (+ bias, + PReLU when it has one), as
/// im2col + one GEMM per chunk of output lines. Weights are re-laid out once from OIHW to
/// [out × (ky, kx, in)], the patch order of `im2col`. Several convolutions of the same input
/// (MTCNN's output heads) may be concatenated along the output channels.
struct ConvLayer {
    let inChannels, outChannels, kernel: Int
    private let weight, bias: [Float]
    private let slope: [Float]?

    init(_ model: DetectorModel, _ names: [String], prelu: String?) {
        let first = model.tensors[names[0] + ".weight"]!.shape
        inChannels = first[1]
        kernel = first[2]
        var w: [Float] = [], b: [Float] = []
        for name in names {
            let t = model.tensors[name + ".weight"]!, o = t.shape[0], k = kernel, c = inChannels
            for oc in 0..<o {
                for ky in 0..<k { for kx in 0..<k { for ic in 0..<c {
                    w.append(t.values[((oc * c + ic) * k + ky) * k + kx])
                } } }
            }
            b += model.values(name + ".bias")
        }
        outChannels = b.count
        weight = w
        bias = b
        slope = prelu.map { model.values($0 + ".weight") }
    }

    var patch: Int { kernel * kernel * inChannels }
    func outSize(_ size: Int) -> Int { size - kernel + 1 }

    /// Output lines per chunk: as many as fit in `chunkRows` output pixels, at least one.
    func chunkLines(width: Int, chunkRows: Int) -> Int { max(1, chunkRows / outSize(width)) }

    /// Floats of the `col` buffer `forward` needs for an input `width` wide.
    func colFloats(width: Int, chunkRows: Int) -> Int {
        kernel == 1 ? 0 : chunkLines(width: width, chunkRows: chunkRows) * outSize(width) * patch
    }

    /// Output lines `lines` of the layer over `x` [height × width × in] into `out` (the whole
    /// output [outHeight × outWidth × out]), in chunks of `chunkLines` lines through `col`
    /// (`colFloats` floats).
    func forward(_ x: UnsafePointer<Float>, width: Int, lines: Range<Int>, out: UnsafeMutablePointer<Float>,
                 col: UnsafeMutablePointer<Float>, chunkRows: Int) {
        let ow = outSize(width), step = chunkLines(width: width, chunkRows: chunkRows)
        var line = lines.lowerBound
        while line < lines.upperBound {
            let chunk = line..<min(line + step, lines.upperBound), rows = chunk.count * ow
            let y = out + line * ow * outChannels
            let a: UnsafePointer<Float>
            if kernel == 1 { a = x + line * width * inChannels } else {
                im2col(x, width: width, channels: inChannels, kernel: kernel, lines: chunk, col: col)
                a = UnsafePointer(col)
            }
            affinePReLU(a, rows: rows, inputs: patch, weight: weight, bias: bias, slope: slope, out: y)
            line = chunk.upperBound
        }
    }
}

/// A dense layer (+ bias, + PReLU when it has one) on rows of features, one GEMM. When its input
/// is a flattened HWC feature map (`hwc` = height, width, channels), the weight's columns are
/// re-ordered once from facenet's flattening order, `permute(0, 3, 2, 1)` of NCHW (x, y, c),
/// to ours (y, x, c), so no transpose happens per call. Heads may be concatenated as in `ConvLayer`.
struct DenseLayer {
    let inFeatures, outFeatures: Int
    private let weight, bias: [Float]
    private let slope: [Float]?

    init(_ model: DetectorModel, _ names: [String], prelu: String?, hwc: (Int, Int, Int)? = nil) {
        inFeatures = model.tensors[names[0] + ".weight"]!.shape[1]
        var w: [Float] = [], b: [Float] = []
        for name in names {
            let t = model.tensors[name + ".weight"]!
            for o in 0..<t.shape[0] {
                let row = t.values[(o * inFeatures)..<((o + 1) * inFeatures)]
                if let hwc {
                    let (h, wd, c) = hwc
                    for y in 0..<h { for x in 0..<wd { for ch in 0..<c {
                        w.append(row[row.startIndex + (x * h + y) * c + ch])
                    } } }
                } else {
                    w += row
                }
            }
            b += model.values(name + ".bias")
        }
        outFeatures = b.count
        weight = w
        bias = b
        slope = prelu.map { model.values($0 + ".weight") }
    }

    /// `out[r] = prelu(x[r]·Wᵀ + b)` for `rows` rows.
    func forward(_ x: UnsafePointer<Float>, rows: Int, out: UnsafeMutablePointer<Float>) {
        affinePReLU(x, rows: rows, inputs: inFeatures, weight: weight, bias: bias, slope: slope, out: out)
    }
}

/// `out[r] = prelu(x[r]·Wᵀ + b)` for `rows` rows of `inputs` values, W = `weight` [bias.count ×
/// inputs] (PReLU only when `slope` is given): the one GEMM and epilogue of both layer kinds.
private func affinePReLU(_ x: UnsafePointer<Float>, rows: Int, inputs: Int, weight: [Float], bias: [Float], slope: [Float]?,
                         out: UnsafeMutablePointer<Float>) {
    let outputs = bias.count
    weight.withUnsafeBufferPointer { w in
        BLAS.gemm(m: rows, n: outputs, k: inputs, a: x, lda: inputs, b: w.baseAddress!, ldb: inputs,
                  transposeB: true, c: out, ldc: outputs)
    }
    bias.withUnsafeBufferPointer { b in
        if let slope {
            slope.withUnsafeBufferPointer { addBiasPReLU(out, count: rows, channels: outputs, bias: b.baseAddress!, slope: $0.baseAddress!) }
        } else {
            addBiasPReLU(out, count: rows, channels: outputs, bias: b.baseAddress!, slope: nil)
        }
    }
}
