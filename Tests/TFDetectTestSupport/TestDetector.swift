import TFConvert
import TFModel
import TFTestSupport

/// The real MTCNN weights for the detector tests and benchmarks: converted once per process from
/// the facenet-pytorch wheel (`FacenetWheel`) by the library's own converter.
public enum TestDetector {
    private static let converted: Result<DetectorModel, Error>? = FacenetWheel.path().map { wheel in
        Result { try DetectorConverter.convert(facenetWheel: wheel) }
    }

    /// The weights with `config`, or nil (reason printed) when the wheel is absent.
    public static func model(config: DetectorConfig = DetectorConfig()) throws -> DetectorModel? {
        guard let converted else { return nil }
        var m = try converted.get()
        m.config = config
        return m
    }
}
