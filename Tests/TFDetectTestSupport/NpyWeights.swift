import Foundation
import TFCore
import TFModel
import TFTestSupport

/// Development weights of the detector: one little-endian float32 `.npy` file per tensor of
/// `DetectorModel.layout` (`pnet.conv1.weight.npy`, ...) in the folder `TRANSFACE_MTCNN_WEIGHTS`
/// names (made from facenet-pytorch's .pt files: see Tests/TFDetectTests/README.md). Tests switch
/// to the model file format by replacing this loader.
public enum NpyWeights {
    public static let environmentVariable = "TRANSFACE_MTCNN_WEIGHTS"

    /// The folder, or nil (with the reason printed) when the variable is unset or the folder has no weights.
    public static func folder() -> String? {
        guard let dir = ProcessInfo.processInfo.environment[environmentVariable], !dir.isEmpty else {
            print("skipping: \(environmentVariable) is not set (a folder of pnet.conv1.weight.npy ...)")
            return nil
        }
        guard FileManager.default.fileExists(atPath: dir + "/pnet.conv1.weight.npy") else {
            print("skipping: \(environmentVariable)=\(dir) has no pnet.conv1.weight.npy")
            return nil
        }
        return dir
    }

    /// The model from the .npy files of `folder`, with `config`.
    public static func model(folder: String, config: DetectorConfig = DetectorConfig()) throws -> DetectorModel {
        var tensors: [String: DetectorModel.Tensor] = [:]
        for (name, _) in DetectorModel.layout {
            tensors[name] = try read(folder + "/" + name + ".npy")
        }
        return try DetectorModel(config: config, tensors: tensors)
    }

    /// One tensor (TFTestSupport's .npy reader: C order).
    public static func read(_ path: String) throws -> DetectorModel.Tensor {
        let a = try NPYArray(path: path)
        return DetectorModel.Tensor(shape: a.shape, values: a.values)
    }
}
