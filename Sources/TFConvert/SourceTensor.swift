import TFCore

/// One array of a conversion source (a torch.save file or an `.npz`): shape and dtype up front,
/// values on `load()` as contiguous little-endian elements in C order.
public final class SourceTensor {
    public let shape: [Int]
    /// numpy dtype name ("float32", "float16", "float64", "int64", ...) or "bfloat16".
    public let dtype: String
    private let loader: () throws -> [UInt8]

    public init(shape: [Int], dtype: String, loader: @escaping () throws -> [UInt8]) {
        self.shape = shape; self.dtype = dtype; self.loader = loader
    }

    public func load() throws -> [UInt8] { try loader() }

    /// Element size of the dtypes sources hold (0: unknown).
    public static func itemSize(_ dtype: String) -> Int {
        switch dtype {
        case "float64", "int64", "uint64": return 8
        case "float32", "int32", "uint32": return 4
        case "float16", "bfloat16", "int16", "uint16": return 2
        case "int8", "uint8", "bool": return 1
        default: return 0
        }
    }

    /// Copies the strided view (`offset`, `shape`, `stride` in elements) of `storage` (elements
    /// of `itemSize` bytes, `swap`: big-endian) into contiguous little-endian C order. The
    /// caller has checked that the view stays inside the storage.
    static func gather(_ storage: [UInt8], itemSize: Int, offset: Int, shape: [Int], stride: [Int], swap: Bool) -> [UInt8] {
        let count = shape.reduce(1, *)
        var out = [UInt8](repeating: 0, count: count * itemSize)
        guard count > 0 else { return out }
        var idx = [Int](repeating: 0, count: shape.count)
        var src = offset
        storage.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { d in
                for k in 0..<count {
                    for b in 0..<itemSize { d[k * itemSize + b] = s[src * itemSize + (swap ? itemSize - 1 - b : b)] }
                    // advance the multi-index (last dimension fastest)
                    var j = shape.count - 1
                    while j >= 0 {
                        idx[j] += 1; src += stride[j]
                        if idx[j] < shape[j] { break }
                        src -= stride[j] * shape[j]; idx[j] = 0; j -= 1
                    }
                }
            }
        }
        return out
    }
}

extension SourceTensor {
    /// The values as float32 (float64 rounded, float16 and bfloat16 widened); other dtypes are
    /// refused naming `what`.
    public func floats(_ what: String) throws -> [Float] {
        guard ["float32", "float64", "float16", "bfloat16"].contains(dtype) else {
            throw TransFaceError.format("\(what) holds \(dtype) values, not floating point")
        }
        let raw = try load()
        let count = try checkedProduct(shape, what: what)
        guard raw.count == count * Self.itemSize(dtype) else { throw TransFaceError.format("\(what): \(raw.count) bytes for \(count) \(dtype) values") }
        return raw.withUnsafeBytes { b in
            switch dtype {
            case "float32": return (0..<count).map { Float(bitPattern: UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
            case "float64": return (0..<count).map { Float(Double(bitPattern: UInt64(littleEndian: b.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self)))) }
            case "float16": return (0..<count).map { Float(Float16(bitPattern: UInt16(littleEndian: b.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)))) }
            case "bfloat16": return (0..<count).map { Float(bitPattern: UInt32(UInt16(littleEndian: b.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) << 16) }
            default: return []
            }
        }
    }
}
