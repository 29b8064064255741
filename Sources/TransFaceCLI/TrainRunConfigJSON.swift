import TFCore
import TFTrain

extension TrainRunConfig {
    /// This run configuration in full, as `transface configs --show` prints it: every run-level
    /// field and every trainer setting written out (`TrainerConfig.resolvedJSON`), JSON that
    /// `parse` reads back to the same configuration. Left out are what the run decides from the
    /// data — `trainer.num_classes` when absent (the data's class count) and, when `epochs` is
    /// set, `trainer.schedule` (steps from the data's size) — and the paths that have no written
    /// default: `data.root` and `val_targets[i].root` (the list's folder), `landmarks` (none).
    func resolvedJSON() throws -> JSONValue {
        var members: [(key: String, value: JSONValue)] = [("trainer", try resolvedTrainer()), ("data", resolvedData)]
        if let epochs { members += [("epochs", .number(epochs)), ("warmup_epochs", .number(warmupEpochs))] }
        members += [
            ("val_targets", .array(valTargets.map(\.resolvedJSON))), ("val_every", int(valEvery)),
            ("checkpoint_every", int(checkpointEvery)), ("keep_checkpoints", int(keepCheckpoints)),
            ("log_every", int(logEvery)), ("output", .string(output)),
        ]
        return .object(members)
    }

    /// The trainer's settings in full, without the ones the data decides.
    private func resolvedTrainer() throws -> JSONValue {
        guard case .object(var given) = trainer else { throw TransFaceError.invalidArgument("run.trainer must be a JSON object") }
        let classesGiven = given.contains { $0.key == "num_classes" }
        if !classesGiven { given.append(("num_classes", .number(1))) }  // a stand-in, left out below
        guard case .object(let members) = try TrainerConfig.parse(JSONValue.object(given).text).resolvedJSON else { return .null }
        let decided = (classesGiven ? [] : ["num_classes"]) + (epochs == nil ? [] : ["schedule"])
        return .object(members.filter { !decided.contains($0.key) })
    }

    private var resolvedData: JSONValue {
        var members: [(key: String, value: JSONValue)]
        switch data {
        case .recordIO(let path): members = [("rec", .string(path))]
        case .folder(let path): members = [("folder", .string(path))]
        case .list(let path, let root, let im2rec):
            members = [("list", .string(path)), ("format", .string(im2rec ? "im2rec" : "path_label"))]
            if let root { members.append(("root", .string(root))) }
        }
        if let landmarks { members.append(("landmarks", .string(landmarks))) }
        members += [("prefer_landmarks", .array(preferLandmarks.map(JSONValue.string))), ("threads", int(loaderThreads)), ("flip", .bool(flip))]
        return .object(members)
    }
}

extension TrainRunConfig.ValTarget {
    /// This target with every field written out (as `TrainRunConfig.resolvedJSON`).
    var resolvedJSON: JSONValue {
        switch kind {
        case .bin(let path): return .object([("name", .string(name)), ("bin", .string(path))])
        case .pairs(let path, let root, let landmarks, let interleavedFolds):
            var members: [(key: String, value: JSONValue)] = [("name", .string(name)), ("pairs", .string(path))]
            if let root { members.append(("root", .string(root))) }
            if let landmarks { members.append(("landmarks", .string(landmarks))) }
            members.append(("interleaved_folds", .bool(interleavedFolds)))
            return .object(members)
        }
    }
}

private func int(_ n: Int) -> JSONValue { .number(Double(n)) }
