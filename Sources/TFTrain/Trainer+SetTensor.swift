import TFCore

extension Trainer {
    /// Overwrites a tensor by the names `tensor(_:)` reads: a model tensor by its official name
    /// (BatchNorm running statistics included), the class centres `partial_fc.weight`, or an
    /// optimizer moment `optimizer.<exp_avg|exp_avg_sq|momentum_buffer>.<name>`. Gradients are
    /// recomputed by every step and cannot be set. `values` must hold exactly the tensor's count
    /// of finite floats; otherwise nothing changes. Nothing derived from the weights outlives a
    /// write: every train-mode forward and backward repacks the GEMM weights from the parameter
    /// slab, and Partial FC reads the centres (and their norms) afresh at every step.
    public func setTensor(_ name: String, _ values: UnsafeBufferPointer<Float>) throws {
        let target = try writableTensor(name)
        guard values.count == target.count else {
            throw TransFaceError.invalidArgument("'\(name)' holds \(target.count) values, \(values.count) were given")
        }
        if let i = values.firstIndex(where: { !$0.isFinite }) {
            throw TransFaceError.invalidArgument("value \(i) for '\(name)' is \(values[i]), not finite")
        }
        if target.isMoment, name.hasPrefix("optimizer.exp_avg_sq."), let i = values.firstIndex(where: { $0 < 0 }) {
            throw TransFaceError.invalidArgument("value \(i) for '\(name)' is \(values[i]): a second moment cannot be negative")
        }
        _ = target.view.update(fromContentsOf: values)
    }

    /// `setTensor` from an array.
    public func setTensor(_ name: String, _ values: [Float]) throws {
        try values.withUnsafeBufferPointer { try setTensor(name, $0) }
    }

    private func writableTensor(_ name: String) throws -> (view: UnsafeMutableBufferPointer<Float>, count: Int, isMoment: Bool) {
        if name == PartialFC.tensorName { return (partialFC.weight.all, partialFC.weight.count, false) }
        if name.hasPrefix("gradient.") {
            throw TransFaceError.invalidArgument("'\(name)' is a gradient: every step recomputes it, it cannot be set")
        }
        if name.hasPrefix("optimizer.") {
            guard let (_, slab, offset, count) = stateTensors().first(where: { $0.0 == name }) else {
                throw TransFaceError.notFound("no optimizer moment '\(name)' (the \(config.optimizer.rawValue) trainer has optimizer.\(config.optimizer == .adamw ? "<exp_avg|exp_avg_sq>" : "momentum_buffer").<trained tensor>)")
            }
            guard offset + count <= slab.count else {  // SGD without momentum keeps no buffer
                throw TransFaceError.notFound("the optimizer keeps no '\(name)'")
            }
            return (slab.view(offset, count), count, true)
        }
        let e = try layout.entry(name)
        return (parameters.view(e.offset, e.count), e.count, false)
    }
}
