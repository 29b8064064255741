import TFCore

/// A safe reader for the subset of Python's pickle format that verification `.bin` files use
/// (FORMATS.md §2), and a writer of the same subset.
///
/// Nothing is ever executed: `GLOBAL`/`STACK_GLOBAL` only produce names, and `REDUCE`/`BUILD`
/// are accepted only for a whitelist of value constructors, each checked for exactly the
/// arguments the standard picklers produce:
///  * `_codecs.encode(str, 'latin1')` and `builtins.bytes()` / `__builtin__.bytes()`: how Python 3
///    pickles `bytes` with protocol 2 (so that Python 2 can read it);
///  * `builtins.bytearray(...)` / `__builtin__.bytearray(...)`;
///  * numpy arrays of 1-byte types (`u1`, `i1`, `b1`): `numpy.core.multiarray._reconstruct`
///    (also `numpy._core.multiarray`) + `BUILD (1, shape, dtype, fortran, raw)`,
///    `numpy.core.numeric._frombuffer(buffer, dtype, shape, order)` (protocol 5), `numpy.dtype(...)`
///    + `BUILD`, and `numpy.core.multiarray.scalar(dtype, raw)`.
/// Anything else (other globals, `NEWOBJ`, `EXT*`, persistent ids, out-of-band buffers...) is a
/// format error naming the opcode and its offset. Sizes are bounded by the input and by
/// `Limits`. An `Extension` widens the subset for other pickle-based formats (torch.save files):
/// dicts, persistent ids and more whitelisted callables, each handled by the caller's hook.
public enum Pickle {
    public final class List {
        public var items: [Value]
        /// Nesting depth; `sealed` once inside another value, after which it may not grow.
        var depth = 1, sealed = false
        init(_ items: [Value] = []) { self.items = items }
    }

    /// A numpy array of a 1-byte dtype, C order.
    public final class NDArray {
        public var shape: [Int] = []
        public var dtype = ""
        public var data: [UInt8] = []
        var built = false
        init() {}
    }

    public final class DType {
        public let code: String  // "u1", "i1", "b1"
        init(_ code: String) { self.code = code }
    }

    /// A dict (`EMPTY_DICT`/`DICT`/`SETITEM(S)`; only read with an `Extension` that allows it),
    /// entries in insertion order.
    public final class Dict {
        public var items: [(key: Value, value: Value)]
        var depth = 1, sealed = false
        public init(_ items: [(key: Value, value: Value)] = []) { self.items = items }
    }

    /// What an `Extension` adds to the reader.
    public struct Extension {
        /// Accept dicts (and `BUILD` on a dict, whose state is ignored: torch's `_metadata`).
        public var dicts = false
        /// Resolves a persistent id (`BINPERSID`/`PERSID`); nil refuses them.
        public var persistentLoad: ((_ pid: Value) throws -> Value)?
        /// `REDUCE` of `module.name(args)`: returns the value, or nil when the global is not
        /// the hook's (the built-in whitelist then decides).
        public var call: ((_ module: String, _ name: String, _ args: [Value]) throws -> Value?)?
        public init(dicts: Bool = false, persistentLoad: ((Value) throws -> Value)? = nil,
                    call: ((String, String, [Value]) throws -> Value?)? = nil) {
            self.dicts = dicts; self.persistentLoad = persistentLoad; self.call = call
        }
    }

    public indirect enum Value {
        case none
        case bool(Bool)
        case int(Int64)
        case float(Double)
        case bytes([UInt8])
        case string(String)
        case list(List)
        case tuple([Value])
        case global(module: String, name: String)
        case dtype(DType)
        case array(NDArray)
        case dict(Dict)
        /// A value made by an `Extension` hook.
        case object(AnyObject)

        public var kind: String {
            switch self {
            case .none: return "None"
            case .bool: return "bool"
            case .int: return "int"
            case .float: return "float"
            case .bytes: return "bytes"
            case .string: return "str"
            case .list: return "list"
            case .tuple(let t): return "tuple of \(t.count)"
            case .global(let m, let n): return "global \(m).\(n)"
            case .dtype: return "numpy dtype"
            case .array: return "numpy array"
            case .dict: return "dict"
            case .object(let o): return "\(type(of: o))"
            }
        }
    }

    /// True for the errors of an input that ended early (every such message says "truncated").
    public static func isTruncation(_ e: TransFaceError) -> Bool { e.message.contains("truncated") }

    public struct Limits {
        /// Values created (stack pushes and memo copies); a guard against tiny inputs that build
        /// huge structures.
        public var maxValues = 50_000_000
        /// Nesting of MARKs.
        public var maxMarkDepth = 1_000
        /// Nesting of values (a list in a tuple is 2 deep). Deeper values are refused: releasing
        /// a value recurses once per level, so a deep one would overflow the stack.
        public var maxNesting = 100
        public init() {}
    }

    // MARK: reading

    /// Parses one pickle (up to its STOP opcode; trailing bytes are an error).
    public static func load(_ bytes: [UInt8], limits: Limits = Limits(), what: String = "pickle",
                            extension ext: Extension = Extension()) throws -> Value {
        var r = Reader(bytes: bytes, limits: limits, what: what)
        r.ext = ext
        return try r.run()
    }

    /// Parses one pickle that starts at `start` and ends at its STOP opcode, where more bytes may
    /// follow (torch's legacy files are pickles back to back); returns it and the offset after
    /// STOP. Offsets in errors count from the start of `bytes`.
    public static func load(_ bytes: [UInt8], from start: Int, limits: Limits = Limits(), what: String = "pickle",
                            extension ext: Extension = Extension()) throws -> (value: Value, end: Int) {
        precondition(start >= 0 && start <= bytes.count, "pickle start \(start) outside the \(bytes.count) bytes")
        var r = Reader(bytes: bytes, limits: limits, what: what)
        r.ext = ext
        r.p = start
        r.trailingAllowed = true
        let v = try r.run()
        return (v, r.p)
    }

    struct Reader {
        let bytes: [UInt8]
        let limits: Limits
        let what: String
        var p = 0
        var stack: [Value] = []
        var marks: [Int] = []
        var memo: [UInt32: Value] = [:]
        // Nesting depth of each stack and memo entry (lists and dicts keep theirs), and the
        // deepest value the current opcode popped: a value it pushes holds those.
        var depths: [Int] = [], memoDepths: [UInt32: Int] = [:], taken = 0
        var created = 0
        var protocolVersion = 0
        var opOffset = 0
        var ext = Extension()
        /// Bytes after STOP are left to the caller (`load(_:from:)`).
        var trailingAllowed = false

        init(bytes: [UInt8], limits: Limits, what: String) {
            self.bytes = bytes; self.limits = limits; self.what = what
        }

        func fail(_ message: String) -> TransFaceError {
            TransFaceError.format("\(what): \(message) (offset \(opOffset))")
        }

        mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
            guard n >= 0, bytes.count - p >= n else { throw fail("truncated: \(n) bytes needed, \(bytes.count - p) left") }
            defer { p += n }
            return bytes[p..<(p + n)]
        }

        mutating func u8() throws -> Int { Int(try take(1).first!) }

        mutating func le(_ n: Int) throws -> UInt64 {
            var v: UInt64 = 0
            for (i, b) in try take(n).enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
            return v
        }

        mutating func line() throws -> String {
            guard let end = bytes[p...].firstIndex(of: 0x0A) else { throw fail("truncated: unterminated text argument") }
            defer { p = end + 1 }
            var s = bytes[p..<end]
            if s.last == 0x0D { s = s.dropLast() }
            return String(decoding: s, as: UTF8.self)
        }

        mutating func push(_ v: Value, depth known: Int? = nil) throws {
            created += 1
            guard created <= limits.maxValues else { throw fail("more than \(limits.maxValues) values") }
            let depth = known ?? taken + 1
            guard depth <= limits.maxNesting else { throw fail("values nested more than \(limits.maxNesting) deep") }
            if known == nil, case .list(let l) = v { l.depth = max(l.depth, depth) }
            if known == nil, case .dict(let d) = v { d.depth = max(d.depth, depth) }
            stack.append(v)
            depths.append(depth)
        }

        /// A popped value goes into another one (or away): it is sealed, so that no list or dict
        /// can come to contain itself, and the depths recorded stay true.
        mutating func popped(_ v: Value, _ depth: Int) {
            switch v {
            case .list(let l): l.sealed = true; taken = max(taken, l.depth)
            case .dict(let d): d.sealed = true; taken = max(taken, d.depth)
            default: taken = max(taken, depth)
            }
        }

        /// APPEND(S) / SETITEM(S) add what this opcode popped to `depth` of the list or dict on top.
        mutating func grow(_ depth: inout Int, sealed: Bool) throws {
            guard !sealed else { throw fail("adding to a list or dict that is already inside another value") }
            depth = max(depth, taken + 1)
            guard depth <= limits.maxNesting else { throw fail("values nested more than \(limits.maxNesting) deep") }
        }

        mutating func pop() throws -> Value {
            guard stack.count > (marks.last ?? 0) else { throw fail("stack underflow") }
            let v = stack.removeLast()
            popped(v, depths.removeLast())
            return v
        }

        mutating func top() throws -> Value {
            guard let v = stack.last, (marks.last ?? 0) < stack.count else { throw fail("stack underflow") }
            return v
        }

        mutating func popMark() throws -> [Value] {
            guard let m = marks.popLast() else { throw fail("no MARK on the stack") }
            let items = Array(stack[m...])
            for (v, d) in zip(items, depths[m...]) { popped(v, d) }
            stack.removeSubrange(m...)
            depths.removeSubrange(m...)
            return items
        }

        mutating func put(_ index: UInt32) throws {
            guard let v = stack.last else { throw fail("memo store with an empty stack") }
            guard memo.count < limits.maxValues else { throw fail("memo too large") }
            memo[index] = v
            memoDepths[index] = depths.last
        }

        mutating func get(_ index: UInt32) throws {
            guard let v = memo[index] else { throw fail("memo key \(index) is not defined") }
            try push(v, depth: memoDepths[index] ?? 1)
        }

        mutating func bytesValue(_ n: UInt64) throws -> [UInt8] {
            guard n <= UInt64(bytes.count - p) else { throw fail("truncated: \(n) bytes announced, \(bytes.count - p) left") }
            return Array(try take(Int(n)))
        }

        mutating func stringValue(_ n: UInt64) throws -> String {
            String(decoding: try bytesValue(n), as: UTF8.self)
        }

        mutating func run() throws -> Value {
            while true {
                opOffset = p
                taken = 0
                let op = try u8()
                switch op {
                case 0x80:  // PROTO
                    protocolVersion = try u8()
                    guard protocolVersion <= 5 else { throw fail("pickle protocol \(protocolVersion) is newer than 5") }
                case 0x95:  // FRAME: framing only groups opcodes; the content is read as usual
                    let n = try le(8)
                    guard n <= UInt64(bytes.count - p) else { throw fail("truncated: a frame of \(n) bytes is longer than the rest of the input") }
                case 0x2E:  // STOP
                    guard stack.count == 1, marks.isEmpty else { throw fail("STOP with \(stack.count) values on the stack") }
                    guard trailingAllowed || p == bytes.count else { throw fail("\(bytes.count - p) bytes after STOP") }
                    return stack[0]
                case 0x28:  // MARK
                    guard marks.count < limits.maxMarkDepth else { throw fail("MARKs nested more than \(limits.maxMarkDepth) deep") }
                    marks.append(stack.count)
                case 0x4E: try push(.none)  // NONE
                case 0x88: try push(.bool(true))  // NEWTRUE
                case 0x89: try push(.bool(false))  // NEWFALSE
                case 0x4A: try push(.int(Int64(Int32(bitPattern: UInt32(try le(4))))))  // BININT
                case 0x4B: try push(.int(Int64(try u8())))  // BININT1
                case 0x4D: try push(.int(Int64(try le(2))))  // BININT2
                case 0x8A, 0x8B:  // LONG1, LONG4
                    let n = op == 0x8A ? UInt64(try u8()) : try le(4)
                    guard n <= 8 else { throw fail("integer of \(n) bytes is too large") }
                    let raw = try le(Int(n))
                    let v = n == 0 ? 0 : (n == 8 ? Int64(bitPattern: raw) : (Int64(bitPattern: raw << (64 - 8 * n)) >> (64 - 8 * n)))
                    try push(.int(v))
                case 0x49:  // INT (protocol 0/1 text; "01"/"00" are True/False)
                    let s = try line()
                    if s == "01" { try push(.bool(true)) } else if s == "00" { try push(.bool(false)) } else {
                        guard let v = Int64(s) else { throw fail("INT '\(s.prefix(20))' is not an integer") }
                        try push(.int(v))
                    }
                case 0x47:  // BINFLOAT (big-endian)
                    var v: UInt64 = 0
                    for b in try take(8) { v = v << 8 | UInt64(b) }
                    try push(.float(Double(bitPattern: v)))
                case 0x55: try push(.bytes(try bytesValue(UInt64(try u8()))))  // SHORT_BINSTRING (py2 str)
                case 0x54:  // BINSTRING (py2 str; signed 4-byte length)
                    let n = Int32(bitPattern: UInt32(try le(4)))
                    guard n >= 0 else { throw fail("BINSTRING with negative length") }
                    try push(.bytes(try bytesValue(UInt64(n))))
                case 0x43: try push(.bytes(try bytesValue(UInt64(try u8()))))  // SHORT_BINBYTES
                case 0x42: try push(.bytes(try bytesValue(try le(4))))  // BINBYTES
                case 0x8E, 0x96: try push(.bytes(try bytesValue(try le(8))))  // BINBYTES8, BYTEARRAY8
                case 0x8C: try push(.string(try stringValue(UInt64(try u8()))))  // SHORT_BINUNICODE
                case 0x58: try push(.string(try stringValue(try le(4))))  // BINUNICODE
                case 0x8D: try push(.string(try stringValue(try le(8))))  // BINUNICODE8
                case 0x5D: try push(.list(List()))  // EMPTY_LIST
                case 0x29: try push(.tuple([]))  // EMPTY_TUPLE
                case 0x6C: try push(.list(List(try popMark())))  // LIST
                case 0x74: try push(.tuple(try popMark()))  // TUPLE
                case 0x85: let a = try pop(); try push(.tuple([a]))  // TUPLE1
                case 0x86: let b = try pop(), a = try pop(); try push(.tuple([a, b]))  // TUPLE2
                case 0x87: let c = try pop(), b = try pop(), a = try pop(); try push(.tuple([a, b, c]))  // TUPLE3
                case 0x61:  // APPEND
                    let v = try pop()
                    guard case .list(let l) = try top() else { throw fail("APPEND to a \(try top().kind)") }
                    try grow(&l.depth, sealed: l.sealed)
                    l.items.append(v)
                case 0x65:  // APPENDS
                    let items = try popMark()
                    guard case .list(let l) = try top() else { throw fail("APPENDS to a \(try top().kind)") }
                    try grow(&l.depth, sealed: l.sealed)
                    l.items.append(contentsOf: items)
                case 0x71: try put(UInt32(try u8()))  // BINPUT
                case 0x72: try put(UInt32(try le(4)))  // LONG_BINPUT
                case 0x94: try put(UInt32(truncatingIfNeeded: memo.count))  // MEMOIZE
                case 0x68: try get(UInt32(try u8()))  // BINGET
                case 0x6A: try get(UInt32(try le(4)))  // LONG_BINGET
                case 0x70:  // PUT (text)
                    guard let i = UInt32(try line()) else { throw fail("PUT with a bad index") }
                    try put(i)
                case 0x67:  // GET (text)
                    guard let i = UInt32(try line()) else { throw fail("GET with a bad index") }
                    try get(i)
                case 0x30: _ = try pop()  // POP
                case 0x31: _ = try popMark()  // POP_MARK
                case 0x32: try push(try top(), depth: depths.last)  // DUP
                case 0x63:  // GLOBAL "module\nname\n"
                    let module = try line(), name = try line()
                    try push(.global(module: module, name: name))
                case 0x93:  // STACK_GLOBAL
                    let n = try pop(), m = try pop()
                    guard case .string(let module) = m, case .string(let name) = n else { throw fail("STACK_GLOBAL needs two strings") }
                    try push(.global(module: module, name: name))
                case 0x7D where ext.dicts: try push(.dict(Dict()))  // EMPTY_DICT
                case 0x64 where ext.dicts:  // DICT
                    let items = try popMark()
                    guard items.count % 2 == 0 else { throw fail("DICT with an odd number of items") }
                    try push(.dict(Dict(stride(from: 0, to: items.count, by: 2).map { (items[$0], items[$0 + 1]) })))
                case 0x73 where ext.dicts:  // SETITEM
                    let v = try pop(), k = try pop()
                    guard case .dict(let d) = try top() else { throw fail("SETITEM on a \(try top().kind)") }
                    try grow(&d.depth, sealed: d.sealed)
                    d.items.append((k, v))
                case 0x75 where ext.dicts:  // SETITEMS
                    let items = try popMark()
                    guard items.count % 2 == 0 else { throw fail("SETITEMS with an odd number of items") }
                    guard case .dict(let d) = try top() else { throw fail("SETITEMS on a \(try top().kind)") }
                    try grow(&d.depth, sealed: d.sealed)
                    for i in stride(from: 0, to: items.count, by: 2) { d.items.append((items[i], items[i + 1])) }
                case 0x51 where ext.persistentLoad != nil:  // BINPERSID
                    let pid = try pop()
                    try push(try persistent(pid))
                case 0x50 where ext.persistentLoad != nil:  // PERSID (text)
                    try push(try persistent(.string(try line())))
                case 0x52:  // REDUCE
                    let args = try pop(), callable = try pop()
                    try push(try reduce(callable, args))
                case 0x62:  // BUILD
                    let state = try pop()
                    try build(try top(), state)
                default:
                    throw fail("pickle opcode 0x\(String(op, radix: 16)) is not supported by this safe reader")
                }
            }
        }

        static let arrayModules: Set<String> = ["numpy.core.multiarray", "numpy._core.multiarray"]
        static let numericModules: Set<String> = ["numpy.core.numeric", "numpy._core.numeric"]
        static let builtinModules: Set<String> = ["builtins", "__builtin__"]

        static func dtypeCode(_ v: Value) -> String? {
            let s: String
            switch v {
            case .string(let t): s = t
            case .bytes(let b): s = String(decoding: b, as: UTF8.self)
            default: return nil
            }
            switch s {
            case "u1", "|u1", "uint8", "B": return "u1"
            case "i1", "|i1", "int8", "b": return "i1"
            case "b1", "|b1", "bool", "?": return "b1"
            default: return nil
            }
        }

        mutating func rawBytes(_ v: Value, _ role: String) throws -> [UInt8] {
            if case .bytes(let b) = v { return b }
            throw fail("\(role) must be bytes, got \(v.kind)")
        }

        mutating func persistent(_ pid: Value) throws -> Value {
            do { return try ext.persistentLoad!(pid) } catch let e as TransFaceError { throw fail(e.message) }
        }

        mutating func reduce(_ callable: Value, _ args: Value) throws -> Value {
            guard case .global(let module, let name) = callable else { throw fail("REDUCE of a \(callable.kind), not a whitelisted global") }
            guard case .tuple(let a) = args else { throw fail("REDUCE arguments of \(module).\(name) are a \(args.kind), not a tuple") }
            if let call = ext.call {
                do {
                    if let v = try call(module, name, a) { return v }
                } catch let e as TransFaceError { throw fail(e.message) }
            }
            switch (module, name) {
            case ("_codecs", "encode"):
                guard a.count == 2, case .string(let text) = a[0], case .string(let encoding) = a[1],
                      ["latin1", "latin-1", "iso-8859-1"].contains(encoding.lowercased()) else {
                    throw fail("_codecs.encode is only accepted as encode(str, 'latin1')")
                }
                var out: [UInt8] = []
                out.reserveCapacity(text.unicodeScalars.count)
                for u in text.unicodeScalars {
                    guard u.value <= 0xFF else { throw fail("_codecs.encode: character U+\(String(u.value, radix: 16)) is not latin-1") }
                    out.append(UInt8(u.value))
                }
                return .bytes(out)
            case (let m, "bytes") where Reader.builtinModules.contains(m):
                guard a.isEmpty else { throw fail("\(m).bytes is only accepted without arguments") }
                return .bytes([])
            case (let m, "bytearray") where Reader.builtinModules.contains(m):
                if a.isEmpty { return .bytes([]) }
                if a.count == 1, case .bytes(let b) = a[0] { return .bytes(b) }
                if a.count == 2, case .string = a[0] { return try reduce(.global(module: "_codecs", name: "encode"), args) }
                throw fail("\(m).bytearray arguments are not accepted")
            case ("numpy", "dtype"):
                guard a.count == 3, let code = Reader.dtypeCode(a[0]) else {
                    throw fail("numpy.dtype(\(a.first?.kind ?? "")): only 1-byte types (u1, i1, b1) are accepted")
                }
                return .dtype(DType(code))
            case (let m, "_reconstruct") where Reader.arrayModules.contains(m):
                guard a.count == 3, case .global(let cm, "ndarray") = a[0], cm == "numpy" else {
                    throw fail("\(m)._reconstruct is only accepted for numpy.ndarray")
                }
                return .array(NDArray())
            case (let m, "_frombuffer") where Reader.numericModules.contains(m):
                guard a.count == 4, case .dtype(let dt) = a[1], case .tuple(let shape) = a[2] else {
                    throw fail("\(m)._frombuffer(buffer, dtype, shape, order) has unexpected arguments")
                }
                let arr = NDArray()
                arr.data = try rawBytes(a[0], "_frombuffer buffer")
                arr.dtype = dt.code
                arr.shape = try dims(shape)
                try checkArray(arr, fortran: a[3].isFortranOrder)
                arr.built = true
                return .array(arr)
            case (let m, "scalar") where Reader.arrayModules.contains(m):
                guard a.count == 2, case .dtype(let dt) = a[0] else { throw fail("\(m).scalar(dtype, raw) has unexpected arguments") }
                let raw = try rawBytes(a[1], "numpy scalar data")
                guard raw.count == 1 else { throw fail("numpy scalar of \(raw.count) bytes for dtype \(dt.code)") }
                switch dt.code {
                case "b1": return .bool(raw[0] != 0)
                case "i1": return .int(Int64(Int8(bitPattern: raw[0])))
                default: return .int(Int64(raw[0]))
                }
            default:
                throw fail("global \(module).\(name) is not on the whitelist of this safe reader (nothing is executed)")
            }
        }

        mutating func dims(_ shape: [Value]) throws -> [Int] {
            try shape.map {
                guard case .int(let d) = $0, d >= 0, d < Int64(Int32.max) else { throw fail("numpy shape entry \($0.kind) is not a size") }
                return Int(d)
            }
        }

        mutating func checkArray(_ arr: NDArray, fortran: Bool) throws {
            let n = try checkedProduct(arr.shape, what: "numpy array shape")
            guard n == arr.data.count else { throw fail("numpy array of shape \(arr.shape) holds \(arr.data.count) bytes, expected \(n)") }
            if fortran && arr.shape.filter({ $0 > 1 }).count > 1 {
                throw fail("Fortran-ordered multi-dimensional numpy arrays are not supported")
            }
        }

        mutating func build(_ target: Value, _ state: Value) throws {
            switch target {
            case .dict where ext.dicts:
                // an OrderedDict's attributes (torch state_dicts carry `_metadata`): not kept
                guard case .dict = state else { throw fail("dict state is a \(state.kind), not a dict") }
            case .dtype:
                // (version, byteorder, subarray, names, fields, elsize, alignment, flags): the
                // 1-byte types accepted have nothing to restore.
                guard case .tuple(let t) = state, t.count >= 2 else { throw fail("numpy dtype state is a \(state.kind)") }
            case .array(let arr):
                guard !arr.built, case .tuple(let t) = state, t.count == 5, case .tuple(let shape) = t[1], case .dtype(let dt) = t[2] else {
                    throw fail("numpy array state must be (version, shape, dtype, fortran, data)")
                }
                arr.shape = try dims(shape)
                arr.dtype = dt.code
                arr.data = try rawBytes(t[4], "numpy array data")
                let fortran: Bool
                switch t[3] {
                case .bool(let b): fortran = b
                case .int(let i): fortran = i != 0
                default: throw fail("numpy array fortran flag is a \(t[3].kind)")
                }
                try checkArray(arr, fortran: fortran)
                arr.built = true
            default:
                throw fail("BUILD on a \(target.kind) is not supported")
            }
        }
    }

    // MARK: writing

    /// Writes `(list of bytes, list of bools)` the way `pickle.dump(obj, f, protocol)` does:
    /// protocol 4 and 5 frame the stream and MEMOIZE (Python 3.4+), 3 uses BINBYTES without
    /// frames, and 2 writes `str` opcodes as Python 2 did (`SHORT_BINSTRING`/`BINSTRING`), which
    /// Python 3 reads with `encoding='bytes'`.
    public static func dumpBinPair(_ images: [[UInt8]], _ flags: [Bool], protocol proto: Int) throws -> [UInt8] {
        guard (2...5).contains(proto) else { throw TransFaceError.invalidArgument("pickle protocol \(proto) is not 2...5") }
        var w = Writer(proto: proto)
        w.raw([0x80, UInt8(proto)])
        w.framing = proto >= 4
        // the tuple's first element: the list of images
        w.boundary(); w.op([0x5D]); w.memoize()
        for batch in Writer.batches(images.count) {
            if batch.count > 1 { w.op([0x28]) }
            for i in batch { w.boundary(); try w.bytesObject(images[i]) }
            w.op([batch.count > 1 ? 0x65 : 0x61])
        }
        // second element: the list of bools
        w.boundary(); w.op([0x5D]); w.memoize()
        for batch in Writer.batches(flags.count) {
            if batch.count > 1 { w.op([0x28]) }
            for i in batch { w.boundary(); w.op([flags[i] ? 0x88 : 0x89]) }
            w.op([batch.count > 1 ? 0x65 : 0x61])
        }
        w.op([0x86]); w.memoize()  // TUPLE2
        w.op([0x2E])
        w.commitFrame()
        return w.out
    }

    struct Writer {
        let proto: Int
        var out: [UInt8] = []
        var frame: [UInt8] = []
        var framing = false
        var memoCount: UInt32 = 0
        static let frameTarget = 64 * 1024

        init(proto: Int) { self.proto = proto }

        mutating func raw(_ b: [UInt8]) { out.append(contentsOf: b) }

        mutating func op<C: Collection>(_ b: C) where C.Element == UInt8 {
            if framing { frame.append(contentsOf: b) } else { out.append(contentsOf: b) }
        }

        mutating func commitFrame() {
            guard !frame.isEmpty else { return }
            if frame.count >= 4 {
                out.append(0x95)
                appendLE64(&out, UInt64(frame.count))
            }
            out.append(contentsOf: frame)
            frame.removeAll(keepingCapacity: true)
        }

        /// Start of one object's `save`: a frame that reached the target size is committed.
        mutating func boundary() {
            if framing && frame.count >= Writer.frameTarget { commitFrame() }
        }

        mutating func memoize() {
            if proto >= 4 {
                op([0x94])
            } else if memoCount < 256 {
                op([0x71, UInt8(memoCount)])
            } else {
                var b: [UInt8] = [0x72]
                appendLE32(&b, memoCount)
                op(b)
            }
            memoCount += 1
        }

        /// Memo index of the empty and of each one-byte string: CPython shares those objects,
        /// so its pickler writes them once and refers back with BINGET.
        var shared: [Int: UInt32] = [:]

        mutating func get(_ index: UInt32) {
            if index < 256 { op([0x68, UInt8(index)]) } else {
                var b: [UInt8] = [0x6A]
                appendLE32(&b, index)
                op(b)
            }
        }

        mutating func bytesObject(_ data: [UInt8]) throws {
            let sharedKey = data.count <= 1 ? (data.first.map(Int.init) ?? -1) : nil
            if let key = sharedKey, let index = shared[key] {
                get(index)
                return
            }
            if let key = sharedKey { shared[key] = memoCount }
            var header: [UInt8] = []
            if proto == 2 {
                if data.count < 256 { header = [0x55, UInt8(data.count)] } else {
                    guard data.count <= Int(Int32.max) else { throw TransFaceError.invalidArgument("image of \(data.count) bytes is too large for protocol 2") }
                    header = [0x54]; appendLE32(&header, UInt32(data.count))
                }
            } else if data.count < 256 {
                header = [0x43, UInt8(data.count)]
            } else if data.count <= Int(UInt32.max) {
                header = [0x42]; appendLE32(&header, UInt32(data.count))
            } else {
                guard proto >= 4 else { throw TransFaceError.invalidArgument("image of \(data.count) bytes needs protocol 4") }
                header = [0x8E]; appendLE64(&header, UInt64(data.count))
            }
            if framing && data.count >= Writer.frameTarget {
                // large payloads bypass the frame, as CPython's _Pickler_write_bytes does
                commitFrame()
                out.append(contentsOf: header)
                out.append(contentsOf: data)
            } else {
                op(header); op(data)
            }
            memoize()
        }

        /// `_batch_appends`: MARK + up to 1000 items + APPENDS; a final single item uses APPEND.
        static func batches(_ count: Int) -> [Range<Int>] {
            stride(from: 0, to: count, by: 1000).map { $0..<min($0 + 1000, count) }
        }
    }
}

extension Pickle.Value {
    /// numpy's `order` argument: 'F' means Fortran order.
    var isFortranOrder: Bool {
        switch self {
        case .string(let s): return s == "F"
        case .bytes(let b): return b == [0x46]
        default: return false
        }
    }
}
