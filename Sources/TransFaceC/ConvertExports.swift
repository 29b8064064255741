import CTransFace
import TFConvert
import TFCore

/// Official state_dicts to model files: TFConvert, the converter `transface convert` runs.

extension transface_convert_params: ABIStruct {
    static var abiName: String { "transface_convert_params" }
    static var firstReleasedSize: Int { 56 }
}

@c public func transface_convert_default_params() -> transface_convert_params {
    var p = transface_convert_params()
    p.struct_size = UInt32(MemoryLayout<transface_convert_params>.size)
    return p
}

@c public func transface_convert_params_init(_ params: UnsafeMutablePointer<transface_convert_params>?, _ size: UInt32) -> transface_status {
    guarded("transface_convert_params_init") { try initStruct(params, size: size, defaults: transface_convert_default_params()) }
}

@c public func transface_convert_state_dict(_ srcPath: UnsafePointer<CChar>?, _ params: UnsafePointer<transface_convert_params>?,
                                            _ outPath: UnsafePointer<CChar>?,
                                            _ outConfig: UnsafeMutablePointer<transface_config>?) -> transface_status {
    guarded("transface_convert_state_dict") {
        let source = try string(srcPath, "src_path"), output = try string(outPath, "out_path")
        if let outConfig { try checkStruct(outConfig, "out_config") }
        let p = try readStruct(params, defaults: transface_convert_default_params())
        let result = try Converter.convert(source, to: output, options: try options(p, metadata: true))
        if let outConfig { try result.config.write(to: outConfig) }
        report(result.notes, p)
    }
}

@c public func transface_convert_infer_config(_ names: UnsafePointer<UnsafePointer<CChar>?>?, _ ndims: UnsafePointer<Int32>?,
                                              _ dims: UnsafePointer<Int64>?, _ count: Int,
                                              _ params: UnsafePointer<transface_convert_params>?,
                                              _ outConfig: UnsafeMutablePointer<transface_config>?) -> transface_status {
    guarded("transface_convert_infer_config") {
        try checkStruct(outConfig, "out_config")
        let p = try readStruct(params, defaults: transface_convert_default_params())
        var notes: [String] = []
        let config = try Converter.inferConfig(shapes: try shapes(names, ndims, dims, count), options: try options(p, metadata: false),
                                               notes: &notes)
        try config.write(to: outConfig)
        report(notes, p)
    }
}

/// The converter's options from the C struct (0 and NULL: not given).
private func options(_ p: transface_convert_params, metadata: Bool) throws -> Converter.Options {
    func given(_ v: Int32) -> Int? { v == 0 ? nil : Int(v) }
    var pairs: [(key: String, value: String)] = []
    if metadata && p.metadata_count > 0 {
        let items = try required(p.metadata, "params.metadata (with metadata_count \(p.metadata_count))")
        for i in 0..<p.metadata_count {
            pairs.append((try string(items[2 * i], "params.metadata[\(2 * i)]"), try string(items[2 * i + 1], "params.metadata[\(2 * i + 1)]")))
        }
    }
    return Converter.Options(arch: p.arch.map { String(cString: $0) }, numHeads: given(p.num_heads),
                             embeddingSize: given(p.embedding_size), imgSize: given(p.img_size), metadata: pairs)
}

/// name → shape from the three parallel C arrays of transface_convert_infer_config.
private func shapes(_ names: UnsafePointer<UnsafePointer<CChar>?>?, _ ndims: UnsafePointer<Int32>?,
                    _ dims: UnsafePointer<Int64>?, _ count: Int) throws -> [String: [Int]] {
    guard count > 0 else { return [:] }
    let names = try required(names, "names"), ndims = try required(ndims, "ndims")
    var out: [String: [Int]] = [:], next = 0
    for i in 0..<count {
        let name = try string(names[i], "names[\(i)]"), n = Int(ndims[i])
        try require((0...8).contains(n), "ndims[\(i)] is \(n) (\(name)), not 0..8")
        var shape: [Int] = []
        if n > 0 {
            let d = try required(dims, "dims")
            shape = (0..<n).map { Int(d[next + $0]) }
        }
        try require(shape.allSatisfy { $0 >= 0 && $0 <= Int(Int32.max) }, "\(name) has a negative or huge dimension: \(shape)")
        try require(out.updateValue(shape, forKey: name) == nil, "names[\(i)] '\(name)' appears twice")
        next += n
    }
    return out
}

/// Each note to the caller's callback, if any.
private func report(_ notes: [String], _ p: transface_convert_params) {
    guard let note = p.note else { return }
    for n in notes { n.withCString { note(p.user_data, $0) } }
}
