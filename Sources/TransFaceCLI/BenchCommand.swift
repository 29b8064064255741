import ArgumentParser
import TFCore
import TFKernels
import TFModel
import TFTrain

#if canImport(Glibc)
import Glibc
#endif

/// `transface bench`: throughput, op-time split and memory of embedding, training and loading
/// (a benchmark executable; tests never time anything). Build in release mode. OpenBLAS picks
/// its kernel from the CPU unless OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE say otherwise; the
/// kernel in effect is reported with every result.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure embedding, training and loading speed (release builds).",
        discussion: """
            Example: transface bench embed vit_s --batch 1,8,32 --threads 1,2 --json bench.json
            Run `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE transface bench ...` to measure \
            OpenBLAS's auto-detected kernel on machines that set those variables (say so when reporting).
            """,
        subcommands: [BenchEmbed.self, BenchTrain.self, BenchLoad.self, BenchMakeModel.self])
}

/// Options every benchmark shares: where the JSON goes.
struct BenchOutput: ParsableArguments {
    @Option(name: .long, help: "Also write the results as a JSON array to this file.") var json: String?

    func emit(_ objects: [String], table: [[String]]) throws {
        printTable(table)
        if let json { try CLISupport.write("[\n" + objects.joined(separator: ",\n") + "\n]\n", to: json) }
    }
}

/// A model from a preset name (official initialisation, seed 1) or a model file.
func benchModel(_ spec: String) throws -> TransFaceModel {
    if ViTConfig.presetNames.contains(spec) {
        let builder = try ModelBuilder(config: try ViTConfig.preset(spec))
        builder.initializeWeights(seed: 1)
        return try builder.build()
    }
    return try CLISupport.loadModel(spec)
}

/// Peak resident set size of this process in bytes.
func peakRSSBytes() -> Int {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return usage.ru_maxrss * 1024
}

/// Median of a non-empty list.
func median(_ values: [Double]) -> Double {
    let s = values.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

func parseList(_ text: String, _ what: String) throws -> [Int] {
    let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) >= 1 }) else {
        throw CLISupport.usage("\(what) must be a comma-separated list of positive integers, got '\(text)'")
    }
    return values.map { $0! }
}

func printTable(_ rows: [[String]]) {
    guard let header = rows.first else { return }
    let widths = header.indices.map { c in rows.map { $0[c].count }.max()! }
    for (i, row) in rows.enumerated() {
        print(row.indices.map { CLISupport.pad(row[$0], widths[$0], right: $0 > 0) }.joined(separator: "  "))
        if i == 0 { print(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")) }
    }
}

func machineJSON() -> String {
    let env = ["OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"].map { name -> String in
        let v = getenv(name).map { JSONText.quoted(String(cString: $0)) } ?? "null"
        return "\(JSONText.quoted(name)): \(v)"
    }
    return #""openblas_core": \#(JSONText.quoted(BLAS.coreName)), \#(env.joined(separator: ", ")), "onednn": \#(JSONText.quoted(MatmulBackend.libraryVersion)), "matmul_isa": \#(JSONText.quoted(MatmulBackend.isaName))"#
}

/// `transface bench embed`: images/s of `Embedder.embed` (uint8 pixels to raw embeddings),
/// the median over timed calls after a warm-up, for every thread count × batch size, with
/// the wall time split by op class and the GFLOP/s each class achieves.
struct BenchEmbed: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed", abstract: "Embedding throughput, op-time split, GFLOP/s and memory.")

    @Argument(help: "A preset (vit_t, vit_s, vit_b, vit_l) or a model file.") var model: String
    @Option(name: .long, help: "Batch sizes, comma-separated.") var batch = "1,8,32"
    @Option(name: .long, help: "Thread counts, comma-separated.") var threads = "2"
    @Option(name: .long, help: "Seconds of timed calls per measurement (at least 3 calls).") var seconds = 5.0
    @Option(name: .long, help: "GEMM precision: fp32 or bf16 (AVX512_BF16 or AMX CPUs).") var precision = "fp32"
    @OptionGroup var output: BenchOutput

    func run() throws {
        let batches = try parseList(batch, "--batch"), threadCounts = try parseList(threads, "--threads")
        guard let precision = Precision(rawValue: precision) else { throw CLISupport.usage("--precision must be fp32 or bf16") }
        guard seconds > 0 && seconds <= 3600 else { throw CLISupport.usage("--seconds must be in (0, 3600]") }
        let m = try benchModel(model)
        let c = m.config, side = c.imgSize
        let flops = c.forwardFLOPs
        let flopPerImage = flops.values.reduce(0, +)
        var rng = SeededRNG(seed: 9)
        let images = (0..<(batches.max()! * side * side * 3)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let kinds = OpProfile.Kind.allCases
        var table = [["threads", "batch", "img/s", "GFLOP/s", "ms/img"] + kinds.map { "\($0.name) %" } + ["GEMM GFLOP/s", "workspace MB", "peak RSS MB"]]
        var objects: [String] = []
        var single: [Int: Double] = [:]  // batch → images/s at 1 thread
        for n in threadCounts {
            for b in batches {
                let embedder = try Embedder(model: m, threads: n, maxBatch: b, precision: precision)
                var out = [Float](repeating: 0, count: b * c.embeddingSize)
                func once() throws {
                    try out.withUnsafeMutableBufferPointer {
                        try embedder.embed(images: images, count: b, width: side, height: side, normalize: false, into: .init(embeddings: $0))
                    }
                }
                try once(); try once()  // warm-up
                let profile = OpProfile()
                embedder.profile = profile
                var rates: [Double] = []
                let start = monotonicSeconds()
                while rates.count < 3 || (monotonicSeconds() - start < seconds && rates.count < 100_000) {
                    let t0 = monotonicSeconds()
                    try once()
                    rates.append(Double(b) / (monotonicSeconds() - t0))
                }
                let rate = median(rates)
                if n == 1 { single[b] = rate }
                let perImage = profile.total / Double(rates.count * b)
                let share = kinds.map { profile.seconds[$0.rawValue] / profile.total }
                let gemmRate = flops[.gemm]! * Double(rates.count * b) / profile.seconds[OpProfile.Kind.gemm.rawValue] / 1e9
                let efficiency = single[b].map { n > 1 ? rate / ($0 * Double(n)) : 1 }
                table.append(["\(n)", "\(b)", CLISupport.fixed(rate, 1), CLISupport.fixed(rate * flopPerImage / 1e9, 1),
                              CLISupport.fixed(1000 / rate, 2)] + share.map { CLISupport.fixed($0 * 100, 1) }
                             + [CLISupport.fixed(gemmRate, 1), "\(embedder.workspaceBytes >> 20)", "\(peakRSSBytes() >> 20)"])
                let classes = kinds.map { k -> String in
                    let s = profile.seconds[k.rawValue]
                    let g = flops[k]! > 0 ? CLISupport.fixed(flops[k]! * Double(rates.count * b) / s / 1e9, 1) : "null"
                    return #""\#(k.name)": {"share": \#(CLISupport.fixed(s / profile.total, 4)), "ms_per_image": \#(CLISupport.fixed(s / Double(rates.count * b) * 1000, 3)), "gflop_per_s": \#(g)}"#
                }
                objects.append(#"{"bench": "embed", "arch": \#(JSONText.quoted(c.arch)), "precision": \#(JSONText.quoted(precision.rawValue)), "threads": \#(n), "batch": \#(b), "images_per_s": \#(CLISupport.fixed(rate, 2)), "calls": \#(rates.count), "images_per_s_min": \#(CLISupport.fixed(rates.min()!, 2)), "images_per_s_max": \#(CLISupport.fixed(rates.max()!, 2)), "gflop_per_image": \#(CLISupport.fixed(flopPerImage / 1e9, 3)), "gflop_per_s": \#(CLISupport.fixed(rate * flopPerImage / 1e9, 1)), "profiled_ms_per_image": \#(CLISupport.fixed(perImage * 1000, 3)), "op_classes": {\#(classes.joined(separator: ", "))}, "parallel_efficiency": \#(efficiency.map { CLISupport.fixed($0, 3) } ?? "null"), "weights_mb": \#(CLISupport.fixed(Double(m.layout.weightBytes) / 1048576, 1)), "workspace_mb": \#(CLISupport.fixed(Double(embedder.workspaceBytes) / 1048576, 1)), "peak_rss_mb": \#(peakRSSBytes() >> 20), \#(machineJSON())}"#)
            }
        }
        try output.emit(objects, table: table)
    }
}

/// `transface bench train`: images/s of official training steps (two forward passes with DPAP
/// between them, backward, optimizer) with and without DPAP, and the time of each phase.
struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "Training throughput per official step, with and without DPAP.")

    @Argument(help: "A preset: vit_t, vit_s, vit_b or vit_l.") var arch: String
    @Option(name: .long, help: "Batch size.") var batch = 32
    @Option(name: .long, help: "Number of classes.") var classes = 1000
    @Option(name: .long, help: "Thread counts, comma-separated.") var threads = "2"
    @Option(name: .long, help: "Timed steps per measurement (after one warm-up step).") var steps = 4
    @Option(name: .long, help: "DPAP: on, off or both.") var dpap = "both"
    @OptionGroup var output: BenchOutput

    func run() throws {
        let threadCounts = try parseList(threads, "--threads")
        guard ["on", "off", "both"].contains(dpap) else { throw CLISupport.usage("--dpap must be on, off or both") }
        guard steps >= 1 && steps <= 10_000, batch >= 2, classes >= 1 else {
            throw CLISupport.usage("--steps must be 1...10000, --batch at least 2, --classes at least 1")
        }
        let variants = dpap == "both" ? [true, false] : [dpap == "on"]
        var table = [["threads", "dpap", "img/s", "s/step", "phases (s/step)", "DPAP % of step", "peak RSS MB"]]
        var objects: [String] = []
        for n in threadCounts {
            for withDPAP in variants {
                let config = try TrainerConfig.parse("""
                    {"arch": \(JSONText.quoted(arch)), "num_classes": \(classes), "batch_size": \(batch), "threads": \(n),
                     "dpap": {"enabled": \(withDPAP)}, "schedule": {"warmup_steps": 0, "max_steps": 1000000}}
                    """)
                let trainer = try Trainer(config: config)
                let side = config.model.imgSize
                var rng = SeededRNG(seed: 4)
                let images = (0..<(batch * side * side * 3)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                let labels = (0..<batch).map { Int32($0 % classes) }
                _ = try trainer.step(images: images, labels: labels)  // warm-up
                var seconds: [Double] = [], phases: [(String, Double)] = []
                for _ in 0..<steps {
                    let t0 = monotonicSeconds()
                    let r = try trainer.step(images: images, labels: labels)
                    seconds.append(monotonicSeconds() - t0)
                    for (i, (p, s)) in r.timings.enumerated() {
                        if i < phases.count { phases[i].1 += s / Double(steps) } else { phases.append((p, s / Double(steps))) }
                    }
                }
                let step = median(seconds), dpapShare = (phases.first { $0.0 == "dpap" }?.1 ?? 0) / step
                table.append(["\(n)", withDPAP ? "on" : "off", CLISupport.fixed(Double(batch) / step, 2), CLISupport.fixed(step, 3),
                              phases.map { "\($0.0) \(CLISupport.fixed($0.1, 3))" }.joined(separator: ", "),
                              withDPAP ? CLISupport.fixed(dpapShare * 100, 2) : "-", "\(peakRSSBytes() >> 20)"])
                let split = phases.map { "\(JSONText.quoted($0.0)): \(CLISupport.fixed($0.1, 4))" }.joined(separator: ", ")
                objects.append(#"{"bench": "train", "arch": \#(JSONText.quoted(arch)), "batch": \#(batch), "classes": \#(classes), "threads": \#(n), "dpap": \#(withDPAP), "images_per_s": \#(CLISupport.fixed(Double(batch) / step, 3)), "seconds_per_step": \#(CLISupport.fixed(step, 4)), "steps": \#(steps), "seconds_per_phase": {\#(split)}, "dpap_share_of_step": \#(withDPAP ? CLISupport.fixed(dpapShare, 5) : "null"), "peak_rss_mb": \#(peakRSSBytes() >> 20), \#(machineJSON())}"#)
            }
        }
        try output.emit(objects, table: table)
    }
}

/// `transface bench load`: seconds to load a model file (median of repeated loads; the first
/// load warms the page cache) and the resident memory it takes.
struct BenchLoad: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "load", abstract: "Model loading time and memory.")

    @Argument(help: "A model file (.tfm).") var file: String
    @Option(name: .long, help: "Timed loads (after one warm-up load).") var repeats = 5
    @OptionGroup var output: BenchOutput

    func run() throws {
        guard repeats >= 1 && repeats <= 1000 else { throw CLISupport.usage("--repeats must be 1...1000") }
        let before = peakRSSBytes()
        var weights = 0, arch = ""
        do { let m = try CLISupport.loadModel(file); weights = m.layout.weightBytes; arch = m.config.arch }  // warm-up
        let afterOne = peakRSSBytes()
        var times: [Double] = []
        for _ in 0..<repeats {
            let t0 = monotonicSeconds()
            _ = try CLISupport.loadModel(file)
            times.append(monotonicSeconds() - t0)
        }
        let t = median(times)
        try output.emit([#"{"bench": "load", "arch": \#(JSONText.quoted(arch)), "seconds": \#(CLISupport.fixed(t, 4)), "seconds_min": \#(CLISupport.fixed(times.min()!, 4)), "loads": \#(repeats), "weights_mb": \#(CLISupport.fixed(Double(weights) / 1048576, 1)), "rss_before_mb": \#(before >> 20), "peak_rss_after_one_load_mb": \#(afterOne >> 20)}"#],
                        table: [["arch", "load s (median)", "weights MB", "peak RSS growth MB"],
                                [arch, CLISupport.fixed(t, 3), CLISupport.fixed(Double(weights) / 1048576, 1), "\((afterOne - before) >> 20)"]])
    }
}

/// `transface bench make-model`: writes an official-initialisation (untrained) model of a preset.
struct BenchMakeModel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "make-model", abstract: "Write an untrained model of a preset (official initialisation, seed 1).")

    @Argument(help: "A preset: vit_t, vit_s, vit_b or vit_l.") var arch: String
    @Option(name: .shortAndLong, help: "Output model file.") var output: String

    func run() throws {
        let builder = try ModelBuilder(config: try ViTConfig.preset(arch))
        builder.initializeWeights(seed: 1)
        try builder.setMetadata("note", "official initialisation, seed 1 (untrained)")
        try builder.save(to: output)
    }
}
