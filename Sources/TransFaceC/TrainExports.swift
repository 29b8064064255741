import CTransFace
import TFCore
import TFModel
import TFTrain


/// Training: DPAP's amplitude-spectrum mix for callers augmenting their own patches.

@c public func transface_amplitude_mix(_ source: UnsafePointer<UInt8>?, _ partner: UnsafePointer<UInt8>?,
                                       _ height: Int32, _ width: Int32, _ channels: Int32, _ lambda: Double,
                                       _ ratio: Double, _ out: UnsafeMutablePointer<UInt8>?,
                                       _ capacity: Int) -> transface_status {
    guarded("transface_amplitude_mix") {
        let source = try required(source, "source"), partner = try required(partner, "partner")
        let out = try required(out, "out")
        try require(height >= 1 && height <= 4096 && width >= 1 && width <= 4096,
                    "patch size \(height)x\(width) is outside 1...4096")
        try require(channels >= 1 && channels <= 64, "channels \(channels) is outside 1...64")
        let count = Int(height) * Int(width) * Int(channels)
        try require(capacity >= count, "capacity \(capacity) is below height*width*channels = \(count)")
        try AmplitudeMix.mix(source: UnsafeBufferPointer(start: source, count: count),
                             partner: UnsafeBufferPointer(start: partner, count: count),
                             height: Int(height), width: Int(width), channels: Int(channels),
                             lambda: lambda, ratio: ratio, into: UnsafeMutableBufferPointer(start: out, count: count))
    }
}

/// What a `transface_trainer *` points to.
final class TrainerHandle {
    let trainer: Trainer
    init(_ trainer: Trainer) { self.trainer = trainer }
}

@c public func transface_trainer_create(_ json: UnsafePointer<CChar>?, _ model: OpaquePointer?,
                                        _ out: UnsafeMutablePointer<OpaquePointer?>?) -> transface_status {
    guarded("transface_trainer_create") {
        let out = try required(out, "out_trainer")
        out.pointee = nil
        let config = try TrainerConfig.parse(try string(json, "config_json"))
        let initial = try model.map { try Handle.get($0, ModelHandle.self, "init_model").model }
        out.pointee = Handle.make(TrainerHandle(try Trainer(config: config, initialModel: initial)))
    }
}

@c public func transface_trainer_resume(_ path: UnsafePointer<CChar>?, _ threads: Int32,
                                        _ out: UnsafeMutablePointer<OpaquePointer?>?) -> transface_status {
    guarded("transface_trainer_resume") {
        let out = try required(out, "out_trainer")
        out.pointee = nil
        try require(threads >= 0, "num_threads \(threads) is negative")
        let t = try Trainer.resume(from: try string(path, "checkpoint_path"), threads: threads == 0 ? nil : Int(threads))
        out.pointee = Handle.make(TrainerHandle(t))
    }
}

@c public func transface_trainer_free(_ trainer: OpaquePointer?) { Handle.release(trainer, TrainerHandle.self, "transface_trainer_free") }

@c public func transface_trainer_step(_ trainer: OpaquePointer?, _ images: UnsafePointer<UInt8>?, _ labels: UnsafePointer<Int32>?,
                                      _ count: Int, _ width: Int32, _ height: Int32,
                                      _ out: UnsafeMutablePointer<transface_step_result>?) -> transface_status {
    guarded("transface_trainer_step") {
        let t = try Handle.get(trainer, TrainerHandle.self, "trainer").trainer
        let images = try required(images, "images"), labels = try required(labels, "labels")
        if let out { try checkStruct(out, "out_result") }
        let side = t.config.model.imgSize
        try require(Int(width) == side && Int(height) == side, "images are \(width)x\(height), the model takes \(side)x\(side)")
        try require(count == t.config.batchSize, "count \(count) differs from the configured batch_size \(t.config.batchSize)")
        let start = monotonicSeconds()
        let r = try t.step(images: images, labels: Array(UnsafeBufferPointer(start: labels, count: count)))
        guard let out else { return }
        var result = transface_step_result()
        result.loss = r.loss; result.first_pass_loss = r.firstPassLoss; result.learning_rate = r.learningRate
        result.gradient_norm = r.gradientNorm; result.clip_coefficient = r.clipCoefficient
        result.optimizer_stepped = r.optimizerStepped ? 1 : 0; result.skipped = r.skipped ? 1 : 0
        result.images_augmented = Int32(r.imagesAugmented); result.step = UInt64(t.step)
        result.seconds = monotonicSeconds() - start
        try writeStruct(result, to: out, "out_result")
    }
}

@c public func transface_trainer_save_checkpoint(_ trainer: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> transface_status {
    guarded("transface_trainer_save_checkpoint") {
        try Handle.get(trainer, TrainerHandle.self, "trainer").trainer.saveCheckpoint(to: try string(path, "path"))
    }
}

@c public func transface_trainer_export_model(_ trainer: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> transface_status {
    guarded("transface_trainer_export_model") {
        let t = try Handle.get(trainer, TrainerHandle.self, "trainer").trainer
        try ModelFile.write(try t.exportModel(), to: try string(path, "path"))
    }
}

@c public func transface_trainer_tensor_size(_ trainer: OpaquePointer?, _ name: UnsafePointer<CChar>?,
                                             _ out: UnsafeMutablePointer<Int>?) -> transface_status {
    guarded("transface_trainer_tensor_size") {
        let t = try Handle.get(trainer, TrainerHandle.self, "trainer").trainer
        try required(out, "out_count").pointee = try t.tensor(try string(name, "name")).count
    }
}

@c public func transface_trainer_read_tensor(_ trainer: OpaquePointer?, _ name: UnsafePointer<CChar>?,
                                             _ out: UnsafeMutablePointer<Float>?, _ capacity: Int) -> transface_status {
    guarded("transface_trainer_read_tensor") {
        let t = try Handle.get(trainer, TrainerHandle.self, "trainer").trainer
        let name = try string(name, "name"), out = try required(out, "out")
        let values = try t.tensor(name)
        try require(capacity >= values.count, "capacity \(capacity) is smaller than the \(values.count) values of '\(name)'")
        out.update(from: values, count: values.count)
    }
}

@c public func transface_trainer_get_info(_ trainer: OpaquePointer?, _ out: UnsafeMutablePointer<transface_trainer_info>?) -> transface_status {
    guarded("transface_trainer_get_info") {
        let t = try Handle.get(trainer, TrainerHandle.self, "trainer").trainer
        var info = transface_trainer_info()
        info.step = UInt64(t.step); info.batches = UInt64(t.microStep)
        info.learning_rate = t.learningRate; info.learning_rate_scale = t.learningRateScale
        try writeStruct(info, to: out, "out")
    }
}
