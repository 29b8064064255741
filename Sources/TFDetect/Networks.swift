import TFCore
import TFModel

/// Height, width, channels of an HWC feature map.
struct MapShape: Equatable {
    var height, width, channels: Int
    var count: Int { height * width * channels }
}

/// One step of a convolution stack.
enum Stage {
    case conv(ConvLayer)
    /// `MaxPool2d(kernel, stride, ceil_mode=True)`.
    case pool(kernel: Int, stride: Int)

    func output(_ s: MapShape) -> MapShape {
        switch self {
        case .conv(let c): return MapShape(height: c.outSize(s.height), width: c.outSize(s.width), channels: c.outChannels)
        case .pool(let k, let st):
            return MapShape(height: pooledSize(s.height, kernel: k, stride: st), width: pooledSize(s.width, kernel: k, stride: st),
                            channels: s.channels)
        }
    }

    /// Output lines `lines` of this stage over `x` of shape `s` into `out`.
    func run(_ x: UnsafePointer<Float>, _ s: MapShape, lines: Range<Int>, out: UnsafeMutablePointer<Float>,
             col: UnsafeMutablePointer<Float>) {
        switch self {
        case .conv(let c): c.forward(x, width: s.width, lines: lines, out: out, col: col, chunkRows: Stage.chunkRows)
        case .pool(let k, let st):
            maxPoolCeil(x, width: s.width, height: s.height, channels: s.channels, kernel: k, stride: st, lines: lines, out: out)
        }
    }

    /// Output pixels per im2col chunk (the patch matrix of a chunk stays in L2).
    static let chunkRows = 256

    /// Floats of the `col` buffer `run` needs on an input of shape `s`.
    func colFloats(_ s: MapShape) -> Int {
        if case .conv(let c) = self { return c.colFloats(width: s.width, chunkRows: Stage.chunkRows) } else { return 0 }
    }
}

/// Per-worker buffers of the networks (and of the pyramid levels a worker runs whole).
final class WorkerScratch {
    let col = Scratch(), ping = Scratch(), pong = Scratch(), hidden = Scratch()
    let level = Scratch(), mapA = Scratch(), mapB = Scratch()
}

/// P-Net: a fully convolutional stack run on a whole pyramid level, each stage's output lines
/// split between the workers. Its output map has 6 channels per cell: the two class logits
/// turned into (logit, face probability) by `forward`, then the 4 box offsets.
struct PNet {
    let stages: [Stage]

    init(_ m: DetectorModel) {
        stages = [.conv(ConvLayer(m, ["pnet.conv1"], prelu: "pnet.prelu1")), .pool(kernel: 2, stride: 2),
                  .conv(ConvLayer(m, ["pnet.conv2"], prelu: "pnet.prelu2")),
                  .conv(ConvLayer(m, ["pnet.conv3"], prelu: "pnet.prelu3")),
                  .conv(ConvLayer(m, ["pnet.conv4_1", "pnet.conv4_2"], prelu: nil))]
    }

    /// The output shape for an input of `height × width` (nil when smaller than one 12 × 12 cell).
    func outputShape(height: Int, width: Int) -> MapShape? {
        guard height >= 12 && width >= 12 else { return nil }
        return stages.reduce(MapShape(height: height, width: width, channels: 3)) { $1.output($0) }
    }

    /// Runs on `x` [height × width × 3]; the result lives in `a` or `b` (returned). Channel 1 of
    /// the result is the face probability. Each stage's lines are split between the pool's
    /// workers, or, with `worker` given, all run on the calling thread as that worker.
    func forward(pool: WorkerPool, worker: Int? = nil, _ x: UnsafeMutablePointer<Float>, height: Int, width: Int,
                 a: Scratch, b: Scratch, workers: [WorkerScratch]) -> UnsafeMutablePointer<Float> {
        var shape = MapShape(height: height, width: width, channels: 3)
        var input = x, useA = true
        for stage in stages {
            let outShape = stage.output(shape)
            let out = (useA ? a : b).floats(outShape.count)
            let src = UnsafePointer(input), s = shape
            if let worker {
                stage.run(src, s, lines: 0..<outShape.height, out: out, col: workers[worker].col.floats(stage.colFloats(s)))
            } else { pool.run { w in
                let lines = WorkerPool.split(outShape.height, parts: pool.threadCount, index: w)
                guard !lines.isEmpty else { return }
                stage.run(src, s, lines: lines, out: out, col: workers[w].col.floats(stage.colFloats(s)))
            } }
            input = out
            useA.toggle()
            shape = outShape
        }
        for i in 0..<(shape.height * shape.width) {
            let p = input + i * shape.channels
            p[1] = faceProbability(p[0], p[1])
        }
        return input
    }
}

/// R-Net or O-Net: a convolution stack per `size × size` crop, then one hidden dense layer and the
/// (concatenated) heads over all crops;
/// workers take contiguous runs of crops.
struct CropNet {
    let size: Int
    let stages: [Stage]
    let dense: [DenseLayer]
    let featureShape: MapShape

    static func rnet(_ m: DetectorModel) -> CropNet {
        CropNet(size: 24, stages: [.conv(ConvLayer(m, ["rnet.conv1"], prelu: "rnet.prelu1")), .pool(kernel: 3, stride: 2),
                                   .conv(ConvLayer(m, ["rnet.conv2"], prelu: "rnet.prelu2")), .pool(kernel: 3, stride: 2),
                                   .conv(ConvLayer(m, ["rnet.conv3"], prelu: "rnet.prelu3"))],
                denseNames: [(["rnet.dense4"], "rnet.prelu4"), (["rnet.dense5_1", "rnet.dense5_2"], nil)], model: m)
    }

    static func onet(_ m: DetectorModel) -> CropNet {
        CropNet(size: 48, stages: [.conv(ConvLayer(m, ["onet.conv1"], prelu: "onet.prelu1")), .pool(kernel: 3, stride: 2),
                                   .conv(ConvLayer(m, ["onet.conv2"], prelu: "onet.prelu2")), .pool(kernel: 3, stride: 2),
                                   .conv(ConvLayer(m, ["onet.conv3"], prelu: "onet.prelu3")), .pool(kernel: 2, stride: 2),
                                   .conv(ConvLayer(m, ["onet.conv4"], prelu: "onet.prelu4"))],
                denseNames: [(["onet.dense5"], "onet.prelu5"), (["onet.dense6_1", "onet.dense6_2", "onet.dense6_3"], nil)], model: m)
    }

    private init(size: Int, stages: [Stage], denseNames: [([String], String?)], model: DetectorModel) {
        self.size = size
        self.stages = stages
        let f = stages.reduce(MapShape(height: size, width: size, channels: 3)) { $1.output($0) }
        featureShape = f
        dense = denseNames.enumerated().map { i, d in
            DenseLayer(model, d.0, prelu: d.1, hwc: i == 0 ? (f.height, f.width, f.channels) : nil)
        }
    }

    var inputCount: Int { size * size * 3 }
    var outputs: Int { dense.last!.outFeatures }

    /// `out[n × outputs]` for the crops `x[n × size × size × 3]`; channel 1 of each row becomes
    /// the face probability. `features` holds n × featureShape.count floats.
    func forward(pool: WorkerPool, _ x: UnsafePointer<Float>, count n: Int, features: UnsafeMutablePointer<Float>,
                 out: UnsafeMutablePointer<Float>, workers: [WorkerScratch]) {
        var maxMap = 0, maxCol = 0, shape = MapShape(height: size, width: size, channels: 3)
        for st in stages {
            maxCol = max(maxCol, st.colFloats(shape))
            shape = st.output(shape)
            maxMap = max(maxMap, shape.count)
        }
        let maxHidden = dense.map(\.outFeatures).max()!
        let fc = featureShape.count, outs = outputs
        pool.run { w in
            let crops = WorkerPool.split(n, parts: pool.threadCount, index: w)
            guard !crops.isEmpty else { return }
            let s = workers[w], col = s.col.floats(maxCol)
            let ping = s.ping.floats(maxMap), pong = s.pong.floats(maxMap)
            for crop in crops {
                var shape = MapShape(height: size, width: size, channels: 3)
                var input = x + crop * inputCount
                for (i, stage) in stages.enumerated() {
                    let o = stage.output(shape)
                    let dst = i == stages.count - 1 ? features + crop * fc : (i % 2 == 0 ? ping : pong)
                    stage.run(input, shape, lines: 0..<o.height, out: dst, col: col)
                    input = UnsafePointer(dst)
                    shape = o
                }
            }
            let hidden = s.hidden.floats(crops.count * maxHidden)
            var h = UnsafePointer(features + crops.lowerBound * fc)
            for (i, layer) in dense.enumerated() {
                let dst = i == dense.count - 1 ? out + crops.lowerBound * outs : hidden + 0
                layer.forward(h, rows: crops.count, out: dst)
                h = UnsafePointer(dst)
            }
            for r in crops {
                let p = out + r * outs
                p[1] = faceProbability(p[0], p[1])
            }
        }
    }
}
