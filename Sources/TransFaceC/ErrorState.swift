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

