import CTransFace
import TFCore
import TFTrain

/// Writing trainer tensors (fine-tuning from a pretrained head) and importing official runs.

@c public func transface_trainer_set_tensor(_ trainer: OpaquePointer?, _ name: UnsafePointer<CChar>?,
                                            _ data: UnsafePointer<Float>?, _ count: Int) -> transface_status {
    guarded("transface_trainer_set_tensor") {
        let t = try Handle.get(trainer, TrainerHandle.self, "trainer").trainer
        let name = try string(name, "name"), data = try required(data, "data")
        try require(count >= 0, "count \(count) is negative")
        try t.setTensor(name, UnsafeBufferPointer(start: data, count: count))
    }
}

@c public func transface_trainer_import_official(_ paths: UnsafePointer<UnsafePointer<CChar>?>?, _ count: Int,
                                                 _ json: UnsafePointer<CChar>?,
                                                 _ out: UnsafeMutablePointer<OpaquePointer?>?) -> transface_status {
    guarded("transface_trainer_import_official") {
        let out = try required(out, "out_trainer")
        out.pointee = nil
        let paths = try required(paths, "paths")
        try require(count >= 1 && count <= 65_536, "count \(count) is outside 1...65536")
        let list = try (0..<count).map { try string(paths[$0], "paths[\($0)]") }
        let config = try TrainerConfig.parse(try string(json, "config_json"))
        out.pointee = Handle.make(TrainerHandle(try Trainer.importOfficial(list, config: config).trainer))
    }
}
