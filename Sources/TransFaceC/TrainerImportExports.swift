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
