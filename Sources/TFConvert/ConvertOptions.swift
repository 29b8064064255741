import TFCore

extension Converter.Options {
    /// The options as the CLI and the C ABI take them (one path for both): nil means "not
    /// given" (infer); `metadata` entries are stored after, and replace, the converter's own.
    public init(arch: String?, numHeads: Int?, embeddingSize: Int?, imgSize: Int?, metadata: [(key: String, value: String)]) {
        self.init()
        self.arch = arch
        self.numHeads = numHeads
        self.embeddingSize = embeddingSize
        self.imgSize = imgSize
        self.metadata = metadata
    }

    /// One `KEY=VALUE` metadata argument (the first `=` splits; the key must not be empty).
    public static func metadataEntry(_ item: String) throws -> (key: String, value: String) {
        guard let eq = item.firstIndex(of: "="), eq != item.startIndex else {
            throw TransFaceError.invalidArgument("--metadata expects KEY=VALUE, got '\(item)'")
        }
        return (String(item[..<eq]), String(item[item.index(after: eq)...]))
    }
}
