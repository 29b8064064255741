import CZlib

/// zlib's CRC-32 of a byte range, continuing from `previous` (0 to start).
public func crc32(_ bytes: UnsafeRawBufferPointer, previous: UInt32 = 0) -> UInt32 {
    guard let base = bytes.baseAddress, bytes.count > 0 else { return previous }
    return UInt32(truncatingIfNeeded: crc32_z(UInt(previous), base.assumingMemoryBound(to: UInt8.self), bytes.count))
}
