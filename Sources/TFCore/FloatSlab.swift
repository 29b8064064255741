#if canImport(Glibc)
import Glibc
#endif

/// One 64-byte-aligned, zero-initialised allocation of `Float`s that views are cut from.
/// Parameters, gradients, moments and activations each live in one slab. Slabs of 2 MiB and
/// more are anonymous mappings (zero pages from the kernel, no memset) aligned to 2 MiB and
/// marked for transparent huge pages: fewer page faults when a model loads and fewer TLB
/// misses in the GEMMs that stream weights and activations.
public final class FloatSlab {
    public let count: Int
    public let base: UnsafeMutablePointer<Float>
    /// The mapping behind a large slab (nil: a heap allocation).
    private let mapping: (start: UnsafeMutableRawPointer, bytes: Int)?

    public static let alignment = 64
    static let hugePage = 2 << 20

    /// Allocates `count` zeroed floats; throws `outOfMemory` instead of trapping.
    public init(count: Int) throws {
        guard count >= 0 else { throw TransFaceError.invalidArgument("slab size \(count) is negative") }
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        guard bytes / MemoryLayout<Float>.stride == max(count, 1), bytes <= Int.max - FloatSlab.hugePage else {
            throw TransFaceError(.outOfMemory, "slab of \(count) floats overflows")
        }
        self.count = count
        if bytes >= FloatSlab.hugePage {
            let mapped = bytes + FloatSlab.hugePage
            guard let start = mmap(nil, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
                  start != MAP_FAILED else {
                throw TransFaceError(.outOfMemory, "cannot allocate \(bytes) bytes")
            }
            let address = UInt(bitPattern: start)
            let aligned = (address + UInt(FloatSlab.hugePage - 1)) & ~UInt(FloatSlab.hugePage - 1)
            let first = start + Int(aligned - address)
            _ = madvise(first, bytes, MADV_HUGEPAGE)  // advice only: ignored where THP is off
            mapping = (start, mapped)
            base = first.bindMemory(to: Float.self, capacity: count)
        } else {
            var raw: UnsafeMutableRawPointer?
            guard posix_memalign(&raw, FloatSlab.alignment, bytes) == 0, let raw else {
                throw TransFaceError(.outOfMemory, "cannot allocate \(bytes) bytes")
            }
            memset(raw, 0, bytes)
            mapping = nil
            base = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        }
    }

    deinit {
        if let mapping { munmap(mapping.start, mapping.bytes) } else { free(base) }
    }

    /// A mutable view of `length` floats starting at `offset`.
    @inlinable
    public func view(_ offset: Int, _ length: Int) -> UnsafeMutableBufferPointer<Float> {
        precondition(offset >= 0 && length >= 0 && offset + length <= count, "slab view out of range")
        return UnsafeMutableBufferPointer(start: base + offset, count: length)
    }

    public var all: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: base, count: count) }

    public func zero() { memset(base, 0, count * MemoryLayout<Float>.stride) }

    /// Declares that `length` floats from `offset` will stay zero and unwritten: no huge page is
    /// formed over them, so writing their neighbours does not bring them into memory.
    public func leaveUnwritten(_ offset: Int, _ length: Int) {
        precondition(offset >= 0 && length >= 0 && offset + length <= count, "slab range out of bounds")
        guard mapping != nil else { return }
        let page = UInt(sysconf(Int32(_SC_PAGESIZE)))
        let start = (UInt(bitPattern: base + offset) + page - 1) & ~(page - 1)
        let end = UInt(bitPattern: base + offset + length) & ~(page - 1)
        if end > start { _ = madvise(UnsafeMutableRawPointer(bitPattern: start), Int(end - start), MADV_NOHUGEPAGE) }
    }
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
