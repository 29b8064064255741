/// A fast 64-bit checksum of a byte range, for the gallery snapshot (gigabytes, where zlib's
/// CRC-32 at ~1 GB/s would cost more than the load it saves): 64 lanes of 32 bits, each
/// `h = rotl((h ^ word) × 0x9E3779B1, 13)` over its words (bijective in h, so any change of one
/// word, and almost any other damage, changes the result), then the lanes, the tail bytes and
/// the length folded by FNV-1a. Not cryptographic: it finds damage, not forgery.
func checksum64(_ b: UnsafeRawBufferPointer) -> UInt64 {
    let prime = SIMD16<UInt32>(repeating: 0x9E37_79B1)
    var h0 = SIMD16<UInt32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) &+ 0x811C_9DC5
    var h1 = h0 &+ 16, h2 = h0 &+ 32, h3 = h0 &+ 48
    @inline(__always) func step(_ h: inout SIMD16<UInt32>, _ x: SIMD16<UInt32>) {
        let m = (h ^ x) &* prime
        h = (m &<< 13) | (m &>> 19)
    }
    var p = 0
    if let base = b.baseAddress {
        while p + 256 <= b.count {
            step(&h0, base.loadUnaligned(fromByteOffset: p, as: SIMD16<UInt32>.self))
            step(&h1, base.loadUnaligned(fromByteOffset: p + 64, as: SIMD16<UInt32>.self))
            step(&h2, base.loadUnaligned(fromByteOffset: p + 128, as: SIMD16<UInt32>.self))
            step(&h3, base.loadUnaligned(fromByteOffset: p + 192, as: SIMD16<UInt32>.self))
            p += 256
        }
    }
    var f: UInt64 = 0xcbf2_9ce4_8422_2325
    @inline(__always) func fold(_ v: UInt64) { f = (f ^ v) &* 0x100_0000_01b3 }
    for h in [h0, h1, h2, h3] { for i in 0..<16 { fold(UInt64(h[i])) } }
    while p < b.count { fold(UInt64(b[p])); p += 1 }
    fold(UInt64(b.count))
    return f
}
