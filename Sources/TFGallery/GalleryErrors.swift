import TFCore

/// The gallery's errors, all `TransFaceError`s (so the C ABI maps them onto status codes).
enum GalleryErrors {
    /// A file that is not a valid gallery, or whose contents contradict themselves.
    static func damaged(_ message: String) -> TransFaceError { .format(message) }
    /// An operation on a closed gallery or a read-only one.
    static func misuse(_ message: String) -> TransFaceError { TransFaceError(.misuse, message) }
}
