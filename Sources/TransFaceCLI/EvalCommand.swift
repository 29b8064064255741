import ArgumentParser
import TFCore
import TFData
import TFEval
import TFModel
import TFWiring

/// `transface eval`: verification accuracy (official 10-fold protocol), TAR@FAR and ROC curves
/// of a model on `.bin` sets, a pairs list or IJB-B/C; optionally stores a deployment threshold
/// in the model file.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a model: 10-fold verification accuracy, TAR@FAR, ROC.",
        discussion: """
            Sets: --bin FILE... (insightface .bin verification sets), --pairs FILE (LFW pairs.txt \
            or a TSV with path1, path2, same columns; images under --root, aligned with --landmarks \
            or already aligned 112x112 faces; --interleaved-folds for files sorted by class such as \
            LFW's View 1), or --ijb DIR (IJB-B/C 1:1, the IJB_release layout).
            Prints per set the pairs, accuracy ± std over the folds, the best threshold (squared \
            distance and cosine) and VAL@FAR, then TAR at each --far. --out DIR writes \
            SET_roc.csv, SET_tar.csv, summary.json and roc.svg. --set-threshold-far F stores the \
            cosine threshold reaching FAR F on the pairs in the model file (metadata \
            verification_threshold*), which `transface compare` then uses.
            Example: transface eval vit_s.tfm --pairs lfw/splits/devtest_pairs.tsv --root lfw \
            --landmarks lfw/landmarks/included_5pt.tsv --interleaved-folds --threads 2 --out report
            """)

    @Argument(help: "The model file (.tfm).") var model: String
    @Option(name: .long, parsing: .upToNextOption, help: "Verification .bin files.") var bin: [String] = []
    @Option(name: .long, help: "A pairs file (LFW pairs.txt or TSV).") var pairs: String?
    @Option(name: .long, help: "Image folder of --pairs (default: the pairs file's folder).") var root: String?
    @Option(name: .long, help: "Landmark table (TSV) for the --pairs images.") var landmarks: String?
    @Option(name: .long, help: "Preferred landmark source of the table (its 'source' column).") var landmarkSource: String?
    @Flag(name: .long, help: "Pair i is in fold i % 10 (for files sorted by class).") var interleavedFolds = false
    @Option(name: .long, help: "An IJB-B/C folder (loose_crop/, meta/).") var ijb: String?
    @Option(name: .long, help: "IJBB or IJBC when the folder holds both.") var ijbDataset: String?
    @Option(name: .long, help: "Worker threads.") var threads = 1
    @Flag(inversion: .prefixedNo, help: "Add the mirrored images' embeddings (official).") var flip = true
    @Option(name: .long, help: "Folds of the accuracy protocol.") var folds = 10
    @Option(name: .long, help: "Target FARs of the TAR table (comma-separated).") var far = "1e-4,1e-3,1e-2,1e-1"
    @Option(name: .long, help: "Target FAR of VAL@FAR.") var valFar = 1e-3
    @Option(name: .long, help: "Folder for roc/tar CSVs, summary.json and roc.svg.") var out: String?
    @Option(name: .long, help: "Store the cosine threshold at this FAR in the model file.") var setThresholdFar: Double?

    func validate() throws {
        let given = [!bin.isEmpty, pairs != nil, ijb != nil].filter { $0 }.count
        guard given == 1 else { throw ValidationError("give exactly one of --bin, --pairs and --ijb") }
        if pairs == nil && (root != nil || landmarks != nil || landmarkSource != nil || interleavedFolds) {
            throw ValidationError("--root, --landmarks, --landmark-source and --interleaved-folds only apply to --pairs")
        }
        if ijb == nil && ijbDataset != nil { throw ValidationError("--ijb-dataset only applies to --ijb") }
        guard (1...64).contains(folds) else { throw ValidationError("--folds \(folds) is outside 1...64") }
        guard valFar.isFinite && valFar >= 0 && valFar <= 1 else { throw ValidationError("--val-far \(valFar) is outside [0, 1]") }
        _ = try farList()
        if let f = setThresholdFar {
            guard f.isFinite && f > 0 && f <= 1 else { throw ValidationError("--set-threshold-far \(f) is outside (0, 1]") }
            guard ijb == nil && bin.count <= 1 else { throw ValidationError("--set-threshold-far needs exactly one --bin or --pairs set") }
        }
    }

    func farList() throws -> [Double] {
        let v = far.split(separator: ",").map { Double($0.trimmingSpaces) }
        guard !v.isEmpty, v.allSatisfy({ $0 != nil && $0!.isFinite && $0! > 0 && $0! <= 1 }) else {
            throw ValidationError("--far '\(far)' must be comma-separated numbers in (0, 1]")
        }
        return v.map { $0! }
    }

    /// One evaluated set.
    struct SetResult {
        var name: String
        var kind: String
        var path: String
        var report: Verification.Report?
        var tar: TARReport
        var seconds: Double
    }

    func run() throws {
        let m = try CLISupport.loadModel(model)
        let embedder = try CLISupport.embedder(m, threads: threads)
        let fars = try farList()
        var options = Verification.Options()
        options.folds = folds
        options.interleavedFolds = interleavedFolds
        options.farTarget = valFar
        var results: [SetResult] = []
        var names = Set<String>()
        func unique(_ base: String) -> String {
            var n = base, k = 2
            while !names.insert(n).inserted { n = "\(base)_\(k)"; k += 1 }
            return n
        }
        for path in bin {
            let start = CLISupport.now()
            let set = try VerificationBin.read(path: path)
            let r = try Evaluation.verify(bin: set, source: ModelEmbeddingSource(embedder: embedder), flip: flip, options: options, name: path)
            let name = unique(CLISupport.stem(path))
            results.append(SetResult(name: name, kind: "bin", path: path, report: r, tar: try tarReport(name, r, set.issame, fars),
                                     seconds: CLISupport.now() - start))
        }
        if let pairs {
            let start = CLISupport.now()
            let list = try PairList.load(pairs)
            let table = try landmarks.map { path -> LandmarkTable in
                guard DataFiles.isFile(path) else { throw TransFaceError.notFound("landmark file '\(path)' does not exist") }
                return try LandmarkTable(path: path)
            }
            let r = try Evaluation.verify(pairs: list, root: root ?? DataFiles.folder(of: pairs), landmarks: table,
                                          preferring: landmarkSource.map { [$0] } ?? [], embedder: embedder, flip: flip, options: options)
            let name = unique(CLISupport.stem(pairs))
            results.append(SetResult(name: name, kind: "pairs", path: pairs, report: r, tar: try tarReport(name, r, list.issame, fars),
                                     seconds: CLISupport.now() - start))
        }
        if let ijb {
            let start = CLISupport.now()
            guard DataFiles.isDirectory(ijb) else { throw TransFaceError.notFound("IJB folder '\(ijb)' does not exist") }
            let target = try IJB.dataset(root: ijb, requested: ijbDataset)
            var o = IJB.Options()
            o.flip = flip
            let t = try Evaluation.verifyIJB(root: ijb, target: target, embedder: embedder, options: o, fars: fars, name: target)
            results.append(SetResult(name: unique(target), kind: "ijb", path: ijb, report: nil, tar: t, seconds: CLISupport.now() - start))
        }
        printTables(results, fars)
        if let out { try writeOutputs(results, to: out) }
        if let f = setThresholdFar { try storeThreshold(m, results[0], far: f) }
    }

    /// TAR@FAR of pair cosines (1 − d/2 of the unit flip-summed embeddings); the last ROC point
    /// whose FAR does not exceed each target.
    func tarReport(_ name: String, _ r: Verification.Report, _ issame: [Bool], _ fars: [Double]) throws -> TARReport {
        try TARReport(name: name, scores: r.distances.map { 1 - $0 / 2 }, labels: issame, fars: fars, convention: .atMost)
    }

    func printTables(_ results: [SetResult], _ fars: [Double]) {
        let w = max(14, (results.map(\.name.count).max() ?? 0) + 2)
        let f = CLISupport.fixed
        let verified = results.filter { $0.report != nil }
        if !verified.isEmpty {
            print(CLISupport.pad("set", w) + CLISupport.pad("pairs", 8, right: true) + CLISupport.pad("images", 8, right: true)
                  + "  accuracy %       threshold dist/cos   VAL@FAR=\(TextFormat.number(valFar)) %   time")
            for s in verified {
                let r = s.report!
                print(CLISupport.pad(s.name, w) + CLISupport.pad("\(r.pairs)", 8, right: true) + CLISupport.pad("\(r.images)", 8, right: true)
                      + "  " + CLISupport.pad("\(f(r.accuracyMean * 100, 2)) ± \(f(r.accuracyStd * 100, 2))", 17)
                      + CLISupport.pad("\(f(r.bestThreshold, 3)) / \(f(1 - r.bestThreshold / 2, 4))", 21)
                      + CLISupport.pad("\(f(r.valMean * 100, 2)) ± \(f(r.valStd * 100, 2))", 20) + "\(f(s.seconds, 1)) s")
            }
            print("")
        }
        print(CLISupport.pad("TAR@FAR %", w) + fars.map { CLISupport.pad(TextFormat.number($0), 9, right: true) }.joined() + "    AUC %   genuine/impostor")
        for s in results {
            print(CLISupport.pad(s.name, w) + s.tar.tars.map { CLISupport.pad(f($0 * 100, 2), 9, right: true) }.joined()
                  + CLISupport.pad(f(s.tar.curve.auc * 100, 2), 9, right: true) + "   \(s.tar.curve.positives)/\(s.tar.curve.negatives)")
        }
    }

    func writeOutputs(_ results: [SetResult], to dir: String) throws {
        try DataFiles.makeDirectories(dir)
        var sets: [String] = []
        for s in results {
            try CLISupport.write(s.tar.curveCSV, to: "\(dir)/\(s.name)_roc.csv")
            try CLISupport.write(s.tar.tableCSV, to: "\(dir)/\(s.name)_tar.csv")
            var fields = ["\"name\": \(JSONText.quoted(s.name))", "\"kind\": \(JSONText.quoted(s.kind))", "\"path\": \(JSONText.quoted(s.path))",
                          "\"seconds\": \(TextFormat.jsonNumber(s.seconds))"]
            if let r = s.report {
                let n = TextFormat.jsonNumber
                fields += ["\"pairs\": \(r.pairs)", "\"images\": \(r.images)", "\"folds\": \(r.folds)", "\"interleaved_folds\": \(r.interleavedFolds)",
                           "\"accuracy_mean\": \(n(r.accuracyMean))", "\"accuracy_std\": \(n(r.accuracyStd))",
                           "\"fold_accuracy\": [\(r.foldAccuracy.map(n).joined(separator: ", "))]",
                           "\"best_threshold\": \(n(r.bestThreshold))", "\"best_threshold_cosine\": \(n(1 - r.bestThreshold / 2))",
                           "\"best_accuracy\": \(n(r.bestAccuracy))", "\"val_far\": \(n(r.farTarget))", "\"val_mean\": \(n(r.valMean))",
                           "\"val_std\": \(n(r.valStd))", "\"far_mean\": \(n(r.farMean))", "\"xnorm\": \(n(r.xnorm))"]
            }
            fields.append("\"tar\": \(s.tar.json)")
            sets.append("{" + fields.joined(separator: ", ") + "}")
        }
        try CLISupport.write("{\"model\": \(JSONText.quoted(model)), \"flip\": \(flip), \"sets\": [\n" + sets.joined(separator: ",\n") + "\n]}\n",
                             to: "\(dir)/summary.json")
        try CLISupport.write(ROCPlot.svg(results.map(\.tar), title: "ROC: \(CLISupport.stem(model))"), to: "\(dir)/roc.svg")
        print("\nwrote \(dir)/summary.json, roc.svg and per set _roc.csv, _tar.csv")
    }

    /// Rewrites the model file (atomically, tensors stored as before) with the threshold keys.
    func storeThreshold(_ m: TransFaceModel, _ s: SetResult, far: Double) throws {
        let report = try TARReport(name: s.name, curve: s.tar.curve, fars: [far], convention: .atMost)
        let threshold = report.thresholds[0]
        guard threshold.isFinite else { throw TransFaceError.invalidArgument("no cosine threshold reaches FAR \(far) on \(s.name) (the highest-scoring pair is an impostor)") }
        let keys: [(String, String)] = [("verification_threshold", "\(threshold)"), ("verification_threshold_far", TextFormat.number(far)),
                                        ("verification_threshold_set", s.name), ("verification_threshold_tar", "\(report.tars[0])"),
                                        ("verification_threshold_flip", "\(flip)")]
        var metadata = m.metadata.filter { kv in !keys.contains { $0.0 == kv.key } }
        metadata += keys.map { (key: $0.0, value: $0.1) }
        let updated = try m.replacingMetadata(metadata)
        let stored = try TensorContainer.open(.model, path: model).header.tensors.first?.dtype ?? .f32
        try withExtendedLifetime(m) { try ModelFile.write(updated, to: model, dtype: stored) }
        print("\nstored in \(model): verification_threshold \(CLISupport.fixed(threshold, 4)) (cosine; TAR \(CLISupport.fixed(report.tars[0] * 100, 2)) % at FAR ≤ \(TextFormat.number(far)) on \(s.name))")
    }
}
