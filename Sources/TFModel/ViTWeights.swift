import TFCore

/// Pointers to every tensor of a parameter slab, resolved once from the layout.
/// BatchNorm running statistics are mutable: a train-mode forward updates them.
public struct ViTWeights {
    public struct Block {
        public let norm1Weight, norm1Bias, qkvWeight, projWeight, projBias: UnsafeMutablePointer<Float>
        public let norm2Weight, norm2Bias, fc1Weight, fc1Bias, fc2Weight, fc2Bias: UnsafeMutablePointer<Float>
    }

    public struct BatchNorm {
        public let weight, bias, runningMean, runningVar: UnsafeMutablePointer<Float>
    }

    public let posEmbed, maskToken, patchWeight, patchBias: UnsafeMutablePointer<Float>
    public let blocks: [Block]
    public let normWeight, normBias: UnsafeMutablePointer<Float>
    public let feature0Weight, feature2Weight: UnsafeMutablePointer<Float>
    public let feature1, feature3: BatchNorm
    /// The SE module's two linears; nil for a plain ViT (`ViTConfig.seGate` false).
    public let se: (w0: UnsafeMutablePointer<Float>, w2: UnsafeMutablePointer<Float>)?

    /// Resolves the tensors of `layout` inside `base` (a slab of `layout.totalCount` floats).
    public init(layout: ParameterLayout, config: ViTConfig, base: UnsafeMutablePointer<Float>) {
        func p(_ name: String) -> UnsafeMutablePointer<Float> {
            guard let e = layout[name] else { fatalError("layout lacks \(name)") }  // layout is built from config
            return base + e.offset
        }
        func bn(_ name: String) -> BatchNorm {
            BatchNorm(weight: p(name + ".weight"), bias: p(name + ".bias"),
                      runningMean: p(name + ".running_mean"), runningVar: p(name + ".running_var"))
        }
        posEmbed = p("pos_embed"); maskToken = p("mask_token")
        patchWeight = p("patch_embed.proj.weight"); patchBias = p("patch_embed.proj.bias")
        blocks = (0..<config.depth).map { i in
            let b = "blocks.\(i)."
            return Block(norm1Weight: p(b + "norm1.weight"), norm1Bias: p(b + "norm1.bias"),
                         qkvWeight: p(b + "attn.qkv.weight"), projWeight: p(b + "attn.proj.weight"),
                         projBias: p(b + "attn.proj.bias"), norm2Weight: p(b + "norm2.weight"),
                         norm2Bias: p(b + "norm2.bias"), fc1Weight: p(b + "mlp.fc1.weight"),
                         fc1Bias: p(b + "mlp.fc1.bias"), fc2Weight: p(b + "mlp.fc2.weight"),
                         fc2Bias: p(b + "mlp.fc2.bias"))
        }
        normWeight = p("norm.weight"); normBias = p("norm.bias")
        feature0Weight = p("feature.0.weight"); feature2Weight = p("feature.2.weight")
        feature1 = bn("feature.1"); feature3 = bn("feature.3")
        se = config.seGate ? (p("senet.0.weight"), p("senet.2.weight")) : nil
    }
}
