import TFCore

/// Model files (`.tfm`): a `TensorContainer` holding exactly the tensors of the model's layout.
public enum ModelFile {
    public static let formatVersion = TensorContainer.formatVersion

    public struct LoadOptions {
        public var verifyChecksums = true
        /// Refuse files whose float32 weights would exceed this many bytes (0: no limit).
        public var maxWeightBytes: UInt64 = 0
        /// Keep the block Linears only packed for the matmul backend (`TransFaceModel.packedBlocks`):
        /// what inference wants; a trainer reading a checkpoint takes them as float32.
        public var packBlockLinears = true
        public init() {}
    }

    /// The tensors of a float32 slab laid out by `layout`, as the container stores them, in layout order.
    public static func tensors(of slab: FloatSlab, layout: ParameterLayout) -> [TensorContainer.Tensor] {
        layout.entries.map { .init(name: $0.name, shape: $0.shape, values: UnsafeBufferPointer(slab.view($0.offset, $0.count))) }
    }

    /// The header describing `model` (tensor records are filled in when writing).
    public static func header(of model: TransFaceModel) -> ModelHeader {
        ModelHeader(formatVersion: formatVersion, producer: "libtransface \(LibraryVersion.string)", config: model.config,
                    preprocess: model.preprocess, metadata: model.metadata.map { .init(key: $0.key, value: $0.value) },
                    tensors: [])
    }

    /// Writes `model` atomically; tensors are stored as `dtype` (float32 unless testing).
    public static func write(_ model: TransFaceModel, to path: String, dtype: StoredDType = .f32) throws {
        try model.withFloat32Parameters {
            try TensorContainer.write(.model, header: header(of: model), tensors: tensors(of: $0, layout: model.layout), to: path, dtype: dtype)
        }
    }

    /// Loads a model; every problem is a thrown error naming the file and what is wrong.
    public static func load(path: String, options: LoadOptions = LoadOptions()) throws -> TransFaceModel {
        let opened = try TensorContainer.open(.model, path: path, verifyChecksums: options.verifyChecksums)
        return try readModel(opened, extraTensors: [], options: options)
    }

    /// Validates the architecture of an opened container and reads the model's tensors; the
    /// container may hold only those plus the names in `extraTensors` (checkpoints).
    public static func readModel(_ opened: TensorContainer.Opened, extraTensors: Set<String>,
                                 options: LoadOptions) throws -> TransFaceModel {
        let header = opened.header
        try opened.require(.embedder)
        do {
            try header.config.validate()
            try header.preprocess.validate(for: header.config)
        } catch let e as TransFaceError { throw opened.bad(e.message) }
        let layout = ParameterLayout(config: header.config)
        let byName = try opened.records(matching: layout.entries.map { ($0.name, $0.shape) }, extra: extraTensors, of: "this architecture")
        if options.maxWeightBytes > 0 && UInt64(layout.weightBytes) > options.maxWeightBytes {
            throw TransFaceError.invalidArgument("'\(opened.path)': \(layout.weightBytes) bytes of weights exceed the limit of \(options.maxWeightBytes)")
        }
        func read(_ e: TensorEntry, into values: UnsafeMutablePointer<Float>) throws {
            try opened.read(byName[e.name]!, into: UnsafeMutableBufferPointer(start: values, count: e.count), verify: options.verifyChecksums)
        }
        let packed = options.packBlockLinears
            ? try PackedBlockWeights(config: header.config) { name, values in try read(try layout.entry(name), into: values) }
            : nil
        let slab = try FloatSlab(count: layout.totalCount)
        for e in layout.entries where packed?.weight(e.name) != nil { slab.leaveUnwritten(e.offset, e.count) }
        for e in layout.entries where packed?.weight(e.name) == nil {
            try read(e, into: slab.base + e.offset)
        }
        do {
            return try TransFaceModel(config: header.config, preprocess: header.preprocess,
                                      metadata: header.metadata.map { ($0.key, $0.value) }, parameters: slab, packedBlocks: packed)
        } catch let e as TransFaceError { throw opened.bad(e.message) }
    }
}

/// float16 / bfloat16 conversions (round to nearest even).
public enum HalfPrecision {
    public static func encode(_ v: Float, _ dtype: StoredDType) -> UInt16 {
        switch dtype {
        case .f16: return Float16(v).bitPattern
        case .bf16, .f32:
            if v.isNaN { return 0x7FC0 }
            let bits = v.bitPattern
            return UInt16(truncatingIfNeeded: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16)
        }
    }

    public static func decode(_ h: UInt16, _ dtype: StoredDType) -> Float {
        dtype == .f16 ? Float(Float16(bitPattern: h)) : Float(bitPattern: UInt32(h) << 16)
    }
}
