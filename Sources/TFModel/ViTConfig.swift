import TFCore

/// Architecture of a TransFace ViT (the official `VisionTransformer` arguments that matter).
public struct ViTConfig: Equatable, Sendable {
    public var arch: String
    public var imgSize: Int
    public var patchSize: Int
    public var inChannels: Int
    public var embedDim: Int
    public var depth: Int
    public var numHeads: Int
    public var mlpHiddenDim: Int
    public var embeddingSize: Int
    /// Training-only settings, kept with the architecture as the official configs do.
    public var dropPathRate: Float
    public var maskRatio: Float
    /// The SE module re-weights the patch tokens before the head (TransFace). `false` gives the
    /// plain ViT of the paper's ablation: no `senet.*` tensors, tokens go straight to the head.
    public var seGate: Bool

    public init(arch: String = "custom", imgSize: Int = 112, patchSize: Int = 9, inChannels: Int = 3,
                embedDim: Int, depth: Int, numHeads: Int, mlpHiddenDim: Int? = nil, embeddingSize: Int = 512,
                dropPathRate: Float = 0, maskRatio: Float = 0, seGate: Bool = true) {
        self.arch = arch
        self.imgSize = imgSize
        self.patchSize = patchSize
        self.inChannels = inChannels
        self.embedDim = embedDim
        self.depth = depth
        self.numHeads = numHeads
        self.mlpHiddenDim = mlpHiddenDim ?? embedDim * 4
        self.embeddingSize = embeddingSize
        self.dropPathRate = dropPathRate
        self.maskRatio = maskRatio
        self.seGate = seGate
    }

    /// Patches per side and in total (144 for 112/9: the conv ignores pixels 108..111).
    public var grid: Int { imgSize / patchSize }
    public var numPatches: Int { grid * grid }
    public var headDim: Int { embedDim / numHeads }
    /// Values per patch seen by the patch-embedding conv.
    public var patchValues: Int { inChannels * patchSize * patchSize }

    /// LayerNorm eps of the blocks and final norm; BatchNorm1d eps of the head.
    public static let layerNormEps: Float = 1e-5
    public static let batchNormEps: Float = 2e-5
    public static let batchNormMomentum: Float = 0.1

    /// Throws `invalidArgument` naming the first field that cannot describe a model.
    public func validate() throws {
        func check(_ ok: Bool, _ what: String) throws { if !ok { throw TransFaceError.invalidArgument("config: \(what)") } }
        try check(arch.utf8.count < 32, "arch name '\(arch)' is longer than 31 bytes")
        try check((1...4096).contains(imgSize), "img_size \(imgSize) is outside 1...4096")
        try check(patchSize >= 1 && patchSize <= imgSize, "patch_size \(patchSize) must be in 1...img_size")
        try check(inChannels == 3, "in_channels \(inChannels) is not 3 (models take RGB or BGR images)")
        try check((1...65536).contains(embedDim), "embed_dim \(embedDim) is outside 1...65536")
        try check((1...1024).contains(depth), "depth \(depth) is outside 1...1024")
        try check(numHeads >= 1 && embedDim % numHeads == 0, "num_heads \(numHeads) must divide embed_dim \(embedDim)")
        try check((1...1 << 20).contains(mlpHiddenDim), "mlp_hidden_dim \(mlpHiddenDim) is outside 1...1048576")
        try check((1...65536).contains(embeddingSize), "embedding_size \(embeddingSize) is outside 1...65536")
        try check(numPatches >= 2, "fewer than 2 patches")
        try check(dropPathRate.isFinite && (0..<1).contains(dropPathRate), "drop_path_rate \(dropPathRate) is outside [0, 1)")
        try check(maskRatio.isFinite && (0..<1).contains(maskRatio), "mask_ratio \(maskRatio) is outside [0, 1)")
        _ = try checkedProduct([numPatches, embedDim, max(embedDim, numPatches)], what: "config")
    }

    /// The official configurations (TransFace `backbones/__init__.py`); all use 8 heads, MLP ×4.
    public static let presetNames = [
        "vit_t", "vit_t_dp005_mask0", "vit_s", "vit_s_dp005_mask_0",
        "vit_b", "vit_b_dp005_mask_005", "vit_l_dp005_mask_005",
    ]

    public static func preset(_ name: String, embeddingSize: Int = 512) throws -> ViTConfig {
        let table: [String: (dim: Int, depth: Int, dropPath: Float, mask: Float)] = [
            "vit_t": (256, 12, 0.1, 0.1),
            "vit_t_dp005_mask0": (256, 12, 0.05, 0.0),
            "vit_s": (512, 12, 0.1, 0.1),
            "vit_s_dp005_mask_0": (512, 12, 0.05, 0.0),
            "vit_b": (512, 24, 0.1, 0.1),
            "vit_b_dp005_mask_005": (512, 24, 0.05, 0.05),
            "vit_l_dp005_mask_005": (768, 24, 0.05, 0.05),
        ]
        guard let p = table[name] else {
            throw TransFaceError.notFound("unknown preset '\(name)'; known: \(presetNames.joined(separator: ", "))")
        }
        let c = ViTConfig(arch: name, embedDim: p.dim, depth: p.depth, numHeads: 8, embeddingSize: embeddingSize,
                          dropPathRate: p.dropPath, maskRatio: p.mask)
        try c.validate()
        return c
    }
}
