/// Unaligned 16-lane loads and stores over float pointers.
@usableFromInline typealias F16 = SIMD16<Float>

extension UnsafePointer where Pointee == Float {
    @inlinable @inline(__always)
    func load16(_ i: Int) -> SIMD16<Float> { UnsafeRawPointer(self + i).loadUnaligned(as: SIMD16<Float>.self) }
}

extension UnsafeMutablePointer where Pointee == Float {
    @inlinable @inline(__always)
    func load16(_ i: Int) -> SIMD16<Float> { UnsafeRawPointer(self + i).loadUnaligned(as: SIMD16<Float>.self) }

    @inlinable @inline(__always)
    func store16(_ v: SIMD16<Float>, _ i: Int) { UnsafeMutableRawPointer(self + i).storeBytes(of: v, as: SIMD16<Float>.self) }
}

/// Sum of `count` floats, 16 lanes at a time (the lane order is fixed, so results are reproducible).
@inlinable
public func simdSum(_ x: UnsafePointer<Float>, _ count: Int) -> Float {
    var acc = SIMD16<Float>()
    var i = 0
    while i + 16 <= count { acc += x.load16(i); i += 16 }
    var s = acc.sum()
    while i < count { s += x[i]; i += 1 }
    return s
}
