import TFCore
import TFData
import TFImage

extension DataLoader {
    /// TFImage's decoder (JPEG, PNG, PNM to RGB): the default for training sets. Errors name
    /// the sample.
    public static let standardDecoder: ImageDecodeFunction = { bytes, name in
        let image = try ImageDecoder.naming(name) { try ImageDecoder.decode(bytes) }
        return (image.pixels, image.width, image.height)
    }
}

extension RecordIOPacker {
    /// A `transcode` hook that keeps JPEG files as they are and re-encodes every other image
    /// (PNG, PNM, ...) as a JPEG of `quality` (insightface's `pack_img` uses 95), so that any
    /// MXNet/OpenCV reader can decode the set.
    public static func jpegTranscoder(quality: Int = 95) -> (_ bytes: [UInt8], _ name: String) throws -> [UInt8] {
        return { bytes, name in
            if bytes.starts(with: [0xFF, 0xD8, 0xFF]) { return bytes }
            let image = try ImageDecoder.naming(name) { try ImageDecoder.decode(bytes) }
            return try ImageDecoder.naming(name) { try ImageEncoder.jpeg(image, quality: quality) }
        }
    }
}
