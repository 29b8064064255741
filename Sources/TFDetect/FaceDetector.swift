import TFCore
import TFModel

/// Options of one `FaceDetector.detect` call.
public struct DetectionOptions: Equatable, Sendable {
    /// Which box R-Net's and O-Net's outputs (box offsets, landmarks) are decoded from.
    public enum LandmarkBox: String, Sendable, CaseIterable {
        /// The original MTCNN's: the square box truncated to integers before the crops, the box
        /// the crop was cut from (better landmarks: see Tests/TFDetectTests/README.md).
        case truncated
        /// facenet-pytorch 2.6.0's: crops cut from the truncated box, outputs decoded from the
        /// float box (bit-for-bit its arithmetic, for parity).
        case facenet
    }
    public var landmarkBox: LandmarkBox = .truncated

    public init(landmarkBox: LandmarkBox = .truncated) { self.landmarkBox = landmarkBox }
}

/// MTCNN face detection (P-Net on an image pyramid → R-Net → O-Net) on the CPU, following
/// facenet-pytorch 2.6.0's `detect_face`: the same pyramid, area resampling, thresholds, NMS
/// rules and box arithmetic in float32. Faces come back as `MTCNN.detect` returns them, largest
/// box first. In both `LandmarkBox` modes crops reaching past the image are clipped (facenet's
/// `pad`), not zero-padded as in the original MTCNN. One instance per thread: its buffers are
/// reused from call to call.
public final class FaceDetector {
    /// The largest image accepted, in pixels (64 Mpx).
    public static let maxPixels = 1 << 26

    public let config: DetectorConfig
    private let pnet: PNet
    private let rnet, onet: CropNet
    private let pool: WorkerPool
    private let workers: [WorkerScratch]
    private let crops = Scratch(), features = Scratch(), outputs = Scratch()

    /// `threads` workers (the caller is one of them).
    public init(model: DetectorModel, threads: Int) throws {
        try model.config.validate()
        pool = try WorkerPool(threadCount: threads)
        BLAS.useSingleThread()
        config = model.config
        pnet = PNet(model)
        rnet = .rnet(model)
        onet = .onet(model)
        workers = (0..<threads).map { _ in WorkerScratch() }
    }

    /// The faces in an 8-bit RGB image of `width × height` pixels, rows `stride` bytes apart.
    public func detect(rgb: UnsafePointer<UInt8>, width: Int, height: Int, stride: Int,
                       options: DetectionOptions = DetectionOptions()) throws -> [DetectedFace] {
        try require(width >= 1 && height >= 1, "image size \(width) × \(height) is empty")
        try require(width <= Self.maxPixels / height, "image of \(width) × \(height) pixels exceeds the detector's limit of \(Self.maxPixels)")
        try require(stride >= width * 3, "row stride \(stride) is less than width × 3 = \(width * 3) bytes")
        let image = Image(rgb: rgb, width: width, height: height, stride: stride)

        var boxes = proposals(image)
        if options.landmarkBox == .truncated { boxes = boxes.map { $0.truncated() } }
        boxes = refine(image, boxes, options)
        if options.landmarkBox == .truncated { boxes = boxes.map { $0.truncated() } }
        return output(image, boxes)
    }

    private struct Image {
        let rgb: UnsafePointer<UInt8>
        let width, height, stride: Int
    }

    /// facenet's pyramid: scales 12/minsize · factorⁱ while the shorter side still holds a 12-px
    /// cell (in double precision, the factor taken as the decimal it prints as, e.g. 0.709).
    public func scales(width: Int, height: Int) -> [Double] {
        let m = 12.0 / Double(config.minFaceSize), factor = Double("\(config.scaleFactor)")!
        var minl = Double(min(width, height)) * m, scale = m, out: [Double] = []
        while minl >= 12 {
            out.append(scale)
            scale *= factor
            minl *= factor
        }
        return out
    }

    /// Stage 1: P-Net candidates of every scale, NMS within each scale then across scales,
    /// regressed and squared. Levels run as `levelPlan` says; the result does not depend on it.
    private func proposals(_ img: Image) -> [Candidate] {
        let levels = scales(width: img.width, height: img.height).compactMap { scale -> (scale: Double, h: Int, w: Int)? in
            let h = Int(Double(img.height) * scale + 1), w = Int(Double(img.width) * scale + 1)
            return pnet.outputShape(height: h, width: w) == nil ? nil : (scale, h, w)
        }
        /// The level's candidates after its NMS, its lines split between the workers (`worker`
        /// nil) or all run by `worker`.
        func candidates(_ i: Int, worker: Int?) -> [Candidate] {
            let (scale, h, w) = levels[i], s = workers[worker ?? 0]
            let x = s.level.floats(h * w * 3)
            func resample(_ rows: Range<Int>) {
                areaResampleNormalised(rgb: img.rgb, stride: img.stride, x0: 0, y0: 0, width: img.width, height: img.height,
                                       outWidth: w, outHeight: h, out: x, rows: rows)
            }
            if worker != nil { resample(0..<h) } else {
                pool.run { resample(WorkerPool.split(h, parts: pool.threadCount, index: $0)) }
            }
            let map = pnet.forward(pool: pool, worker: worker, x, height: h, width: w, a: s.mapA, b: s.mapB, workers: workers)
            let shape = pnet.outputShape(height: h, width: w)!
            let found = pnetCandidates(map, height: shape.height, width: shape.width, scale: scale, threshold: config.thresholds[0])
            return nmsIoU(found, threshold: config.nmsWithinScale).map { found[$0] }
        }
        let plan = Self.levelPlan(areas: levels.map { $0.h * $0.w }, threads: pool.threadCount)
        var perLevel = [[Candidate]](repeating: [], count: levels.count)
        for i in levels.indices where plan[i] == nil { perLevel[i] = candidates(i, worker: nil) }
        if plan.contains(where: { $0 != nil }) {
            perLevel.withUnsafeMutableBufferPointer { out in
                pool.run { worker in
                    for i in levels.indices where plan[i] == worker { out[i] = candidates(i, worker: worker) }
                }
            }
        }
        let all = perLevel.flatMap { $0 }
        return nmsIoU(all, threshold: config.nmsAcrossScales).map { all[$0].regressedPNet().squared() }
    }

    /// Which worker runs each pyramid level (of `areas` pixels) whole, nil for a level whose
    /// lines are split between all workers: one worker: all split (nothing to share); else the
    /// levels larger than 1/threads of all pixels are split, and the others go whole to the
    /// least-loaded worker, largest first (greedy makespan). Whole levels save one dispatch per
    /// stage and level (6 per level); at 2 threads the largest level (~half the pixels at
    /// factor 0.709) goes to one worker, all the others to the other.
    static func levelPlan(areas: [Int], threads: Int) -> [Int?] {
        var plan = [Int?](repeating: nil, count: areas.count)
        guard threads > 1 else { return plan }
        let total = areas.reduce(0, +)
        var load = [Int](repeating: 0, count: threads)
        for i in areas.indices.sorted(by: { areas[$0] > areas[$1] || (areas[$0] == areas[$1] && $0 < $1) })
        where areas[i] * threads <= total {
            let w = load.indices.min { load[$0] < load[$1] }!
            plan[i] = w
            load[w] += areas[i]
        }
        return plan
    }

    /// Stage 2: R-Net on 24 × 24 crops, its threshold, NMS, regression, squaring.
    private func refine(_ img: Image, _ boxes: [Candidate], _ options: DetectionOptions) -> [Candidate] {
        let (kept, out) = run(rnet, img, boxes)
        var passed: [Candidate] = []
        for (i, b) in kept.enumerated() {
            let o = out + i * rnet.outputs
            guard o[1] > config.thresholds[1] else { continue }
            var c = Candidate(x1: b.x1, y1: b.y1, x2: b.x2, y2: b.y2, score: o[1])
            c.reg = (o[2], o[3], o[4], o[5])
            passed.append(c)
        }
        return nmsIoU(passed, threshold: config.nmsRefine).map { passed[$0].regressed().squared() }
    }

    /// Stage 3: O-Net on 48 × 48 crops, its threshold, landmarks (from the box the crop was
    /// cut from), regression, "Min" NMS, then the largest box first.
    private func output(_ img: Image, _ boxes: [Candidate]) -> [DetectedFace] {
        let (kept, out) = run(onet, img, boxes)
        var passed: [Candidate] = [], points: [[Float]] = []
        for (i, b) in kept.enumerated() {
            let o = out + i * onet.outputs
            guard o[1] > config.thresholds[2] else { continue }
            var c = Candidate(x1: b.x1, y1: b.y1, x2: b.x2, y2: b.y2, score: o[1])
            c.reg = (o[2], o[3], o[4], o[5])
            let w = c.x2 - c.x1 + 1, h = c.y2 - c.y1 + 1
            var p = [Float](repeating: 0, count: 10)
            for k in 0..<5 {
                p[2 * k] = w * o[6 + k] + c.x1 - 1
                p[2 * k + 1] = h * o[11 + k] + c.y1 - 1
            }
            passed.append(c.regressed())
            points.append(p)
        }
        let keep = nmsMin(passed, threshold: config.nmsOutput)
        let area = keep.map { (passed[$0].x2 - passed[$0].x1) * (passed[$0].y2 - passed[$0].y1) }
        // np.argsort(area)[::-1]: largest first, equal areas in reverse order of the NMS output.
        let order = keep.indices.sorted { area[$0] > area[$1] || (area[$0] == area[$1] && $0 > $1) }
        return order.map { n in
            let c = passed[keep[n]]
            return DetectedFace(box: [c.x1, c.y1, c.x2, c.y2], score: c.score, landmarks: points[keep[n]])
        }
    }

    /// Crops every box with a non-empty crop (area-resampled to the net's size) and runs the
    /// net; returns those boxes and the net's output rows.
    private func run(_ net: CropNet, _ img: Image, _ boxes: [Candidate]) -> ([Candidate], UnsafeMutablePointer<Float>) {
        let rects = boxes.compactMap { b in b.cropRect(width: img.width, height: img.height).map { (b, $0) } }
        let n = rects.count, s = net.size
        let x = crops.floats(max(1, n) * net.inputCount)
        let out = outputs.floats(max(1, n) * net.outputs)
        guard n > 0 else { return ([], out) }
        pool.run { worker in
            for i in WorkerPool.split(n, parts: pool.threadCount, index: worker) {
                let r = rects[i].1
                areaResampleNormalised(rgb: img.rgb, stride: img.stride, x0: r.x, y0: r.y, width: r.w, height: r.h,
                                       outWidth: s, outHeight: s, out: x + i * net.inputCount, rows: 0..<s)
            }
        }
        net.forward(pool: pool, x, count: n, features: features.floats(n * net.featureShape.count), out: out, workers: workers)
        return (rects.map(\.0), out)
    }
}
