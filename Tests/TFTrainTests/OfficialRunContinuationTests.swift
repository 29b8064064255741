import Foundation
import TFConvert
import TFCore
import TFModel
import TFTestSupport
@testable import TFTrain
import XCTest

/// An official `checkpoint_gpu_{rank}.pt` of the reference tiny model (`reference/tiny`: official
/// weights under their state_dict names, centres), as train.py would save it at global_step 0 —
/// the moment `reference/tiny_official_step` starts from — imports and continues with the
/// official iteration. The checkpoint (8 MB of weights, too large to commit) is written here in
/// torch's legacy format by `TorchLegacyWriter`, with train.py's keys, torch.optim's state_dict
/// layout (param groups: the backbone in module order, then the centres; no state before the
/// first step) and the PolyScheduler's state_dict; `OfficialRunImportTests` reads torch-made files.
final class OfficialRunContinuationTests: XCTestCase {
    /// The official module order of the tiny model's state_dict (num_batches_tracked left out: an
    /// int64 buffer the import drops anyway).
    static func officialOrder(depth: Int) -> [String] {
        let block = ["norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.proj.weight", "attn.proj.bias", "norm2.weight",
                     "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias"]
        let bn = ["weight", "bias", "running_mean", "running_var"]
        return ["pos_embed", "mask_token", "patch_embed.proj.weight", "patch_embed.proj.bias"]
            + (0..<depth).flatMap { i in block.map { "blocks.\(i).\($0)" } } + ["norm.weight", "norm.bias", "feature.0.weight"]
            + bn.map { "feature.1.\($0)" } + ["feature.2.weight"] + bn.map { "feature.3.\($0)" } + ["senet.0.weight", "senet.2.weight"]
    }

    /// Writes rank r of `world` for the tiny reference model into `folder`.
    static func writeTinyCheckpoints(world: Int, to folder: String) throws {
        let layout = ParameterLayout(config: Reference.tinyConfig)
        let names = officialOrder(depth: 2)
        XCTAssertEqual(Set(names), Set(layout.entries.map(\.name)))
        let centres = try Reference.load("tiny/param/partial_fc.weight")
        let classes = 10, e = 32
        for r in 0..<world {
            var storages: [TorchLegacyWriter.Storage] = []
            func tensor(_ key: String, _ values: [Float], _ shape: [Int]) -> TorchLegacyWriter.Node {
                storages.append(.init(key: key, values: values.map(Double.init)))
                return .tensor(.init(name: key, storage: key, shape: shape))
            }
            var backbone: [(key: String, value: TorchLegacyWriter.Node)] = []
            for name in names {
                backbone.append((name, tensor(name, try Reference.load("tiny/param/\(name)").values, layout[name]!.shape)))
            }
            let n = classes / world + (r < classes % world ? 1 : 0), start = classes / world * r + min(r, classes % world)
            let shard = Array(centres.values[(start * e)..<((start + n) * e)])
            let trainable = names.filter { layout[$0]!.trainable }
            func group(_ params: Range<Int>) -> TorchLegacyWriter.Node {
                .dict([(.string("lr"), .float(0.001)), (.string("betas"), .tuple([.float(0.9), .float(0.999)])),
                       (.string("eps"), .float(1e-8)), (.string("weight_decay"), .float(0.1)), (.string("amsgrad"), .bool(false)),
                       (.string("maximize"), .bool(false)), (.string("foreach"), .none), (.string("capturable"), .bool(false)),
                       (.string("differentiable"), .bool(false)), (.string("fused"), .none), (.string("decoupled_weight_decay"), .bool(true)),
                       (.string("initial_lr"), .float(0.001)), (.string("params"), .list(params.map { .int($0) }))])
            }
            let root = TorchLegacyWriter.Node.dict([
                (.string("epoch"), .int(0)), (.string("global_step"), .int(0)),
                (.string("state_dict_backbone"), .orderedDict(backbone)),
                (.string("state_dict_softmax_fc"), .orderedDict([("weight", tensor("centres", shard, [n, e]))])),
                (.string("state_optimizer"), .dict([(.string("state"), .dict([])),
                                                    (.string("param_groups"), .list([group(0..<trainable.count),
                                                                                     group(trainable.count..<(trainable.count + 1))]))])),
                (.string("state_lr_scheduler"), .dict([
                    (.string("base_lr"), .float(0.001)), (.string("warmup_lr_init"), .float(0.0001)), (.string("max_steps"), .int(100)),
                    (.string("warmup_steps"), .int(0)), (.string("power"), .int(2)), (.string("base_lrs"), .list([.float(0.001), .float(0.001)])),
                    (.string("last_epoch"), .int(-1)), (.string("_step_count"), .int(1)), (.string("_is_initial"), .bool(false)),
                    (.string("_get_lr_called_within_step"), .bool(false)), (.string("_last_lr"), .list([.float(0.001), .float(0.001)]))])),
            ])
            try Data(TorchLegacyWriter.encode(root, storages: storages)).write(to: URL(fileURLWithPath: folder + "/checkpoint_gpu_\(r).pt"))
        }
    }

    static func config() throws -> TrainerConfig {
        try TrainerConfig.parse(TrainerReferenceTests.json.replacingOccurrences(of: "%@", with: #", "ehsm": {"mode": "official"}"#))
    }

    /// The imported state is the fixture's, bit for bit; the official iteration from it has the
    /// official loss (rtol 1e-4, as TrainerReferenceTests) and leaves every tensor exactly as it
    /// leaves a trainer built from the same fixture (which TrainerReferenceTests compares with the
    /// official update); two ranks import to the same trainer as one.
    func testTinyCheckpointContinuesWithTheOfficialStep() throws {
        let folder = try Reference.temporaryFolder()
        defer { Reference.removeTree(folder) }
        try FileManager.default.createDirectory(atPath: folder + "/w1", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: folder + "/w2", withIntermediateDirectories: true)
        try Self.writeTinyCheckpoints(world: 1, to: folder + "/w1")
        try Self.writeTinyCheckpoints(world: 2, to: folder + "/w2")
        let (imported, notes) = try Trainer.importOfficial([folder + "/w1"], config: try Self.config())
        XCTAssertFalse(notes.contains { $0.contains("was") }, "\(notes)")
        let two = try Trainer.importOfficial([folder + "/w2"], config: try Self.config()).trainer
        for name in OfficialRunImportTests.names(of: imported) {
            XCTAssertEqual(try two.tensor(name), try imported.tensor(name), "2 ranks vs 1: \(name)")
        }
        for e in imported.layout.entries {
            XCTAssertEqual(try imported.tensor(e.name), try Reference.load("tiny/param/\(e.name)").values, e.name)
        }
        XCTAssertEqual(try imported.tensor("partial_fc.weight"), try Reference.load("tiny/param/partial_fc.weight").values)

        let built = try Trainer(config: try Self.config(), initialModel: try Reference.tinyModel())
        try built.setTensor("partial_fc.weight", try Reference.load("tiny/param/partial_fc.weight").values)
        let images = try Reference.load("tiny/input/u8_hwc").bytes
        let official = Double(try Reference.load("tiny_official_step/loss/pass2").values[0])
        var results: [Trainer.StepResult] = []
        for t in [imported, two, built] {
            t.dpapRandom = try ReplayDPAPRandom()
            results.append(try t.step(images: images, labels: [3, 7, 0, 7]))
            XCTAssertEqual(results.last!.loss, official, accuracy: 1e-4 * abs(official), "official loss")
        }
        XCTAssertEqual(results[0].loss, results[2].loss)
        XCTAssertEqual(results[1].loss, results[2].loss)
        for name in OfficialRunImportTests.names(of: built) {
            let want = try built.tensor(name)
            XCTAssertEqual(try imported.tensor(name), want, "after the step: \(name)")
            XCTAssertEqual(try two.tensor(name), want, "after the step, 2 ranks: \(name)")
        }
        print("imported official run: loss \(results[0].loss) vs official \(official)")
    }
}
