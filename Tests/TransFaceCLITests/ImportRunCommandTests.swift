import Foundation
import TFTestSupport
import TFTrain
import XCTest

/// `transface import-run` on the torch-made official checkpoints of TFTrainTests/Fixtures.
final class ImportRunCommandTests: XCTestCase {
    static let fixtures = Reference.repoRoot + "/Tests/TFTrainTests/Fixtures/official_run"
    static let config = """
    {"arch": "custom", "model": {"img_size": 18, "patch_size": 9, "embed_dim": 8, "depth": 1, "num_heads": 2, "mlp_hidden_dim": 16},
     "embedding_size": 4, "mask_ratio": 0, "drop_path_rate": 0, "num_classes": 5, "batch_size": 2,
     "optimizer": {"name": "adamw", "lr": 0.001, "weight_decay": 0.1}, "schedule": {"warmup_steps": 2, "max_steps": 10},
     "dpap": {"enabled": false}, "seed": 1}
    """

    func testImportsTwoRanksIntoACheckpointThatResumes() throws {
        let folder = try Reference.temporaryFolder()
        defer { Reference.removeTree(folder) }
        try Self.config.write(toFile: folder + "/trainer.json", atomically: true, encoding: .utf8)
        let r = try CLI.run(["import-run", "--checkpoint", Self.fixtures + "/w2/checkpoint_gpu_0.pt", Self.fixtures + "/w2/checkpoint_gpu_1.pt",
                             "--config", folder + "/trainer.json", "-o", folder + "/imported.tfc"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("step 2, next learning rate 0.0005"), r.stdout)
        XCTAssertTrue(r.stdout.contains("note: imported 2 rank(s)"), r.stdout)
        let resumed = try Trainer.resume(from: folder + "/imported.tfc")
        let direct = try Trainer.importOfficial([Self.fixtures + "/w1/checkpoint_gpu_0.pt"], config: try TrainerConfig.parse(Self.config)).trainer
        XCTAssertEqual(resumed.step, 2)
        for name in ["partial_fc.weight", "optimizer.exp_avg_sq.partial_fc.weight", "senet.0.weight", "optimizer.exp_avg.pos_embed"] {
            XCTAssertEqual(try resumed.tensor(name), try direct.tensor(name), name)
        }
    }

    func testMismatchIsOneLineNamingTheTensor() throws {
        let folder = try Reference.temporaryFolder()
        defer { Reference.removeTree(folder) }
        try Self.config.replacingOccurrences(of: #""num_classes": 5"#, with: #""num_classes": 7"#)
            .write(toFile: folder + "/trainer.json", atomically: true, encoding: .utf8)
        let r = try CLI.run(["import-run", "--checkpoint", Self.fixtures + "/w2", "--config", folder + "/trainer.json", "-o", folder + "/x.tfc"])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.errorLines.count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("transface import-run: '") && r.stderr.contains("state_dict_softmax_fc.weight (rank 0 of 2, 7 classes) has shape [3, 4], the configuration needs [4, 4]"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/x.tfc"))
    }
}
