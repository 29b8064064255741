import Foundation
import TFCore
import TFData

/// The run configurations shipped with the tool (`Configs/`: the official TransFace recipes and
/// the LFW demo, and in `Configs/bases/` the bases they are written over), found by name.
enum ShippedConfigs {
    /// Folder of the shipped configurations (a resource of this executable).
    static var folder: String? { Bundle.module.url(forResource: "Configs", withExtension: nil)?.path }

    /// Names of the runnable recipes, sorted.
    static func names() -> [String] { jsonNames(in: folder) }

    /// Names of the bases (`Configs/bases/`): parts of recipes, not runs on their own.
    static func baseNames() -> [String] { jsonNames(in: folder.map { $0 + "/bases" }) }

    /// The shipped configuration `name` (a recipe or a base) as shipped, or nil.
    static func text(named name: String) throws -> String? {
        guard let folder else { return nil }
        if names().contains(name) { return try DataFiles.readText("\(folder)/\(name).json") }
        if baseNames().contains(name) { return try DataFiles.readText("\(folder)/bases/\(name).json") }
        return nil
    }

    /// The text of `spec`, as --config reads it: an existing file, else a shipped configuration of that name.
    static func text(_ spec: String) throws -> (text: String, shipped: Bool) {
        if DataFiles.isFile(spec) { return (try DataFiles.readText(spec, limit: 16 << 20), false) }
        if let text = try text(named: spec) { return (text, true) }
        throw TransFaceError.notFound("no configuration file '\(spec)' and no shipped configuration of that name (shipped: \(names().joined(separator: ", ")))")
    }

    private static func jsonNames(in folder: String?) -> [String] {
        guard let folder, let files = try? DataFiles.list(folder) else { return [] }
        return files.filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted()
    }
}
