import CProtobufC
import TFCore
import TransFaceProto

#if canImport(Glibc)
import Glibc
#endif

/// Storage type of a tensor in a model file.
public enum StoredDType: Int32, Sendable {
    case f32 = 0, f16 = 1, bf16 = 2
    public var size: Int { self == .f32 ? 4 : 2 }
}

/// Where one tensor's bytes are in the data section, and their CRC-32.
public struct TensorRecord: Equatable, Sendable {
    public var name: String
    public var dtype: StoredDType
    public var dims: [Int]
    public var offset: UInt64
    public var length: UInt64
    public var crc32: UInt32
}

/// What a model file holds (`ModelKind` of include/transface.proto).
public enum ModelKind: UInt32, Sendable {
    case embedder = 0, detector = 1
    /// How errors name a file of this kind.
    public var described: String { self == .embedder ? "a face embedding model" : "a face detector" }
}

/// The protobuf-described part of a model file (see include/transface.proto).
public struct ModelHeader: Equatable {
    public var formatVersion: UInt32
    public var producer: String
    /// An embedder's architecture and preprocessing (`ModelHeader.absentConfig` / `absentPreprocess`
    /// in a detector's header, where they are not stored).
    public var config: ViTConfig
    public var preprocess: Preprocess
    public var metadata: [KeyValue]
    public var tensors: [TensorRecord]
    /// Checkpoints only.
    public var training: TrainingState?
    public var kind: ModelKind
    /// Detectors only.
    public var detector: DetectorConfig?

    /// What a detector's header holds in place of the embedder settings: zeros, never written.
    public static let absentConfig = ViTConfig(arch: "", imgSize: 0, patchSize: 0, inChannels: 0, embedDim: 0, depth: 0,
                                               numHeads: 0, mlpHiddenDim: 0, embeddingSize: 0)
    public static let absentPreprocess = Preprocess(inputWidth: 0, inputHeight: 0, mean: [], std: [], channelOrder: .rgb, alignTemplate: [])

    public struct KeyValue: Equatable { public var key: String; public var value: String }

    /// A trainer's configuration and position, stored in checkpoints.
    public struct TrainingState: Equatable {
        public var configJSON: String
        public var step: UInt64
        public var microStep: UInt64
        public var rngState: [UInt64]
        public var samplerState: [UInt8]
        /// The learning-rate factor of "non_finite": "reduce_lr" back-offs so far (1: none).
        public var learningRateScale: Double
        public init(configJSON: String, step: UInt64, microStep: UInt64, rngState: [UInt64], samplerState: [UInt8],
                    learningRateScale: Double = 1) {
            self.configJSON = configJSON; self.step = step; self.microStep = microStep
            self.rngState = rngState; self.samplerState = samplerState; self.learningRateScale = learningRateScale
        }
    }

    public init(formatVersion: UInt32, producer: String, config: ViTConfig, preprocess: Preprocess,
                metadata: [KeyValue], tensors: [TensorRecord], training: TrainingState? = nil) {
        self.formatVersion = formatVersion; self.producer = producer; self.config = config
        self.preprocess = preprocess; self.metadata = metadata; self.tensors = tensors; self.training = training
        self.kind = .embedder; self.detector = nil
    }

    /// A detector's header (tensor records are filled in when writing).
    public init(formatVersion: UInt32, producer: String, detector: DetectorConfig, metadata: [KeyValue], tensors: [TensorRecord] = []) {
        self.init(formatVersion: formatVersion, producer: producer, config: Self.absentConfig, preprocess: Self.absentPreprocess,
                  metadata: metadata, tensors: tensors)
        self.kind = .detector; self.detector = detector
    }

    /// Encodes with protobuf-c.
    public func encode() throws -> [UInt8] {
        var arena = CArena()
        defer { arena.free() }
        var cfg = Transface__Config()
        transface__config__init(&cfg)
        cfg.arch = arena.string(config.arch)
        cfg.img_size = Int32(config.imgSize); cfg.patch_size = Int32(config.patchSize)
        cfg.in_channels = Int32(config.inChannels); cfg.embed_dim = Int32(config.embedDim)
        cfg.depth = Int32(config.depth); cfg.num_heads = Int32(config.numHeads)
        cfg.mlp_hidden_dim = Int32(config.mlpHiddenDim); cfg.embedding_size = Int32(config.embeddingSize)
        cfg.drop_path_rate = config.dropPathRate; cfg.mask_ratio = config.maskRatio
        cfg.no_se_gate = config.seGate ? 0 : 1

        var pre = Transface__Preprocess()
        transface__preprocess__init(&pre)
        pre.input_width = Int32(preprocess.inputWidth); pre.input_height = Int32(preprocess.inputHeight)
        (pre.n_mean, pre.mean) = (preprocess.mean.count, arena.array(preprocess.mean))
        (pre.n_std, pre.std) = (preprocess.std.count, arena.array(preprocess.std))
        pre.channel_order = Transface__ChannelOrder(rawValue: UInt32(preprocess.channelOrder.rawValue))
        (pre.n_align_template, pre.align_template) = (preprocess.alignTemplate.count, arena.array(preprocess.alignTemplate))

        let kvs: [UnsafeMutablePointer<Transface__KeyValue>?] = metadata.map { kv in
            let m = arena.allocate(Transface__KeyValue.self)
            transface__key_value__init(m)
            m.pointee.key = arena.string(kv.key)
            m.pointee.value = arena.string(kv.value)
            return m
        }
        let recs: [UnsafeMutablePointer<Transface__TensorRecord>?] = tensors.map { t in
            let m = arena.allocate(Transface__TensorRecord.self)
            transface__tensor_record__init(m)
            m.pointee.name = arena.string(t.name)
            m.pointee.dtype = Transface__DType(rawValue: UInt32(t.dtype.rawValue))
            m.pointee.n_dims = t.dims.count
            m.pointee.dims = arena.array(t.dims.map(Int64.init))
            m.pointee.offset = t.offset
            m.pointee.length = t.length
            m.pointee.crc32 = t.crc32
            return m
        }
        var msg = Transface__ModelHeader()
        transface__model_header__init(&msg)
        msg.format_version = formatVersion
        msg.producer = arena.string(producer)
        if let training {
            let m = arena.allocate(Transface__TrainingState.self)
            transface__training_state__init(m)
            m.pointee.config_json = arena.string(training.configJSON)
            m.pointee.step = training.step
            m.pointee.micro_step = training.microStep
            (m.pointee.n_rng_state, m.pointee.rng_state) = (training.rngState.count, arena.array(training.rngState))
            m.pointee.sampler_state = ProtobufCBinaryData(len: training.samplerState.count, data: arena.array(training.samplerState))
            m.pointee.lr_scale = training.learningRateScale == 1 ? 0 : training.learningRateScale  // 1 is stored as absent
            msg.training = m
        }
        var det = Transface__DetectorConfig()
        transface__detector_config__init(&det)
        if let d = detector {
            det.min_face_size = Int32(clamping: d.minFaceSize); det.scale_factor = d.scaleFactor
            (det.n_thresholds, det.thresholds) = (d.thresholds.count, arena.array(d.thresholds))
            det.nms_within_scale = d.nmsWithinScale; det.nms_across_scales = d.nmsAcrossScales
            det.nms_refine = d.nmsRefine; det.nms_output = d.nmsOutput
        }
        // an embedder's header is encoded exactly as before kinds existed (the default kind is not written)
        msg.kind = Transface__ModelKind(rawValue: kind.rawValue)
        return withUnsafeMutablePointer(to: &cfg) { cfgp in
            withUnsafeMutablePointer(to: &pre) { prep in
              withUnsafeMutablePointer(to: &det) { detp in
                msg.config = kind == .embedder ? cfgp : nil
                msg.preprocess = kind == .embedder ? prep : nil
                msg.detector = detector != nil ? detp : nil
                (msg.n_metadata, msg.metadata) = (kvs.count, arena.array(kvs))
                (msg.n_tensors, msg.tensors) = (recs.count, arena.array(recs))
                let size = transface__model_header__get_packed_size(&msg)
                var out = [UInt8](repeating: 0, count: size)
                let written = out.withUnsafeMutableBufferPointer { transface__model_header__pack(&msg, $0.baseAddress) }
                precondition(written == size, "protobuf-c packed \(written) of \(size) bytes")
                return out
              }
            }
        }
    }

    /// Decodes with protobuf-c; throws `format` on malformed bytes or missing parts.
    public static func decode(_ bytes: UnsafeRawBufferPointer) throws -> ModelHeader {
        guard let msgp = transface__model_header__unpack(nil, bytes.count, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self))
        else { throw TransFaceError.format("the model header is not a valid protobuf ModelHeader") }
        defer { transface__model_header__free_unpacked(msgp, nil) }
        let m = msgp.pointee
        func floats(_ n: Int, _ ptr: UnsafeMutablePointer<Float>?) -> [Float] {
            guard let ptr, n > 0 else { return [] }
            return Array(UnsafeBufferPointer(start: ptr, count: n))
        }
        guard let kind = ModelKind(rawValue: m.kind.rawValue) else {
            throw TransFaceError.format("the model header has unknown kind \(m.kind.rawValue) (written by a newer libtransface?)")
        }
        if kind == .detector {
            guard let d = m.detector?.pointee else { throw TransFaceError.format("the detector's header has no detector config") }
            var config = DetectorConfig()
            config.minFaceSize = Int(d.min_face_size); config.scaleFactor = d.scale_factor
            config.thresholds = floats(d.n_thresholds, d.thresholds)
            config.nmsWithinScale = d.nms_within_scale; config.nmsAcrossScales = d.nms_across_scales
            config.nmsRefine = d.nms_refine; config.nmsOutput = d.nms_output
            guard m.training == nil else { throw TransFaceError.format("a detector's header has a training state") }
            return ModelHeader(formatVersion: m.format_version, producer: str(m.producer), detector: config,
                               metadata: metadata(m), tensors: try tensors(m))
        }
        guard let c = m.config?.pointee else { throw TransFaceError.format("the model header has no config") }
        guard let p = m.preprocess?.pointee else { throw TransFaceError.format("the model header has no preprocess") }
        let config = ViTConfig(arch: str(c.arch), imgSize: Int(c.img_size), patchSize: Int(c.patch_size),
                               inChannels: Int(c.in_channels), embedDim: Int(c.embed_dim), depth: Int(c.depth),
                               numHeads: Int(c.num_heads), mlpHiddenDim: Int(c.mlp_hidden_dim),
                               embeddingSize: Int(c.embedding_size), dropPathRate: c.drop_path_rate,
                               maskRatio: c.mask_ratio, seGate: c.no_se_gate == 0)
        guard let order = Preprocess.ChannelOrder(rawValue: Int32(bitPattern: p.channel_order.rawValue)) else {
            throw TransFaceError.format("unknown channel order \(p.channel_order.rawValue)")
        }
        let preprocess = Preprocess(inputWidth: Int(p.input_width), inputHeight: Int(p.input_height),
                                    mean: floats(p.n_mean, p.mean), std: floats(p.n_std, p.std), channelOrder: order,
                                    alignTemplate: floats(p.n_align_template, p.align_template))
        var training: TrainingState?
        if let t = m.training?.pointee {
            let rng = t.n_rng_state > 0 ? Array(UnsafeBufferPointer(start: t.rng_state, count: t.n_rng_state)) : []
            let sampler = t.sampler_state.len > 0 ? Array(UnsafeBufferPointer(start: t.sampler_state.data, count: t.sampler_state.len)) : []
            training = TrainingState(configJSON: str(t.config_json), step: t.step, microStep: t.micro_step,
                                     rngState: rng, samplerState: sampler, learningRateScale: t.lr_scale == 0 ? 1 : t.lr_scale)
        }
        return ModelHeader(formatVersion: m.format_version, producer: str(m.producer), config: config,
                           preprocess: preprocess, metadata: metadata(m), tensors: try tensors(m), training: training)
    }

    private static func str(_ s: UnsafeMutablePointer<CChar>?) -> String { s.map { String(cString: $0) } ?? "" }

    private static func metadata(_ m: Transface__ModelHeader) -> [KeyValue] {
        (0..<m.n_metadata).compactMap { i in m.metadata[i].map { KeyValue(key: str($0.pointee.key), value: str($0.pointee.value)) } }
    }

    private static func tensors(_ m: Transface__ModelHeader) throws -> [TensorRecord] {
        var tensors: [TensorRecord] = []
        for i in 0..<m.n_tensors {
            guard let t = m.tensors[i]?.pointee else { continue }
            guard let dtype = StoredDType(rawValue: Int32(bitPattern: t.dtype.rawValue)) else {
                throw TransFaceError.format("tensor '\(str(t.name))' has unknown dtype \(t.dtype.rawValue)")
            }
            let dims = (0..<t.n_dims).map { Int(t.dims[$0]) }
            tensors.append(TensorRecord(name: str(t.name), dtype: dtype, dims: dims, offset: t.offset,
                                        length: t.length, crc32: t.crc32))
        }
        return tensors
    }
}

/// C allocations that live until `free()`: strings and arrays handed to protobuf-c for packing.
/// Only trivial types are stored, so nothing needs deinitialising.
private struct CArena {
    private var cStrings: [UnsafeMutablePointer<CChar>] = []
    private var blocks: [UnsafeMutableRawPointer] = []

    mutating func string(_ s: String) -> UnsafeMutablePointer<CChar> {
        let p = strdup(s)!
        cStrings.append(p)
        return p
    }

    mutating func array<T>(_ values: [T]) -> UnsafeMutablePointer<T> {
        let p = UnsafeMutablePointer<T>.allocate(capacity: max(values.count, 1))
        if !values.isEmpty { p.initialize(from: values, count: values.count) }
        blocks.append(UnsafeMutableRawPointer(p))
        return p
    }

    mutating func allocate<T>(_: T.Type) -> UnsafeMutablePointer<T> {
        let p = UnsafeMutablePointer<T>.allocate(capacity: 1)
        blocks.append(UnsafeMutableRawPointer(p))
        return p
    }

    func free() {
        for p in cStrings { Glibc.free(p) }
        for p in blocks { p.deallocate() }
    }
}
