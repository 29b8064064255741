/// The one error type of the library. `kind` maps one-to-one onto the C ABI's status codes.
public struct TransFaceError: Error, CustomStringConvertible, Equatable {
    public enum Kind: Int32, Sendable {
        case invalidArgument = 1, io = 2, format = 3, outOfMemory = 4, aborted = 5
        case numeric = 6, misuse = 7, `internal` = 8, notFound = 9
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    public static func invalidArgument(_ message: String) -> TransFaceError { .init(.invalidArgument, message) }
    public static func format(_ message: String) -> TransFaceError { .init(.format, message) }
    public static func io(_ message: String) -> TransFaceError { .init(.io, message) }
    public static func notFound(_ message: String) -> TransFaceError { .init(.notFound, message) }
}

/// Throws `invalidArgument(message())` unless `condition` holds.
@inlinable
public func require(_ condition: Bool, _ message: @autoclosure () -> String) throws {
    if !condition { throw TransFaceError.invalidArgument(message()) }
}

/// `a * b` for sizes, throwing instead of trapping on overflow or negative operands.
public func checkedProduct(_ factors: [Int], what: String) throws -> Int {
    var total = 1
    for f in factors {
        guard f >= 0 else { throw TransFaceError.invalidArgument("\(what): negative size \(f)") }
        let (p, overflow) = total.multipliedReportingOverflow(by: f)
        guard !overflow else { throw TransFaceError.invalidArgument("\(what): size overflows") }
        total = p
    }
    return total
}
