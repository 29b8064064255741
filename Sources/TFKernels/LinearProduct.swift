import CDNNLMatmul
import TFCore

/// One of a Linear's three products (PyTorch `nn.Linear`, W stored [out × in]) as a backend shape.
enum LinearProduct: Hashable {
    /// `y = epilogue(x·Wᵀ)`
    case forward(LinearEpilogue)
    /// `dx = dy·W`
    case inputGradient
    /// `dW += dyᵀ·x` over `rows` rows
    case weightGradient(rows: Int)

    /// Whether two products read the same packed weight (all forward epilogues share one).
    func sharesPacking(with other: Self) -> Bool {
        switch (self, other) {
        case (.forward, .forward), (.inputGradient, .inputGradient): return true
        default: return false
        }
    }

    /// The backend shape of this product on `m` rows of a `inFeatures → outFeatures` Linear.
    func shape(m: Int, inFeatures: Int, outFeatures: Int, precision: Precision) throws -> tf_matmul_shape {
        let inF = Int64(inFeatures), outF = Int64(outFeatures)
        var shape = tf_matmul_shape()
        shape.m = Int64(m)
        shape.precision = precision == .bf16 ? TF_MATMUL_BF16 : TF_MATMUL_F32
        shape.packed_b = 1
        switch self {
        case .forward(let epilogue):          // x[m × in] · Wᵀ
            (shape.n, shape.k, shape.a_row_stride, shape.a_col_stride) = (outF, inF, inF, 1)
            (shape.b_row_stride, shape.b_col_stride, shape.ldy, shape.epilogue) = (1, inF, outF, epilogue.code)
        case .inputGradient:                  // dy[m × out] · W
            try require(precision == .fp32, "backward products run in float32")
            (shape.n, shape.k, shape.a_row_stride, shape.a_col_stride) = (inF, outF, outF, 1)
            (shape.b_row_stride, shape.b_col_stride, shape.ldy, shape.epilogue) = (inF, 1, inF, TF_MATMUL_PLAIN)
        case .weightGradient(let rows):       // dW[m × in] += dyᵀ[m × rows] · x[rows × in]
            try require(precision == .fp32, "backward products run in float32")
            (shape.n, shape.k, shape.a_row_stride, shape.a_col_stride) = (inF, Int64(rows), 1, outF)
            (shape.b_row_stride, shape.b_col_stride, shape.ldy, shape.epilogue) = (inF, 1, inF, TF_MATMUL_ACCUMULATE)
            shape.packed_b = 0
        }
        return shape
    }
}

/// A backend primitive (freed with its owner).
final class MatmulPrimitive {
    let handle: OpaquePointer

    /// Makes the primitive for `shape` under the backend's creation lock.
    init(_ shape: tf_matmul_shape) throws {
        var shape = shape
        handle = try MatmulBackend.creating {
            var made: OpaquePointer?
            try callBackend { tf_matmul_create(&made, &shape, $0, $1) }
            return made!
        }
    }

    deinit { tf_matmul_free(handle) }

    /// Whether `other` reads weights in the same packed layout.
    func sameWeightLayout(as other: MatmulPrimitive) -> Bool { tf_matmul_same_weight_layout(handle, other.handle) != 0 }
}

/// Calls a backend function that reports failure as non-zero plus a message.
func callBackend(_ body: (UnsafeMutablePointer<CChar>, Int) -> Int32) throws {
    var message = [CChar](repeating: 0, count: 256)
    if body(&message, message.count) != 0 { throw TransFaceError(.internal, String(cString: message)) }
}
