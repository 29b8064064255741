import ArgumentParser
import Foundation
import TFCore
import TFData

/// The run configurations shipped with the tool (`Configs/`: the official TransFace recipes and
/// the LFW demo), found by name.
enum ShippedConfigs {
    /// Folder of the shipped configurations (a resource of this executable).
    static var folder: String? { Bundle.module.url(forResource: "Configs", withExtension: nil)?.path }

    /// Names of the shipped configurations, sorted.
    static func names() -> [String] {
        guard let folder, let files = try? DataFiles.list(folder) else { return [] }
        return files.filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted()
    }

    /// The text of `spec`: an existing file, else a shipped configuration of that name.
    static func text(_ spec: String) throws -> String {
        if DataFiles.isFile(spec) { return try DataFiles.readText(spec, limit: 16 << 20) }
        if let folder, names().contains(spec) { return try DataFiles.readText("\(folder)/\(spec).json") }
        throw TransFaceError.notFound("no configuration file '\(spec)' and no shipped configuration of that name (shipped: \(names().joined(separator: ", ")))")
    }
}

/// `transface configs [NAME]`: lists the shipped run configurations, or prints one.
struct ConfigsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "configs", abstract: "List the shipped training configurations, or print one.",
        discussion: "Every field is documented in Sources/TransFaceCLI/Configs/README.md. Start from a printed one: `transface configs ms1mv2_vit_s > my.json`.")

    @Argument(help: "A configuration name to print.") var name: String?

    func run() throws {
        guard let name else {
            for n in ShippedConfigs.names() { print(n) }
            return
        }
        guard ShippedConfigs.names().contains(name) else {
            throw TransFaceError.notFound("no shipped configuration '\(name)' (shipped: \(ShippedConfigs.names().joined(separator: ", ")))")
        }
        print(try ShippedConfigs.text(name), terminator: "")
    }
}
