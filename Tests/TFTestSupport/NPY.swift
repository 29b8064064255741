import Foundation
import TFCore

/// A NumPy `.npy` array (format 1.0/2.0, little-endian, C order) read as float32 values.
public struct NPYArray {
    public let shape: [Int]
    public let values: [Float]
    /// The raw bytes for uint8 arrays.
    public let bytes: [UInt8]

    public init(path: String) throws {
        let file = try ReadableFile(path: path)
        let all = try file.readBytes(at: 0, count: Int(file.size))
        guard all.count > 10, all[0] == 0x93, Array(all[1...5]) == Array("NUMPY".utf8) else {
            throw TransFaceError.format("\(path): not an .npy file")
        }
        let major = all[6]
        let headerLength = major == 1 ? Int(all[8]) | Int(all[9]) << 8
            : Int(all[8]) | Int(all[9]) << 8 | Int(all[10]) << 16 | Int(all[11]) << 24
        let start = major == 1 ? 10 : 12
        let header = String(decoding: all[start..<(start + headerLength)], as: UTF8.self)
        func field(_ key: String) -> String? {
            guard let r = header.range(of: "'\(key)': ") else { return nil }
            return String(header[r.upperBound...])
        }
        guard let descrRest = field("descr"), let shapeRest = field("shape"),
              field("fortran_order")?.hasPrefix("False") == true else {
            throw TransFaceError.format("\(path): unsupported npy header \(header)")
        }
        let descr = String(descrRest.dropFirst().prefix { $0 != "'" })
        let dims = shapeRest.dropFirst().prefix { $0 != ")" }.split(separator: ",")
            .compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        shape = dims
        let count = dims.reduce(1, *)
        let data = Array(all[(start + headerLength)...])
        func load<T>(_: T.Type, _ convert: (T) -> Float) -> [Float] {
            data.withUnsafeBytes { raw in (0..<count).map { convert(raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self)) } }
        }
        switch descr {
        case "<f4": values = load(Float.self) { $0 }; bytes = []
        case "<f8": values = load(Double.self) { Float($0) }; bytes = []
        case "<i8": values = load(Int64.self) { Float($0) }; bytes = []
        case "<i4": values = load(Int32.self) { Float($0) }; bytes = []
        case "|u1": bytes = Array(data.prefix(count)); values = bytes.map(Float.init)
        case "|b1": bytes = Array(data.prefix(count)); values = bytes.map(Float.init)
        default: throw TransFaceError.format("\(path): unsupported dtype \(descr)")
        }
    }
}

