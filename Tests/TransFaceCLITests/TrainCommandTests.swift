import Foundation
import TFData
import TFEval
import TFImage
import TFModel
import TFTestSupport
import TFTrain
import TFWiring
import XCTest

/// `transface train` end to end on 48 real LFW faces of the training split (aligned on the fly):
/// outputs, the JSON-lines log, checkpoints, evaluation, Ctrl-C + resume equal to an uninterrupted
/// run, and one-line errors.
final class TrainCommandTests: XCTestCase {
    var folder = ""
    let lfw = Reference.shared + "/data/lfw"

    override func setUpWithError() throws {
        folder = try Reference.temporaryFolder()
        // 48 images of the first identities of the training split, and 24 pairs among them.
        let rows = try String(contentsOfFile: lfw + "/splits/train.tsv", encoding: .utf8)
            .split(separator: "\n").dropFirst().prefix(48).map { $0.split(separator: "\t") }
        try ("path\tlabel\n" + rows.map { "\($0[0])\t\($0[1])" }.joined(separator: "\n") + "\n")
            .write(toFile: folder + "/train.tsv", atomically: true, encoding: .utf8)
        var pairs = "pair_index\tpath1\tpath2\tsame\n"
        for i in 0..<24 {
            let a = rows[i], b = rows[(i * 7 + 1) % rows.count]
            pairs += "\(i)\t\(a[0])\t\(b[0])\t\(a[1] == b[1] ? 1 : 0)\n"
        }
        try pairs.write(toFile: folder + "/pairs.tsv", atomically: true, encoding: .utf8)
        let config = """
            {"trainer": {"arch": "custom", "model": {"embed_dim": 16, "depth": 1, "num_heads": 2, "mlp_hidden_dim": 32},
                         "embedding_size": 8, "mask_ratio": 0.1, "drop_path_rate": 0.1, "batch_size": 8, "seed": 3, "threads": 1,
                         "optimizer": {"name": "adamw", "lr": 0.001, "weight_decay": 0.05}},
             "data": {"list": "\(folder)/train.tsv", "root": "\(lfw)", "landmarks": "\(lfw)/landmarks/included_5pt.tsv",
                      "prefer_landmarks": ["cuhk_manual"], "threads": 2},
             "epochs": 4, "warmup_epochs": 1, "log_every": 1, "checkpoint_every": 5, "val_every": 12,
             "val_targets": [{"name": "mini", "pairs": "\(folder)/pairs.tsv", "root": "\(lfw)",
                              "landmarks": "\(lfw)/landmarks/included_5pt.tsv"}]}
            """
        try config.write(toFile: folder + "/run.json", atomically: true, encoding: .utf8)
    }

    override func tearDown() { Reference.removeTree(folder) }

    private func records(_ run: String) throws -> [[String: Any]] {
        try String(contentsOfFile: run + "/train.jsonl", encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
    }

    func testTrainsEvaluatesAndWritesEveryOutput() throws {
        let run = folder + "/out"
        let r = try CLI.run(["train", "--config", folder + "/run.json", "--output", run])
        XCTAssertEqual(r.status, 0, r.stderr)
        let log = try records(run)
        let steps = log.filter { $0["event"] as? String == "step" }
        XCTAssertEqual(steps.map { $0["step"] as! Int }, Array(1...24), "48 images / batch 8 × 4 epochs, logged every step")
        XCTAssertTrue(steps.allSatisfy { ($0["loss"] as! Double).isFinite && ($0["lr"] as! Double) >= 0 })
        let evals = log.filter { $0["event"] as? String == "eval" }
        XCTAssertEqual(evals.map { $0["step"] as! Int }, [12, 24], "every val_every steps and at the end")
        XCTAssertTrue(evals.allSatisfy { $0["target"] as? String == "mini" && $0["pairs"] as? Int == 24 })
        XCTAssertEqual(try checkpointFiles(run + "/checkpoints"), ["step-00000020.tfc", "step-00000024.tfc"], "the newest 2 kept")
        let model = try ModelFile.load(path: run + "/model.tfm")
        XCTAssertEqual(model.config.embedDim, 16)
        XCTAssertEqual(model.metadataValue("trained_steps"), "24")
        XCTAssertTrue(try String(contentsOfFile: run + "/eval/roc.svg", encoding: .utf8).contains("<svg"))
        let roc = try String(contentsOfFile: run + "/eval/mini_roc.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertGreaterThan(roc.count, 2)
        XCTAssertTrue(r.stdout.contains("[mini] step 24: accuracy"), r.stdout)
        XCTAssertNotNil(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run + "/run.json"))))
    }

    /// Ctrl-C during training writes a checkpoint and exits with 130; resuming from it (with the
    /// run.json of its folder) ends with exactly the weights of an uninterrupted run.
    func testInterruptedAndResumedRunEqualsAnUninterruptedOne() throws {
        let straight = folder + "/straight", broken = folder + "/broken"
        XCTAssertEqual(try CLI.run(["train", "--config", folder + "/run.json", "--output", straight, "--set", "val_targets=[]"]).status, 0)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.executable)
        process.arguments = ["train", "--config", folder + "/run.json", "--output", broken, "--set", "val_targets=[]"]
        process.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        // Interrupt once a few steps are logged.
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            if let log = try? String(contentsOfFile: broken + "/train.jsonl", encoding: .utf8),
               log.contains("\"event\":\"step\",\"step\":3,") { break }
            usleep(2000)
        }
        process.interrupt()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 130)
        XCTAssertEqual(errors.fileHandleForReading.readDataToEndOfFile().count, 0, "an interrupt is not an error")
        let log = try records(broken)
        let interrupted = try XCTUnwrap(log.first { $0["event"] as? String == "interrupted" })
        let stoppedAt = interrupted["step"] as! Int
        XCTAssertLessThan(stoppedAt, 24, "the run was interrupted before its end")
        XCTAssertFalse(FileManager.default.fileExists(atPath: broken + "/model.tfm"))

        let checkpoint = String(format: "%@/checkpoints/step-%08d.tfc", broken, stoppedAt)
        let resumed = try CLI.run(["train", "--resume", checkpoint])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        let a = try ModelFile.load(path: straight + "/model.tfm"), b = try ModelFile.load(path: broken + "/model.tfm")
        XCTAssertEqual(try a.withFloat32Parameters { Array($0.all) }, try b.withFloat32Parameters { Array($0.all) }, "resumed at step \(stoppedAt)")
        let steps = try records(broken).filter { $0["event"] as? String == "step" }.map { $0["step"] as! Int }
        XCTAssertEqual(steps, Array(1...24), "each step logged once across both runs")
    }

    /// The README's main job, shortened from 12 epochs to 1.5 (207 steps of 32): the shipped
    /// `lfw_demo` run trained on the 298 LFW training identities must beat the cosine of the raw
    /// aligned pixels on the 1,000 View-1 test pairs (same folds, same alignment).
    func testShortenedDemoBeatsRawPixels() throws {
        let run = folder + "/demo"
        let r = try CLI.run(["train", "--config", "lfw_demo", "--output", run, "--set", "epochs=1.5", "--set", "warmup_epochs=0.25",
                             "--set", "checkpoint_every=0"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let eval = try XCTUnwrap(try records(run).last { $0["event"] as? String == "eval" })
        let trained = eval["accuracy"] as! Double

        let pairs = try PairList.load(lfw + "/splits/devtest_pairs.tsv")
        let table = try LandmarkTable(path: lfw + "/landmarks/included_5pt.tsv")
        var pixels: [String: [Float]] = [:]
        for p in pairs.uniqueImages().paths {
            let bytes = try DataFiles.readAll(lfw + "/" + p)
            let face = try FacePreparer.standard.prepare(bytes, name: p, landmarks: table.points(for: p, preferring: ["cuhk_manual"]),
                                                         template: FaceAlignment.arcfaceTemplate112, size: 112)
            pixels[p] = face.map(Float.init)
        }
        var options = Verification.Options()
        options.interleavedFolds = true
        let raw = try Verification.evaluate(embeddings1: pairs.pairs.flatMap { pixels[$0.path1]! },
                                            embeddings2: pairs.pairs.flatMap { pixels[$0.path2]! },
                                            issame: pairs.issame, dim: 112 * 112 * 3, options: options)
        XCTAssertEqual(raw.accuracyMean, 0.636, accuracy: 0.0005, "the README's raw-pixel baseline")
        XCTAssertGreaterThan(trained, raw.accuracyMean + 0.05, "trained \(trained) vs raw pixels \(raw.accuracyMean)")
    }

    func testErrorsAreOneLine() throws {
        func expectError(_ arguments: [String], _ fragment: String, file: StaticString = #filePath, line: UInt = #line) throws {
            let r = try CLI.run(arguments)
            XCTAssertNotEqual(r.status, 0, file: file, line: line)
            XCTAssertEqual(r.errorLines.count, 1, r.stderr, file: file, line: line)
            XCTAssertTrue(r.stderr.contains(fragment), "'\(r.stderr)' lacks '\(fragment)'", file: file, line: line)
        }
        try expectError(["train"], "--config")
        try expectError(["train", "--config", folder + "/nothing.json"], "no configuration file")
        try expectError(["train", "--config", folder + "/run.json", "--set", "bogus=1", "--output", folder + "/o1"], "unknown key 'bogus'")
        try expectError(["train", "--config", folder + "/run.json", "--set", "trainer.optimizer.lr=-1", "--output", folder + "/o2"], "lr")
        try expectError(["train", "--config", folder + "/run.json", "--set", "data.list=/nonexistent.tsv", "--output", folder + "/o3"], "nonexistent")
        try expectError(["train", "--config", folder + "/run.json", "--set", "trainer.se_gate=false", "--output", folder + "/o4"], "DPAP")
        try expectError(["train", "--resume", folder + "/missing/checkpoints/step-1.tfc"], "run.json")
        let garbage = folder + "/garbage.tfc"
        try Data("not a checkpoint".utf8).write(to: URL(fileURLWithPath: garbage))
        try expectError(["train", "--config", folder + "/run.json", "--resume", garbage, "--output", folder + "/o5"], "garbage.tfc")
    }

    func testShippedConfigsListAndPrintAsShipped() throws {
        let list = try CLI.run(["configs"])
        XCTAssertEqual(list.status, 0)
        let names = list.stdout.split(separator: "\n").map(String.init)
        XCTAssertTrue(names.contains("lfw_demo") && names.contains("ms1mv2_vit_s") && names.contains("glint360k_vit_l"), "\(names)")
        for name in names {
            let printed = try CLI.run(["configs", name])
            XCTAssertEqual(printed.status, 0, name)
            // The file as shipped (bases not merged: `configs --show` does that, ShippedConfigBasesTests).
            let file = Reference.repoRoot + "/Sources/TransFaceCLI/Configs/\(name).json"
            XCTAssertEqual(printed.stdout, try String(contentsOfFile: file, encoding: .utf8), name)
        }
    }

    private func checkpointFiles(_ path: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: path).sorted()
    }
}
