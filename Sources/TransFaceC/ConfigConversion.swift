import CTransFace
import TFCore
import TFModel

/// Conversions between the C structs of the header and the Swift model types.
extension ViTConfig {
    /// Reads a caller's struct (fields it predates take their zero defaults).
    init(_ pointer: UnsafePointer<transface_config>?) throws {
        let c = try readStruct(try required(pointer, "config"), defaults: transface_config())
        let arch = withUnsafeBytes(of: c.arch) { raw -> String? in
            guard let end = raw.firstIndex(of: 0) else { return nil }
            return String(decoding: raw[..<end], as: UTF8.self)
        }
        guard let arch else { throw TransFaceError.invalidArgument("config.arch is not NUL-terminated") }
        self.init(arch: arch.isEmpty ? "custom" : arch, imgSize: Int(c.img_size), patchSize: Int(c.patch_size),
                  inChannels: Int(c.in_channels), embedDim: Int(c.embed_dim), depth: Int(c.depth),
                  numHeads: Int(c.num_heads), mlpHiddenDim: Int(c.mlp_hidden_dim), embeddingSize: Int(c.embedding_size),
                  dropPathRate: c.drop_path_rate, maskRatio: c.mask_ratio)
        guard c.no_se_gate == 0 || c.no_se_gate == 1 else {
            throw TransFaceError.invalidArgument("config.no_se_gate \(c.no_se_gate) is not 0 or 1")
        }
        seGate = c.no_se_gate == 0
        try validate()
    }

    /// Writes the caller's struct_size bytes of the struct.
    func write(to out: UnsafeMutablePointer<transface_config>?) throws {
        var c = transface_config()
        c.struct_size = UInt32(MemoryLayout<transface_config>.size)
        withUnsafeMutableBytes(of: &c.arch) { raw in
            for (i, b) in arch.utf8.prefix(raw.count - 1).enumerated() { raw[i] = b }
        }
        c.img_size = Int32(imgSize); c.patch_size = Int32(patchSize); c.in_channels = Int32(inChannels)
        c.embed_dim = Int32(embedDim); c.depth = Int32(depth); c.num_heads = Int32(numHeads)
        c.mlp_hidden_dim = Int32(mlpHiddenDim); c.embedding_size = Int32(embeddingSize)
        c.drop_path_rate = dropPathRate; c.mask_ratio = maskRatio
        c.no_se_gate = seGate ? 0 : 1
        try writeStruct(c, to: out, "out")
    }
}

extension Preprocess {
    /// Reads a caller's struct.
    init(_ pointer: UnsafePointer<transface_preprocess>?) throws {
        let p = try readStruct(try required(pointer, "preprocess"), defaults: transface_preprocess())
        guard let order = ChannelOrder(rawValue: p.channel_order) else {
            throw TransFaceError.invalidArgument("preprocess.channel_order \(p.channel_order) is not RGB (0) or BGR (1)")
        }
        self.init(inputWidth: Int(p.input_width), inputHeight: Int(p.input_height),
                  mean: withUnsafeBytes(of: p.mean) { Array($0.bindMemory(to: Float.self)) },
                  std: withUnsafeBytes(of: p.std) { Array($0.bindMemory(to: Float.self)) },
                  channelOrder: order,
                  alignTemplate: withUnsafeBytes(of: p.align_template) { Array($0.bindMemory(to: Float.self)) })
    }

    /// Writes the caller's struct_size bytes of the struct.
    func write(to out: UnsafeMutablePointer<transface_preprocess>?) throws {
        var p = transface_preprocess()
        p.struct_size = UInt32(MemoryLayout<transface_preprocess>.size)
        p.input_width = Int32(inputWidth); p.input_height = Int32(inputHeight)
        func fill<T>(_ tuple: inout T, _ values: [Float]) {
            withUnsafeMutableBytes(of: &tuple) { raw in
                let f = raw.bindMemory(to: Float.self)
                for i in 0..<min(f.count, values.count) { f[i] = values[i] }
            }
        }
        fill(&p.mean, mean); fill(&p.std, std); fill(&p.align_template, alignTemplate)
        p.channel_order = channelOrder.rawValue
        try writeStruct(p, to: out, "out")
    }
}
