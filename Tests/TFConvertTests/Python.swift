import Foundation

/// Runs `python3 -c script args...`: its standard output, or nil (with the reason printed) when
/// python3 or a module the script needs (it exits with status 3) is not there.
func runPython(_ script: String, _ args: [String], needs: String) -> String? {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", "-c", script] + args
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    do { try p.run() } catch { print("skipped: no python3 (\(error))"); return nil }
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { print("skipped: \(needs) (python3 exited with \(p.terminationStatus))"); return nil }
    return text
}
