import CTransFace
import TFCore

#if canImport(Glibc)
import Glibc
#endif

/// The per-thread last error message: a malloc'd C string per thread, freed when replaced
/// and at thread exit.
enum ErrorState {
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { free($0) }
        return key
    }()

    static func set(_ message: String) {
        let old = pthread_getspecific(key)
        pthread_setspecific(key, strdup(message))
        free(old)
    }

    static var current: UnsafePointer<CChar> {
        if let p = pthread_getspecific(key) { return UnsafePointer(p.assumingMemoryBound(to: CChar.self)) }
        return emptyString
    }

    private static let emptyString: UnsafePointer<CChar> = UnsafePointer(strdup("")!)
}

/// Runs the body of an exported function: maps a thrown error to its status and records the
/// message for `transface_last_error`.
func guarded(_ function: String, _ body: () throws -> Void) -> transface_status {
    do {
        try body()
        return TRANSFACE_OK
    } catch let e as TransFaceError {
        ErrorState.set("\(function): \(e.message)")
        return transface_status(rawValue: UInt32(e.kind.rawValue))
    } catch {
        ErrorState.set("\(function): \(error)")
        return TRANSFACE_INTERNAL
    }
}

/// Unwraps a required pointer argument or throws `invalidArgument` naming it.
func required<T>(_ pointer: T?, _ name: String) throws -> T {
    guard let pointer else { throw TransFaceError.invalidArgument("\(name) is NULL") }
    return pointer
}

/// Reads a NUL-terminated UTF-8 argument.
func string(_ p: UnsafePointer<CChar>?, _ name: String) throws -> String {
    String(cString: try required(p, name))
}

/// Reads a caller's parameter struct as the ABI promises older and newer callers: the first
/// min(struct_size, sizeof T) bytes go over `defaults` and no byte past struct_size is touched.
/// A struct smaller than its first released size, or a larger one whose bytes past this
/// library's struct are not zero (fields this library does not know), is refused.
func readParams<T>(_ pointer: UnsafePointer<T>?, defaults: T, firstReleasedSize: Int, _ name: String) throws -> T {
    guard let pointer else { return defaults }
    let raw = UnsafeRawPointer(pointer), known = MemoryLayout<T>.size
    let size = Int(raw.loadUnaligned(as: UInt32.self))
    try require(size >= firstReleasedSize,
                "\(name).struct_size is \(size), smaller than its first released size \(firstReleasedSize) (this library's is \(known))")
    if size > known {
        for i in known..<size where raw.load(fromByteOffset: i, as: UInt8.self) != 0 {
            throw TransFaceError.invalidArgument(
                "\(name).struct_size is \(size) and byte \(i) is set, past the \(known) bytes this library knows")
        }
    }
    var value = defaults
    withUnsafeMutableBytes(of: &value) { $0.copyMemory(from: UnsafeRawBufferPointer(start: raw, count: min(size, known))) }
    return value
}

/// Checks a caller's struct: it must state a size we understand (sizeof the struct).
func checkStructSize(_ size: UInt32, minimum: Int, _ name: String) throws {
    try require(Int(size) >= minimum, "\(name).struct_size is \(size), expected at least \(minimum) (sizeof the struct)")
}
