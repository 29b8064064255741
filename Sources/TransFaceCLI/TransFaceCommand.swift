import ArgumentParser
import TFCore
import TFModel

#if canImport(Glibc)
import Glibc
#endif

/// `transface`: train, evaluate, inspect and use TransFace models from the command line.
@main
struct TransFaceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transface",
        abstract: "Train, evaluate, inspect and use TransFace face-recognition models (libtransface).",
        discussion: """
            Models: train, configs, eval, inspect, convert, pack, patches, bench. Faces: embed, \
            compare, align; detect (MTCNN, with a detector file from convert-detector) finds faces \
            in photos, and embed/compare/patches --detector align photos without landmarks; \
            gallery enrol/search/list/remove does 1:N identification.
            """,
        version: "libtransface \(LibraryVersion.string)",
        subcommands: [TrainCommand.self, ConfigsCommand.self, EvalCommand.self, EmbedCommand.self, CompareCommand.self, AlignCommand.self,
                      PackCommand.self, InspectCommand.self, ConvertCommand.self, ConvertDetectorCommand.self, PatchesCommand.self, BenchCommand.self,
                      DetectCommand.self, GalleryCommand.self, ImportRunCommand.self])

    /// Parses the arguments and runs the subcommand. Library errors become one line on stderr
    /// (`transface SUBCOMMAND: message`) and exit status 1; usage errors are ArgumentParser's
    /// message, also on one line, with its status (64).
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        let name = arguments.first.flatMap { $0.hasPrefix("-") ? nil : " \($0)" } ?? ""
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
        } catch let error as TransFaceError {
            fputs("transface\(name): \(error.message)\n", stderr)
            Glibc.exit(1)
        } catch let code as ExitCode {  // a command's own status (train: 130 after Ctrl-C), already reported
            Glibc.exit(code.rawValue)
        } catch {
            let code = exitCode(for: error)
            if code == .success { exit(withError: error) }  // --help, --version
            let text = message(for: error).split(whereSeparator: \.isNewline).joined(separator: " ")
            fputs("transface\(name): \(text)\n", stderr)
            Glibc.exit(code.rawValue)
        }
    }
}
