import TFCore
import TFEval

#if canImport(Glibc)
import Glibc
#endif

/// What `transface train` tells the user while it runs: a live status line on a terminal (stderr),
/// plain periodic lines otherwise (stdout), and a JSON-lines log of every logged step and
/// evaluation (`train.jsonl` in the output folder, appended to on resume).
final class TrainProgress {
    private let log: UnsafeMutablePointer<FILE>
    private let live: Bool
    private let totalSteps: Int
    private let batchSize: Int
    private let start = monotonicSeconds()
    private var window: (time: Double, step: Int, loss: Double, count: Int)
    private var lastLive = 0.0
    private let firstStep: Int
    /// Prints nothing (ranks other than 0 of a distributed run).
    private let quiet: Bool

    init(logPath: String, totalSteps: Int, batchSize: Int, firstStep: Int, live: Bool? = nil, quiet: Bool = false) throws {
        guard let f = fopen(logPath, "a") else {
            throw TransFaceError.io("cannot open '\(logPath)' for appending: \(String(cString: strerror(errno)))")
        }
        log = f
        self.live = live ?? (isatty(STDERR_FILENO) == 1)
        self.totalSteps = totalSteps
        self.batchSize = batchSize
        self.firstStep = firstStep
        self.quiet = quiet
        window = (start, firstStep, 0, 0)
    }

    deinit { fclose(log) }

    /// After each optimizer step: updates the live line; every `logEvery` steps writes a log record
    /// (and a plain line when not on a terminal).
    func step(_ step: Int, loss: Double, lr: Double, skipped: Bool, logEvery: Int) {
        if !skipped { window.loss += loss; window.count += 1 }
        let now = monotonicSeconds()
        let rate = Double(step - firstStep) * Double(batchSize) / max(now - start, 1e-9)
        let remaining = rate > 0 ? Double(totalSteps - step) * Double(batchSize) / rate : .nan
        if live && (now - lastLive > 0.2 || step == totalSteps) {
            lastLive = now
            let meanLoss = window.count > 0 ? window.loss / Double(window.count) : .nan
            fputs("\r\u{1B}[2Kstep \(step)/\(totalSteps)  \(TextFormat.fixed(rate, 1)) img/s  loss \(TextFormat.fixed(meanLoss, 4))  lr \(scientific(lr))  ETA \(duration(remaining))", stderr)
            fflush(stderr)
        }
        guard step % logEvery == 0 || step == totalSteps else { return }
        let span = now - window.time
        let windowRate = Double(step - window.step) * Double(batchSize) / max(span, 1e-9)
        let meanLoss = window.count > 0 ? window.loss / Double(window.count) : .nan
        record("{\"event\":\"step\",\"step\":\(step),\"total_steps\":\(totalSteps),\"loss\":\(TextFormat.jsonNumber(meanLoss)),\"lr\":\(TextFormat.jsonNumber(lr)),\"images_per_second\":\(TextFormat.jsonNumber(windowRate)),\"elapsed_seconds\":\(TextFormat.jsonNumber(now - start)),\"skipped\":\(skipped)}")
        if !live && !quiet {
            print("step \(step)/\(totalSteps)  loss \(TextFormat.fixed(meanLoss, 4))  lr \(scientific(lr))  \(TextFormat.fixed(windowRate, 1)) img/s  ETA \(duration(remaining))")
            fflush(stdout)
        }
        window = (now, step, 0, 0)
    }

    /// A verification result: a log record and a line on stdout.
    func evaluation(step: Int, name: String, report: Verification.Report, seconds: Double) {
        clearLine()
        record("{\"event\":\"eval\",\"step\":\(step),\"target\":\(JSONText.quoted(name)),\"pairs\":\(report.pairs),\"accuracy\":\(TextFormat.jsonNumber(report.accuracyMean)),\"accuracy_std\":\(TextFormat.jsonNumber(report.accuracyStd)),\"best_threshold\":\(TextFormat.jsonNumber(report.bestThreshold)),\"val\":\(TextFormat.jsonNumber(report.valMean)),\"far\":\(TextFormat.jsonNumber(report.farMean)),\"xnorm\":\(TextFormat.jsonNumber(report.xnorm)),\"seconds\":\(TextFormat.jsonNumber(seconds))}")
        if !quiet { print("[\(name)] step \(step): accuracy \(TextFormat.fixed(100 * report.accuracyMean, 2)) ± \(TextFormat.fixed(100 * report.accuracyStd, 2)) %  (\(report.pairs) pairs, \(TextFormat.fixed(seconds, 1)) s)") }
        fflush(stdout)
    }

    /// A one-off event (checkpoint written, interrupted, finished): a log record and a line.
    func note(_ event: String, step: Int, _ message: String, fields: String = "") {
        clearLine()
        record("{\"event\":\(JSONText.quoted(event)),\"step\":\(step)\(fields.isEmpty ? "" : "," + fields)}")
        if !quiet { print(message) }
        fflush(stdout)
    }

    private func clearLine() {
        if live { fputs("\r\u{1B}[2K", stderr); fflush(stderr) }
    }

    private func record(_ line: String) {
        fputs(line + "\n", log)
        fflush(log)
    }

    private func scientific(_ x: Double) -> String {
        guard x.isFinite, x > 0 else { return TextFormat.number(x) }
        let e = Int(floor(log10(x)))
        return "\(TextFormat.fixed(x / pow(10, Double(e)), 2))e\(e)"
    }

    private func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        let s = Int(seconds.rounded())
        return s >= 3600 ? "\(s / 3600)h\(s / 60 % 60)m" : s >= 60 ? "\(s / 60)m\(s % 60)s" : "\(s)s"
    }
}
