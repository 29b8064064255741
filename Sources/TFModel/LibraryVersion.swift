/// The library's version (mirrors TRANSFACE_VERSION_* in include/transface.h).
public enum LibraryVersion {
    public static let major = 0, minor = 2, patch = 0
    public static let number = UInt32(major * 10000 + minor * 100 + patch)
    public static let string = "\(major).\(minor).\(patch)"
}
