import TFCore
import TFData
import TFModel

/// facenet-pytorch's MTCNN weights (`pnet.pt`, `rnet.pt`, `onet.pt`: legacy torch.save
/// state_dicts, MIT licence) to a `DetectorModel` with the default `DetectorConfig`; behind
/// `transface convert-detector`. Each file's names get their network's prefix (`conv1.weight`
/// of pnet.pt is `pnet.conv1.weight`) and must be exactly the layout's.
public enum DetectorConverter {
    public static let networks = ["pnet", "rnet", "onet"]
    /// Where the facenet-pytorch wheel keeps the three files.
    public static func wheelMember(_ net: String) -> String { "facenet_pytorch/data/\(net).pt" }

    /// Converts the three state_dict files (torch.save, either format, or .npz).
    public static func convert(pnet: String, rnet: String, onet: String) throws -> DetectorModel {
        try convert(zip(networks, [pnet, rnet, onet]).map { net, path in
            (net, path, try Converter.open(path).tensors)
        })
    }

    /// Converts the three files straight from a facenet-pytorch wheel (a zip archive).
    public static func convert(facenetWheel path: String) throws -> DetectorModel {
        guard ZipArchive.looksLikeZip(path) else { throw TransFaceError.format("'\(path)' is not a wheel (not a zip archive)") }
        let wheel = try ZipArchive(path: path)
        return try convert(networks.map { net in
            let member = wheelMember(net), name = "\(path):\(member)"
            guard wheel.contains(member) else { throw TransFaceError.format("'\(path)' has no \(member): not a facenet-pytorch wheel") }
            var notes: [String] = []
            let root = try TorchLegacyFile.load(bytes: try wheel.read(member, limit: 64 << 20), name: name)
            return (net, name, try Converter.selectStateDict(root, notes: &notes))
        })
    }

    /// The provenance stored in a converted file's metadata.
    public static func metadata(sources: [String]) -> [(key: String, value: String)] {
        [("source", sources.map { $0.split(separator: "/").last.map(String.init) ?? $0 }.joined(separator: ", ")),
         ("source_project", "facenet-pytorch (MIT licence)"),
         ("converter", "transface convert-detector v\(Converter.version) (libtransface \(LibraryVersion.string))")]
    }

    /// Prefixes each network's names and checks them against the layout (naming the file).
    static func convert(_ sources: [(net: String, what: String, tensors: [(String, SourceTensor)])]) throws -> DetectorModel {
        var tensors: [String: DetectorModel.Tensor] = [:]
        for (net, what, state) in sources {
            let expected = DetectorModel.layout.filter { $0.name.hasPrefix(net + ".") }
            let byName = Dictionary(state.map { ("\(net).\($0.0)", $0.1) }, uniquingKeysWith: { a, _ in a })
            let unknown = state.map { "\(net).\($0.0)" }.filter { name in !expected.contains { $0.name == name } }
            let missing = expected.map(\.name).filter { byName[$0] == nil }
            guard unknown.isEmpty, missing.isEmpty else {
                throw TransFaceError.format("'\(what)' is not facenet-pytorch's \(net) state_dict: "
                    + [missing.isEmpty ? nil : "missing \(missing.joined(separator: ", "))",
                       unknown.isEmpty ? nil : "unknown \(unknown.joined(separator: ", "))"].compactMap { $0 }.joined(separator: "; "))
            }
            for e in expected {
                let t = byName[e.name]!
                guard t.shape == e.shape else { throw TransFaceError.format("'\(what)': tensor '\(e.name)' has shape \(t.shape), expected \(e.shape)") }
                tensors[e.name] = .init(shape: e.shape, values: try t.floats("'\(what)': tensor '\(e.name)'"))
            }
        }
        return try DetectorModel(config: DetectorConfig(), tensors: tensors)
    }
}
