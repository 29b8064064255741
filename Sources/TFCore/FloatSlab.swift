#if canImport(Glibc)
import Glibc
#endif

/// One 64-byte-aligned, zero-initialised allocation of `Float`s that views are cut from.
/// Parameters, gradients, moments and activations each live in one slab.
public final class FloatSlab {
    public let count: Int
    public let base: UnsafeMutablePointer<Float>

    public static let alignment = 64

    /// Allocates `count` zeroed floats; throws `outOfMemory` instead of trapping.
    public init(count: Int) throws {
        guard count >= 0 else { throw TransFaceError.invalidArgument("slab size \(count) is negative") }
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        guard bytes / MemoryLayout<Float>.stride == max(count, 1) else {
            throw TransFaceError(.outOfMemory, "slab of \(count) floats overflows")
        }
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, FloatSlab.alignment, bytes) == 0, let raw else {
            throw TransFaceError(.outOfMemory, "cannot allocate \(bytes) bytes")
        }
        memset(raw, 0, bytes)
        self.count = count
        self.base = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    deinit { free(base) }

    /// A mutable view of `length` floats starting at `offset`.
    @inlinable
    public func view(_ offset: Int, _ length: Int) -> UnsafeMutableBufferPointer<Float> {
        precondition(offset >= 0 && length >= 0 && offset + length <= count, "slab view out of range")
        return UnsafeMutableBufferPointer(start: base + offset, count: length)
    }

    public var all: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: base, count: count) }

    public func zero() { memset(base, 0, count * MemoryLayout<Float>.stride) }
}

/// Hands out consecutive 64-byte-aligned regions of a slab; used to lay out workspaces.
public struct SlabPlanner {
    public private(set) var total = 0

    public init() {}

    /// Reserves `length` floats and returns their offset (aligned to 16 floats = 64 bytes).
    public mutating func reserve(_ length: Int) -> Int {
        let offset = total
        total += (length + 15) / 16 * 16
        return offset
    }
}
