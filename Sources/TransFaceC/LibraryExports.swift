import CTransFace
import TFCore
import TFModel

#if canImport(Glibc)
import Glibc
#endif

/// Versions, status strings, the last error, presets and cosine comparison.

@c public func transface_version_number() -> UInt32 { LibraryVersion.number }

@c public func transface_version_string() -> UnsafePointer<CChar>? { versionString }

@c public func transface_format_version() -> UInt32 { ModelFile.formatVersion }

/// A C string with static lifetime, for the few constant strings the ABI returns.
private func staticCString(_ s: String) -> UnsafePointer<CChar> { UnsafePointer(strdup(s)!) }

private let versionString = staticCString(LibraryVersion.string)
private let statusStrings = ["ok", "invalid argument", "I/O error", "bad file format", "out of memory", "aborted",
                             "numeric error", "misuse", "internal error", "not found"].map(staticCString)
private let unknownStatus = staticCString("unknown status")
private let presetNames = ViTConfig.presetNames.map(staticCString)

@c public func transface_status_string(_ status: transface_status) -> UnsafePointer<CChar>? {
    let i = Int(status.rawValue)
    return i < statusStrings.count ? statusStrings[i] : unknownStatus
}

@c public func transface_last_error() -> UnsafePointer<CChar>? { ErrorState.current }

@c public func transface_config_preset(_ name: UnsafePointer<CChar>?, _ embeddingSize: Int32,
                                       _ out: UnsafeMutablePointer<transface_config>?) -> transface_status {
    guarded("transface_config_preset") {
        let name = try string(name, "name")
        try require(embeddingSize >= 0, "embedding_size \(embeddingSize) is negative")
        try ViTConfig.preset(name, embeddingSize: embeddingSize == 0 ? 512 : Int(embeddingSize)).write(to: out)
    }
}

@c public func transface_config_preset_count() -> Int { presetNames.count }

@c public func transface_config_preset_name(_ index: Int) -> UnsafePointer<CChar>? {
    index >= 0 && index < presetNames.count ? presetNames[index] : nil
}

@c public func transface_compare(_ a: UnsafePointer<Float>?, _ b: UnsafePointer<Float>?, _ dim: Int,
                                 _ out: UnsafeMutablePointer<Float>?) -> transface_status {
    guarded("transface_compare") {
        let a = try required(a, "a"), b = try required(b, "b"), out = try required(out, "out_cosine")
        try require(dim >= 1, "dim must be at least 1")
        var ab = 0.0, aa = 0.0, bb = 0.0
        for i in 0..<dim {
            let x = Double(a[i]), y = Double(b[i])
            ab += x * y; aa += x * x; bb += y * y
        }
        let denominator = (aa * bb).squareRoot()
        guard denominator > 0 && denominator.isFinite && ab.isFinite else {
            throw TransFaceError(.numeric, "cannot compare: an embedding is zero or not finite")
        }
        out.pointee = Float(ab / denominator)
    }
}
