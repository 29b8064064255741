import CTransFace
import TFCore
import TFData
import TFEval
import TFModel
import TFWiring

/// Evaluation: k-fold verification, ROC and TAR@FAR, evaluation of a model on .bin sets and
/// pairs lists.

@c public func transface_verify_default_params() -> transface_verify_params {
    var p = transface_verify_params()
    p.struct_size = UInt32(MemoryLayout<transface_verify_params>.size)
    p.folds = 10
    p.interleaved = 0
    p.flip = 1
    p.far_target = 1e-3
    p.pair_naming = nil
    p.landmark_source = nil
    return p
}

@c public func transface_verify_params_init(_ params: UnsafeMutablePointer<transface_verify_params>?, _ size: UInt32) -> transface_status {
    guarded("transface_verify_params_init") { try initStruct(params, size: size, defaults: transface_verify_default_params()) }
}

private func verifyParams(_ params: UnsafePointer<transface_verify_params>?) throws -> transface_verify_params {
    let p = try readStruct(params, defaults: transface_verify_default_params())
    try require(p.folds >= 1 && p.folds <= Int32(TRANSFACE_MAX_FOLDS), "folds \(p.folds) is outside 1...\(TRANSFACE_MAX_FOLDS)")
    try require(p.far_target.isFinite && p.far_target >= 0 && p.far_target <= 1, "far_target \(p.far_target) is outside [0, 1]")
    return p
}

private func options(_ p: transface_verify_params) -> Verification.Options {
    var o = Verification.Options()
    o.folds = Int(p.folds)
    o.interleavedFolds = p.interleaved != 0
    o.farTarget = p.far_target
    return o
}

private func flags(_ issame: UnsafePointer<UInt8>?, _ pairs: Int) throws -> [Bool] {
    let issame = try required(issame, "issame")
    return (0..<pairs).map { issame[$0] != 0 }
}

private func fill(_ out: UnsafeMutablePointer<transface_verify_result>?, _ r: Verification.Report) throws {
    try checkStruct(out, "out")
    var v = transface_verify_result()
    v.folds = Int32(r.folds)
    v.pairs = r.pairs
    v.accuracy_mean = r.accuracyMean
    v.accuracy_std = r.accuracyStd
    withUnsafeMutableBytes(of: &v.fold_accuracy) { raw in
        let d = raw.bindMemory(to: Double.self)
        for i in 0..<d.count { d[i] = i < r.foldAccuracy.count ? r.foldAccuracy[i] : 0 }
    }
    withUnsafeMutableBytes(of: &v.fold_threshold) { raw in
        let d = raw.bindMemory(to: Double.self)
        for i in 0..<d.count { d[i] = i < r.foldThreshold.count ? r.foldThreshold[i] : 0 }
    }
    v.best_threshold = r.bestThreshold
    v.best_accuracy = r.bestAccuracy
    v.far_target = r.farTarget
    v.val_mean = r.valMean
    v.val_std = r.valStd
    v.far_mean = r.farMean
    v.xnorm = r.xnorm
    v.images = r.images
    try writeStruct(v, to: out, "out")
}

@c public func transface_pair_distances(_ emb1: UnsafePointer<Float>?, _ emb2: UnsafePointer<Float>?, _ pairs: Int, _ dim: Int,
                                        _ out: UnsafeMutablePointer<Double>?) -> transface_status {
    guarded("transface_pair_distances") {
        let emb1 = try required(emb1, "emb1"), out = try required(out, "out_distances")
        try require(pairs >= 1 && dim >= 1, "pairs and dim must be at least 1")
        let rows = try checkedProduct([pairs, emb2 == nil ? 2 : 1, dim], what: "embeddings")
        let d = try Verification.distances(UnsafeBufferPointer(start: emb1, count: rows),
                                           emb2.map { UnsafeBufferPointer(start: $0, count: pairs * dim) },
                                           pairs: pairs, dim: dim)
        d.withUnsafeBufferPointer { out.update(from: $0.baseAddress!, count: pairs) }
    }
}

@c public func transface_verify_embeddings(_ emb1: UnsafePointer<Float>?, _ emb2: UnsafePointer<Float>?, _ issame: UnsafePointer<UInt8>?,
                                           _ pairs: Int, _ dim: Int, _ params: UnsafePointer<transface_verify_params>?,
                                           _ out: UnsafeMutablePointer<transface_verify_result>?) -> transface_status {
    guarded("transface_verify_embeddings") {
        let p = try verifyParams(params)
        let emb1 = try required(emb1, "emb1")
        try require(pairs >= 1 && dim >= 1, "pairs and dim must be at least 1")
        let rows = try checkedProduct([pairs, emb2 == nil ? 2 : 1, dim], what: "embeddings")
        let same = try flags(issame, pairs)
        let d = try Verification.distances(UnsafeBufferPointer(start: emb1, count: rows),
                                           emb2.map { UnsafeBufferPointer(start: $0, count: pairs * dim) },
                                           pairs: pairs, dim: dim)
        try fill(out, try Verification.evaluate(distances: d, issame: same, options: options(p)))
    }
}

@c public func transface_verify_distances(_ distances: UnsafePointer<Double>?, _ issame: UnsafePointer<UInt8>?, _ pairs: Int,
                                          _ params: UnsafePointer<transface_verify_params>?,
                                          _ out: UnsafeMutablePointer<transface_verify_result>?) -> transface_status {
    guarded("transface_verify_distances") {
        let p = try verifyParams(params)
        let distances = try required(distances, "distances")
        try require(pairs >= 1, "pairs must be at least 1")
        let d = Array(UnsafeBufferPointer(start: distances, count: pairs))
        try fill(out, try Verification.evaluate(distances: d, issame: try flags(issame, pairs), options: options(p)))
    }
}

@c public func transface_verify_roc(_ distances: UnsafePointer<Double>?, _ issame: UnsafePointer<UInt8>?, _ pairs: Int,
                                   _ params: UnsafePointer<transface_verify_params>?, _ outThresholds: UnsafeMutablePointer<Double>?,
                                   _ outTPR: UnsafeMutablePointer<Double>?, _ outFPR: UnsafeMutablePointer<Double>?,
                                   _ capacity: Int) -> transface_status {
    guarded("transface_verify_roc") {
        let p = try verifyParams(params)
        let distances = try required(distances, "distances")
        let th = try required(outThresholds, "out_thresholds"), tpr = try required(outTPR, "out_tpr"), fpr = try required(outFPR, "out_fpr")
        try require(pairs >= 1, "pairs must be at least 1")
        try require(capacity >= Int(TRANSFACE_VERIFY_THRESHOLDS), "capacity \(capacity) is smaller than \(TRANSFACE_VERIFY_THRESHOLDS)")
        let d = Array(UnsafeBufferPointer(start: distances, count: pairs))
        let r = try Verification.evaluate(distances: d, issame: try flags(issame, pairs), options: options(p))
        for i in 0..<r.thresholds.count { th[i] = r.thresholds[i]; tpr[i] = r.tpr[i]; fpr[i] = r.fpr[i] }
    }
}

private func scoreData(_ scores: UnsafePointer<Double>?, _ labels: UnsafePointer<UInt8>?, _ n: Int) throws -> ([Double], [Bool]) {
    let scores = try required(scores, "scores"), labels = try required(labels, "labels")
    try require(n >= 1, "n must be at least 1")
    return (Array(UnsafeBufferPointer(start: scores, count: n)), (0..<n).map { labels[$0] != 0 })
}

@c public func transface_roc_curve(_ scores: UnsafePointer<Double>?, _ labels: UnsafePointer<UInt8>?, _ n: Int,
                                   _ outFPR: UnsafeMutablePointer<Double>?, _ outTPR: UnsafeMutablePointer<Double>?,
                                   _ outThresholds: UnsafeMutablePointer<Double>?, _ capacity: Int,
                                   _ outPoints: UnsafeMutablePointer<Int>?) -> transface_status {
    guarded("transface_roc_curve") {
        let (s, y) = try scoreData(scores, labels, n)
        let outPoints = try required(outPoints, "out_points")
        let c = try ROCCurve(scores: s, labels: y)
        outPoints.pointee = c.count
        if capacity == 0 && outFPR == nil && outTPR == nil && outThresholds == nil { return }
        let fpr = try required(outFPR, "out_fpr"), tpr = try required(outTPR, "out_tpr"), th = try required(outThresholds, "out_thresholds")
        try require(capacity >= c.count, "capacity \(capacity) is smaller than the curve's \(c.count) points")
        for i in 0..<c.count { fpr[i] = c.fpr[i]; tpr[i] = c.tpr[i]; th[i] = c.thresholds[i] }
    }
}

@c public func transface_tar_at_far(_ scores: UnsafePointer<Double>?, _ labels: UnsafePointer<UInt8>?, _ n: Int,
                                    _ fars: UnsafePointer<Double>?, _ nfars: Int, _ outTAR: UnsafeMutablePointer<Double>?,
                                    _ outThresholds: UnsafeMutablePointer<Double>?) -> transface_status {
    guarded("transface_tar_at_far") {
        let (s, y) = try scoreData(scores, labels, n)
        let fars = try required(fars, "fars"), tar = try required(outTAR, "out_tar")
        try require(nfars >= 1, "nfars must be at least 1")
        let r = try TARReport(scores: s, labels: y, fars: Array(UnsafeBufferPointer(start: fars, count: nfars)))
        for i in 0..<nfars { tar[i] = r.tars[i]; outThresholds?[i] = r.thresholds[i] }
    }
}

@c public func transface_evaluate_bin(_ context: OpaquePointer?, _ binPath: UnsafePointer<CChar>?,
                                      _ params: UnsafePointer<transface_verify_params>?,
                                      _ out: UnsafeMutablePointer<transface_verify_result>?) -> transface_status {
    guarded("transface_evaluate_bin") {
        let embedder = try Handle.get(context, Embedder.self, "context")
        let p = try verifyParams(params)
        let path = try string(binPath, "bin_path")
        _ = try required(out, "out")
        let r = try Evaluation.verify(binPath: path, source: ModelEmbeddingSource(embedder: embedder), flip: p.flip != 0, options: options(p))
        try fill(out, r)
    }
}

@c public func transface_evaluate_pairs(_ context: OpaquePointer?, _ pairsPath: UnsafePointer<CChar>?, _ imageRoot: UnsafePointer<CChar>?,
                                        _ landmarksPath: UnsafePointer<CChar>?, _ params: UnsafePointer<transface_verify_params>?,
                                        _ out: UnsafeMutablePointer<transface_verify_result>?) -> transface_status {
    guarded("transface_evaluate_pairs") {
        let embedder = try Handle.get(context, Embedder.self, "context")
        let p = try verifyParams(params)
        let pairsPath = try string(pairsPath, "pairs_path"), root = try string(imageRoot, "image_root")
        _ = try required(out, "out")
        let naming = p.pair_naming.map { PairNaming(String(cString: $0)) } ?? .lfw
        let pairs = try PairList.load(pairsPath, naming: naming)
        let table = try landmarksPath.map { try LandmarkTable(path: String(cString: $0)) }
        let preferring = p.landmark_source.map { [String(cString: $0)] } ?? []
        let r = try Evaluation.verify(pairs: pairs, root: root, landmarks: table, preferring: preferring,
                                      source: ModelEmbeddingSource(embedder: embedder), flip: p.flip != 0, options: options(p))
        try fill(out, r)
    }
}

// IJB-B / IJB-C 1:1 (see IJB and Evaluation.verifyIJB; the image folder may be overridden here)

@c public func transface_ijb_default_params() -> transface_ijb_params {
    var p = transface_ijb_params()
    p.struct_size = UInt32(MemoryLayout<transface_ijb_params>.size)
    p.flip = 1
    p.use_norm_score = 0
    p.use_detector_score = 0
    p.image_dir = nil
    return p
}

@c public func transface_ijb_params_init(_ params: UnsafeMutablePointer<transface_ijb_params>?, _ size: UInt32) -> transface_status {
    guarded("transface_ijb_params_init") { try initStruct(params, size: size, defaults: transface_ijb_default_params()) }
}

/// "IJBB" / "IJBC" from the argument, or from the meta files `root` holds.
private func ijbDataset(_ root: String, _ dataset: UnsafePointer<CChar>?) throws -> String {
    try IJB.dataset(root: root, requested: dataset.map { String(cString: $0) })
}

@c public func transface_evaluate_ijb(_ context: OpaquePointer?, _ ijbDir: UnsafePointer<CChar>?, _ dataset: UnsafePointer<CChar>?,
                                      _ params: UnsafePointer<transface_ijb_params>?, _ fars: UnsafePointer<Double>?, _ nfars: Int,
                                      _ outTAR: UnsafeMutablePointer<Double>?, _ outThresholds: UnsafeMutablePointer<Double>?,
                                      _ capacity: Int, _ out: UnsafeMutablePointer<transface_ijb_summary>?) -> transface_status {
    guarded("transface_evaluate_ijb") {
        let embedder = try Handle.get(context, Embedder.self, "context")
        let p = try readStruct(params, defaults: transface_ijb_default_params())
        let root = try string(ijbDir, "ijb_dir")
        let fars = try required(fars, "fars"), tar = try required(outTAR, "out_tar")
        try require(nfars >= 1, "nfars must be at least 1")
        try require(capacity >= nfars, "capacity \(capacity) is smaller than nfars \(nfars)")
        let targets = Array(UnsafeBufferPointer(start: fars, count: nfars))
        try require(targets.allSatisfy { $0.isFinite && $0 >= 0 && $0 <= 1 }, "target FARs must be in [0, 1]")
        if let out { try checkStruct(out, "out_summary") }
        guard DataFiles.isDirectory(root) else { throw TransFaceError.io("IJB folder '\(root)' does not exist or is not a folder") }
        let imageRoot = p.image_dir.map { String(cString: $0) } ?? root + "/loose_crop"
        guard DataFiles.isDirectory(imageRoot) else { throw TransFaceError.io("IJB image folder '\(imageRoot)' does not exist or is not a folder") }
        let target = try ijbDataset(root, dataset)
        var o = IJB.Options()
        o.flip = p.flip != 0
        o.normScore = p.use_norm_score != 0
        o.detectorScore = p.use_detector_score != 0

        let meta = try IJB.loadMeta(root: root, target: target)
        try require(!meta.imageNames.isEmpty, "\(root)/meta/\(target.lowercased())_face_tid_mid.txt lists no image")
        try require(!meta.pairLabel.isEmpty, "\(root)/meta/\(target.lowercased())_template_pair_label.txt lists no pair")
        let r = try Evaluation.verifyIJB(meta: meta, imageRoot: imageRoot, source: ModelEmbeddingSource(embedder: embedder),
                                         options: o, fars: targets)
        for i in 0..<nfars { tar[i] = r.tars[i]; outThresholds?[i] = r.thresholds[i] }
        if let out {
            var s = transface_ijb_summary()
            withUnsafeMutableBytes(of: &s.dataset) { raw in
                for (i, c) in target.utf8.enumerated() where i < raw.count - 1 { raw[i] = c }
            }
            s.images = meta.imageNames.count
            s.templates = Set(meta.templates).count
            s.pairs = meta.pairLabel.count
            s.genuine_pairs = r.curve.positives
            s.impostor_pairs = r.curve.negatives
            s.roc_points = r.curve.count
            s.auc = r.curve.auc
            try writeStruct(s, to: out, "out_summary")
        }
    }
}
