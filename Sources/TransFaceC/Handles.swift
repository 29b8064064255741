import CTransFace
import TFCore
import TFData
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

/// The kinds of handle the header declares; each handle's box starts with its kind's tag.
enum HandleKind: UInt64, CaseIterable {
    case model = 0x7466_6d6f_6465_6c01, context = 0x7466_6374_7874_0102, builder = 0x7466_6275_696c_6403
    case recordio = 0x7466_7265_6369_6f04, bin = 0x7466_6269_6e00_0005, trainer = 0x7466_7472_6169_6e06
    case detector = 0x7466_6465_7465_6307, gallery = 0x7466_6761_6c6c_7908

    /// The C type name, e.g. "transface_model".
    var typeName: String { "transface_\(self)" }
    /// The tag a box holds once its handle has been freed.
    var freedTag: UInt64 { rawValue ^ 0xdead_0000_0000_0000 }
}

/// A class a C handle can point to.
protocol HandleObject: AnyObject {
    static var handleKind: HandleKind { get }
}

extension ModelHandle: HandleObject { static var handleKind: HandleKind { .model } }
extension BuilderHandle: HandleObject { static var handleKind: HandleKind { .builder } }
extension Embedder: HandleObject { static var handleKind: HandleKind { .context } }
extension RecordIODataset: HandleObject { static var handleKind: HandleKind { .recordio } }
extension BinHandle: HandleObject { static var handleKind: HandleKind { .bin } }
extension TrainerHandle: HandleObject { static var handleKind: HandleKind { .trainer } }

/// What a C handle points to: a type tag, then the retained object. A freed box keeps a
/// "freed" tag and stays allocated while it is among the last `quarantineSize` boxes freed,
/// so a double free or a use after free of a recently freed handle is reported, not followed.
private struct HandleBox {
    var tag: UInt64
    var object: UnsafeMutableRawPointer?
}

/// Type-checked opaque-pointer round trips for handle objects (retained while C holds them).
enum Handle {
    private static let quarantineSize = 4096
    private static let quarantine = Quarantine()

    /// The last boxes freed, oldest replaced first.
    private final class Quarantine: @unchecked Sendable {
        private var lock = pthread_mutex_t()
        private var boxes: [UnsafeMutablePointer<HandleBox>] = []
        private var next = 0

        init() { pthread_mutex_init(&lock, nil) }

        /// Keeps `box`; returns the box it replaces, if any, for deallocation.
        func add(_ box: UnsafeMutablePointer<HandleBox>) -> UnsafeMutablePointer<HandleBox>? {
            pthread_mutex_lock(&lock)
            defer { pthread_mutex_unlock(&lock) }
            if boxes.count < quarantineSize { boxes.append(box); return nil }
            let old = boxes[next]
            boxes[next] = box
            next = (next + 1) % quarantineSize
            return old
        }
    }

    static func make<T: HandleObject>(_ object: T) -> OpaquePointer {
        let box = UnsafeMutablePointer<HandleBox>.allocate(capacity: 1)
        box.initialize(to: HandleBox(tag: T.handleKind.rawValue, object: Unmanaged.passRetained(object).toOpaque()))
        return OpaquePointer(box)
    }

    /// The object behind a handle argument named `name`, or invalidArgument when it is NULL,
    /// another kind of handle, a freed one, or not a handle at all.
    static func get<T: HandleObject>(_ p: OpaquePointer?, _ type: T.Type, _ name: String) throws -> T {
        let box = UnsafeMutablePointer<HandleBox>(try required(p, name))
        try check(box.pointee.tag, T.handleKind, name)
        return Unmanaged<T>.fromOpaque(box.pointee.object!).takeUnretainedValue()
    }

    /// `*_free`: NULL is accepted; a wrong or already freed handle is left alone (the message
    /// is recorded for transface_last_error).
    static func release<T: HandleObject>(_ p: OpaquePointer?, _ type: T.Type, _ function: String) {
        guard let p else { return }
        let box = UnsafeMutablePointer<HandleBox>(p)
        do {
            try check(box.pointee.tag, T.handleKind, "argument")
        } catch {
            ErrorState.set("\(function): \((error as? TransFaceError)?.message ?? "\(error)")")
            return
        }
        let object = box.pointee.object!
        box.pointee = HandleBox(tag: T.handleKind.freedTag, object: nil)
        Unmanaged<T>.fromOpaque(object).release()
        quarantine.add(box)?.deallocate()
    }

    private static func check(_ tag: UInt64, _ expected: HandleKind, _ name: String) throws {
        if tag == expected.rawValue { return }
        if let other = HandleKind(rawValue: tag) {
            throw TransFaceError.invalidArgument("\(name): expected a \(expected.typeName), got a \(other.typeName)")
        }
        if let freed = HandleKind.allCases.first(where: { $0.freedTag == tag }) {
            throw TransFaceError.invalidArgument(
                "\(name): expected a \(expected.typeName), got a \(freed.typeName) that was already freed")
        }
        throw TransFaceError.invalidArgument("\(name) is not a libtransface handle (expected a \(expected.typeName))")
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
