import CTransFace
import TFCore
import TFModel

#if canImport(Glibc)
import Glibc
#endif

/// C strings that live as long as the object holding them.
final class CStringStore {
    private var strings: [UnsafeMutablePointer<CChar>] = []

    func add(_ s: String) -> UnsafePointer<CChar> {
        let p = strdup(s)!
        strings.append(p)
        return UnsafePointer(p)
    }

    deinit { for p in strings { free(p) } }
}

/// What a `transface_model *` points to.
final class ModelHandle {
    let model: TransFaceModel
    let tensorNames: [UnsafePointer<CChar>]
    let metadata: [(key: UnsafePointer<CChar>, value: UnsafePointer<CChar>)]
    private let strings: CStringStore

    init(_ model: TransFaceModel) {
        let strings = CStringStore()
        self.strings = strings
        self.model = model
        tensorNames = model.layout.entries.map { strings.add($0.name) }
        metadata = model.metadata.map { (strings.add($0.key), strings.add($0.value)) }
    }
}

/// What a `transface_builder *` points to.
final class BuilderHandle {
    let builder: ModelBuilder
    let tensorNames: [UnsafePointer<CChar>]
    private let strings: CStringStore

    init(_ builder: ModelBuilder) {
        let strings = CStringStore()
        self.strings = strings
        self.builder = builder
        tensorNames = builder.layout.entries.map { strings.add($0.name) }
    }
}

/// Opaque-pointer round trips for handle classes (retained while the C side holds them).
enum Handle {
    static func make<T: AnyObject>(_ object: T) -> OpaquePointer { OpaquePointer(Unmanaged.passRetained(object).toOpaque()) }
    static func get<T: AnyObject>(_ p: OpaquePointer?, _ type: T.Type, _ name: String) throws -> T {
        Unmanaged<T>.fromOpaque(UnsafeRawPointer(try required(p, name))).takeUnretainedValue()
    }
    static func release<T: AnyObject>(_ p: OpaquePointer?, _ type: T.Type) {
        guard let p else { return }
        Unmanaged<T>.fromOpaque(UnsafeRawPointer(p)).release()
    }
}

/// Fills a C tensor info from a layout entry.
func fillTensorInfo(_ out: UnsafeMutablePointer<transface_tensor_info>?, _ e: TensorEntry, _ name: UnsafePointer<CChar>) throws {
    var info = transface_tensor_info()
    info.name = name
    info.ndim = Int32(e.shape.count)
    withUnsafeMutableBytes(of: &info.dims) { raw in
        let d = raw.bindMemory(to: Int64.self)
        for (i, n) in e.shape.prefix(d.count).enumerated() { d[i] = Int64(n) }
    }
    info.count = e.count
    try writeStruct(info, to: out, "out")
}
