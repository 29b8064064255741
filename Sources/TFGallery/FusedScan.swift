/// The single-query scan: reads each stored row once, widens it in registers (F16C
/// `vcvtph2ps` for float16, `vpmovsxbd` + `vcvtdq2ps` for int8), takes its dot product with the
/// query by FMA over 2 × 16 lanes, and offers only scores above the heap's
/// floor, so scores never go to memory. Memory-bandwidth bound: 1 M × 512 float32 is 2 GB a scan.

/// How one storage precision's row is read: values from `valuesOffset`, optionally scaled.
protocol StoredRowFormat {
    static var valuesOffset: Int { get }
    /// Values j..<j+16 of a row's values as floats.
    static func load16(_ values: UnsafeRawPointer, _ j: Int) -> SIMD16<Float>
    static func load1(_ values: UnsafeRawPointer, _ j: Int) -> Float
    /// The factor of a row's dot product (1 unless int8).
    static func scale(_ row: UnsafeRawPointer) -> Float
}

enum Float32Rows: StoredRowFormat {
    static var valuesOffset: Int { 0 }
    @inline(__always) static func load16(_ v: UnsafeRawPointer, _ j: Int) -> SIMD16<Float> { v.loadUnaligned(fromByteOffset: 4 * j, as: SIMD16<Float>.self) }
    @inline(__always) static func load1(_ v: UnsafeRawPointer, _ j: Int) -> Float { v.loadUnaligned(fromByteOffset: 4 * j, as: Float.self) }
    @inline(__always) static func scale(_ row: UnsafeRawPointer) -> Float { 1 }
}

enum Float16Rows: StoredRowFormat {
    static var valuesOffset: Int { 0 }
    @inline(__always) static func load16(_ v: UnsafeRawPointer, _ j: Int) -> SIMD16<Float> {
        let h = unsafeBitCast(v.loadUnaligned(fromByteOffset: 2 * j, as: SIMD16<UInt16>.self), to: SIMD16<Float16>.self)
        var f = SIMD16<Float>()
        for i in 0..<16 { f[i] = Float(h[i]) }  // element-wise: vcvtph2ps inline (the generic SIMD init is an outlined call)
        return f
    }
    @inline(__always) static func load1(_ v: UnsafeRawPointer, _ j: Int) -> Float {
        Float(Float16(bitPattern: v.loadUnaligned(fromByteOffset: 2 * j, as: UInt16.self)))
    }
    @inline(__always) static func scale(_ row: UnsafeRawPointer) -> Float { 1 }
}

enum Int8Rows: StoredRowFormat {
    static var valuesOffset: Int { 4 }
    @inline(__always) static func load16(_ v: UnsafeRawPointer, _ j: Int) -> SIMD16<Float> {
        let b = v.loadUnaligned(fromByteOffset: j, as: SIMD16<Int8>.self)
        var f = SIMD16<Float>()
        for i in 0..<16 { f[i] = Float(b[i]) }  // element-wise: lowers to vpmovsxbd + vcvtdq2ps (the generic SIMD init is a call)
        return f
    }
    @inline(__always) static func load1(_ v: UnsafeRawPointer, _ j: Int) -> Float { Float(v.load(fromByteOffset: j, as: Int8.self)) }
    @inline(__always) static func scale(_ row: UnsafeRawPointer) -> Float { row.loadUnaligned(as: Float.self) }
}

/// Offers every row of `rows` (`rowIdentity[r]` its identity) to `heap` with its score against
/// the unit `query`.
func scanFused(query: UnsafePointer<Float>, dim: Int, slab: UnsafeRawPointer, storage: GalleryStorage,
               rowIdentity: UnsafePointer<Int32>, rows: Range<Int>, heap: inout TopIdentities) {
    switch storage {
    case .float32: scanFused(Float32Rows.self, query, dim, slab, storage.rowBytes(dim: dim), rowIdentity, rows, &heap)
    case .float16: scanFused(Float16Rows.self, query, dim, slab, storage.rowBytes(dim: dim), rowIdentity, rows, &heap)
    case .int8: scanFused(Int8Rows.self, query, dim, slab, storage.rowBytes(dim: dim), rowIdentity, rows, &heap)
    }
}

/// One row at a time, in file order (four rows interleaved measured 1.5× slower here: the
/// hardware prefetcher follows one stream better), 32 values per step in two accumulators.
@inline(__always)
private func scanFused<R: StoredRowFormat>(_: R.Type, _ query: UnsafePointer<Float>, _ dim: Int, _ slab: UnsafeRawPointer, _ stride: Int,
                                           _ rowIdentity: UnsafePointer<Int32>, _ rows: Range<Int>, _ heap: inout TopIdentities) {
    let q = UnsafeRawPointer(query)
    let wide32 = dim & ~31, wide16 = dim & ~15
    for r in rows {
        let p = slab + r * stride, v = p + R.valuesOffset
        var a = SIMD16<Float>(), b = SIMD16<Float>()
        var j = 0
        while j < wide32 {
            a.addProduct(R.load16(v, j), q.loadUnaligned(fromByteOffset: 4 * j, as: SIMD16<Float>.self))
            b.addProduct(R.load16(v, j + 16), q.loadUnaligned(fromByteOffset: 4 * j + 64, as: SIMD16<Float>.self))
            j += 32
        }
        if j < wide16 { a.addProduct(R.load16(v, j), q.loadUnaligned(fromByteOffset: 4 * j, as: SIMD16<Float>.self)); j += 16 }
        var s = (a + b).sum()
        while j < dim { s += query[j] * R.load1(v, j); j += 1 }
        s *= R.scale(p)
        if s > heap.floor { heap.offer(s, identity: rowIdentity[r], row: r) }
    }
}
