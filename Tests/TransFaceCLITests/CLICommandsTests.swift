import Foundation
import TFCore
import TFData
import TFImage
import TFModel
import TFTestSupport
import TFTrain
import XCTest

/// The subcommands of `transface` (all but train) on small real data: the tiny reference model,
/// a few LFW photos with their landmarks, ORL faces. Every output file is parsed back; every
/// refusal is exactly one stderr line and a non-zero status.
final class CLICommandsTests: XCTestCase {
    static var folder = ""
    static var modelPath: String { folder + "/tiny.tfm" }
    static let lfw = Reference.shared + "/data/lfw"
    static let orl = Reference.shared + "/data/orl_faces"
    static var landmarks: String { lfw + "/landmarks/included_5pt.tsv" }
    static func photo(_ name: String, _ n: Int) -> String {
        lfw + "/images/\(name)/\(name)_" + String(String(n + 10000).dropFirst()) + ".jpg"
    }

    override class func setUp() {
        super.setUp()
        folder = (try? Reference.temporaryFolder()) ?? "/tmp"
        if let model = try? Reference.tinyModel() { try? ModelFile.write(model, to: modelPath) }
    }

    override class func tearDown() {
        Reference.removeTree(folder)
        super.tearDown()
    }

    var dir: String { Self.folder }

    /// Runs the CLI and asserts success.
    @discardableResult
    func ok(_ args: [String], file: StaticString = #filePath, line: UInt = #line) throws -> CLI.Result {
        let r = try CLI.run(args)
        XCTAssertEqual(r.status, 0, "transface \(args.joined(separator: " ")): \(r.stderr)", file: file, line: line)
        return r
    }

    func json(_ path: String) throws -> Any { try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) }

    func testInspectModelTextAndJSON() throws {
        let text = try ok(["inspect", Self.modelPath]).stdout
        XCTAssertTrue(text.contains("kind: model, format version 1"), text)
        XCTAssertTrue(text.contains("embed_dim 64  depth 2  heads 4"), text)
        XCTAssertTrue(text.contains("model parameters: 2064704"), text)
        let out = try ok(["inspect", Self.modelPath, "--json", "--tensors"]).stdout
        let d = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        XCTAssertEqual(d["kind"] as? String, "model")
        XCTAssertEqual(d["parameter_count"] as? Int, 2_064_704)
        XCTAssertEqual((d["config"] as? [String: Any])?["embedding_size"] as? Int, 32)
        let tensors = try XCTUnwrap(d["tensors"] as? [[String: Any]])
        XCTAssertEqual(tensors.count, 40)
        XCTAssertEqual(tensors.first?["name"] as? String, "pos_embed")
    }

    /// `bench` runs briefly and writes well-formed results (nothing here checks a speed).
    func testBenchEmbedTrainAndLoadWriteJSON() throws {
        let embedJSON = dir + "/bench_embed.json"
        let table = try ok(["bench", "embed", Self.modelPath, "--batch", "1,2", "--threads", "1,2", "--seconds", "0.05",
                            "--json", embedJSON]).stdout
        XCTAssertTrue(table.contains("attention %"), table)
        let runs = try XCTUnwrap(try json(embedJSON) as? [[String: Any]])
        XCTAssertEqual(runs.map { $0["threads"] as? Int }, [1, 1, 2, 2])
        XCTAssertEqual(runs.map { $0["batch"] as? Int }, [1, 2, 1, 2])
        for r in runs {
            XCTAssertGreaterThan(r["images_per_s"] as? Double ?? 0, 0)
            let classes = try XCTUnwrap(r["op_classes"] as? [String: [String: Any]])
            XCTAssertEqual(Set(classes.keys), ["gemm", "attention", "norms", "elementwise", "head"])
            let shares = classes.values.compactMap { $0["share"] as? Double }
            XCTAssertEqual(shares.reduce(0, +), 1, accuracy: 0.01)
            XCTAssertNotNil(r["openblas_core"] as? String)
        }
        XCTAssertEqual(runs[0]["parallel_efficiency"] as? Double, 1)  // 1 thread: 1 by definition
        XCTAssertNotNil(runs[3]["parallel_efficiency"] as? Double)

        let trainJSON = dir + "/bench_train.json"
        try ok(["bench", "train", "vit_t", "--batch", "2", "--classes", "4", "--steps", "1", "--threads", "2", "--json", trainJSON])
        let train = try XCTUnwrap(try json(trainJSON) as? [[String: Any]])
        XCTAssertEqual(train.map { $0["dpap"] as? Bool }, [true, false])
        let phases = try XCTUnwrap(train[0]["seconds_per_phase"] as? [String: Double])
        XCTAssertEqual(Set(phases.keys), ["first pass", "dpap", "forward", "backward", "optimizer"])
        XCTAssertNotNil(train[0]["dpap_share_of_step"] as? Double)

        let loadJSON = dir + "/bench_load.json"
        try ok(["bench", "load", Self.modelPath, "--repeats", "2", "--json", loadJSON])
        let load = try XCTUnwrap((try json(loadJSON) as? [[String: Any]])?.first)
        XCTAssertGreaterThan(load["seconds"] as? Double ?? 0, 0)

        let refused = try CLI.run(["bench", "embed", Self.modelPath, "--batch", "0"])
        XCTAssertEqual(refused.status, 1)
        XCTAssertEqual(refused.errorLines.count, 1, refused.stderr)
    }

    func testInspectCheckpoint() throws {
        let json = #"{"arch": "custom", "model": {"embed_dim": 32, "depth": 1, "num_heads": 2, "mlp_hidden_dim": 64}, "embedding_size": 16, "num_classes": 5, "batch_size": 4}"#
        try Trainer(config: try TrainerConfig.parse(json)).saveCheckpoint(to: dir + "/run.tfc")
        let text = try ok(["inspect", dir + "/run.tfc"]).stdout
        XCTAssertTrue(text.contains("kind: checkpoint"), text)
        XCTAssertTrue(text.contains("training: step 0"), text)
        let out = try ok(["inspect", dir + "/run.tfc", "--json"]).stdout
        let d = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        let training = try XCTUnwrap(d["training"] as? [String: Any])
        XCTAssertEqual(training["step"] as? Int, 0)
        XCTAssertEqual((training["config"] as? [String: Any])?["num_classes"] as? Int, 5)
        XCTAssertEqual(d["parameter_count"] as? Int, ParameterLayout(config: try TrainerConfig.parse(json).model).totalCount)
        XCTAssertGreaterThan(d["total_values"] as! Int, d["parameter_count"] as! Int)  // + class centres and moments
    }

    func testEmbedToNpyJsonAndStdout() throws {
        let images = [Self.photo("AJ_Lamas", 1), Self.photo("Abdullah_Gul", 13), Self.photo("Abdullah_Gul", 14)]
        let common = ["embed", Self.modelPath] + images + ["--landmarks", Self.landmarks, "--root", Self.lfw]
        try ok(common + ["--flip", "--threads", "2", "-o", dir + "/emb.npy"])
        let npy = try NPYArray(path: dir + "/emb.npy")
        XCTAssertEqual(npy.shape, [3, 32])
        for r in 0..<3 {
            let norm = (0..<32).reduce(0.0) { $0 + Double(npy.values[r * 32 + $1] * npy.values[r * 32 + $1]) }
            XCTAssertEqual(norm, 1, accuracy: 1e-5)
        }
        XCTAssertEqual(try String(contentsOfFile: dir + "/emb.names.txt", encoding: .utf8), images.joined(separator: "\n") + "\n")
        try ok(common + ["-o", dir + "/emb.json"])
        let list = try XCTUnwrap(try json(dir + "/emb.json") as? [[String: Any]])
        XCTAssertEqual(list.map { $0["image"] as? String }, images)
        XCTAssertEqual((list[0]["embedding"] as? [Double])?.count, 32)
        let stdout = try ok(common).stdout
        let printed = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [[String: Any]])
        // without --flip the same vectors as the JSON file
        XCTAssertEqual(printed[1]["embedding"] as? [Double], list[1]["embedding"] as? [Double])
        // an aligned 112x112 face needs no landmarks
        try ok(["align", images[0], "--landmarks-file", Self.landmarks, "--root", Self.lfw, "-o", dir + "/face.png"])
        let aligned = try ok(["embed", Self.modelPath, dir + "/face.png"]).stdout
        XCTAssertTrue(aligned.contains("\"embedding\""), aligned)
    }

    func testAlignInlineLandmarksAndSize() throws {
        let photo = Self.photo("AJ_Lamas", 1)
        let r = try ok(["align", photo, "--landmarks", "104,112,148,117,129,134,95,152,148,158", "-o", dir + "/a.png"])
        XCTAssertTrue(r.stdout.contains("matrix"), r.stdout)
        let img = try ImageDecoder.decodeFile(dir + "/a.png")
        XCTAssertEqual([img.width, img.height], [112, 112])
        try ok(["align", photo, "--landmarks-file", Self.landmarks, "--root", Self.lfw, "--size", "224", "-o", dir + "/a.jpg"])
        let big = try ImageDecoder.decodeFile(dir + "/a.jpg")
        XCTAssertEqual([big.width, big.height], [224, 224])
    }

    func testCompareWithAndWithoutThreshold() throws {
        let a = Self.photo("Abdullah_Gul", 13), b = Self.photo("Abdullah_Gul", 14)
        let base = ["compare", Self.modelPath, a, b, "--landmarks", Self.landmarks, "--root", Self.lfw]
        let none = try ok(base).stdout
        XCTAssertTrue(none.hasPrefix("cosine "), none)
        XCTAssertTrue(none.contains("no threshold is set"), none)
        let cosine = try XCTUnwrap(Double(none.split(separator: "\n")[0].dropFirst(7)))
        XCTAssertTrue(try ok(base + ["--threshold", "\(cosine - 0.01)"]).stdout.contains("same person"))
        XCTAssertTrue(try ok(base + ["--threshold", "\(cosine + 0.01)"]).stdout.contains("different people"))
    }

    func testPatchesPngSvgAndText() throws {
        let base = ["patches", Self.modelPath, Self.photo("AJ_Lamas", 1), "--landmarks", Self.landmarks, "--root", Self.lfw]
        let text = try ok(base + ["--top", "3"]).stdout
        XCTAssertTrue(text.contains("top 3 of 144 patches"), text)
        XCTAssertEqual(text.split(separator: "\n").count, 1 + 3 + 12 + 1, text)
        try ok(base + ["-o", dir + "/p.png"])
        let png = try ImageDecoder.decodeFile(dir + "/p.png")
        XCTAssertEqual([png.width, png.height], [448, 448])
        try ok(base + ["-o", dir + "/p.svg"])
        let svg = try String(contentsOfFile: dir + "/p.svg", encoding: .utf8)
        XCTAssertTrue(svg.hasPrefix("<svg"), String(svg.prefix(80)))
        XCTAssertEqual(svg.components(separatedBy: "<rect ").count - 1, 144)
        XCTAssertTrue(svg.contains("data:image/png;base64,iVBOR"))
    }

    func testPackFolderAndList() throws {
        let r = try ok(["pack", Self.orl, "-o", dir + "/orl/faces.rec", "--transcode-jpeg", "90"])
        XCTAssertTrue(r.stdout.contains("packed 400 images of 40 identities"), r.stdout)
        let ds = try RecordIODataset(path: dir + "/orl/faces.rec")
        XCTAssertEqual(ds.count, 400)
        let first = try ds.sample(at: 0)
        XCTAssertEqual(Array(first.image.prefix(3)), [0xFF, 0xD8, 0xFF])  // transcoded to JPEG
        XCTAssertEqual(try ImageDecoder.decode(first.image).width, 92)
        XCTAssertTrue(DataFiles.isFile(dir + "/orl/property"))
        let lines = try String(contentsOfFile: Self.lfw + "/splits/train.tsv", encoding: .utf8).split(separator: "\n").prefix(21)
        try (lines.joined(separator: "\n") + "\n").write(toFile: dir + "/list.tsv", atomically: true, encoding: .utf8)
        let l = try ok(["pack", "--list", dir + "/list.tsv", "--root", Self.lfw, "-o", dir + "/lfw/train.rec", "--legacy"])
        XCTAssertTrue(l.stdout.contains("packed 20 images"), l.stdout)
        XCTAssertEqual(try RecordIODataset(path: dir + "/lfw").count, 20)
    }

    /// 60 LFW View-1 test pairs (30 same, 30 different), reports, then a stored threshold that
    /// `compare` and `inspect` see.
    func testEvalPairsReportsAndStoredThreshold() throws {
        let all = try String(contentsOfFile: Self.lfw + "/splits/devtest_pairs.tsv", encoding: .utf8).split(separator: "\n")
        let subset = [all[0]] + all[1...30] + all[501...530]
        try (subset.joined(separator: "\n") + "\n").write(toFile: dir + "/pairs.tsv", atomically: true, encoding: .utf8)
        let model = dir + "/eval.tfm"
        try? FileManager.default.removeItem(atPath: model)
        try FileManager.default.copyItem(atPath: Self.modelPath, toPath: model)
        let r = try ok(["eval", model, "--pairs", dir + "/pairs.tsv", "--root", Self.lfw, "--landmarks", Self.landmarks,
                        "--interleaved-folds", "--threads", "2", "--far", "0.01,0.1", "--out", dir + "/report",
                        "--set-threshold-far", "0.1"])
        XCTAssertTrue(r.stdout.contains("pairs  images  accuracy %"), r.stdout)
        XCTAssertTrue(r.stdout.contains("TAR@FAR %"), r.stdout)
        let row = try XCTUnwrap(r.stdout.split(separator: "\n").first { $0.hasPrefix("pairs ") })
        XCTAssertEqual(row.split(separator: " ")[1], "60", String(row))
        let roc = try String(contentsOfFile: dir + "/report/pairs_roc.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(roc[0], "threshold,fpr,tpr")
        XCTAssertGreaterThan(roc.count, 3)
        let tar = try String(contentsOfFile: dir + "/report/pairs_tar.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(tar.count, 3)
        XCTAssertTrue(tar[1].hasPrefix("0.01,"), String(tar[1]))
        let summary = try XCTUnwrap(try json(dir + "/report/summary.json") as? [String: Any])
        let set = try XCTUnwrap((summary["sets"] as? [[String: Any]])?.first)
        XCTAssertEqual(set["pairs"] as? Int, 60)
        XCTAssertEqual((set["fold_accuracy"] as? [Double])?.count, 10)
        XCTAssertEqual(((set["tar"] as? [String: Any])?["fars"] as? [Double]), [0.01, 0.1])
        XCTAssertTrue(try String(contentsOfFile: dir + "/report/roc.svg", encoding: .utf8).contains("<svg"))
        // the stored threshold: in the metadata, used by compare
        let stored = try ModelFile.load(path: model)
        let t = try XCTUnwrap(stored.metadataValue("verification_threshold").flatMap(Double.init))
        XCTAssertEqual(stored.metadataValue("verification_threshold_far"), "0.1")
        XCTAssertEqual(stored.metadataValue("verification_threshold_set"), "pairs")
        let original = try ModelFile.load(path: Self.modelPath)
        XCTAssertEqual(try stored.withFloat32Parameters { Array($0.all) }, try original.withFloat32Parameters { Array($0.all) })
        let c = try ok(["compare", model, Self.photo("Abdullah_Gul", 13), Self.photo("Abdullah_Gul", 14), "--landmarks", Self.landmarks,
                        "--root", Self.lfw]).stdout
        XCTAssertTrue(c.contains("threshold \(String(format: "%.4f", t)) (stored in the model at FAR 0.1 on pairs)"), c)
        XCTAssertTrue(c.contains("same person") || c.contains("different people"), c)
    }

    /// A .bin of aligned ORL faces (written with TFData), evaluated from the CLI.
    func testEvalBin() throws {
        let table = try LandmarkTable(path: Self.orl + "/landmarks_mtcnn_5pt.tsv")
        var faces: [[UInt8]] = []
        for s in 31...34 {
            for n in 1...6 {
                let rel = "s\(s)/\(n).pgm"
                let img = try ImageDecoder.decodeFile(Self.orl + "/" + rel)
                let aligned = try img.pixels.withUnsafeBufferPointer { p in
                    try FaceAlignment.align(try ImageView(base: p.baseAddress!, width: img.width, height: img.height, format: .rgb),
                                            landmarks: try XCTUnwrap(table.points(for: rel))).image
                }
                faces.append(try ImageEncoder.png(aligned))
            }
        }
        var images: [[UInt8]] = [], issame: [Bool] = []
        for k in 0..<12 {  // 12 same pairs (within an identity) and 12 different
            let id = k % 4
            images += [faces[id * 6 + (k / 4) * 2], faces[id * 6 + (k / 4) * 2 + 1]]; issame.append(true)
            images += [faces[id * 6 + k % 6], faces[((id + 1) % 4) * 6 + k % 6]]; issame.append(false)
        }
        try VerificationBin(images: images, issame: issame).write(path: dir + "/orl.bin")
        let r = try ok(["eval", Self.modelPath, "--bin", dir + "/orl.bin", "--no-flip", "--out", dir + "/binreport"])
        XCTAssertTrue(r.stdout.contains("orl "), r.stdout)
        let summary = try XCTUnwrap(try json(dir + "/binreport/summary.json") as? [String: Any])
        XCTAssertEqual(summary["flip"] as? Bool, false)
        XCTAssertEqual(((summary["sets"] as? [[String: Any]])?.first)?["images"] as? Int, 48)
    }

    /// A miniature IJB-C folder of LFW photos: 6 identities, 2 templates of 2 images each.
    func testEvalIJB() throws {
        let root = dir + "/ijb"
        try DataFiles.makeDirectories(root + "/loose_crop")
        try DataFiles.makeDirectories(root + "/meta")
        let table = try LandmarkTable(path: Self.landmarks)
        let rows = try String(contentsOfFile: Self.lfw + "/splits/train.tsv", encoding: .utf8).split(separator: "\n").dropFirst()
        var byLabel: [Int: [String]] = [:]
        for r in rows {
            let f = r.split(separator: "\t")
            if let l = Int(f[1]), l < 6 { byLabel[l, default: []].append(String(f[0])) }
        }
        var tid = "", lmk = "", pairs = "", n = 0
        for label in 0..<6 {
            for (k, rel) in byLabel[label]!.prefix(4).enumerated() {
                n += 1
                try Data(contentsOf: URL(fileURLWithPath: Self.lfw + "/" + rel)).write(to: URL(fileURLWithPath: root + "/loose_crop/\(n).jpg"))
                let t = label * 2 + k / 2
                tid += "\(n).jpg \(t) \(1000 + n)\n"
                lmk += "\(n).jpg " + (try XCTUnwrap(table.points(for: rel))).map { "\($0)" }.joined(separator: " ") + " 0.99\n"
            }
        }
        for a in 0..<12 { for b in (a + 1)..<12 { pairs += "\(a) \(b) \(a / 2 == b / 2 ? 1 : 0)\n" } }
        try tid.write(toFile: root + "/meta/ijbc_face_tid_mid.txt", atomically: true, encoding: .utf8)
        try lmk.write(toFile: root + "/meta/ijbc_name_5pts_score.txt", atomically: true, encoding: .utf8)
        try pairs.write(toFile: root + "/meta/ijbc_template_pair_label.txt", atomically: true, encoding: .utf8)
        let r = try ok(["eval", Self.modelPath, "--ijb", root, "--far", "0.01,0.1", "--out", dir + "/ijbreport"])
        XCTAssertTrue(r.stdout.contains("TAR@FAR %"), r.stdout)
        XCTAssertTrue(r.stdout.contains("6/60"), r.stdout)  // genuine/impostor template pairs
        let summary = try XCTUnwrap(try json(dir + "/ijbreport/summary.json") as? [String: Any])
        let set = try XCTUnwrap((summary["sets"] as? [[String: Any]])?.first)
        XCTAssertEqual(set["kind"] as? String, "ijb")
        XCTAssertEqual(set["name"] as? String, "IJBC")
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/ijbreport/IJBC_roc.csv"))
        // a threshold is stored from pairs of images, not IJB templates
        let refused = try CLI.run(["eval", Self.modelPath, "--ijb", root, "--set-threshold-far", "0.1"])
        XCTAssertEqual(refused.errorLines.count, 1, refused.stderr)
        XCTAssertEqual(refused.status, 64)
    }

    /// Wrong arguments, missing files, unreadable images and models: one stderr line, non-zero
    /// status, no trap.
    func testRefusalsAreOneLine() throws {
        try "not an image\n".write(toFile: dir + "/bad.jpg", atomically: true, encoding: .utf8)
        let photo = Self.photo("AJ_Lamas", 1)
        let cases: [([String], String)] = [
            (["frobnicate"], "Unexpected argument"),
            (["embed"], "Missing expected argument"),
            (["embed", Self.modelPath, dir + "/bad.jpg", "--aligned"], "is not a JPEG, PNG or PNM image"),
            (["embed", Self.modelPath, dir + "/missing.jpg"], "does not exist"),
            (["embed", Self.modelPath, photo], "has no landmarks"),
            (["embed", Self.modelPath, photo, "-o", dir + "/x.txt"], "must end in .npy or .json"),
            (["embed", Self.modelPath, photo, "--threads", "0", "--landmarks", Self.landmarks, "--root", Self.lfw], "--threads 0"),
            (["embed", dir + "/bad.jpg", photo], "too short"),
            (["embed", dir + "/nomodel.tfm", photo], "does not exist"),
            (["compare", Self.modelPath, dir + "/bad.jpg", photo, "--aligned"], "bad.jpg' is not a JPEG"),
            (["compare", Self.modelPath, photo, photo, "--aligned"], "--aligned needs 112x112 faces"),
            (["compare", Self.modelPath, photo, photo, "--threshold", "2"], "outside [-1, 1]"),
            (["align", photo], "exactly one of --landmarks"),
            (["align", photo, "--landmarks", "1,2,3"], "10 comma-separated numbers"),
            (["align", photo, "--landmarks-file", dir + "/none.tsv"], "does not exist"),
            (["align", photo, "--landmarks-file", Self.landmarks], "no landmarks for"),
            (["pack", dir + "/nofolder", "-o", dir + "/x.rec"], "does not exist"),
            (["pack", Self.orl, "-o", dir + "/x.bin"], "must end in .rec"),
            (["inspect", dir + "/bad.jpg"], "too short"),
            (["convert", dir + "/bad.jpg", "-o", dir + "/x.tfm"], "neither an .npz archive nor a torch.save file"),
            (["convert", dir + "/nothing.pt", "-o", dir + "/x.tfm"], "no such file"),
            (["eval", Self.modelPath], "exactly one of --bin, --pairs and --ijb"),
            (["eval", Self.modelPath, "--bin", dir + "/none.bin"], "cannot open"),
            (["eval", Self.modelPath, "--pairs", dir + "/none.tsv", "--far", "2"], "--far"),
            (["eval", Self.modelPath, "--ijb", dir], "not an IJB folder"),
            (["patches", Self.modelPath, photo, "-o", dir + "/p.gif"], "must end in .png or .svg"),
        ]
        for (args, fragment) in cases {
            let r = try CLI.run(args)
            XCTAssertNotEqual(r.status, 0, "\(args)")
            XCTAssertEqual(r.errorLines.count, 1, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.hasPrefix("transface"), "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(fragment), "\(args): expected '\(fragment)' in \(r.stderr)")
        }
    }
}

/// `transface convert` against the official tiny weights (reference/tiny/param) written as a
/// torch.save zip (by bindings/python/tests/torchzip.py, as the Python tests do) and as an .npz.
extension CLICommandsTests {
    /// Runs python3 with the bindings on the path; skips when python3 or numpy is missing.
    func python(_ script: String, _ args: [String], environment: [String: String] = [:]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script] + args
        let py = Reference.repoRoot + "/bindings/python"
        p.environment = ProcessInfo.processInfo.environment.merging(["PYTHONPATH": py + ":" + py + "/tests"].merging(environment) { $1 }) { $1 }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        do { try p.run() } catch { throw XCTSkip("python3 is not available: \(error)") }
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let stderr = String(decoding: e, as: UTF8.self)
        if stderr.contains("No module named 'numpy'") { throw XCTSkip("numpy is not available") }
        XCTAssertEqual(p.terminationStatus, 0, "python failed: \(stderr)")
        return String(decoding: o, as: UTF8.self)
    }

    static let writeSources = """
        import sys, pathlib, numpy as np, torchzip
        from collections import OrderedDict
        src, out = pathlib.Path(sys.argv[1]), sys.argv[2]
        params = OrderedDict((p.stem, np.load(p)) for p in sorted(src.glob("*.npy")))
        np.savez(out + "/tiny.npz", **params)
        torchzip.save(OrderedDict((k, torchzip.Tensor.of(v)) for k, v in params.items()), out + "/tiny.pt", archive="tiny")
        ckpt = {"state_dict_backbone": OrderedDict(("module." + k, torchzip.Tensor.of(v)) for k, v in params.items()), "epoch": 3}
        torchzip.save(ckpt, out + "/ckpt.pth")
        """

    func assertBitEqual(_ a: TransFaceModel, _ b: TransFaceModel, _ what: String) {
        XCTAssertEqual(a.config, b.config, what)
        XCTAssertEqual(a.preprocess, b.preprocess, what)
        for e in a.layout.entries {
            let x = (try? a.tensor(e.name))?.map(\.bitPattern), y = (try? b.tensor(e.name))?.map(\.bitPattern)
            XCTAssertNotNil(x, "\(what): \(e.name)")
            XCTAssertEqual(x, y, "\(what): \(e.name)")
        }
    }

    func testConvertTorchZipAndNpzEqualThePythonConverter() throws {
        _ = try python(Self.writeSources, [Reference.path("tiny/param"), dir])
        for source in ["tiny.pt", "tiny.npz", "ckpt.pth"] {
            let r = try ok(["convert", dir + "/" + source, "-o", dir + "/\(source).tfm", "--num-heads", "4", "--embedding-size", "32"])
            XCTAssertTrue(r.stdout.contains("heads 4"), r.stdout)
            let m = try ModelFile.load(path: dir + "/\(source).tfm")
            // bit for bit the official arrays
            for e in m.layout.entries {
                XCTAssertEqual(try m.tensor(e.name).map(\.bitPattern), try Reference.load("tiny/param/\(e.name)").values.map(\.bitPattern), e.name)
            }
            XCTAssertEqual(m.metadataValue("source"), source)
            XCTAssertEqual(m.metadataValue("source_format"), source == "tiny.npz" ? "npz" : "torch zip (read without torch)")
            XCTAssertEqual(m.metadataValue("num_heads_from"), "--num-heads")
        }
        XCTAssertTrue(try ok(["convert", dir + "/ckpt.pth", "-o", dir + "/c.tfm", "--num-heads", "4"]).stdout
            .contains("training checkpoint: using 'state_dict_backbone', ignoring epoch"))
        // the Python converter (through libtransface.so) writes the same model
        let library = Reference.repoRoot + "/.build/debug/libtransface.so"
        guard FileManager.default.fileExists(atPath: library) else { throw XCTSkip("no \(library) for the Python converter") }
        _ = try python("import sys; from transface.convert import convert; convert(sys.argv[1], sys.argv[2], num_heads=4, use_torch=False)",
                       [dir + "/tiny.pt", dir + "/python.tfm"], environment: ["TRANSFACE_LIBRARY": library])
        let py = try ModelFile.load(path: dir + "/python.tfm"), swift = try ModelFile.load(path: dir + "/tiny.pt.tfm")
        assertBitEqual(py, swift, "python vs swift")
        XCTAssertEqual(py.metadata.filter { $0.key != "converter" }.map { "\($0.key)=\($0.value)" },
                       swift.metadata.filter { $0.key != "converter" }.map { "\($0.key)=\($0.value)" })
    }

    func testConvertRefusesWhatThePythonConverterRefuses() throws {
        _ = try python(Self.writeSources, [Reference.path("tiny/param"), dir])
        _ = try python("""
            import sys, numpy as np, torchzip
            d = sys.argv[1]
            torchzip.save({"pos_embed": torchzip.Raw(torchzip.glob("os", "system") + b"(X\\x04\\x00\\x00\\x00echot" + b"R")}, d + "/evil.pt")
            torchzip.save([1, 2, 3], d + "/list.pt")
            torchzip.save({"a": torchzip.Tensor(np.zeros(4, np.float32), (3, 3))}, d + "/oob.pt")
            """, [dir])
        let cases: [(String, [String], String)] = [
            ("evil.pt", [], "os.system is not on the whitelist"),
            ("list.pt", [], "not a state_dict"),
            ("oob.pt", [], "reaches element 8 of a storage of 4"),
            ("tiny.npz", ["--arch", "vit_t"], "do not match --arch vit_t"),
            ("tiny.npz", ["--embedding-size", "512"], "disagrees with feature.2.weight"),
            ("tiny.npz", ["--num-heads", "7"], "num_heads 7 does not divide embed_dim 64"),
            ("tiny.npz", ["--metadata", "novalue"], "KEY=VALUE"),
        ]
        for (source, extra, fragment) in cases {
            let r = try CLI.run(["convert", dir + "/" + source, "-o", dir + "/refused.tfm"] + extra)
            XCTAssertEqual(r.status, 1, "\(source) \(extra)")
            XCTAssertEqual(r.errorLines.count, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains(fragment), "\(source) \(extra): \(r.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/refused.tfm"))
        }
    }
}
