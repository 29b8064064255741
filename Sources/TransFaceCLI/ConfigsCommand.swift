import ArgumentParser
import TFCore
import TFData

/// `transface configs [NAME] [--show SPEC]`: lists the shipped run configurations, prints one as
/// shipped, or prints one fully resolved.
struct ConfigsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "configs", abstract: "List the shipped training configurations, or print one.",
        discussion: """
            Without arguments: the runnable recipes, one name a line. NAME prints a shipped configuration \
            as shipped: a recipe, or one of the bases the recipes are written over ("base": NAME), which \
            the list leaves out (\(ShippedConfigs.baseNames().joined(separator: ", "))). --show NAME|FILE prints it resolved: \
            bases merged, --set overrides applied, every default written out, as JSON that \
            `transface train --config` reads to the same run; num_classes (when the data decides it) \
            and, when "epochs" is set, trainer.schedule are left out. A base is shown merged only (it \
            is not a whole run). Every field is documented in Sources/TransFaceCLI/Configs/README.md.
            """)

    @Argument(help: "A shipped configuration to print as shipped.") var name: String?

    @Option(name: .long, help: ArgumentHelp("Print this configuration (a shipped name or a file) fully resolved.", valueName: "name|file"))
    var show: String?

    @Option(name: .customLong("set"), help: ArgumentHelp("With --show: override a configuration value (repeatable).", valueName: "key.path=value"))
    var overrides: [String] = []

    func validate() throws {
        if name != nil && show != nil { throw ValidationError("give NAME or --show NAME, not both") }
        if show == nil && !overrides.isEmpty { throw ValidationError("--set needs --show") }
    }

    func run() throws {
        if let show {
            let merged = try RunConfigBases.resolved(show, allowBase: true)
            if !DataFiles.isFile(show) && ShippedConfigs.baseNames().contains(show) {
                print(merged.prettyText, terminator: "")
                return
            }
            let run = try TrainRunConfig.parse(try TrainRunConfig.applyingAll(overrides, to: merged.text))
            print(try run.resolvedJSON().prettyText, terminator: "")
            return
        }
        guard let name else {
            for n in ShippedConfigs.names() { print(n) }
            return
        }
        guard let text = try ShippedConfigs.text(named: name) else {
            throw TransFaceError.notFound("no shipped configuration '\(name)' (shipped: \(ShippedConfigs.names().joined(separator: ", ")))")
        }
        print(text, terminator: "")
    }
}
