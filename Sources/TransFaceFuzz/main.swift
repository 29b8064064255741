import TransFaceFuzzHarness

#if canImport(Glibc)
import Glibc
#endif

// transface-fuzz: the libFuzzer harnesses of every parser of outside input (see
// Sources/TransFaceFuzzHarness and Tests/Fuzz/run.sh).
//
// Normal build: a replayer and seed writer.
//   transface-fuzz HARNESS FILE...      run each file through the harness: accepted or refused
//   transface-fuzz seeds HARNESS DIR    write the harness's generated seed inputs into DIR
//   transface-fuzz list                 harness names and their -max_len
// Built with -DFUZZING (and -sanitize=fuzzer,address): a libFuzzer binary; the harness is named
// by the environment variable TRANSFACE_FUZZ_HARNESS, every argument goes to libFuzzer (but
// `seeds HARNESS DIR` works as in the normal build).

func fail(_ message: String) -> Never {
    fputs("transface-fuzz: \(message)\n", stderr)
    exit(2)
}

func harness(named name: String) -> FuzzHarness {
    guard let h = FuzzHarness(rawValue: name) else {
        fail("unknown harness '\(name)'; harnesses: \(FuzzHarness.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    return h
}

#if FUZZING

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

if CommandLine.arguments.count == 4 && CommandLine.arguments[1] == "seeds" {  // as in the normal build
    do {
        let n = try FuzzSeeds.write(harness(named: CommandLine.arguments[2]), to: CommandLine.arguments[3])
        print("\(n) seeds written to \(CommandLine.arguments[3])")
        exit(0)
    } catch { fail("seeds: \(error)") }
}
nonisolated(unsafe) var selected: FuzzHarness = .config
guard let name = getenv("TRANSFACE_FUZZ_HARNESS") else { fail("set TRANSFACE_FUZZ_HARNESS to one of \(FuzzHarness.allCases.map(\.rawValue).joined(separator: ", "))") }
selected = harness(named: String(cString: name))
var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    do {
        _ = try selected.run(bytes)
    } catch {
        fatalError("\(error)")  // a failure that is not a TransFaceError: a finding
    }
    return 0
})

#else

func readFile(_ path: String) -> [UInt8]? {
    guard let f = fopen(path, "rb") else { return nil }
    defer { fclose(f) }
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = fread(&buffer, 1, buffer.count, f)
        if n <= 0 { break }
        out += buffer[0..<n]
    }
    return out
}

let args = Array(CommandLine.arguments.dropFirst())
switch args.first {
case nil, "-h", "--help":
    print("usage: transface-fuzz HARNESS FILE... | seeds HARNESS DIR | list")
    exit(args.isEmpty ? 2 : 0)
case "list":
    for h in FuzzHarness.allCases { print("\(h.rawValue)\t\(h.maxLength)") }
case "seeds":
    guard args.count == 3 else { fail("usage: transface-fuzz seeds HARNESS DIR") }
    do {
        let n = try FuzzSeeds.write(harness(named: args[1]), to: args[2])
        print("\(n) seeds written to \(args[2])")
    } catch { fail("seeds: \(error)") }
default:
    let h = harness(named: args[0])
    var unexpected = 0
    for path in args.dropFirst() {
        guard let bytes = readFile(path) else { fail("cannot read \(path)") }
        do {
            switch try h.run(bytes) {
            case .accepted(let what): print("\(path): accepted: \(what)")
            case .refused(let e): print("\(path): refused (\(e.kind)): \(e.message)")
            }
        } catch {
            print("\(path): UNEXPECTED: \(error)")
            unexpected += 1
        }
    }
    exit(unexpected == 0 ? 0 : 1)
}

#endif
