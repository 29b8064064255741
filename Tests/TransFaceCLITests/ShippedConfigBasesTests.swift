import Foundation
import TFTestSupport
import TFTrain
@testable import TransFaceCLI
import XCTest

/// Run configurations over bases (`"base"`), the shipped recipes written that way, and
/// `transface configs --show` (every default written out, read back to the same run).
final class ShippedConfigBasesTests: XCTestCase {
    /// The nine recipes as they were before bases, each complete.
    let before = Reference.repoRoot + "/Tests/TransFaceCLITests/Fixtures/ShippedConfigsBeforeBases"

    func testEachRecipeResolvesToItsFormerConfiguration() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: before).filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted()
        XCTAssertEqual(names.count, 9)
        XCTAssertEqual(ShippedConfigs.names(), names)
        for name in names {
            let old = try TrainRunConfig.parse(try String(contentsOfFile: "\(before)/\(name).json", encoding: .utf8))
            let new = try TrainRunConfig.parse(try RunConfigBases.resolved(name).text)
            try assertSameRun(new, old, name)
        }
    }

    func testShowPrintsAFullConfigurationThatReadsBackToTheSameRun() throws {
        let folder = try Reference.temporaryFolder()
        for name in ShippedConfigs.names() {
            let shown = try CLI.run(["configs", "--show", name])
            XCTAssertEqual(shown.status, 0, shown.stderr)
            XCTAssertFalse(shown.stdout.contains("\"base\""), name)
            let file = "\(folder)/\(name).json"
            try shown.stdout.write(toFile: file, atomically: true, encoding: .utf8)
            try assertSameRun(try TrainRunConfig.parse(shown.stdout), try TrainRunConfig.parse(try RunConfigBases.resolved(name).text), name)
            // Shown again from the file: the same text (nothing left to fill in).
            XCTAssertEqual(try CLI.run(["configs", "--show", file]).stdout, shown.stdout, name)
        }
        let vitS = try CLI.run(["configs", "--show", "ms1mv2_vit_s"]).stdout
        for fragment in [#""betas": [0.9, 0.999]"#, #""non_finite": "refuse""#, #""num_classes": 85742"#, #""keep_checkpoints": 2"#,
                         #""flip": true"#, #""name": "lfw""#, #""epochs": 35"#] {
            XCTAssertTrue(vitS.contains(fragment), fragment)
        }
        // Decided by the data at run time: the schedule (epochs is set) and, for the demo, num_classes.
        XCTAssertFalse(vitS.contains("\"schedule\""))
        XCTAssertFalse(try CLI.run(["configs", "--show", "lfw_demo"]).stdout.contains("num_classes"))
        let set = try CLI.run(["configs", "--show", "ms1mv2_vit_s", "--set", "trainer.threads=16", "--set", "epochs=1"]).stdout
        XCTAssertTrue(set.contains(#""threads": 16"#) && set.contains(#""epochs": 1,"#), set)
    }

    func testMergeReplacesArraysAndScalarsAndMergesObjects() throws {
        let base = try JSONValue.parse(#"{"a": {"x": 1, "y": [1, 2], "z": {"p": 1}}, "b": [1, 2, 3], "c": 5, "d": {"q": 1}}"#)
        let child = try JSONValue.parse(#"{"a": {"y": [3], "z": {"r": 2}, "w": true}, "b": [], "c": null, "d": 7, "e": "new"}"#)
        XCTAssertEqual(RunConfigBases.merged(child, over: base),
                       try JSONValue.parse(#"{"a": {"x": 1, "y": [3], "z": {"p": 1, "r": 2}, "w": true}, "b": [], "c": null, "d": 7, "e": "new"}"#))
    }

    func testFilesOverBasesChainsLoopsAndErrors() throws {
        let folder = try Reference.temporaryFolder()
        func write(_ name: String, _ text: String) throws -> String {
            let path = "\(folder)/\(name).json"
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        // A file over a shipped recipe, then --set after the merge.
        let mine = try write("mine", #"{"base": "ms1mv2_vit_s", "trainer": {"optimizer": {"weight_decay": 0.05}}, "epochs": 10}"#)
        let run = try TrainRunConfig.parse(try TrainRunConfig.applyingAll(["trainer.optimizer.lr=0.002"], to: try RunConfigBases.resolved(mine).text))
        let trainer = try TrainerConfig.parse(try run.trainerJSON(datasetCount: 51200, datasetClasses: nil))
        XCTAssertEqual(run.epochs, 10)
        XCTAssertEqual(run.warmupEpochs, 3)
        XCTAssertEqual(run.output, "out/ms1mv2_vit_s")
        XCTAssertEqual(trainer.weightDecay, 0.05)
        XCTAssertEqual(trainer.learningRate, 0.002)
        XCTAssertEqual(trainer.model.arch, "vit_s_dp005_mask_0")
        XCTAssertEqual(trainer.batchSize, 512)
        XCTAssertEqual(trainer.maxSteps, 1000)
        // A chain of files.
        let middle = try write("middle", #"{"base": "\#(mine)", "output": "out/middle"}"#)
        XCTAssertEqual(try TrainRunConfig.parse(try RunConfigBases.resolved(middle).text).epochs, 10)

        func message(_ spec: String) -> String {
            do { _ = try RunConfigBases.resolved(spec); return "" } catch { return "\(error)" }
        }
        let a = "\(folder)/a.json", b = "\(folder)/b.json"
        _ = try write("a", #"{"base": "\#(b)"}"#)
        _ = try write("b", #"{"base": "\#(a)"}"#)
        XCTAssertEqual(message(a), "run.base: the bases loop: \(a) -> \(b) -> \(a)")
        var previous = "ms1mv2_vit_s"
        for i in 0..<8 { previous = try write("chain\(i)", #"{"base": "\#(previous)"}"#) }
        XCTAssertTrue(message(previous).hasPrefix("run.base: more than 8 configurations in the chain \(previous) -> "), message(previous))
        XCTAssertEqual(message(try write("number", #"{"base": 3}"#)), "\(folder)/number.json: run.base must be a string (a shipped configuration's name or a file)")
        XCTAssertTrue(message(try write("missing", #"{"base": "nothing_here"}"#)).hasPrefix("\(folder)/missing.json: run.base: no configuration file 'nothing_here'"))
        XCTAssertTrue(message(try write("broken", #"{"base": "#)).hasPrefix("\(folder)/broken.json: invalid JSON"))
        XCTAssertTrue(message("ms1mv2").hasPrefix("'ms1mv2' is a base of the shipped recipes"), message("ms1mv2"))
        // Unknown keys are still errors, wherever they come from.
        let unknown = try write("unknown", #"{"base": "glint360k_vit_b", "trainer": {"bogus": 1}}"#)
        let resolved = try TrainRunConfig.parse(try RunConfigBases.resolved(unknown).text)
        XCTAssertThrowsError(try resolved.trainerJSON(datasetCount: 1000, datasetClasses: nil).parsedAsTrainer()) {
            XCTAssertTrue("\($0)".contains("unknown key 'bogus'"), "\($0)")
        }
        XCTAssertThrowsError(try TrainRunConfig.parse(try RunConfigBases.resolved(try write("unknown2", #"{"base": "lfw_demo", "bogus": 1}"#)).text)) {
            XCTAssertTrue("\($0)".contains("unknown key 'bogus'"), "\($0)")
        }
    }

    func testBasesAreNotListedNorRunnableButPrintable() throws {
        let list = try CLI.run(["configs"]).stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(list, ShippedConfigs.names())
        XCTAssertEqual(ShippedConfigs.baseNames(), ["base", "glint360k", "ms1mv2"])
        XCTAssertTrue(Set(list).isDisjoint(with: ShippedConfigs.baseNames()))
        for base in ShippedConfigs.baseNames() {
            XCTAssertEqual(try CLI.run(["configs", base]).status, 0, base)
            let shown = try CLI.run(["configs", "--show", base])
            XCTAssertEqual(shown.status, 0, shown.stderr)
            XCTAssertFalse(shown.stdout.contains("\"base\""), base)
        }
        let refused = try CLI.run(["train", "--config", "ms1mv2", "--output", try Reference.temporaryFolder()])
        XCTAssertEqual(refused.status, 1)
        XCTAssertEqual(refused.errorLines.count, 1, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("is a base of the shipped recipes"), refused.stderr)
    }

    /// Both configurations run the same: every run-level field, and the trainer configuration as
    /// the run completes it (num_classes and schedule from a stand-in dataset).
    private func assertSameRun(_ a: TrainRunConfig, _ b: TrainRunConfig, _ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(a.data, b.data, name, file: file, line: line)
        XCTAssertEqual(a.landmarks, b.landmarks, name, file: file, line: line)
        XCTAssertEqual(a.preferLandmarks, b.preferLandmarks, name, file: file, line: line)
        XCTAssertEqual(a.loaderThreads, b.loaderThreads, name, file: file, line: line)
        XCTAssertEqual(a.flip, b.flip, name, file: file, line: line)
        XCTAssertEqual(a.epochs, b.epochs, name, file: file, line: line)
        XCTAssertEqual(a.warmupEpochs, b.warmupEpochs, name, file: file, line: line)
        XCTAssertEqual(a.valTargets, b.valTargets, name, file: file, line: line)
        XCTAssertEqual(a.valEvery, b.valEvery, name, file: file, line: line)
        XCTAssertEqual(a.checkpointEvery, b.checkpointEvery, name, file: file, line: line)
        XCTAssertEqual(a.keepCheckpoints, b.keepCheckpoints, name, file: file, line: line)
        XCTAssertEqual(a.logEvery, b.logEvery, name, file: file, line: line)
        XCTAssertEqual(a.output, b.output, name, file: file, line: line)
        for (count, classes) in [(5_822_653, 85742), (2_000, 298)] {
            XCTAssertEqual(try a.trainerJSON(datasetCount: count, datasetClasses: classes).parsedAsTrainer(),
                           try b.trainerJSON(datasetCount: count, datasetClasses: classes).parsedAsTrainer(), name, file: file, line: line)
        }
        XCTAssertEqual(try a.resolvedJSON(), try b.resolvedJSON(), name, file: file, line: line)
    }
}

private extension String {
    func parsedAsTrainer() throws -> TrainerConfig { try TrainerConfig.parse(self) }
}
