#if canImport(Glibc)
import Glibc
#endif

/// A candidate face box of the cascade, float32 as facenet-pytorch computes it: corners, score
/// and the 4 regression offsets of the network that scored it.
struct Candidate: Equatable {
    var x1, y1, x2, y2, score: Float
    var reg: (Float, Float, Float, Float) = (0, 0, 0, 0)

    init(x1: Float, y1: Float, x2: Float, y2: Float, score: Float) {
        (self.x1, self.y1, self.x2, self.y2, self.score) = (x1, y1, x2, y2, score)
    }

    static func == (a: Self, b: Self) -> Bool {
        a.x1 == b.x1 && a.y1 == b.y1 && a.x2 == b.x2 && a.y2 == b.y2 && a.score == b.score
            && a.reg.0 == b.reg.0 && a.reg.1 == b.reg.1 && a.reg.2 == b.reg.2 && a.reg.3 == b.reg.3
    }
}

/// The indices `nms` keeps, by decreasing score: torchvision's CPU rule (a stable sort by
/// descending score; areas `(x2 − x1)(y2 − y1)`, no +1; a box is dropped when its IoU with a
/// kept one is `> threshold`).
func nmsIoU(_ boxes: [Candidate], threshold: Float) -> [Int] {
    let order = boxes.indices.sorted { boxes[$0].score > boxes[$1].score || (boxes[$0].score == boxes[$1].score && $0 < $1) }
    let area = boxes.map { ($0.x2 - $0.x1) * ($0.y2 - $0.y1) }
    var suppressed = [Bool](repeating: false, count: boxes.count), keep: [Int] = []
    for (n, i) in order.enumerated() where !suppressed[i] {
        keep.append(i)
        let b = boxes[i]
        for j in order[(n + 1)...] where !suppressed[j] {
            let c = boxes[j]
            let w = max(0, min(b.x2, c.x2) - max(b.x1, c.x1)), h = max(0, min(b.y2, c.y2) - max(b.y1, c.y1))
            let inter = w * h
            if inter / (area[i] + area[j] - inter) > threshold { suppressed[j] = true }
        }
    }
    return keep
}

/// facenet-pytorch's `nms_numpy(..., "Min")` (after O-Net): areas with +1, overlap =
/// intersection / the smaller area, boxes with overlap `> threshold` dropped; kept indices by
/// decreasing score (equal scores: the later box first, as `argsort` then taking the last).
func nmsMin(_ boxes: [Candidate], threshold: Float) -> [Int] {
    var rest = boxes.indices.sorted { boxes[$0].score < boxes[$1].score || (boxes[$0].score == boxes[$1].score && $0 < $1) }
    let area = boxes.map { ($0.x2 - $0.x1 + 1) * ($0.y2 - $0.y1 + 1) }
    var keep: [Int] = []
    while let i = rest.popLast() {
        keep.append(i)
        let b = boxes[i]
        rest.removeAll { j in
            let c = boxes[j]
            let w = max(0, min(b.x2, c.x2) - max(b.x1, c.x1) + 1), h = max(0, min(b.y2, c.y2) - max(b.y1, c.y1) + 1)
            return w * h / min(area[i], area[j]) > threshold
        }
    }
    return keep
}

/// `generateBoundingBox`: the P-Net cells of `map` [height × width × 6] (channel 1 = face
/// probability, 2..5 = offsets) scoring `>= threshold`, in row-major order, as boxes of the
/// input image: `⌊(2·cell + 1) / scale⌋ ... ⌊(2·cell + 12) / scale⌋`.
func pnetCandidates(_ map: UnsafePointer<Float>, height: Int, width: Int, scale: Double, threshold: Float) -> [Candidate] {
    let s = Float(scale)
    var out: [Candidate] = []
    for y in 0..<height {
        for x in 0..<width {
            let p = map + (y * width + x) * 6
            guard p[1] >= threshold else { continue }
            let fx = Float(x), fy = Float(y)
            var c = Candidate(x1: floorf((2 * fx + 1) / s), y1: floorf((2 * fy + 1) / s),
                              x2: floorf((2 * fx + 12) / s), y2: floorf((2 * fy + 12) / s), score: p[1])
            c.reg = (p[2], p[3], p[4], p[5])
            out.append(c)
        }
    }
    return out
}

extension Candidate {
    /// Stage 1's regression: offsets scaled by the box size without +1.
    func regressedPNet() -> Candidate {
        let w = x2 - x1, h = y2 - y1
        return Candidate(x1: x1 + reg.0 * w, y1: y1 + reg.1 * h, x2: x2 + reg.2 * w, y2: y2 + reg.3 * h, score: score)
    }

    /// `bbreg`: offsets scaled by the box size with +1.
    func regressed() -> Candidate {
        let w = x2 - x1 + 1, h = y2 - y1 + 1
        var c = Candidate(x1: x1 + reg.0 * w, y1: y1 + reg.1 * h, x2: x2 + reg.2 * w, y2: y2 + reg.3 * h, score: score)
        c.reg = reg
        return c
    }

    /// `rerec`: the square of side max(w, h) on the same centre.
    func squared() -> Candidate {
        var c = self
        let h = y2 - y1, w = x2 - x1, l = max(w, h)
        c.x1 = x1 + w * 0.5 - l * 0.5
        c.y1 = y1 + h * 0.5 - l * 0.5
        c.x2 = c.x1 + l
        c.y2 = c.y1 + l
        return c
    }

    /// The corners truncated toward zero (original MTCNN's `np.fix` before the crops).
    func truncated() -> Candidate {
        var c = self
        (c.x1, c.y1, c.x2, c.y2) = (x1.rounded(.towardZero), y1.rounded(.towardZero), x2.rounded(.towardZero), y2.rounded(.towardZero))
        return c
    }

    /// `pad` + the crop facenet cuts: columns `[x − 1, ex)`, rows `[y − 1, ey)` of the truncated
    /// box with x, y ≥ 1 and ex ≤ width, ey ≤ height (clipped, no zero padding); nil when empty.
    func cropRect(width: Int, height: Int) -> (x: Int, y: Int, w: Int, h: Int)? {
        func int(_ v: Float) -> Int { Int(max(-1e9, min(1e9, v)).rounded(.towardZero)) }
        let x = max(int(x1), 1), y = max(int(y1), 1), ex = min(int(x2), width), ey = min(int(y2), height)
        guard ex > x - 1 && ey > y - 1 else { return nil }
        return (x - 1, y - 1, ex - x + 1, ey - y + 1)
    }
}
