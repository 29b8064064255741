import TFCore
import TFData
import TFEval
import TFModel
import TFWiring

/// The run's verification sets, evaluated with a model exported from the trainer (10 folds,
/// flip-summed embeddings, as the official `CallBackVerification`).
struct Validator {
    private let targets: [(name: String, source: Source)]
    private let threads: Int
    private let prefer: [String]

    private enum Source {
        case bin(VerificationBin)
        case pairs(PairList, root: String, landmarks: LandmarkTable?, options: Verification.Options)
    }

    /// Reads every set once (so a bad path fails before training starts).
    init(_ targets: [TrainRunConfig.ValTarget], preferLandmarks: [String], threads: Int) throws {
        self.threads = threads
        self.prefer = preferLandmarks
        self.targets = try targets.map { t in
            switch t.kind {
            case .bin(let path):
                return (t.name, .bin(try VerificationBin.read(path: path)))
            case .pairs(let path, let root, let landmarks, let interleaved):
                var options = Verification.Options()
                options.interleavedFolds = interleaved
                return (t.name, .pairs(try PairList.load(path), root: root ?? DataFiles.folder(of: path),
                                       landmarks: try landmarks.map { try LandmarkTable(path: $0) }, options: options))
            }
        }
    }

    /// Evaluates every set; reports each to `progress`.
    @discardableResult
    func run(_ model: TransFaceModel, step: Int, progress: TrainProgress) throws -> [(name: String, report: Verification.Report, issame: [Bool])] {
        guard !targets.isEmpty else { return [] }
        let embedder = try Embedder(model: model, threads: threads, maxBatch: 16)
        return try targets.map { t in
            let start = monotonicSeconds()
            let report: Verification.Report, issame: [Bool]
            switch t.source {
            case .bin(let bin):
                report = try Evaluation.verify(bin: bin, source: ModelEmbeddingSource(embedder: embedder), name: t.name)
                issame = bin.issame
            case .pairs(let pairs, let root, let landmarks, let options):
                report = try Evaluation.verify(pairs: pairs, root: root, landmarks: landmarks, preferring: prefer,
                                               embedder: embedder, options: options)
                issame = pairs.issame
            }
            progress.evaluation(step: step, name: t.name, report: report, seconds: monotonicSeconds() - start)
            return (t.name, report, issame)
        }
    }

    /// ROC curves (CSV per set, one SVG for all) and TAR@FAR tables of the final evaluation.
    func writeROC(_ results: [(name: String, report: Verification.Report, issame: [Bool])], to folder: String) throws {
        try DataFiles.makeDirectories(folder)
        var reports: [TARReport] = []
        for r in results {
            let tar = try TARReport(name: r.name, scores: r.report.distances.map { 1 - $0 / 2 }, labels: r.issame, convention: .atMost)
            try CLISupport.write(tar.curveCSV, to: "\(folder)/\(r.name)_roc.csv")
            try CLISupport.write(tar.tableCSV, to: "\(folder)/\(r.name)_tar.csv")
            reports.append(tar)
        }
        try CLISupport.write(ROCPlot.svg(reports, title: "ROC", minFAR: 1e-3), to: "\(folder)/roc.svg")
    }
}
