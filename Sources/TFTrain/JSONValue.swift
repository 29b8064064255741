import CJSON
import TFCore

/// A parsed JSON document (parsed by cJSON), with typed, path-named accessors for configs:
/// every error names the key path, and `object(…)` refuses keys it was not told about.
public indirect enum JSONValue: Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([(key: String, value: JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.number(x), .number(y)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)): return x.map(\.key) == y.map(\.key) && x.map(\.value) == y.map(\.value)
        default: return false
        }
    }

    /// Parses `text`; throws `invalidArgument` with cJSON's position of the error.
    public static func parse(_ text: String) throws -> JSONValue {
        guard text.utf8.count < 16 << 20 else { throw TransFaceError.invalidArgument("JSON text over 16 MiB") }
        var errorPointer: UnsafePointer<CChar>?
        let root = text.withCString { cJSON_ParseWithOpts($0, &errorPointer, 1) }
        guard let root else {
            let offset = errorPointer.map { p in text.withCString { $0.distance(to: p) } } ?? 0
            throw TransFaceError.invalidArgument("invalid JSON near byte \(offset)")
        }
        defer { cJSON_Delete(root) }
        return try convert(root, depth: 0)
    }

    private static func convert(_ node: UnsafeMutablePointer<cJSON>, depth: Int) throws -> JSONValue {
        guard depth < 64 else { throw TransFaceError.invalidArgument("JSON nested deeper than 64 levels") }
        let type = node.pointee.type & 0xFF
        switch Int32(type) {
        case cJSON_NULL: return .null
        case cJSON_False: return .bool(false)
        case cJSON_True: return .bool(true)
        case cJSON_Number: return .number(node.pointee.valuedouble)
        case cJSON_String: return .string(String(cString: node.pointee.valuestring))
        case cJSON_Array, cJSON_Object:
            var items: [(String, JSONValue)] = []
            var child = node.pointee.child
            while let c = child {
                items.append((c.pointee.string.map { String(cString: $0) } ?? "", try convert(c, depth: depth + 1)))
                child = c.pointee.next
            }
            return Int32(type) == cJSON_Array ? .array(items.map(\.1)) : .object(items.map { (key: $0.0, value: $0.1) })
        default: throw TransFaceError.invalidArgument("unsupported JSON value")
        }
    }

    /// Compact JSON text of this value (numbers printed to round-trip a Double).
    public var text: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .number(let n):
            if n == n.rounded() && abs(n) < 1e15 { return String(Int64(n)) }
            return "\(n)"
        case .string(let s): return JSONText.quoted(s)
        case .array(let a): return "[" + a.map(\.text).joined(separator: ",") + "]"
        case .object(let o): return "{" + o.map { JSONText.quoted($0.key) + ":" + $0.value.text }.joined(separator: ",") + "}"
        }
    }

    /// Indented JSON text, two spaces a level, arrays without objects or arrays on one line (as
    /// the shipped configurations are written), with a final newline.
    public var prettyText: String { pretty(indent: "") + "\n" }

    private func pretty(indent: String) -> String {
        let inner = indent + "  "
        switch self {
        case .object(let o) where !o.isEmpty:
            return "{\n" + o.map { inner + JSONText.quoted($0.key) + ": " + $0.value.pretty(indent: inner) }.joined(separator: ",\n") + "\n\(indent)}"
        case .array(let a) where a.contains(where: \.isContainer):
            return "[\n" + a.map { inner + $0.pretty(indent: inner) }.joined(separator: ",\n") + "\n\(indent)]"
        case .array(let a): return "[" + a.map(\.text).joined(separator: ", ") + "]"
        default: return text
        }
    }

    private var isContainer: Bool {
        switch self {
        case .object, .array: return true
        default: return false
        }
    }
}

/// Reads the members of one JSON object, tracking which keys were used so that unknown keys
/// can be refused by name.
public struct JSONObjectReader {
    public let path: String
    private let members: [(key: String, value: JSONValue)]
    private var used: Set<String> = []

    public init(_ value: JSONValue, path: String) throws {
        guard case .object(let m) = value else { throw TransFaceError.invalidArgument("\(path) must be a JSON object") }
        var seen = Set<String>()
        for (k, _) in m where !seen.insert(k).inserted {
            throw TransFaceError.invalidArgument("\(path).\(k) appears twice")
        }
        self.path = path
        self.members = m
    }

    /// Whether the object has `key` at all (even as null).
    public func has(_ key: String) -> Bool { members.contains { $0.key == key } }

    public mutating func value(_ key: String) -> JSONValue? {
        used.insert(key)
        guard let v = members.first(where: { $0.key == key })?.value, v != .null else { return nil }
        return v
    }

    public mutating func number(_ key: String, default d: Double? = nil, in range: ClosedRange<Double>? = nil) throws -> Double {
        guard let v = value(key) else {
            guard let d else { throw TransFaceError.invalidArgument("\(path).\(key) is required") }
            return d
        }
        guard case .number(let n) = v, n.isFinite else { throw TransFaceError.invalidArgument("\(path).\(key) must be a number") }
        if let range, !range.contains(n) {
            throw TransFaceError.invalidArgument("\(path).\(key) = \(n) is outside \(range.lowerBound)...\(range.upperBound)")
        }
        return n
    }

    public mutating func integer(_ key: String, default d: Int? = nil, in range: ClosedRange<Int>) throws -> Int {
        let n = try number(key, default: d.map(Double.init), in: Double(range.lowerBound)...Double(range.upperBound))
        guard n == n.rounded() else { throw TransFaceError.invalidArgument("\(path).\(key) must be a whole number") }
        return Int(n)
    }

    public mutating func bool(_ key: String, default d: Bool) throws -> Bool {
        guard let v = value(key) else { return d }
        guard case .bool(let b) = v else { throw TransFaceError.invalidArgument("\(path).\(key) must be true or false") }
        return b
    }

    public mutating func string(_ key: String, default d: String? = nil, oneOf choices: [String]? = nil) throws -> String {
        guard let v = value(key) else {
            guard let d else { throw TransFaceError.invalidArgument("\(path).\(key) is required") }
            return d
        }
        guard case .string(let s) = v else { throw TransFaceError.invalidArgument("\(path).\(key) must be a string") }
        if let choices, !choices.contains(s) {
            throw TransFaceError.invalidArgument("\(path).\(key) = \"\(s)\" is not one of \(choices.joined(separator: ", "))")
        }
        return s
    }

    /// A nested object's reader, or nil when absent.
    public mutating func object(_ key: String) throws -> JSONObjectReader? {
        guard let v = value(key) else { return nil }
        return try JSONObjectReader(v, path: "\(path).\(key)")
    }

    /// Throws naming the first key that no accessor asked for.
    public func finish() throws {
        if let unknown = members.first(where: { !used.contains($0.key) }) {
            throw TransFaceError.invalidArgument("\(path): unknown key '\(unknown.key)'")
        }
    }
}
