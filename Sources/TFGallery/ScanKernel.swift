import CBLAS
import TFCore

/// Exact scores of `m` unit queries against rows `rows` of a gallery slab, one tile of rows at
/// a time: for each tile, `scores[q * count + j]` = ⟨query q, row start + j⟩ (cosine, since both
/// have unit norm), computed as one sgemm `Q[m×dim] · Tileᵀ` (sgemv for one query); then `visit(start, count)`.
/// float16 and int8 rows are decoded into `widened` (`tileRows × dim` floats) first. For batches
/// (m > 1): one query goes through `scanFused`, which reads each row once without a tile.
func scanTiles(queries: UnsafePointer<Float>, m: Int, dim: Int, slab: UnsafeRawPointer, storage: GalleryStorage,
               rows: Range<Int>, tileRows: Int, scores: UnsafeMutablePointer<Float>, widened: UnsafeMutablePointer<Float>?,
               visit: (_ start: Int, _ count: Int) -> Void) {
    var start = rows.lowerBound
    while start < rows.upperBound {
        let count = min(tileRows, rows.upperBound - start)
        let tile: UnsafePointer<Float>
        if storage == .float32 {
            tile = (slab + start * dim * 4).assumingMemoryBound(to: Float.self)
        } else {
            decodeRows(slab + start * storage.rowBytes(dim: dim), rows: count, dim: dim, storage: storage, into: widened!)
            tile = UnsafePointer(widened!)
        }
        if m == 1 {  // sgemv streams the rows once; sgemm would first copy (pack) the tile
            cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(count), Int32(dim), 1, tile, Int32(dim), queries, 1, 0, scores, 1)
        } else {
            BLAS.gemm(m: m, n: count, k: dim, a: queries, lda: dim, b: tile, ldb: dim, transposeB: true, c: scores, ldc: count)
        }
        visit(start, count)
        start += count
    }
}

/// Rows per tile: float32 tiles are read in place (4096 rows of 512 = 8 MiB streamed per sgemm);
/// float16 and int8 tiles are decoded into a buffer that stays in L2 (512 rows of 512 = 1 MiB).
func scanTileRows(_ storage: GalleryStorage) -> Int { storage == .float32 ? 4096 : 512 }
