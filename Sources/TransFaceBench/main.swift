// transface-bench: throughput and memory measurements (an executable, never a timed test).
//
//   transface-bench make-model ARCH OUT.tfm            official-init model of a preset
//   transface-bench embed (ARCH | MODEL.tfm) [--threads N] [--batch 1,8] [--seconds S]
//   transface-bench load MODEL.tfm                     load time and peak RSS of loading
//   transface-bench train ARCH [--batch 32] [--classes 1000] [--threads 2] [--steps 4] [--no-dpap]
//                                                      official training steps per second
//
// Prints one JSON object per measurement. OpenBLAS's kernel choice is printed too: run with
// OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset for its full speed on this machine (say so).
import TFCore
import TFModel
import TFTrain

#if canImport(Glibc)
import Glibc
#endif

/// Peak resident set size of this process in bytes.
func peakRSS() -> Int {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return usage.ru_maxrss * 1024
}

func fail(_ message: String) -> Never {
    fputs("transface-bench: \(message)\n", stderr)
    exit(2)
}

func option(_ args: [String], _ name: String) -> String? {
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
    return args[i + 1]
}

func model(from spec: String) throws -> TransFaceModel {
    if spec.hasSuffix(".tfm") { return try ModelFile.load(path: spec) }
    let builder = try ModelBuilder(config: try ViTConfig.preset(spec))
    builder.initializeWeights(seed: 1)
    return try builder.build()
}

/// GFLOP of one image's forward pass (multiply-adds × 2 of every GEMM).
func gflopPerImage(_ c: ViTConfig) -> Double {
    let t = Double(c.numPatches), d = Double(c.embedDim), h = Double(c.mlpHiddenDim)
    let block = t * d * 3 * d + t * t * d * 2 + t * d * d + 2 * t * d * h
    let head = t * d * t + t * t + t * d * d + d * Double(c.embeddingSize)
    return 2 * (Double(c.depth) * block + t * Double(c.patchValues) * d + head) / 1e9
}

func embedBenchmark(_ args: [String]) throws {
    guard args.count >= 1 else { fail("embed needs an ARCH or MODEL.tfm") }
    let m = try model(from: args[0])
    let threads = Int(option(args, "--threads") ?? "2") ?? 2
    let batches = (option(args, "--batch") ?? "1,8").split(separator: ",").compactMap { Int($0) }
    let seconds = Double(option(args, "--seconds") ?? "5") ?? 5
    let side = m.config.imgSize
    for batch in batches {
        let embedder = try Embedder(model: m, threads: threads, maxBatch: batch)
        var rng = SeededRNG(seed: 9)
        let images = (0..<(batch * side * side * 3)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        var out = [Float](repeating: 0, count: batch * m.config.embeddingSize)
        func once() throws {
            try out.withUnsafeMutableBufferPointer {
                try embedder.embed(images: images, count: batch, width: side, height: side, into: .init(embeddings: $0))
            }
        }
        try once()  // warm-up
        var rates: [Double] = []
        let start = monotonicSeconds()
        while rates.count < 3 || (monotonicSeconds() - start < seconds && rates.count < 1000) {
            let t0 = monotonicSeconds()
            try once()
            rates.append(Double(batch) / (monotonicSeconds() - t0))
        }
        rates.sort()
        let median = rates[rates.count / 2]
        let gflops = median * gflopPerImage(m.config)
        print(#"{"bench":"embed","arch":"\#(m.config.arch)","threads":\#(threads),"batch":\#(batch),"images_per_s":\#((median * 100).rounded() / 100),"runs":\#(rates.count),"gflop_per_image":\#((gflopPerImage(m.config) * 100).rounded() / 100),"gflop_per_s":\#(gflops.rounded()),"peak_rss_mb":\#(peakRSS() >> 20),"openblas_core":"\#(BLAS.coreName)"}"#)
    }
}

func loadBenchmark(_ args: [String]) throws {
    guard let path = args.first else { fail("load needs MODEL.tfm") }
    let before = peakRSS()
    let t0 = monotonicSeconds()
    let m = try ModelFile.load(path: path)
    let elapsed = monotonicSeconds() - t0
    let weights = m.layout.weightBytes
    let peak = peakRSS()
    print(#"{"bench":"load","arch":"\#(m.config.arch)","seconds":\#((elapsed * 1000).rounded() / 1000),"weight_mb":\#(weights >> 20),"rss_before_mb":\#(before >> 20),"peak_rss_mb":\#(peak >> 20),"peak_over_weights":\#((Double(peak - before) / Double(weights) * 1000).rounded() / 1000)}"#)
}

func trainBenchmark(_ args: [String]) throws {
    guard let arch = args.first else { fail("train needs an ARCH") }
    let batch = Int(option(args, "--batch") ?? "32") ?? 32
    let classes = Int(option(args, "--classes") ?? "1000") ?? 1000
    let threads = Int(option(args, "--threads") ?? "2") ?? 2
    let steps = Int(option(args, "--steps") ?? "4") ?? 4
    let dpap = !args.contains("--no-dpap")
    let json = """
    {"arch": "\(arch)", "num_classes": \(classes), "batch_size": \(batch), "threads": \(threads),
     "dpap": {"enabled": \(dpap)}, "schedule": {"warmup_steps": 0, "max_steps": 1000}}
    """
    let trainer = try Trainer(config: try TrainerConfig.parse(json))
    let side = trainer.config.model.imgSize
    var rng = SeededRNG(seed: 4)
    let images = (0..<(batch * side * side * 3)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    let labels = (0..<batch).map { Int32($0 % classes) }
    _ = try trainer.step(images: images, labels: labels)  // warm-up
    var rates: [Double] = [], phases: [String: Double] = [:]
    for _ in 0..<steps {
        let t0 = monotonicSeconds()
        let r = try trainer.step(images: images, labels: labels)
        rates.append(Double(batch) / (monotonicSeconds() - t0))
        for (p, s) in r.timings { phases[p, default: 0] += s / Double(steps) }
    }
    rates.sort()
    let split = phases.sorted { $0.key < $1.key }.map { #""\#($0.key)":\#(($0.value * 1000).rounded() / 1000)"# }.joined(separator: ",")
    print(#"{"bench":"train","arch":"\#(arch)","batch":\#(batch),"classes":\#(classes),"threads":\#(threads),"dpap":\#(dpap),"images_per_s":\#((rates[rates.count / 2] * 100).rounded() / 100),"steps":\#(steps),"seconds_per_phase":{\#(split)},"peak_rss_mb":\#(peakRSS() >> 20),"openblas_core":"\#(BLAS.coreName)"}"#)
}

let args = Array(CommandLine.arguments.dropFirst())
do {
    switch args.first {
    case "make-model":
        guard args.count == 3 else { fail("usage: make-model ARCH OUT.tfm") }
        let builder = try ModelBuilder(config: try ViTConfig.preset(args[1]))
        builder.initializeWeights(seed: 1)
        try builder.setMetadata("note", "official initialisation, seed 1 (untrained)")
        try builder.save(to: args[2])
    case "embed": try embedBenchmark(Array(args.dropFirst()))
    case "load": try loadBenchmark(Array(args.dropFirst()))
    case "train": try trainBenchmark(Array(args.dropFirst()))
    default: fail("usage: transface-bench make-model|embed|load|train ... (see the source header)")
    }
} catch {
    fail("\(error)")
}
