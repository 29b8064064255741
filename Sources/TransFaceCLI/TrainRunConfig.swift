import TFCore
import TFTrain

/// A training run as `transface train` reads it: the trainer's configuration plus where the data
/// comes from, what to evaluate and where to write. Documented field by field in
/// `Sources/TransFaceCLI/Configs/README.md`; an unknown key is an error naming it.
struct TrainRunConfig {
    /// Where the training images come from.
    enum DataSource: Equatable {
        case recordIO(path: String)
        case folder(path: String)
        case list(path: String, root: String?, im2rec: Bool)
    }

    /// One verification set evaluated during and after training (the official `val_targets`).
    struct ValTarget: Equatable {
        enum Kind: Equatable {
            case bin(path: String)
            case pairs(path: String, root: String?, landmarks: String?, interleavedFolds: Bool)
        }
        var name: String
        var kind: Kind
    }

    /// The trainer's JSON object (`TrainerConfig`), completed by `trainerJSON(...)`.
    var trainer: JSONValue
    var data: DataSource
    /// 5-point landmarks to align list/folder images on the fly (LandmarkTable TSV), and the
    /// landmark sources to prefer when an image has several.
    var landmarks: String?
    var preferLandmarks: [String]
    var loaderThreads: Int
    var flip: Bool
    var epochs: Double?
    var warmupEpochs: Double
    var valTargets: [ValTarget]
    var valEvery: Int
    var checkpointEvery: Int
    var keepCheckpoints: Int
    var logEvery: Int
    var output: String

    /// Reads a run configuration; `overrides` are `key.path=value` settings applied first
    /// (value parsed as JSON, else taken as a string).
    static func parse(_ text: String, overrides: [String] = []) throws -> TrainRunConfig {
        var root = try JSONObjectReader(try JSONValue.parse(try applyingAll(overrides, to: text)), path: "run")
        guard let trainer = root.value("trainer") else { throw TransFaceError.invalidArgument("run.trainer is required (the trainer configuration)") }
        guard var d = try root.object("data") else { throw TransFaceError.invalidArgument("run.data is required") }
        let sources = ["rec", "folder", "list"].filter { d.has($0) }
        guard sources.count == 1 else {
            throw TransFaceError.invalidArgument("run.data needs exactly one of \"rec\", \"folder\" or \"list\"")
        }
        let data: DataSource
        switch sources[0] {
        case "rec": data = .recordIO(path: try d.string("rec"))
        case "folder": data = .folder(path: try d.string("folder"))
        default:
            let format = try d.string("format", default: "path_label", oneOf: ["path_label", "im2rec"])
            data = .list(path: try d.string("list"), root: d.has("root") ? try d.string("root") : nil, im2rec: format == "im2rec")
        }
        let landmarks = d.has("landmarks") ? try d.string("landmarks") : nil
        var prefer: [String] = []
        if let p = d.value("prefer_landmarks") {
            guard case .array(let items) = p else { throw TransFaceError.invalidArgument("run.data.prefer_landmarks must be an array of strings") }
            prefer = try items.map { item -> String in
                guard case .string(let s) = item else { throw TransFaceError.invalidArgument("run.data.prefer_landmarks must be an array of strings") }
                return s
            }
        }
        if landmarks != nil, case .recordIO = data {
            throw TransFaceError.invalidArgument("run.data.landmarks is for \"list\" and \"folder\" data (RecordIO images are aligned already)")
        }
        let loaderThreads = try d.integer("threads", default: 2, in: 1...64)
        let flip = try d.bool("flip", default: true)
        try d.finish()

        var targets: [ValTarget] = []
        if let v = root.value("val_targets") {
            guard case .array(let items) = v else { throw TransFaceError.invalidArgument("run.val_targets must be an array") }
            for (i, item) in items.enumerated() {
                var t = try JSONObjectReader(item, path: "run.val_targets[\(i)]")
                if t.has("bin") {
                    let path = try t.string("bin")
                    targets.append(ValTarget(name: try t.string("name", default: baseName(path)), kind: .bin(path: path)))
                } else if t.has("pairs") {
                    let path = try t.string("pairs")
                    let kind = ValTarget.Kind.pairs(path: path, root: t.has("root") ? try t.string("root") : nil,
                                                    landmarks: t.has("landmarks") ? try t.string("landmarks") : nil,
                                                    interleavedFolds: try t.bool("interleaved_folds", default: false))
                    targets.append(ValTarget(name: try t.string("name", default: baseName(path)), kind: kind))
                } else {
                    throw TransFaceError.invalidArgument("run.val_targets[\(i)] needs \"bin\" or \"pairs\"")
                }
                try t.finish()
            }
        }
        let epochs = root.has("epochs") ? try root.number("epochs", in: 1e-6...1e6) : nil
        let warmupEpochs = try root.number("warmup_epochs", default: 0, in: 0...1e6)
        if !root.has("epochs") && root.has("warmup_epochs") {
            throw TransFaceError.invalidArgument("run.warmup_epochs needs run.epochs")
        }
        let config = TrainRunConfig(
            trainer: trainer, data: data, landmarks: landmarks, preferLandmarks: prefer, loaderThreads: loaderThreads, flip: flip,
            epochs: epochs, warmupEpochs: warmupEpochs, valTargets: targets,
            valEvery: try root.integer("val_every", default: 0, in: 0...Int(Int32.max)),
            checkpointEvery: try root.integer("checkpoint_every", default: 1000, in: 0...Int(Int32.max)),
            keepCheckpoints: try root.integer("keep_checkpoints", default: 2, in: 1...1000),
            logEvery: try root.integer("log_every", default: 50, in: 1...Int(Int32.max)),
            output: try root.string("output", default: "out/train"))
        try root.finish()
        return config
    }

    /// The trainer's JSON with what the run decides filled in: `num_classes` from the data when
    /// absent, and with `epochs`, `schedule.max_steps`/`warmup_steps` from the dataset size (as the
    /// official configs derive `total_step` from `num_epoch` and `num_image`).
    func trainerJSON(datasetCount: Int, datasetClasses: Int?) throws -> String {
        guard case .object(var members) = trainer else { throw TransFaceError.invalidArgument("run.trainer must be a JSON object") }
        func set(_ key: String, _ value: JSONValue, in list: inout [(key: String, value: JSONValue)]) {
            if let i = list.firstIndex(where: { $0.key == key }) { list[i].value = value } else { list.append((key, value)) }
        }
        if !members.contains(where: { $0.key == "num_classes" }) {
            guard let classes = datasetClasses else {
                throw TransFaceError.invalidArgument("run.trainer.num_classes is needed: the data does not say how many classes it has")
            }
            set("num_classes", .number(Double(classes)), in: &members)
        }
        if let epochs {
            // An optimizer step takes batch_size × gradient_accumulation images.
            func member(_ key: String, _ fallback: Double) -> Double {
                if let m = members.first(where: { $0.key == key })?.value, case .number(let v) = m, v >= 1 { return v }
                return fallback
            }
            let imagesPerStep = Int(min(member("batch_size", 32) * member("gradient_accumulation", 1), 1e9))
            let perEpoch = Double(datasetCount / imagesPerStep)
            guard perEpoch >= 1 else { throw TransFaceError.invalidArgument("the data holds fewer images (\(datasetCount)) than one batch") }
            var schedule: [(key: String, value: JSONValue)] = []
            if let s = members.first(where: { $0.key == "schedule" })?.value, case .object(let m) = s { schedule = m }
            set("max_steps", .number((epochs * perEpoch).rounded(.down)), in: &schedule)
            set("warmup_steps", .number((warmupEpochs * perEpoch).rounded(.down)), in: &schedule)
            set("schedule", .object(schedule), in: &members)
        }
        return JSONValue.object(members).text
    }

    /// The run configuration `text` with `overrides` applied, as JSON text (saved as run.json).
    static func applyingAll(_ overrides: [String], to text: String) throws -> String {
        var document = try JSONValue.parse(text)
        for o in overrides { document = try applying(o, to: document) }
        return document.text
    }

    /// `a.b.c=value` applied to a JSON document (objects are created along the path).
    static func applying(_ assignment: String, to document: JSONValue) throws -> JSONValue {
        guard let eq = assignment.firstIndex(of: "=") else {
            throw TransFaceError.invalidArgument("--set '\(assignment)' is not KEY.PATH=VALUE")
        }
        let keys = assignment[..<eq].split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard !keys.contains(where: \.isEmpty) else { throw TransFaceError.invalidArgument("--set '\(assignment)': empty key") }
        let text = String(assignment[assignment.index(after: eq)...])
        return try setting(keys, to: (try? JSONValue.parse(text)) ?? .string(text), in: document)
    }

    /// `document` with the member at `keys` set to `value` (objects are created along the path).
    static func setting(_ keys: [String], to value: JSONValue, in document: JSONValue) throws -> JSONValue {
        func put(_ node: JSONValue, _ path: ArraySlice<String>) throws -> JSONValue {
            guard let key = path.first else { return value }
            var members: [(key: String, value: JSONValue)] = []
            switch node {
            case .object(let m): members = m
            case .null: break
            default: throw TransFaceError.invalidArgument("cannot set '\(keys.joined(separator: "."))': '\(key)' is inside a value that is not an object")
            }
            let child = members.first { $0.key == key }?.value ?? .null
            let updated = try put(child, path.dropFirst())
            if let i = members.firstIndex(where: { $0.key == key }) { members[i].value = updated } else { members.append((key, updated)) }
            return .object(members)
        }
        return try put(document, keys[...])
    }

    private static func baseName(_ path: String) -> String {
        let file = path.split(separator: "/").last.map(String.init) ?? path
        if let dot = file.lastIndex(of: "."), dot != file.startIndex { return String(file[..<dot]) }
        return file
    }
}
