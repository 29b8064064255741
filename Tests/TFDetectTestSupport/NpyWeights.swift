import Foundation
import TFCore
import TFModel

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

    /// A C-order `<f4` .npy file (format versions 1–3).
    public static func read(_ path: String) throws -> DetectorModel.Tensor {
        guard let data = FileManager.default.contents(atPath: path) else { throw TransFaceError.io("cannot read '\(path)'") }
        let bytes = [UInt8](data)
        guard bytes.count >= 10, bytes[0] == 0x93, String(decoding: bytes[1..<6], as: UTF8.self) == "NUMPY" else {
            throw TransFaceError.format("'\(path)' is not a .npy file")
        }
        let major = bytes[6]
        let (headerLength, start) = major == 1 ? (Int(bytes[8]) | Int(bytes[9]) << 8, 10)
            : (Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24, 12)
        guard bytes.count >= start + headerLength else { throw TransFaceError.format("'\(path)': truncated header") }
        let header = String(decoding: bytes[start..<(start + headerLength)], as: UTF8.self)
        guard header.contains("'descr': '<f4'"), header.contains("'fortran_order': False"),
              let open = header.range(of: "'shape': ("), let close = header[open.upperBound...].firstIndex(of: ")") else {
            throw TransFaceError.format("'\(path)': only C-order float32 arrays are read (header \(header))")
        }
        let shape = header[open.upperBound..<close].split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let count = shape.reduce(1, *), body = start + headerLength
        guard bytes.count == body + count * 4 else { throw TransFaceError.format("'\(path)': \(bytes.count - body) data bytes for shape \(shape)") }
        let values = bytes[body...].withUnsafeBytes { raw in (0..<count).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) } }
        return DetectorModel.Tensor(shape: shape, values: values)
    }
}
