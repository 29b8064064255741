import TFCore
import TFData
import TFModel

/// Official TransFace `state_dict`s (torch.save `.pt`/`.pth` files, zip or legacy, or `.npz` archives of the
/// same names) to model files: the one converter, behind `transface convert`,
/// `transface_convert_state_dict` and so `bindings/python/transface/convert.py`.
public enum Converter {
    public static let version = "1"
    public static let defaultNumHeads = 8
    public static let officialImgSize = 112

    public struct Options {
        public var arch: String?
        public var numHeads: Int?
        public var embeddingSize: Int?
        public var imgSize: Int?
        /// Extra metadata entries, after the converter's own.
        public var metadata: [(key: String, value: String)] = []
        public init() {}
    }

    /// What `convert` did: the config, the source format and notes (decisions worth telling).
    public struct Result {
        public var config: ViTConfig
        public var sourceFormat: String
        public var notes: [String]
    }

    /// The tensors of a source (name → tensor, in file order) and its format description.
    public static func open(_ path: String) throws -> (tensors: [(String, SourceTensor)], format: String, notes: [String]) {
        guard DataFiles.isFile(path) || DataFiles.isDirectory(path) else { throw TransFaceError.notFound("\(path): no such file") }
        guard !DataFiles.isDirectory(path) else { throw TransFaceError.invalidArgument("\(path) is a directory, not an .npz or .pt file") }
        let file = try ReadableFile(path: path)
        guard file.size > 0 else { throw TransFaceError.format("\(path) is empty") }
        if ZipArchive.looksLikeZip(path) {
            let archive = try ZipArchive(path: path)
            if archive.names.contains(where: { $0.hasSuffix("/data.pkl") && $0.filter { $0 == "/" }.count == 1 }) {
                var notes: [String] = []
                return (try selectStateDict(try TorchFile.load(path: path), notes: &notes), "torch zip (read without torch)", notes)
            }
            if archive.names.contains(where: { $0.hasSuffix(".npy") }) {
                var notes: [String] = []
                let dict = Pickle.Dict(try NPZFile.load(archive).map { (Pickle.Value.string($0.name), Pickle.Value.object($0.tensor)) })
                return (try selectStateDict(.dict(dict), notes: &notes), "npz", notes)
            }
            throw TransFaceError.format("\(path) is a zip archive but neither an .npz nor a torch.save file")
        }
        let head = try file.readBytes(at: 0, count: 1)
        if head == [0x80] {
            var notes: [String] = []
            return (try selectStateDict(try TorchFile.load(path: path), notes: &notes), "torch legacy (read without torch)", notes)
        }
        if path.hasSuffix(".pt") || path.hasSuffix(".pth") {
            _ = try TorchFile.load(path: path)  // throws the not-a-torch.save-file message
        }
        throw TransFaceError.format("\(path) is neither an .npz archive nor a torch.save file")
    }

    /// The backbone state_dict of a source (or its `state_dict_backbone`), with `module.` stripped.
    static func selectStateDict(_ root: Pickle.Value, notes: inout [String]) throws -> [(String, SourceTensor)] {
        guard case .dict(var dict) = root else { throw TransFaceError.format("the file holds a \(root.kind), not a state_dict") }
        if let backbone = dict.items.first(where: { if case .string("state_dict_backbone") = $0.key { return true }; return false }) {
            let other = dict.items.compactMap { item -> String? in
                if case .string(let k) = item.key { return k == "state_dict_backbone" ? nil : k }
                return "\(item.key.kind)"
            }
            notes.append("training checkpoint: using 'state_dict_backbone'" + (other.isEmpty ? "" : ", ignoring \(other.joined(separator: ", "))"))
            guard case .dict(let d) = backbone.value else { throw TransFaceError.format("'state_dict_backbone' is not a dict of tensors") }
            dict = d
        }
        var out: [(String, SourceTensor)] = [], seen = Set<String>(), stripped = 0
        for item in dict.items {
            guard case .string(var k) = item.key else { throw TransFaceError.format("state_dict key (a \(item.key.kind)) is not a string") }
            if k.hasPrefix("module.") { k = String(k.dropFirst(7)); stripped += 1 }
            guard case .object(let o) = item.value, let t = o as? SourceTensor else {
                throw TransFaceError.format("entry '\(k)' is a \(item.value.kind), not a tensor")
            }
            guard seen.insert(k).inserted else { throw TransFaceError.format("tensor '\(k)' appears twice (with and without 'module.')") }
            out.append((k, t))
        }
        if stripped > 0 { notes.append("stripped the 'module.' prefix from \(stripped) names") }
        guard !out.isEmpty else { throw TransFaceError.format("the state_dict holds no tensors") }
        return out
    }

    static func isSkipped(_ name: String) -> Bool {
        name.hasSuffix(".num_batches_tracked") || ["partial_fc.", "module_partial_fc.", "margin_softmax."].contains { name.hasPrefix($0) }
    }

    /// Converts `source` to a model file at `output`.
    @discardableResult
    public static func convert(_ source: String, to output: String, options: Options = Options()) throws -> Result {
        var (all, format, notes) = try open(source)
        let skipped = all.map(\.0).filter(isSkipped)
        if !skipped.isEmpty {
            notes.append("skipping \(skipped.count) tensor(s) that inference does not use: \(skipped.joined(separator: ", "))")
        }
        let tensors = all.filter { !isSkipped($0.0) }
        let config = try inferConfig(shapes: Dictionary(tensors.map { ($0.0, $0.1.shape) }, uniquingKeysWith: { a, _ in a }),
                                     options: options, notes: &notes)
        let builder: ModelBuilder
        do { builder = try ModelBuilder(config: config) } catch let e as TransFaceError {
            throw TransFaceError(e.kind, "the inferred architecture is not valid: \(e.message)")
        }
        let byName = Dictionary(tensors, uniquingKeysWith: { a, _ in a })
        try checkTensors(byName, names: tensors.map(\.0), layout: builder.layout)
        for e in builder.layout.entries {
            let t = byName[e.name]!
            var raw = try t.load()
            switch t.dtype {
            case "float64":
                let values = raw.withUnsafeBytes { b in (0..<e.count).map { Float(Double(bitPattern: UInt64(littleEndian: b.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self)))) } }
                try builder.setTensor(e.name, values)
            default:
                let dtype: StoredDType = t.dtype == "float32" ? .f32 : t.dtype == "float16" ? .f16 : .bf16
                try raw.withUnsafeMutableBytes { try builder.setTensor(e.name, dims: e.shape, dtype: dtype, data: $0.baseAddress!) }
            }
        }
        let headsFrom = options.arch != nil ? "--arch" : options.numHeads != nil ? "--num-heads" : "default (\(defaultNumHeads))"
        let sourceName = source.split(separator: "/").last.map(String.init) ?? source
        let meta: [(String, String)] = [("source", sourceName), ("source_format", format),
                                        ("converter", "transface convert v\(version) (libtransface \(LibraryVersion.string))"),
                                        ("arch", config.arch), ("num_heads_from", headsFrom)] + options.metadata.map { ($0.key, $0.value) }
        for (k, v) in meta { try builder.setMetadata(k, v) }
        try builder.save(to: output)
        return Result(config: config, sourceFormat: format, notes: notes)
    }

    /// Refuses missing, unknown, mis-shaped and non-floating-point tensors (all named).
    static func checkTensors(_ byName: [String: SourceTensor], names: [String], layout: ParameterLayout) throws {
        let missing = layout.entries.map(\.name).filter { byName[$0] == nil }
        let unknown = names.filter { layout[$0] == nil }
        let misshaped = layout.entries.compactMap { e -> String? in
            guard let t = byName[e.name], t.shape != e.shape else { return nil }
            return "\(e.name) \(t.shape) (expected \(e.shape))"
        }
        let dtypes = layout.entries.compactMap { e -> String? in
            guard let t = byName[e.name], !["float32", "float16", "float64", "bfloat16"].contains(t.dtype) else { return nil }
            return "\(e.name) (\(t.dtype))"
        }
        var problems: [String] = []
        if !missing.isEmpty { problems.append("missing \(missing.count): \(missing.joined(separator: ", "))") }
        if !unknown.isEmpty { problems.append("unknown \(unknown.count): \(unknown.joined(separator: ", "))") }
        if !misshaped.isEmpty { problems.append("mis-shaped \(misshaped.count): \(misshaped.joined(separator: ", "))") }
        if !dtypes.isEmpty { problems.append("not floating point: \(dtypes.joined(separator: ", "))") }
        if !problems.isEmpty { throw TransFaceError.format("tensors do not match the architecture: " + problems.joined(separator: "; ")) }
    }
}
