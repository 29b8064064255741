import TFCore

extension TransFaceModel {
    /// Metadata key of the cosine threshold `transface eval --set-threshold-far` stores.
    public static let verificationThresholdKey = "verification_threshold"

    /// The cosine threshold stored in the model's metadata, nil when none is stored; a stored
    /// value that is not a finite number in [-1, 1] is a format error.
    public func storedVerificationThreshold() throws -> Double? {
        guard let stored = metadataValue(Self.verificationThresholdKey) else { return nil }
        guard let v = Double(stored), v.isFinite, v >= -1, v <= 1 else {
            throw TransFaceError.format("metadata \(Self.verificationThresholdKey) '\(stored.prefix(40))' is not a cosine in [-1, 1]")
        }
        return v
    }
}
