import Foundation
import TFConvert
import TFCore
import TFTestSupport
@testable import TFTrain
import XCTest

/// Importing official runs from torch-made `checkpoint_gpu_{rank}.pt` files
/// (`Fixtures/official_run`, written by `Fixtures/make_official_checkpoint.py` with torch 2.13:
/// a micro ViT, two official iterations of AdamW or SGD, world sizes 1 and 2).
final class OfficialRunImportTests: XCTestCase {
    static let fixtures = Reference.repoRoot + "/Tests/TFTrainTests/Fixtures/official_run"

    static func config(optimizer: String = #"{"name": "adamw", "lr": 0.001, "weight_decay": 0.1}"#, classes: Int = 5,
                       embed: Int = 8) throws -> TrainerConfig {
        try TrainerConfig.parse("""
        {"arch": "custom", "model": {"img_size": 18, "patch_size": 9, "embed_dim": \(embed), "depth": 1, "num_heads": 2, "mlp_hidden_dim": 16},
         "embedding_size": 4, "mask_ratio": 0, "drop_path_rate": 0, "num_classes": \(classes), "batch_size": 2,
         "optimizer": \(optimizer), "schedule": {"warmup_steps": 2, "max_steps": 10}, "dpap": {"enabled": false}, "seed": 1}
        """)
    }
    static let sgd = #"{"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 0.0005}"#

    /// `expected.npz` by name.
    static func expected() throws -> [String: [Float]] {
        var out: [String: [Float]] = [:]
        for (name, t) in try NPZFile.load(try ZipArchive(path: fixtures + "/expected.npz")) {
            out[name] = try t.floats(name)
        }
        return out
    }

    /// Every tensor a trainer of `config` holds that `expected` has under `prefix` + name:
    /// model tensors, centres, moments (a moment absent from `expected` must be zero).
    private func assertStateEquals(_ t: Trainer, _ expected: [String: [Float]], prefix: String = "",
                                   file: StaticString = #filePath, line: UInt = #line) throws {
        var compared = 0
        for e in t.layout.entries {
            XCTAssertEqual(try t.tensor(e.name), expected[prefix + e.name], e.name, file: file, line: line)
            compared += 1
        }
        XCTAssertEqual(try t.tensor("partial_fc.weight"), expected[prefix + "partial_fc.weight"], "centres", file: file, line: line)
        for (name, _, _, count) in t.stateTensors() {
            let want = expected[prefix + name] ?? [Float](repeating: 0, count: count)
            XCTAssertEqual(try t.tensor(name), want, name, file: file, line: line)
            if expected[prefix + name] != nil { compared += 1 }
        }
        XCTAssertGreaterThan(compared, t.layout.entries.count, "moments compared", file: file, line: line)
    }

    func testAdamWCheckpointImportsBitForBit() throws {
        let (t, notes) = try Trainer.importOfficial([Self.fixtures + "/w1/checkpoint_gpu_0.pt"], config: try Self.config())
        try assertStateEquals(t, try Self.expected())
        XCTAssertEqual(t.step, 2)
        XCTAssertEqual(t.backboneOptimizer.stepCount, 2)
        XCTAssertEqual(t.centreOptimizer.stepCount, 2)
        XCTAssertEqual(t.learningRate, 0.0005, "PolyScheduler at last_epoch 1 with 2 warm-up steps: base·1/2")
        XCTAssertFalse(notes.contains { $0.contains("was") }, "no hyper-parameter differs: \(notes)")
    }

    func testTwoRankImportEqualsOneRank() throws {
        let one = try Trainer.importOfficial([Self.fixtures + "/w1/checkpoint_gpu_0.pt"], config: try Self.config()).trainer
        // Given as a folder, and as files in any order.
        for paths in [[Self.fixtures + "/w2"], [Self.fixtures + "/w2/checkpoint_gpu_1.pt", Self.fixtures + "/w2/checkpoint_gpu_0.pt"]] {
            let two = try Trainer.importOfficial(paths, config: try Self.config()).trainer
            for name in Self.names(of: one) { XCTAssertEqual(try two.tensor(name), try one.tensor(name), name) }
            XCTAssertEqual(two.step, one.step)
            XCTAssertEqual(two.learningRate, one.learningRate)
        }
    }

    /// The names a trainer reads (model tensors, centres, moments).
    static func names(of trainer: Trainer) -> [String] {
        trainer.layout.entries.map(\.name) + ["partial_fc.weight"] + trainer.stateTensors().map(\.0)
    }

    /// The imported moments, step count and learning rate continue as torch's: one optimizer step
    /// on the same gradients matches torch's AdamW / SGD (tolerance of OptimizerReferenceTests:
    /// rtol 1e-6 of max|ref| + 1e-8).
    func testNextOptimizerStepMatchesTorch() throws {
        let expected = try Self.expected()
        for (prefix, optimizer, path) in [("", #"{"name": "adamw", "lr": 0.001, "weight_decay": 0.1}"#, "/w1/checkpoint_gpu_0.pt"),
                                          ("sgd.", Self.sgd, "/sgd/checkpoint_gpu_0.pt")] {
            let t = try Trainer.importOfficial([Self.fixtures + path], config: try Self.config(optimizer: optimizer)).trainer
            if prefix == "sgd." { try assertStateEquals(t, expected, prefix: prefix) }
            XCTAssertEqual(Float(t.learningRate), expected[prefix + "next_lr"]![0], prefix)  // stored as float64, read as float32
            t.gradients.zero()
            for e in t.layout.entries where e.trainable && e.name != "mask_token" {
                _ = t.gradients.view(e.offset, e.count).update(fromContentsOf: expected[prefix + "next_grad." + e.name]!)
            }
            t.backboneOptimizer.learningRate = t.learningRate
            t.centreOptimizer.learningRate = t.learningRate
            try t.backboneOptimizer.step(parameters: t.parameters.all, gradients: UnsafeBufferPointer(t.gradients.all), pool: nil)
            let centreGrad = expected[prefix + "next_grad.partial_fc.weight"]!
            try centreGrad.withUnsafeBufferPointer { try t.centreOptimizer.step(parameters: t.partialFC.weight.all, gradients: $0, pool: nil) }
            var worst = 0.0
            for name in t.layout.entries.filter(\.trainable).map(\.name) + ["partial_fc.weight"] {
                let c = Comparison(try t.tensor(name), expected[prefix + "next." + name]!, rtol: 1e-6, atol: 1e-8)
                XCTAssertTrue(c.passed, "\(prefix)\(name) after the next step: \(c)")
                worst = max(worst, c.maxRel)
            }
            print("[official run] \(prefix.isEmpty ? "adamw" : "sgd"): next step vs torch, worst max|diff|/max|ref| \(worst)")
        }
    }

    func testImportedRunCheckpointsAndResumes() throws {
        let folder = try Reference.temporaryFolder()
        defer { Reference.removeTree(folder) }
        let t = try Trainer.importOfficial([Self.fixtures + "/w1/checkpoint_gpu_0.pt"], config: try Self.config()).trainer
        try t.saveCheckpoint(to: folder + "/run.tfc")
        let r = try Trainer.resume(from: folder + "/run.tfc")
        try assertStateEquals(r, try Self.expected())
        XCTAssertEqual(r.step, 2)
        XCTAssertEqual(r.learningRate, t.learningRate)
        let images = [UInt8](repeating: 77, count: 2 * 18 * 18 * 3)
        let a = try t.step(images: images, labels: [1, 4]), b = try r.step(images: images, labels: [1, 4])
        XCTAssertTrue(a.loss.isFinite)
        XCTAssertEqual(a.loss, b.loss)
        XCTAssertEqual(try t.tensor("optimizer.exp_avg.senet.0.weight"), try r.tensor("optimizer.exp_avg.senet.0.weight"))
    }

    func testMismatchesAreRefusedNamingTheTensor() throws {
        let w1 = Self.fixtures + "/w1/checkpoint_gpu_0.pt"
        func refused(_ paths: [String], _ config: TrainerConfig, _ needle: String, line: UInt = #line) {
            XCTAssertThrowsError(try Trainer.importOfficial(paths, config: config), line: line) { e in
                let m = (e as? TransFaceError)?.message ?? "\(e)"
                XCTAssertTrue(m.contains(needle), "'\(m)' lacks '\(needle)'", line: line)
            }
        }
        refused([w1], try Self.config(classes: 6), "state_dict_softmax_fc.weight (rank 0 of 1, 6 classes) has shape [5, 4], the configuration needs [6, 4]")
        refused([w1], try Self.config(embed: 16), "state_dict_backbone.pos_embed has shape [1, 4, 8], the configuration needs [1, 4, 16]")
        refused([w1], try Self.config(optimizer: Self.sgd), "'exp_avg': the run used another optimizer")
        refused([Self.fixtures + "/sgd/checkpoint_gpu_0.pt"], try Self.config(), "'momentum_buffer'")
        refused([Self.fixtures + "/w2/checkpoint_gpu_1.pt"], try Self.config(), "checkpoints of ranks 1 given; a run of 1 ranks needs each of 0...0 once")
        refused([Self.fixtures + "/w2/checkpoint_gpu_1.pt", Self.fixtures + "/w2/checkpoint_gpu_1.pt"], try Self.config(), "each of 0...1 once")
        // Rank 0 of a 1-rank run beside rank 1 of a 2-rank run: rank 0's shard is the wrong size.
        refused([Self.fixtures + "/w1/checkpoint_gpu_0.pt", Self.fixtures + "/w2/checkpoint_gpu_1.pt"], try Self.config(),
                "state_dict_softmax_fc.weight (rank 0 of 2, 5 classes) has shape [5, 4], the configuration needs [3, 4]")
        refused([Self.fixtures + "/model.pt"], try Self.config(), "not an official training checkpoint: missing epoch, global_step")
        refused([Self.fixtures + "/missing"], try Self.config(), "no such file")
    }

    /// Truncated and damaged files fail with a format error, never a crash.
    func testDamagedFilesAreRefused() throws {
        let folder = try Reference.temporaryFolder()
        defer { Reference.removeTree(folder) }
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: Self.fixtures + "/w1/checkpoint_gpu_0.pt")))
        var cases: [(String, [UInt8])] = [("empty", []), ("garbage", Array("not a checkpoint at all".utf8))]
        for cut in [10, bytes.count / 3, bytes.count / 2, bytes.count - 30] { cases.append(("cut \(cut)", Array(bytes.prefix(cut)))) }
        var rng = SeededRNG(seed: 3, stream: 1)
        for i in 0..<24 {  // single flipped bytes anywhere (zip records are CRC-checked)
            var b = bytes
            b[Int(rng.next() % UInt64(b.count))] ^= UInt8(1 + rng.next() % 255)
            cases.append(("flip \(i)", b))
        }
        // A central-directory entry claiming 2 GB for a stored 32-byte record is refused before
        // anything is allocated.
        let name = Array("checkpoint_gpu_0/data/88".utf8)
        let at = (0..<(bytes.count - name.count)).last { Array(bytes[$0..<($0 + name.count)]) == name }! - 46
        XCTAssertEqual(Array(bytes[at..<(at + 4)]), [0x50, 0x4B, 0x01, 0x02], "central directory entry")
        var huge = bytes
        huge[at + 24 + 3] = 0x7F
        try Data(huge).write(to: URL(fileURLWithPath: folder + "/checkpoint_gpu_0.pt"))
        XCTAssertThrowsError(try Trainer.importOfficial([folder + "/checkpoint_gpu_0.pt"], config: try Self.config())) {
            XCTAssertTrue(($0 as? TransFaceError)?.message.contains("is damaged: it claims 2130706464 bytes from 32 stored") == true, "\($0)")
        }
        for (what, b) in cases {
            let path = folder + "/checkpoint_gpu_0.pt"
            try Data(b).write(to: URL(fileURLWithPath: path))
            do {
                _ = try Trainer.importOfficial([path], config: try Self.config())
            } catch let e as TransFaceError {
                XCTAssertTrue([.format, .io, .notFound, .invalidArgument].contains(e.kind), "\(what): \(e.kind) \(e.message)")
            }
        }
    }

    /// `model.pt` (the backbone state_dict) is a model file through the converter.
    func testOfficialModelFileConverts() throws {
        let folder = try Reference.temporaryFolder()
        defer { Reference.removeTree(folder) }
        var options = Converter.Options()
        options.numHeads = 2
        let result = try Converter.convert(Self.fixtures + "/model.pt", to: folder + "/model.tfm", options: options)
        XCTAssertEqual(result.config.embedDim, 8)
        XCTAssertEqual(result.config.imgSize, 18)
    }
}
