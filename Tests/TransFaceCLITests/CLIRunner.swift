import Foundation
import TFTestSupport

/// Runs the built `transface` executable (product `transface-cli`) as a child process.
enum CLI {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        /// Non-empty stderr lines (an error must be exactly one of them).
        var errorLines: [Substring] { stderr.split(separator: "\n", omittingEmptySubsequences: true) }
    }

    /// The executable beside the test bundle (SwiftPM builds it because the test target depends on it).
    /// (On Linux the bundle URL is the products folder itself; elsewhere it is the .xctest bundle in it.)
    static let executable: String = {
        let bundle = Bundle(for: Marker.self).bundleURL
        let products = bundle.pathExtension == "xctest" ? bundle.deletingLastPathComponent() : bundle
        return products.appendingPathComponent("transface-cli").path
    }()
    private final class Marker {}
    /// Written by the reader thread before `group.leave()`, read after `group.wait()`.
    private final class Box: @unchecked Sendable { var data = Data() }

    /// Runs `transface ARGS...` in `folder` (default: the repository root) and waits for it.
    @discardableResult
    static func run(_ arguments: [String], in folder: String? = nil, environment: [String: String] = [:]) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: folder ?? Reference.repoRoot)
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read both pipes while the child runs so that neither can fill up and block it.
        let errData = Box()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { errData.data = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData.data, as: UTF8.self))
    }
}
