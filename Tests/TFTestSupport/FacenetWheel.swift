import Foundation

/// The facenet-pytorch 2.6.0 wheel (MIT) whose MTCNN weights the detector tests use: the file
/// `TRANSFACE_FACENET_WHEEL` names, else `<repo>/.build-data/` (where `.ci/setup` downloads it),
/// else `/tmp/fnp/`. `pip download facenet-pytorch==2.6.0 --no-deps -d .build-data` fetches it.
public enum FacenetWheel {
    public static let fileName = "facenet_pytorch-2.6.0-py3-none-any.whl"

    /// The wheel's path, or nil (with the reason printed) when it is nowhere.
    public static func path() -> String? {
        let candidates = [ProcessInfo.processInfo.environment["TRANSFACE_FACENET_WHEEL"],
                          Reference.repoRoot + "/.build-data/" + fileName, "/tmp/fnp/" + fileName].compactMap { $0 }
        if let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) { return found }
        print("skipping: no facenet-pytorch wheel (tried \(candidates.joined(separator: ", ")); "
              + "pip download facenet-pytorch==2.6.0 --no-deps -d .build-data)")
        return nil
    }
}
