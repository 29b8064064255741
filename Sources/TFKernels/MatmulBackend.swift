import CDNNLMatmul
import TFCore
#if canImport(Glibc)
import Glibc
#endif

/// Numeric format of the model's token GEMMs: float32, or bfloat16 weights and inputs with
/// float32 accumulation (CPUs with AVX512_BF16 or AMX only).
public enum Precision: String, Sendable, CaseIterable {
    case fp32, bf16
}

/// Instruction-set ceiling of the matmul backend (oneDNN). `native` uses the best the CPU has.
public enum InstructionSet: String, Sendable, CaseIterable {
    case native, avx2, avx512, avx512bf16 = "avx512_bf16"

    var code: tf_isa {
        switch self {
        case .native: return TF_ISA_DEFAULT
        case .avx2: return TF_ISA_AVX2
        case .avx512: return TF_ISA_AVX512
        case .avx512bf16: return TF_ISA_AVX512_BF16
        }
    }
}

/// The process-wide state of the matmul backend: oneDNN's matmul primitive (Debian libdnnl) with
/// weights packed once into its blocked layout. oneDNN's instruction-set ceiling is one setting
/// per process, fixed before its first primitive: it comes from `TRANSFACE_ISA` (native, avx2,
/// avx512, avx512_bf16) when set, otherwise the CPU decides. oneDNN runs single-threaded inside
/// libtransface's own workers; its OpenMP runtime never starts a team.
public enum MatmulBackend {
    private static let lock = Mutex()
    nonisolated(unsafe) private static var configured: Result<InstructionSet, TransFaceError>?

    /// Applies `TRANSFACE_ISA` once; later calls return the same outcome.
    @discardableResult
    public static func configure() throws -> InstructionSet {
        try lock.locked {
            if configured == nil {
                configured = Result {
                    let text = getenv("TRANSFACE_ISA").map { String(cString: $0) } ?? ""
                    guard let isa = text.isEmpty ? .native : InstructionSet(rawValue: text.lowercased()) else {
                        throw TransFaceError.invalidArgument(
                            "TRANSFACE_ISA '\(text)' is not one of \(InstructionSet.allCases.map(\.rawValue).joined(separator: ", "))")
                    }
                    var message = [CChar](repeating: 0, count: 256)
                    guard tf_matmul_set_max_isa(isa.code, &message, message.count) == 0 else {
                        throw TransFaceError(.internal, String(cString: message))
                    }
                    return isa
                }.mapError { $0 as? TransFaceError ?? TransFaceError(.internal, "\($0)") }
            }
            return try configured!.get()
        }
    }

    /// Whether bf16 GEMMs run on this CPU at full speed (after the instruction-set ceiling).
    public static var supportsBF16: Bool { (try? configure()) != nil && tf_matmul_has_bf16() != 0 }
    /// The instruction set oneDNN dispatches to (e.g. "avx512_core_bf16").
    public static var isaName: String { String(cString: tf_matmul_isa_name()) }
    /// oneDNN's version.
    public static var libraryVersion: String { String(cString: tf_matmul_library_version()) }

    /// Throws `invalidArgument` when `precision` cannot run here.
    public static func check(_ precision: Precision) throws {
        try configure()
        if precision == .bf16 && tf_matmul_has_bf16() == 0 {
            throw TransFaceError.invalidArgument(
                "precision bf16 needs a CPU with AVX512_BF16 or AMX; this one dispatches to \(isaName)")
        }
    }

    /// Runs `body` with the backend's creation lock held (oneDNN primitive creation).
    static func creating<T>(_ body: () throws -> T) throws -> T {
        try configure()
        return try lock.locked(body)
    }
}

/// A pthread mutex in a class (stable address).
final class Mutex {
    private var mutex = pthread_mutex_t()
    init() { pthread_mutex_init(&mutex, nil) }
    deinit { pthread_mutex_destroy(&mutex) }
    func locked<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return try body()
    }
}
