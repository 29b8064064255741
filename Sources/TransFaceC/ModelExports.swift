import CTransFace
import TFCore
import TFModel

/// Loading models and reading what they hold.

@c public func transface_load_default_params() -> transface_load_params {
    var p = transface_load_params()
    p.struct_size = UInt32(MemoryLayout<transface_load_params>.size)
    p.verify_checksums = 1
    p.max_weight_bytes = 0
    return p
}

@c public func transface_load_params_init(_ params: UnsafeMutablePointer<transface_load_params>?, _ size: UInt32) -> transface_status {
    guarded("transface_load_params_init") { try initStruct(params, size: size, defaults: transface_load_default_params()) }
}

@c public func transface_model_load(_ path: UnsafePointer<CChar>?, _ params: UnsafePointer<transface_load_params>?,
                                    _ out: UnsafeMutablePointer<OpaquePointer?>?) -> transface_status {
    guarded("transface_model_load") {
        let out = try required(out, "out_model")
        out.pointee = nil
        let path = try string(path, "path")
        let p = try readStruct(params, defaults: transface_load_default_params())
        var options = ModelFile.LoadOptions()
        options.verifyChecksums = p.verify_checksums != 0
        options.maxWeightBytes = p.max_weight_bytes
        out.pointee = Handle.make(ModelHandle(try ModelFile.load(path: path, options: options)))
    }
}

@c public func transface_model_free(_ model: OpaquePointer?) { Handle.release(model, ModelHandle.self, "transface_model_free") }

@c public func transface_model_get_config(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<transface_config>?) -> transface_status {
    guarded("transface_model_get_config") {
        try Handle.get(model, ModelHandle.self, "model").model.config.write(to: out)
    }
}

@c public func transface_model_get_preprocess(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<transface_preprocess>?) -> transface_status {
    guarded("transface_model_get_preprocess") {
        try Handle.get(model, ModelHandle.self, "model").model.preprocess.write(to: out)
    }
}

@c public func transface_model_embedding_size(_ model: OpaquePointer?) -> Int32 {
    guard let h = try? Handle.get(model, ModelHandle.self, "model") else { return 0 }
    return Int32(h.model.config.embeddingSize)
}

@c public func transface_model_metadata_count(_ model: OpaquePointer?) -> Int {
    (try? Handle.get(model, ModelHandle.self, "model"))?.metadata.count ?? 0
}

@c public func transface_model_metadata_at(_ model: OpaquePointer?, _ index: Int, _ key: UnsafeMutablePointer<UnsafePointer<CChar>?>?,
                                           _ value: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> transface_status {
    guarded("transface_model_metadata_at") {
        let h = try Handle.get(model, ModelHandle.self, "model")
        let key = try required(key, "out_key"), value = try required(value, "out_value")
        try require(index >= 0 && index < h.metadata.count, "index \(index) is outside 0..<\(h.metadata.count)")
        key.pointee = h.metadata[index].key
        value.pointee = h.metadata[index].value
    }
}

@c public func transface_model_metadata_get(_ model: OpaquePointer?, _ key: UnsafePointer<CChar>?,
                                            _ value: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> transface_status {
    guarded("transface_model_metadata_get") {
        let h = try Handle.get(model, ModelHandle.self, "model")
        let key = try string(key, "key"), value = try required(value, "out_value")
        guard let i = h.model.metadata.firstIndex(where: { $0.key == key }) else {
            throw TransFaceError.notFound("no metadata key '\(key)'")
        }
        value.pointee = h.metadata[i].value
    }
}

@c public func transface_model_tensor_count(_ model: OpaquePointer?) -> Int {
    (try? Handle.get(model, ModelHandle.self, "model"))?.tensorNames.count ?? 0
}

@c public func transface_model_tensor_info(_ model: OpaquePointer?, _ index: Int,
                                           _ out: UnsafeMutablePointer<transface_tensor_info>?) -> transface_status {
    guarded("transface_model_tensor_info") {
        let h = try Handle.get(model, ModelHandle.self, "model")
        let entries = h.model.layout.entries
        try require(index >= 0 && index < entries.count, "index \(index) is outside 0..<\(entries.count)")
        try fillTensorInfo(out, entries[index], h.tensorNames[index])
    }
}

@c public func transface_model_read_tensor(_ model: OpaquePointer?, _ name: UnsafePointer<CChar>?,
                                           _ out: UnsafeMutablePointer<Float>?, _ capacity: Int) -> transface_status {
    guarded("transface_model_read_tensor") {
        let m = try Handle.get(model, ModelHandle.self, "model").model
        let e = try m.layout.entry(try string(name, "name"))
        let out = try required(out, "out")
        try require(capacity >= e.count, "capacity \(capacity) is smaller than the \(e.count) values of '\(e.name)'")
        try m.copyTensor(e, into: out)
    }
}
