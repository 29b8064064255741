import TFCore
import TFTestSupport

/// A float64-exact `.npy` reader (TFTestSupport's NPYArray converts to Float).
struct NPY64 {
    let shape: [Int]
    let doubles: [Double]
    let bools: [Bool]

    init(_ relative: String) throws {
        let path = Reference.path(relative) + ".npy"
        let file = try ReadableFile(path: path)
        let all = try file.readBytes(at: 0, count: Int(file.size))
        let headerLength = Int(all[8]) | Int(all[9]) << 8
        let header = String(decoding: all[10..<(10 + headerLength)], as: UTF8.self)
        let data = Array(all[(10 + headerLength)...])
        let shapeText = header.split(separator: "(", maxSplits: 1)[1].prefix { $0 != ")" }
        shape = shapeText.split(separator: ",").compactMap { Int($0.filter { !$0.isWhitespace }) }
        let count = shape.reduce(1, *)
        if header.contains("'<f8'") {
            doubles = data.withUnsafeBytes { raw in (0..<count).map { raw.loadUnaligned(fromByteOffset: 8 * $0, as: Double.self) } }
            bools = []
        } else if header.contains("'|b1'") {
            bools = data.prefix(count).map { $0 != 0 }
            doubles = bools.map { $0 ? 1 : 0 }
        } else {
            throw TransFaceError.format("\(path): unsupported dtype in \(header)")
        }
    }
}
