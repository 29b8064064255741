import CTransFace
import TFCore

/// A public struct of the header: it starts with `uint32_t struct_size` and only ever grows by
/// appended fields. `firstReleasedSize` is its size in the first release that declared it.
protocol ABIStruct {
    static var abiName: String { get }
    static var firstReleasedSize: Int { get }
}

extension transface_config: ABIStruct {
    static var abiName: String { "transface_config" }
    static var firstReleasedSize: Int { 76 }  // no_se_gate appended in 0.1
}
extension transface_preprocess: ABIStruct {
    static var abiName: String { "transface_preprocess" }
    static var firstReleasedSize: Int { 80 }
}
extension transface_load_params: ABIStruct {
    static var abiName: String { "transface_load_params" }
    static var firstReleasedSize: Int { 16 }
}
extension transface_tensor_info: ABIStruct {
    static var abiName: String { "transface_tensor_info" }
    static var firstReleasedSize: Int { 64 }
}
extension transface_context_params: ABIStruct {
    static var abiName: String { "transface_context_params" }
    static var firstReleasedSize: Int { 12 }  // precision appended in 0.2
}
extension transface_decode_params: ABIStruct {
    static var abiName: String { "transface_decode_params" }
    static var firstReleasedSize: Int { 24 }
}
extension transface_image_info: ABIStruct {
    static var abiName: String { "transface_image_info" }
    static var firstReleasedSize: Int { 20 }
}
extension transface_pack_params: ABIStruct {
    static var abiName: String { "transface_pack_params" }
    static var firstReleasedSize: Int { 20 }
}
extension transface_verify_params: ABIStruct {
    static var abiName: String { "transface_verify_params" }
    static var firstReleasedSize: Int { 40 }
}
extension transface_verify_result: ABIStruct {
    static var abiName: String { "transface_verify_result" }
    static var firstReleasedSize: Int { 1120 }
}
extension transface_ijb_params: ABIStruct {
    static var abiName: String { "transface_ijb_params" }
    static var firstReleasedSize: Int { 24 }
}
extension transface_ijb_summary: ABIStruct {
    static var abiName: String { "transface_ijb_summary" }
    static var firstReleasedSize: Int { 72 }
}
extension transface_step_result: ABIStruct {
    static var abiName: String { "transface_step_result" }
    static var firstReleasedSize: Int { 80 }
}
extension transface_trainer_info: ABIStruct {
    static var abiName: String { "transface_trainer_info" }
    static var firstReleasedSize: Int { 40 }
}

/// The caller's struct_size, checked against the first released size.
private func callerSize<T: ABIStruct>(_ raw: UnsafeRawPointer, _: T.Type) throws -> Int {
    let size = Int(raw.loadUnaligned(as: UInt32.self))
    try require(size >= T.firstReleasedSize,
                "\(T.abiName).struct_size is \(size), smaller than its first released size \(T.firstReleasedSize) "
                + "(this library's is \(MemoryLayout<T>.size))")
    return size
}

/// Reads a caller's struct as the ABI promises older and newer callers: the first
/// min(struct_size, sizeof T) bytes go over `defaults` and no byte past struct_size is touched.
/// A larger struct whose bytes past this library's struct are not zero (fields this library does
/// not know) is refused. NULL gives the defaults.
func readStruct<T: ABIStruct>(_ pointer: UnsafePointer<T>?, defaults: T) throws -> T {
    guard let pointer else { return defaults }
    let raw = UnsafeRawPointer(pointer), known = MemoryLayout<T>.size
    let size = try callerSize(raw, T.self)
    if size > known {
        for i in known..<size where raw.load(fromByteOffset: i, as: UInt8.self) != 0 {
            throw TransFaceError.invalidArgument(
                "\(T.abiName).struct_size is \(size) and byte \(i) is set, past the \(known) bytes this library knows")
        }
    }
    var value = defaults
    withUnsafeMutableBytes(of: &value) { $0.copyMemory(from: UnsafeRawBufferPointer(start: raw, count: min(size, known))) }
    return value
}

/// Copies the first `count` bytes of `value` to `raw` and sets struct_size to `structSize`.
private func store<T>(_ value: T, _ raw: UnsafeMutableRawPointer, count: Int, structSize: Int) {
    withUnsafeBytes(of: value) { raw.copyMemory(from: $0.baseAddress!, byteCount: count) }
    raw.storeBytes(of: UInt32(structSize), as: UInt32.self)
}

/// Writes a result struct as the ABI promises: the first min(struct_size, sizeof T) bytes, and
/// struct_size becomes that count, so a caller compiled against a newer header learns which of
/// its fields this library filled (the bytes past them are left as they were).
func writeStruct<T: ABIStruct>(_ value: T, to pointer: UnsafeMutablePointer<T>?, _ argument: String) throws {
    let raw = UnsafeMutableRawPointer(try required(pointer, argument))
    let count = min(try callerSize(UnsafeRawPointer(raw), T.self), MemoryLayout<T>.size)
    store(value, raw, count: count, structSize: count)
}

/// `transface_<x>_params_init`: the defaults written into the caller's `size` bytes, bytes past
/// this library's struct (fields of a newer header) zeroed, struct_size = size; such a struct is
/// then accepted by this library.
func initStruct<T: ABIStruct>(_ pointer: UnsafeMutablePointer<T>?, size: UInt32, defaults: T) throws {
    let raw = UnsafeMutableRawPointer(try required(pointer, "params"))
    let size = Int(size), known = MemoryLayout<T>.size
    try require(size >= T.firstReleasedSize,
                "\(T.abiName) size \(size) is smaller than its first released size \(T.firstReleasedSize) "
                + "(this library's is \(known))")
    if size > known { (raw + known).initializeMemory(as: UInt8.self, repeating: 0, count: size - known) }
    store(defaults, raw, count: min(size, known), structSize: size)
}

/// Checks a result struct's pointer and struct_size before any work is done (writeStruct checks again).
@discardableResult
func checkStruct<T: ABIStruct>(_ pointer: UnsafeMutablePointer<T>?, _ argument: String) throws -> UnsafeMutablePointer<T> {
    let p = try required(pointer, argument)
    _ = try callerSize(UnsafeRawPointer(p), T.self)
    return p
}
