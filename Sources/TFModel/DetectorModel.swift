import TFCore

/// Settings of the MTCNN face detector (P-Net → R-Net → O-Net), facenet-pytorch's `MTCNN`
/// defaults: faces of at least `minFaceSize` pixels, an image pyramid with `scaleFactor`
/// between levels, the three stages' score thresholds, and the NMS IoU thresholds: within one
/// pyramid scale (stage 1), across scales (stage 1), after R-Net, and after O-Net (O-Net's uses
/// the "Min" overlap, intersection over the smaller box).
public struct DetectorConfig: Equatable, Sendable {
    public var minFaceSize: Int = 20
    public var scaleFactor: Float = 0.709
    public var thresholds: [Float] = [0.6, 0.7, 0.7]
    public var nmsWithinScale: Float = 0.5
    public var nmsAcrossScales: Float = 0.7
    public var nmsRefine: Float = 0.7
    public var nmsOutput: Float = 0.7

    public init() {}

    /// Throws `invalidArgument` naming the first setting out of range.
    public func validate() throws {
        try require(minFaceSize >= 12 && minFaceSize <= 1 << 16, "detector min_face_size \(minFaceSize) is outside 12...65536")
        try require(scaleFactor > 0.1 && scaleFactor < 1, "detector scale_factor \(scaleFactor) is outside (0.1, 1)")
        try require(thresholds.count == 3 && thresholds.allSatisfy { $0 >= 0 && $0 <= 1 },
                    "detector thresholds \(thresholds) must be 3 values in [0, 1]")
        for (name, t) in [("nms_within_scale", nmsWithinScale), ("nms_across_scales", nmsAcrossScales),
                          ("nms_refine", nmsRefine), ("nms_output", nmsOutput)] {
            try require(t > 0 && t <= 1, "detector \(name) \(t) is outside (0, 1]")
        }
    }
}

/// One face the detector found, in the pixel coordinates of the image it was given.
public struct DetectedFace: Equatable, Sendable {
    /// x1, y1, x2, y2.
    public var box: [Float]
    /// O-Net's face probability.
    public var score: Float
    /// Left eye, right eye, nose, left and right mouth corners: x0, y0, x1, y1, ... (the order
    /// `FaceAlignment` and the ArcFace template use).
    public var landmarks: [Float]

    public init(box: [Float], score: Float, landmarks: [Float]) {
        self.box = box
        self.score = score
        self.landmarks = landmarks
    }
}

/// The weights of an MTCNN detector, named `pnet.<name>`, `rnet.<name>`, `onet.<name>` after
/// facenet-pytorch's `state_dict` names (`pnet.conv1.weight`, ...), float32 in the official
/// shapes (conv weights OIHW, dense weights out × in, PReLU one slope per channel), plus its
/// settings. The layout table is the single source of names and shapes (file I/O, conversion
/// and inference all use it).
public struct DetectorModel: Sendable {
    public struct Tensor: Sendable, Equatable {
        public var shape: [Int]
        public var values: [Float]
        public init(shape: [Int], values: [Float]) { self.shape = shape; self.values = values }
    }

    /// Every tensor of the three networks: name and official shape, in file order.
    public static let layout: [(name: String, shape: [Int])] = {
        func conv(_ net: String, _ name: String, _ o: Int, _ i: Int, _ k: Int, prelu: String?) -> [(String, [Int])] {
            [("\(net).\(name).weight", [o, i, k, k]), ("\(net).\(name).bias", [o])] + (prelu.map { [("\(net).\($0).weight", [o])] } ?? [])
        }
        func dense(_ net: String, _ name: String, _ o: Int, _ i: Int, prelu: String?) -> [(String, [Int])] {
            [("\(net).\(name).weight", [o, i]), ("\(net).\(name).bias", [o])] + (prelu.map { [("\(net).\($0).weight", [o])] } ?? [])
        }
        var l: [(String, [Int])] = []
        l += conv("pnet", "conv1", 10, 3, 3, prelu: "prelu1") + conv("pnet", "conv2", 16, 10, 3, prelu: "prelu2")
        l += conv("pnet", "conv3", 32, 16, 3, prelu: "prelu3") + conv("pnet", "conv4_1", 2, 32, 1, prelu: nil)
        l += conv("pnet", "conv4_2", 4, 32, 1, prelu: nil)
        l += conv("rnet", "conv1", 28, 3, 3, prelu: "prelu1") + conv("rnet", "conv2", 48, 28, 3, prelu: "prelu2")
        l += conv("rnet", "conv3", 64, 48, 2, prelu: "prelu3") + dense("rnet", "dense4", 128, 576, prelu: "prelu4")
        l += dense("rnet", "dense5_1", 2, 128, prelu: nil) + dense("rnet", "dense5_2", 4, 128, prelu: nil)
        l += conv("onet", "conv1", 32, 3, 3, prelu: "prelu1") + conv("onet", "conv2", 64, 32, 3, prelu: "prelu2")
        l += conv("onet", "conv3", 64, 64, 3, prelu: "prelu3") + conv("onet", "conv4", 128, 64, 2, prelu: "prelu4")
        l += dense("onet", "dense5", 256, 1152, prelu: "prelu5") + dense("onet", "dense6_1", 2, 256, prelu: nil)
        l += dense("onet", "dense6_2", 4, 256, prelu: nil) + dense("onet", "dense6_3", 10, 256, prelu: nil)
        return l.map { (name: $0.0, shape: $0.1) }
    }()

    public var config: DetectorConfig
    public let tensors: [String: Tensor]

    /// Checks that `tensors` holds exactly the layout's names with their shapes and finite values.
    public init(config: DetectorConfig, tensors: [String: Tensor]) throws {
        try config.validate()
        for (name, shape) in Self.layout {
            guard let t = tensors[name] else { throw TransFaceError.format("detector tensor '\(name)' is missing") }
            guard t.shape == shape, t.values.count == shape.reduce(1, *) else {
                throw TransFaceError.format("detector tensor '\(name)' has shape \(t.shape) with \(t.values.count) values, expected \(shape)")
            }
            guard t.values.allSatisfy(\.isFinite) else { throw TransFaceError.format("detector tensor '\(name)' has non-finite values") }
        }
        if let extra = tensors.keys.first(where: { name in !Self.layout.contains { $0.name == name } }) {
            throw TransFaceError.format("detector tensor '\(extra)' is not part of MTCNN")
        }
        self.config = config
        self.tensors = tensors
    }

    /// The values of a tensor of the layout.
    public func values(_ name: String) -> [Float] { tensors[name]!.values }
}
