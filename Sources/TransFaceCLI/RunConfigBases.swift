import TFCore
import TFTrain

/// `"base": "NAME"`: a run configuration written as another one plus overrides, as arcface_torch's
/// `configs/base.py`. The base (a file, else a shipped name, as --config; a shipped configuration's
/// base is always a shipped one) is resolved first, bases of bases included, and the configuration
/// is merged over it: objects key by key (the configuration's value wins), arrays and scalars
/// (null too) replaced.
enum RunConfigBases {
    /// Most configurations in one chain (the configuration itself included).
    static let maxChain = 8

    /// The run configuration `spec` names, its bases merged in (no "base" left). A shipped base is
    /// refused unless `allowBase`: it is a part of recipes, not a run.
    static func resolved(_ spec: String, allowBase: Bool = false) throws -> JSONValue {
        let (text, shipped) = try ShippedConfigs.text(spec)
        if shipped && !allowBase && ShippedConfigs.baseNames().contains(spec) {
            throw TransFaceError.invalidArgument("'\(spec)' is a base of the shipped recipes (they name it with \"base\"), not a run: run one of \(ShippedConfigs.names().joined(separator: ", "))")
        }
        return try resolved(text: text, name: spec, shipped: shipped, chain: [])
    }

    /// `text` (read from `name`) with its bases merged in.
    static func resolved(text: String, name: String, shipped: Bool = false, chain: [String] = []) throws -> JSONValue {
        let chain = chain + [name]
        if chain.dropLast().contains(name) {
            throw TransFaceError.invalidArgument("run.base: the bases loop: \(chain.joined(separator: " -> "))")
        }
        guard chain.count <= maxChain else {
            throw TransFaceError.invalidArgument("run.base: more than \(maxChain) configurations in the chain \(chain.joined(separator: " -> "))")
        }
        let document: JSONValue
        do { document = try JSONValue.parse(text) } catch let e as TransFaceError { throw TransFaceError(e.kind, "\(name): \(e.message)") }
        guard case .object(var members) = document else { throw TransFaceError.invalidArgument("\(name): a run configuration must be a JSON object") }
        guard let i = members.firstIndex(where: { $0.key == "base" }) else { return document }
        guard case .string(let spec) = members[i].value else {
            throw TransFaceError.invalidArgument("\(name): run.base must be a string (a shipped configuration's name or a file)")
        }
        members.remove(at: i)
        let source: (text: String, shipped: Bool)
        if shipped {
            guard let text = try ShippedConfigs.text(named: spec) else {
                throw TransFaceError.notFound("\(name): run.base '\(spec)' is not a shipped configuration")
            }
            source = (text, true)
        } else {
            do { source = try ShippedConfigs.text(spec) } catch let e as TransFaceError { throw TransFaceError(e.kind, "\(name): run.base: \(e.message)") }
        }
        return merged(.object(members), over: try resolved(text: source.text, name: spec, shipped: source.shipped, chain: chain))
    }

    /// `child` over `base`: objects merged key by key (base's keys first, the child's value wins),
    /// anything else replaced by the child's.
    static func merged(_ child: JSONValue, over base: JSONValue) -> JSONValue {
        guard case .object(let overrides) = child, case .object(var members) = base else { return child }
        for (key, value) in overrides {
            if let i = members.firstIndex(where: { $0.key == key }) {
                members[i].value = merged(value, over: members[i].value)
            } else {
                members.append((key, value))
            }
        }
        return .object(members)
    }
}
