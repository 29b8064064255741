import TFCore
import TFModel

extension Converter {
    /// The architecture official tensors of these shapes describe (`transface_convert_infer_config`).
    /// `num_heads` comes from `arch` (a preset), else `numHeads`, else 8 (noted);
    /// `embeddingSize`, when given, must agree with the shapes.
    public static func inferConfig(shapes: [String: [Int]], options: Options, notes: inout [String]) throws -> ViTConfig {
        let need = [("pos_embed", 3), ("patch_embed.proj.weight", 4), ("blocks.0.mlp.fc1.weight", 2), ("feature.2.weight", 2)]
        let missing = need.map(\.0).filter { shapes[$0] == nil }
        guard missing.isEmpty else { throw TransFaceError.format("cannot infer the architecture: missing \(missing.joined(separator: ", "))") }
        let bad = need.filter { shapes[$0.0]!.count != $0.1 }.map { "\($0.0) \(shapes[$0.0]!)" }
        guard bad.isEmpty else { throw TransFaceError.format("cannot infer the architecture: mis-shaped \(bad.joined(separator: ", "))") }
        let pos = shapes["pos_embed"]!, conv = shapes["patch_embed.proj.weight"]!
        let fc1 = shapes["blocks.0.mlp.fc1.weight"]!, f2 = shapes["feature.2.weight"]!
        let patches = pos[1], dim = pos[2], hidden = fc1[0], emb = f2[0], patch = conv[2]
        guard conv[2] == conv[3] else { throw TransFaceError.format("patch_embed.proj.weight has a non-square \(conv[2])x\(conv[3]) kernel") }
        guard conv[0] == dim && fc1[1] == dim && f2[1] == dim else {
            throw TransFaceError.format("embed dims disagree: pos_embed \(dim), patch_embed.proj.weight \(conv[0]), blocks.0.mlp.fc1.weight \(fc1[1]), feature.2.weight \(f2[1])")
        }
        var grid = 0
        while (grid + 1) * (grid + 1) <= patches { grid += 1 }
        guard grid * grid == patches, patches >= 2 else { throw TransFaceError.format("pos_embed has \(patches) patches, not a square grid") }
        guard patch >= 1 else { throw TransFaceError.format("patch_embed.proj.weight has a \(patch)-wide kernel") }
        var img = officialImgSize / patch == grid ? officialImgSize : grid * patch
        if let given = options.imgSize {
            guard given / patch == grid else {
                throw TransFaceError.invalidArgument("img_size \(given) with patch \(patch) gives a \(given / patch)-wide grid, pos_embed has \(grid)x\(grid)")
            }
            img = given
        }
        var blocks = Set<Int>()
        for name in shapes.keys where name.hasPrefix("blocks.") {
            if let n = Int(name.dropFirst(7).prefix { $0.isNumber }) { blocks.insert(n) }
        }
        let depth = (blocks.max() ?? -1) + 1
        let gaps = (0..<depth).filter { !blocks.contains($0) }
        guard gaps.isEmpty else { throw TransFaceError.format("blocks \(gaps.map(String.init).joined(separator: ", ")) are missing (depth \(depth))") }
        if let e = options.embeddingSize, e != 0, e != emb {
            throw TransFaceError.invalidArgument("--embedding-size \(e) disagrees with feature.2.weight, which gives \(emb)")
        }
        var cfg = ViTConfig(arch: "custom", imgSize: img, patchSize: patch, inChannels: conv[1], embedDim: dim, depth: depth,
                            numHeads: defaultNumHeads, mlpHiddenDim: hidden, embeddingSize: emb)
        func sameShape(_ a: ViTConfig, _ b: ViTConfig) -> Bool {
            a.imgSize == b.imgSize && a.patchSize == b.patchSize && a.inChannels == b.inChannels && a.embedDim == b.embedDim
                && a.depth == b.depth && a.mlpHiddenDim == b.mlpHiddenDim && a.embeddingSize == b.embeddingSize
        }
        let matches = ViTConfig.presetNames.filter { (try? ViTConfig.preset($0, embeddingSize: emb)).map { sameShape($0, cfg) } ?? false }
        if let arch = options.arch {
            guard ViTConfig.presetNames.contains(arch) else {
                throw TransFaceError.invalidArgument("unknown --arch '\(arch)'; known: \(ViTConfig.presetNames.joined(separator: ", "))")
            }
            let preset = try ViTConfig.preset(arch, embeddingSize: emb)
            guard sameShape(preset, cfg) else {
                throw TransFaceError.invalidArgument("the tensors do not match --arch \(arch): they give embed_dim \(dim), depth \(depth), mlp \(hidden), patch \(patch), \(patches) patches; \(arch) has embed_dim \(preset.embedDim), depth \(preset.depth), mlp \(preset.mlpHiddenDim), patch \(preset.patchSize), \(preset.numPatches) patches")
            }
            cfg = preset
            if let h = options.numHeads, h != preset.numHeads {
                throw TransFaceError.invalidArgument("--num-heads \(h) contradicts --arch \(arch) (\(preset.numHeads) heads)")
            }
            notes.append("num_heads \(cfg.numHeads) from --arch \(arch)")
        } else if let h = options.numHeads {
            cfg.numHeads = h
            notes.append("num_heads \(h) from --num-heads")
        } else {
            notes.append("num_heads cannot be inferred from shapes: using \(defaultNumHeads) (every official model); pass --arch or --num-heads otherwise")
            if !matches.isEmpty { notes.append("shapes match preset(s) \(matches.joined(separator: ", "))") }
        }
        guard cfg.numHeads >= 1, dim % cfg.numHeads == 0 else {
            throw TransFaceError.invalidArgument("num_heads \(cfg.numHeads) does not divide embed_dim \(dim)")
        }
        return cfg
    }
}
