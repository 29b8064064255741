import TFModel

extension FaceDetector {
    /// The index of a photo's main face: the largest centre-weighted size,
    /// `(x2 − x1)(y2 − y1) − 2 · ‖box centre − image centre‖²` (facenet-pytorch's
    /// `select_boxes(method="center_weighted_size")`, centre weight 2; the first face wins ties).
    /// On LFW this picks the labelled person where "largest" often picks a bystander. Nil when
    /// `faces` is empty.
    public static func pickMain(_ faces: [DetectedFace], width: Int, height: Int) -> Int? {
        let cx = Double(width) / 2, cy = Double(height) / 2
        func value(_ f: DetectedFace) -> Double {
            let x1 = Double(f.box[0]), y1 = Double(f.box[1]), x2 = Double(f.box[2]), y2 = Double(f.box[3])
            let dx: Double = (x1 + x2) / 2 - cx, dy: Double = (y1 + y2) / 2 - cy
            let size: Double = (x2 - x1) * (y2 - y1)
            return size - 2 * (dx * dx + dy * dy)
        }
        var best: Int?, bestValue = -Double.infinity
        for (i, f) in faces.enumerated() where value(f) > bestValue { (best, bestValue) = (i, value(f)) }
        return best
    }
}
