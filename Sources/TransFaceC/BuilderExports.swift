import CTransFace
import TFCore
import TFModel

/// Building model files from a config and tensors (the converter's path).

@c public func transface_builder_create(_ config: UnsafePointer<transface_config>?,
                                        _ out: UnsafeMutablePointer<OpaquePointer?>?) -> transface_status {
    guarded("transface_builder_create") {
        let out = try required(out, "out_builder")
        out.pointee = nil
        let c = try ViTConfig(config)
        out.pointee = Handle.make(BuilderHandle(try ModelBuilder(config: c)))
    }
}

@c public func transface_builder_free(_ builder: OpaquePointer?) { Handle.release(builder, BuilderHandle.self, "transface_builder_free") }

@c public func transface_builder_tensor_count(_ builder: OpaquePointer?) -> Int {
    (try? Handle.get(builder, BuilderHandle.self, "builder"))?.tensorNames.count ?? 0
}

@c public func transface_builder_tensor_info(_ builder: OpaquePointer?, _ index: Int,
                                             _ out: UnsafeMutablePointer<transface_tensor_info>?) -> transface_status {
    guarded("transface_builder_tensor_info") {
        let h = try Handle.get(builder, BuilderHandle.self, "builder")
        let entries = h.builder.layout.entries
        try require(index >= 0 && index < entries.count, "index \(index) is outside 0..<\(entries.count)")
        try fillTensorInfo(out, entries[index], h.tensorNames[index])
    }
}

@c public func transface_builder_set_tensor(_ builder: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ data: UnsafeRawPointer?,
                                            _ dtype: transface_dtype, _ dims: UnsafePointer<Int64>?, _ ndim: Int32) -> transface_status {
    guarded("transface_builder_set_tensor") {
        let b = try Handle.get(builder, BuilderHandle.self, "builder").builder
        let name = try string(name, "name"), data = try required(data, "data"), dims = try required(dims, "dims")
        try require((1...4).contains(ndim), "ndim \(ndim) is outside 1...4")
        guard let stored = StoredDType(rawValue: Int32(bitPattern: dtype.rawValue)) else {
            throw TransFaceError.invalidArgument("unknown dtype \(dtype.rawValue)")
        }
        try b.setTensor(name, dims: (0..<Int(ndim)).map { Int(dims[$0]) }, dtype: stored, data: data)
    }
}

@c public func transface_builder_init_weights(_ builder: OpaquePointer?, _ seed: UInt64) -> transface_status {
    guarded("transface_builder_init_weights") {
        try Handle.get(builder, BuilderHandle.self, "builder").builder.initializeWeights(seed: seed)
    }
}

@c public func transface_builder_set_preprocess(_ builder: OpaquePointer?,
                                                _ preprocess: UnsafePointer<transface_preprocess>?) -> transface_status {
    guarded("transface_builder_set_preprocess") {
        let b = try Handle.get(builder, BuilderHandle.self, "builder").builder
        try b.setPreprocess(try Preprocess(preprocess))
    }
}

@c public func transface_builder_set_metadata(_ builder: OpaquePointer?, _ key: UnsafePointer<CChar>?,
                                              _ value: UnsafePointer<CChar>?) -> transface_status {
    guarded("transface_builder_set_metadata") {
        let b = try Handle.get(builder, BuilderHandle.self, "builder").builder
        try b.setMetadata(try string(key, "key"), try string(value, "value"))
    }
}

@c public func transface_builder_save(_ builder: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> transface_status {
    guarded("transface_builder_save") {
        try Handle.get(builder, BuilderHandle.self, "builder").builder.save(to: try string(path, "path"))
    }
}

@c public func transface_builder_build(_ builder: OpaquePointer?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> transface_status {
    guarded("transface_builder_build") {
        let out = try required(out, "out_model")
        out.pointee = nil
        let m = try Handle.get(builder, BuilderHandle.self, "builder").builder.build()
        out.pointee = Handle.make(ModelHandle(m))
    }
}
