import TFConvert
import TFCore
import TFData
import TFGallery
import TFImage
import TFModel
import TFTrain

#if canImport(Glibc)
import Glibc
#endif

/// Small valid inputs for each harness, made with the library's own writers (the fuzzer's
/// starting corpus; `Tests/Fuzz/run.sh` adds the real files of `../shared`).
public enum FuzzSeeds {
    /// A few-KiB model: 6×6 input in 3×3 patches (4 patches), D 4, depth 1.
    static func tinyConfig(imgSize: Int = 6, patch: Int = 3, dim: Int = 4, heads: Int = 1) -> ViTConfig {
        ViTConfig(imgSize: imgSize, patchSize: patch, embedDim: dim, depth: 1, numHeads: heads, mlpHiddenDim: 2 * dim, embeddingSize: 4)
    }

    static let tinyTrainerJSON = """
        {"arch": "custom", "model": {"img_size": 6, "patch_size": 3, "embed_dim": 4, "depth": 1, "num_heads": 1, "mlp_hidden_dim": 8},
         "embedding_size": 4, "mask_ratio": 0.25, "drop_path_rate": 0.1, "num_classes": 3, "batch_size": 2,
         "optimizer": {"name": "adamw", "lr": 0.002, "weight_decay": 0.05}, "schedule": {"warmup_steps": 1, "max_steps": 20},
         "dpap": {"enabled": true, "top_k": 2, "probability": 0.5}, "ehsm": {"enabled": true, "mode": "official"},
         "margin": {"s": 16, "m2": 0.2}, "threads": 1, "seed": 3}
        """

    static let configs: [String] = [
        tinyTrainerJSON,
        #"{"num_classes": 1000}"#,
        #"{"arch": "vit_s", "num_classes": 10, "optimizer": {"name": "sgd", "momentum": 0.9, "decay": "exempt_norms_biases_tokens"}, "clip_grad_norm": null}"#,
        #"{"arch": "vit_t_dp005_mask0", "num_classes": 93431, "sample_rate": 0.3, "margin": {"m1": 1.0, "m2": 0.0, "m3": 0.4, "interclass_filtering_threshold": 0.1}, "ehsm": {"enabled": true, "mode": "paper", "entropy": "gaussian", "gamma": 2, "top_k": 7}, "non_finite": "skip"}"#,
        #"{"arch": "vit_b", "num_classes": 5, "embedding_size": 256, "dpap": {"enabled": false}, "ehsm": {"enabled": false}, "batch_size": 4, "gradient_accumulation": 2, "optimizer": {"betas": [0.8, 0.99], "eps": 1e-6}}"#,
        #"{"arch": "custom", "model": {"embed_dim": 64, "depth": 2, "num_heads": 8}, "num_classes": 7, "schedule": {"warmup_steps": 10, "max_steps": 11}, "seed": 0}"#,
    ]

    /// Writes the seeds of `harness` into `folder` (which must exist); returns how many.
    @discardableResult
    public static func write(_ harness: FuzzHarness, to folder: String) throws -> Int {
        var files: [(String, [UInt8])] = []
        let scratch = FuzzScratch.shared
        switch harness {
        case .model:
            for (name, config, dtype) in [("tiny_f32", tinyConfig(), StoredDType.f32), ("tiny_f16", tinyConfig(), .f16),
                                          ("tiny_bf16", tinyConfig(), .bf16), ("small18", tinyConfig(imgSize: 18, patch: 9, dim: 8, heads: 2), .f32)] {
                let b = try ModelBuilder(config: config)
                b.initializeWeights(seed: 1)
                try b.setMetadata("source", "fuzz seed")
                let path = scratch.root + "/seed.tfm"
                try b.save(to: path, dtype: dtype)
                files.append((name + ".tfm", try DataFiles.readAll(path)))
            }
        case .checkpoint:
            let trainer = try Trainer(config: try TrainerConfig.parse(tinyTrainerJSON))
            let path = scratch.root + "/seed.tfc"
            try trainer.saveCheckpoint(to: path)
            files.append(("step0.tfc", try DataFiles.readAll(path)))
            var rng = SeededRNG(seed: 9)
            let images = (0..<(2 * 6 * 6 * 3)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            _ = try images.withUnsafeBufferPointer { try trainer.step(images: $0.baseAddress!, labels: [0, 2]) }
            trainer.samplerState = [1, 2, 3]
            try trainer.saveCheckpoint(to: path)
            files.append(("step1.tfc", try DataFiles.readAll(path)))
        case .image:
            var rng = SeededRNG(seed: 4)
            let rgb = (0..<(12 * 10 * 3)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            try rgb.withUnsafeBufferPointer { p in
                files.append(("small.png", try ImageEncoder.png(p.baseAddress!, width: 12, height: 10)))
                files.append(("grey.png", try ImageEncoder.png(p.baseAddress!, width: 12, height: 10, channels: 1)))
                files.append(("rgba.png", try ImageEncoder.png(p.baseAddress!, width: 6, height: 10, channels: 4)))
                files.append(("small.jpg", try ImageEncoder.jpeg(p.baseAddress!, width: 12, height: 10)))
                files.append(("grey.jpg", try ImageEncoder.jpeg(p.baseAddress!, width: 12, height: 10, channels: 1)))
                files.append(("cmyk.jpg", try ImageEncoder.jpeg(p.baseAddress!, width: 9, height: 10, channels: 4)))
                files.append(("prog.jpg", try ImageEncoder.jpeg(p.baseAddress!, width: 12, height: 10, subsampling: .s444, progressive: true)))
                files.append(("small.ppm", try ImageEncoder.pnm(p.baseAddress!, width: 12, height: 10)))
                files.append(("small.pgm", try ImageEncoder.pnm(p.baseAddress!, width: 12, height: 10, channels: 1)))
            }
            files.append(("ascii.pgm", Array("P2\n# comment\n3 2\n255\n0 1 2\n3 4 255\n".utf8)))
            files.append(("ascii.ppm", Array("P3\n2 1\n65535\n0 1 2 3 4 65535\n".utf8)))
            files.append(("wide.pgm", Array("P5\n2 2\n65535\n".utf8) + [0, 1, 2, 3, 255, 255, 0, 9]))
        case .recordio:
            let payloads: [[UInt8]] = [[1, 2, 3], Array("P5\n2 1\n255\n".utf8) + [7, 9], [], RecordIO.magicBytes + [5, 6, 7, 8] + RecordIO.magicBytes]
            // flat layout, with and without the index and property files
            var rec: [UInt8] = [], idx = ""
            for (k, p) in payloads.enumerated() {
                idx += "\(k)\t\(rec.count)\n"
                rec += try RecordIO.encode(IRHeader(label: Float(k % 2), id: UInt64(k)).pack(image: p))
            }
            files.append(("flat", recordIOInput(idx: Array(idx.utf8), property: Array("2,112,112\n4\n".utf8), rec: rec)))
            files.append(("flat_scan", recordIOInput(idx: nil, property: nil, rec: rec)))
            // legacy layout: header record 0, images 1...3, identity records 4, 5
            var lrec: [UInt8] = [], lidx = ""
            let records: [(Int, [UInt8])] = [
                (0, IRHeader(labels: [4, 6], id: 0).pack(image: [])),
                (1, IRHeader(label: 0, id: 1).pack(image: [1])), (2, IRHeader(label: 0, id: 2).pack(image: [2, 2])),
                (3, IRHeader(labels: [1, 7], id: 3).pack(image: payloads[3])),
                (4, IRHeader(labels: [1, 3], id: 4).pack(image: [])), (5, IRHeader(labels: [3, 4], id: 5).pack(image: [])),
            ]
            for (k, p) in records {
                lidx += "\(k)\t\(lrec.count)\n"
                lrec += try RecordIO.encode(p)
            }
            files.append(("legacy", recordIOInput(idx: Array(lidx.utf8), property: Array("2,112,112\n".utf8), rec: lrec)))
        case .pickle:
            let bin = try VerificationBin(images: [[1, 2, 3], [], [0xFF], Array(repeating: 7, count: 300)], issame: [true, false])
            for proto in 2...5 { files.append(("bytes\(proto).bin", try bin.encoded(protocol: proto))) }
        case .text:
            files.append(("lfw_view1.txt", Array("2\nA_B\t1\t2\nC\t3\t4\nA_B\t1\tC\t3\nD\t2\tE\t1\n".utf8)))
            files.append(("lfw_view2.txt", Array("2 1\nA 1 2\nA 1 B 2\nC 0001 3\nC 1 D 4\n".utf8)))
            files.append(("pairs.tsv", Array("pair_index\tpath1\tpath2\tsame\n0\ta/1.jpg\tb/2.jpg\t1\n1\tc.png\td.png\tfalse\n".utf8)))
            files.append(("landmarks.tsv", Array("path\tsource\tleye_x\tleye_y\treye_x\treye_y\tnose_x\tnose_y\tlmouth_x\tlmouth_y\trmouth_x\trmouth_y\na.jpg\tmtcnn\t1\t2\t3\t4\t5\t6\t7\t8\t9\t10\na.jpg\tmanual\t1.5\t2\t3\t4\t5\t6\t7\t8\t9\t1e1\n".utf8)))
            files.append(("landmarks.txt", Array("a/b.jpg 1 2 3 4 5 6 7 8 9 10\nc.jpg 0 0 0 0 0 0 0 0 0 0\n".utf8)))
            files.append(("train.tsv", Array("path\tlabel\tidentity\na/1.jpg\t0\tA\nb/2.jpg\t1\tB\n# comment\n".utf8)))
            files.append(("im2rec.lst", Array("0\t3.000000\ta/1.jpg\n1\t0\tb c/2.jpg\n".utf8)))
            files.append(("property", Array("10572,112,112\n490623\n".utf8)))
            files.append(("train.idx", Array("0\t0\n1\t32\n7\t96\n".utf8)))
        case .config:
            for (i, c) in configs.enumerated() { files.append(("config\(i).json", Array(c.utf8))) }
        case .torch:
            // legacy files: a contiguous state_dict, and views (offset, transposed) on shared float64 storage
            files.append(("legacy_plain.pt", TorchLegacyWriter.encode(
                tensors: [.init(name: "conv1.weight", storage: "1", shape: [2, 1, 2, 2]), .init(name: "conv1.bias", storage: "2", shape: [2])],
                storages: [.init(key: "1", values: (0..<8).map(Double.init)), .init(key: "2", values: [0.5, -1])])))
            files.append(("legacy_views.pt", TorchLegacyWriter.encode(
                tensors: [.init(name: "a", storage: "9", offset: 1, shape: [2, 3], stride: [1, 2]), .init(name: "b", storage: "9", offset: 6, shape: [1])],
                storages: [.init(key: "9", values: (0..<7).map { Double($0) / 3 }, float64: true)])))
            // a training checkpoint as the official train.py saves it: nested dicts, optimizer state, scheduler
            let t = { (key: String, shape: [Int]) in TorchLegacyWriter.Node.tensor(.init(name: key, storage: key, shape: shape)) }
            files.append(("legacy_checkpoint.pt", TorchLegacyWriter.encode(.dict([
                (.string("epoch"), .int(1)), (.string("global_step"), .int(2)),
                (.string("state_dict_backbone"), .orderedDict([("pos_embed", t("p", [1, 2]))])),
                (.string("state_dict_softmax_fc"), .orderedDict([("weight", t("w", [3, 2]))])),
                (.string("state_optimizer"), .dict([
                    (.string("state"), .dict([(.int(0), .dict([(.string("step"), t("s", [])), (.string("exp_avg"), t("m", [1, 2]))]))])),
                    (.string("param_groups"), .list([.dict([(.string("betas"), .tuple([.float(0.9), .float(0.999)])),
                                                            (.string("fused"), .none), (.string("params"), .list([.int(0)]))])]))])),
                (.string("state_lr_scheduler"), .dict([(.string("last_epoch"), .int(1)), (.string("_is_initial"), .bool(false))])),
            ]), storages: [.init(key: "p", values: [1, 2]), .init(key: "w", values: (0..<6).map(Double.init)),
                           .init(key: "s", values: [2]), .init(key: "m", values: [0.5, -0.5])])))
        case .gallery:
            let fp = try GalleryFingerprint(architecture: "fuzz D8", embeddingSize: 8, weightsHash: 7)
            let path = scratch.root + "/seed.tfg"
            for storage in GalleryStorage.allCases {
                unlink(path)
                let g = try Gallery.open(path: path, fingerprint: fp, options: GalleryOptions(storage: storage))
                files.append(("empty_\(storage).tfg", try DataFiles.readAll(path)))
                try g.enrol(label: "ann", embeddings: (0..<16).map { Float($0) - 7.5 }, metadata: ["k": "v", "dept": "x"])
                try g.enrol(label: "bo", embeddings: (0..<8).map { Float($0 * $0) + 1 })
                try g.enrol(label: "cy", embeddings: (0..<8).map { Float(8 - $0) })
                try g.remove(ids: [1])
                try g.remove(label: "cy")
                files.append(("ops_\(storage).tfg", try DataFiles.readAll(path)))
                try g.compact()
                files.append(("compacted_\(storage).tfg", try DataFiles.readAll(path)))
                g.close()
                // the log followed by its snapshot (see `FuzzHarness.gallery`), and one more record after it
                unlink(path + ".snap")
                let s = try Gallery.open(path: path, fingerprint: fp, options: GalleryOptions(snapshotBytes: 0))
                s.close()
                files.append(("snapshot_\(storage).tfg", try DataFiles.readAll(path) + DataFiles.readAll(path + ".snap")))
                let more = try Gallery.open(path: path, fingerprint: fp, options: GalleryOptions(snapshotBytes: .max))
                try more.enrol(label: "dee", embeddings: (0..<8).map { Float($0) - 2 })
                more.close()
                files.append(("after_snapshot_\(storage).tfg", try DataFiles.readAll(path) + DataFiles.readAll(path + ".snap")))
                unlink(path + ".snap")
            }
            unlink(path)
        case .hnsw:
            let path = scratch.root + "/seed.hnsw"
            var rng = SeededRNG(seed: 5)
            let rows = (0..<20).flatMap { _ -> [Float] in
                let v = (0..<8).map { _ in Float(rng.normal()) }
                let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
                return v.map { $0 / norm }
            }
            for (name, count, deleted) in [("empty", 0, [UInt64]()), ("one", 1, []), ("twenty", 20, []), ("deleted", 20, [3, 7, 19])] {
                try HNSWGraphFile.make(path: path, dim: 8, m: 4, rows: Array(rows.prefix(8 * count)), deleted: deleted)
                files.append((name + ".hnsw", try DataFiles.readAll(path)))
            }
            unlink(path)
        }
        for (name, bytes) in files {
            let w = try AtomicFileWriter(path: folder + "/seed_" + name)
            try w.write(bytes)
            try w.commit()
        }
        return files.count
    }

    /// The recordio harness's framing of a `.idx`, a `property` and a `.rec` (nil: file absent).
    public static func recordIOInput(idx: [UInt8]?, property: [UInt8]?, rec: [UInt8]) -> [UInt8] {
        func part(_ b: [UInt8]?) -> [UInt8] {
            guard let b else { return [0xFF, 0xFF] }
            let n = min(b.count, 0xFFFE)
            return [UInt8(n & 0xFF), UInt8(n >> 8)] + b.prefix(n)
        }
        return part(idx) + part(property) + rec
    }
}

extension RecordIO {
    static var magicBytes: [UInt8] { withUnsafeBytes(of: magic.littleEndian) { Array($0) } }
}
