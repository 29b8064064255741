/// float32 ↔ IEEE float16 conversions over flat buffers (F16C instructions on x86-64).

/// `dst[i] = half(src[i])`, round to nearest even.
func convertToHalf(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<UInt16>, count: Int) {
    for i in 0..<count { dst[i] = Float16(src[i]).bitPattern }
}

/// `dst[i] = float(src[i])`, exact.
func convertFromHalf(_ src: UnsafePointer<UInt16>, _ dst: UnsafeMutablePointer<Float>, count: Int) {
    for i in 0..<count { dst[i] = Float(Float16(bitPattern: src[i])) }
}
