import ArgumentParser
import TFCore
import TFData
import TFModel

/// `transface inspect`: what a model file or training checkpoint holds (header only; the
/// structure is checked, tensor data is not read).
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show what a model file (.tfm) or training checkpoint holds.",
        discussion: """
            Prints the kind (model or checkpoint), format version, producer, architecture, \
            preprocessing, metadata, the training state of a checkpoint (step, configuration) and \
            the total parameter count. Only the header is read; the file's structure is checked.
            Example: transface inspect vit_s.tfm --tensors
            """)

    @Argument(help: "A model file (.tfm) or a training checkpoint.") var file: String
    @Flag(name: .long, help: "List every tensor (name, shape, dtype, bytes).") var tensors = false
    @Flag(name: .long, help: "Print JSON instead of text.") var json = false

    func run() throws {
        guard DataFiles.isFile(file) else { throw TransFaceError.notFound("'\(file)' does not exist") }
        let magic = try ReadableFile(path: file).readBytes(at: 0, count: 8)
        let kind: TensorContainer.Kind = magic == TensorContainer.Kind.checkpoint.magic ? .checkpoint : .model
        let opened = try TensorContainer.open(kind, path: file)
        try opened.checkLayout()
        let h = opened.header
        let total = h.tensors.reduce(0) { $0 + $1.dims.reduce(1, *) }
        if h.kind == .detector { return json ? print(detectorJSON(h, total)) : printDetector(h, total) }
        let layout = ParameterLayout(config: h.config)
        let modelParams = layout.entries.reduce(0) { $0 + $1.count }
        let kindName = kind == .model ? "model" : "checkpoint"
        json ? print(jsonText(h, kindName, total, modelParams)) : printText(h, kindName, total, modelParams)
    }

    static func dtypeName(_ d: StoredDType) -> String { d == .f32 ? "float32" : d == .f16 ? "float16" : "bfloat16" }

    func printText(_ h: ModelHeader, _ kind: String, _ total: Int, _ modelParams: Int) {
        let c = h.config, p = h.preprocess
        print("file: \(file)")
        print("kind: \(kind), format version \(h.formatVersion), producer \(h.producer)")
        print("arch: \(c.arch)  img \(c.imgSize)  patch \(c.patchSize)  channels \(c.inChannels)  se_gate \(c.seGate)")
        print("embed_dim \(c.embedDim)  depth \(c.depth)  heads \(c.numHeads)  mlp \(c.mlpHiddenDim)  embedding \(c.embeddingSize)  drop_path \(c.dropPathRate)  mask_ratio \(c.maskRatio)")
        print("preprocess: \(p.inputWidth)x\(p.inputHeight) \(p.channelOrder == .rgb ? "rgb" : "bgr") mean \(p.mean) std \(p.std)")
        print("template: \(p.alignTemplate)")
        let bytes = h.tensors.reduce(UInt64(0)) { $0 + $1.length }
        print("tensors: \(h.tensors.count), \(total) values (\(CLISupport.fixed(Double(bytes) / 1048576, 1)) MiB); model parameters: \(modelParams)")
        if tensors {
            for t in h.tensors { print("  \(t.name) \(t.dims) \(Self.dtypeName(t.dtype)) \(t.length)") }
        }
        print(h.metadata.isEmpty ? "metadata: (none)" : "metadata:")
        for kv in h.metadata { print("  \(kv.key) = \(kv.value)") }
        if let t = h.training {
            print("training: step \(t.step), micro step \(t.microStep), \(t.rngState.count / 4) random streams, sampler state \(t.samplerState.count) bytes")
            print("training config: \(t.configJSON)")
        }
    }

    /// A detector file (kind detector): its settings instead of an architecture.
    func printDetector(_ h: ModelHeader, _ total: Int) {
        let d = h.detector ?? DetectorConfig()
        print("file: \(file)")
        print("kind: detector (MTCNN), format version \(h.formatVersion), producer \(h.producer)")
        print("min_face_size \(d.minFaceSize)  scale_factor \(d.scaleFactor)  thresholds \(d.thresholds)  nms \(d.nmsWithinScale) \(d.nmsAcrossScales) \(d.nmsRefine) \(d.nmsOutput)")
        print("tensors: \(h.tensors.count), \(total) values")
        if tensors {
            for t in h.tensors { print("  \(t.name) \(t.dims) \(Self.dtypeName(t.dtype)) \(t.length)") }
        }
        print(h.metadata.isEmpty ? "metadata: (none)" : "metadata:")
        for kv in h.metadata { print("  \(kv.key) = \(kv.value)") }
    }

    func detectorJSON(_ h: ModelHeader, _ total: Int) -> String {
        let q = JSONText.quoted, d = h.detector ?? DetectorConfig()
        return "{" + [
            "\"file\": \(q(file))", "\"kind\": \"detector\"", "\"format_version\": \(h.formatVersion)", "\"producer\": \(q(h.producer))",
            "\"detector\": {\"min_face_size\": \(d.minFaceSize), \"scale_factor\": \(d.scaleFactor), \"thresholds\": \(CLISupport.jsonArray(d.thresholds[...])), \"nms_within_scale\": \(d.nmsWithinScale), \"nms_across_scales\": \(d.nmsAcrossScales), \"nms_refine\": \(d.nmsRefine), \"nms_output\": \(d.nmsOutput)}",
            "\"metadata\": {" + h.metadata.map { "\(q($0.key)): \(q($0.value))" }.joined(separator: ", ") + "}",
            "\"tensor_count\": \(h.tensors.count)", "\"total_values\": \(total)",
        ].joined(separator: ", ") + "}"
    }

    func jsonText(_ h: ModelHeader, _ kind: String, _ total: Int, _ modelParams: Int) -> String {
        let q = JSONText.quoted
        let c = h.config, p = h.preprocess
        func floats(_ v: [Float]) -> String { CLISupport.jsonArray(v[...]) }
        var parts = [
            "\"file\": \(q(file))", "\"kind\": \(q(kind))", "\"format_version\": \(h.formatVersion)", "\"producer\": \(q(h.producer))",
            "\"config\": {\"arch\": \(q(c.arch)), \"img_size\": \(c.imgSize), \"patch_size\": \(c.patchSize), \"in_channels\": \(c.inChannels), \"embed_dim\": \(c.embedDim), \"depth\": \(c.depth), \"num_heads\": \(c.numHeads), \"mlp_hidden_dim\": \(c.mlpHiddenDim), \"embedding_size\": \(c.embeddingSize), \"drop_path_rate\": \(c.dropPathRate), \"mask_ratio\": \(c.maskRatio), \"se_gate\": \(c.seGate)}",
            "\"preprocess\": {\"input_width\": \(p.inputWidth), \"input_height\": \(p.inputHeight), \"mean\": \(floats(p.mean)), \"std\": \(floats(p.std)), \"channel_order\": \(q(p.channelOrder == .rgb ? "rgb" : "bgr")), \"align_template\": \(floats(p.alignTemplate))}",
            "\"metadata\": {" + h.metadata.map { "\(q($0.key)): \(q($0.value))" }.joined(separator: ", ") + "}",
            "\"tensor_count\": \(h.tensors.count)", "\"total_values\": \(total)", "\"parameter_count\": \(modelParams)",
        ]
        if let t = h.training {
            parts.append("\"training\": {\"step\": \(t.step), \"micro_step\": \(t.microStep), \"config\": \(t.configJSON.hasPrefix("{") ? t.configJSON : q(t.configJSON))}")
        }
        if tensors {
            parts.append("\"tensors\": [" + h.tensors.map {
                "{\"name\": \(q($0.name)), \"shape\": \($0.dims), \"dtype\": \(q(Self.dtypeName($0.dtype))), \"bytes\": \($0.length)}"
            }.joined(separator: ", ") + "]")
        }
        return "{" + parts.joined(separator: ", ") + "}"
    }
}
