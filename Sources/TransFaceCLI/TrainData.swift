import TFCore
import TFData
import TFEval
import TFImage
import TFWiring

/// The training set of a run and the function that turns its encoded samples into model
/// inputs: decoded, and aligned on the fly when a landmark table is given.
struct TrainData {
    let dataset: FaceDataset
    /// Landmarks by sample name, when the run aligns on the fly.
    private var landmarks: [String: [Float]]?

    /// Opens the data of `run` (and checks that every listed image has landmarks, when it aligns).
    init(_ run: TrainRunConfig) throws {
        switch run.data {
        case .recordIO(let path):
            dataset = try RecordIODataset(path: path)
        case .folder(let path):
            dataset = ImageListDataset(try LabeledImageList.imageFolder(path))
        case .list(let path, let root, let im2rec):
            dataset = ImageListDataset(try LabeledImageList.listFile(path, root: root, format: im2rec ? .im2rec : .pathLabel))
        }
        guard let landmarksPath = run.landmarks else { return }
        let table = try LandmarkTable(path: landmarksPath)
        guard let list = (dataset as? ImageListDataset)?.list else {
            throw TransFaceError.invalidArgument("landmarks need list or folder data")
        }
        // Landmarks are looked up by the path as the list names it (relative to its root).
        var points: [String: [Float]] = [:]
        for i in 0..<list.count {
            guard let p = table.points(for: list.paths[i], preferring: run.preferLandmarks) else {
                throw TransFaceError.notFound("no landmarks for '\(list.paths[i])' in '\(landmarksPath)'")
            }
            points[dataset.name(at: i)] = p
        }
        landmarks = points
    }

    /// Model inputs from encoded samples: decoded, and aligned to `template` as `size × size`
    /// faces when the run has landmarks (else the images must be `size × size` already).
    func decoder(size: Int, template: [Float]) -> ImageDecodeFunction {
        guard let landmarks else { return DataLoader.standardDecoder }
        let preparer = FacePreparer.standard
        return { bytes, name in
            guard let lm = landmarks[name] else { throw TransFaceError.notFound("no landmarks for '\(name)'") }
            return (try preparer.prepare(bytes, name: name, landmarks: lm, template: template, size: size), size, size)
        }
    }
}
