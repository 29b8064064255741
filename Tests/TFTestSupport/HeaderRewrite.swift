import Foundation
import TFCore
import TFModel

extension Reference {
    /// Copies the model or checkpoint file at `path` to `output` with its header passed through
    /// `edit` and re-encoded with a correct checksum and padding (tensor data unchanged), so that
    /// tests can craft files that pass the header checks but claim something else.
    public static func rewriteHeader(of path: String, to output: String, _ edit: (inout ModelHeader) -> Void) throws {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let headerLength = bytes[16..<24].reversed().reduce(0) { $0 << 8 | Int($1) }
        let dataStart = (24 + headerLength + 63) / 64 * 64
        var header = try Array(bytes[24..<(24 + headerLength)]).withUnsafeBytes { try ModelHeader.decode($0) }
        edit(&header)
        let encoded = try header.encode()
        var out = Data(bytes[0..<12])
        withUnsafeBytes(of: encoded.withUnsafeBytes { crc32($0) }.littleEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt64(encoded.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: encoded)
        out.append(Data(count: (24 + encoded.count + 63) / 64 * 64 - 24 - encoded.count))
        out.append(bytes[dataStart...])
        try out.write(to: URL(fileURLWithPath: output))
    }
}
