import TFCore
import TFModel

/// The cosine threshold `compare` and `gallery search` decide "same person" by: --threshold,
/// else the one `transface eval --set-threshold-far` stored in the model's metadata.
struct VerificationThreshold {
    static let key = TransFaceModel.verificationThresholdKey

    var value: Double
    /// Where it came from, for the report ("--threshold", "stored in the model at FAR 1e-3 on ...").
    var origin: String

    /// `given` (checked to be in [-1, 1]), else the model's stored threshold, else nil.
    static func resolve(_ given: Double?, model: TransFaceModel, path: String) throws -> VerificationThreshold? {
        if let t = given {
            guard t.isFinite && t >= -1 && t <= 1 else { throw CLISupport.usage("--threshold \(t) is outside [-1, 1]") }
            return VerificationThreshold(value: t, origin: "--threshold")
        }
        let v: Double
        do {
            guard let stored = try model.storedVerificationThreshold() else { return nil }
            v = stored
        } catch let e as TransFaceError { throw TransFaceError.format("'\(path)': \(e.message)") }
        let far = model.metadataValue("verification_threshold_far").map { " at FAR \($0)" } ?? ""
        let set = model.metadataValue("verification_threshold_set").map { " on \($0)" } ?? ""
        return VerificationThreshold(value: v, origin: "stored in the model\(far)\(set)")
    }

    /// Whether embeddings are flip-summed when the threshold comes from the model: as it was
    /// measured (metadata verification_threshold_flip), else true.
    static func storedFlip(_ model: TransFaceModel) -> Bool {
        model.metadataValue("verification_threshold_flip").map { $0 == "true" } ?? true
    }

    static let missing = "no threshold is set (give --threshold, or store one with `transface eval --set-threshold-far`)"
}
