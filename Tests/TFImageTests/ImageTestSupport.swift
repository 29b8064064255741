import Foundation
import TFCore
import TFImage
import TFTestSupport
import XCTest

/// Shared helpers of the image tests: data paths, a hand-made PNG writer, mutations.
enum ImageTestData {
    static let data = Reference.shared + "/data"
    static let lfw = data + "/lfw/images"
    static let orl = data + "/orl_faces"
    static let photosMisc = data + "/photos_misc"
    static let align = Reference.path("align")

    /// Regular files under `folder` whose names end with one of `extensions` (lower-cased), sorted.
    static func files(under folder: String, extensions: Set<String>) -> [String] {
        guard let e = FileManager.default.enumerator(atPath: folder) else { return [] }
        var out: [String] = []
        while let rel = e.nextObject() as? String {
            let ext = (rel as NSString).pathExtension.lowercased()
            if extensions.contains(ext) { out.append(folder + "/" + rel) }
        }
        return out.sorted()
    }

    static func read(_ path: String) throws -> [UInt8] {
        let f = try ReadableFile(path: path)
        return try f.readBytes(at: 0, count: Int(f.size))
    }

    static func skipUnlessPresent(_ path: String) throws {
        if !FileManager.default.fileExists(atPath: path) { throw XCTSkip("shared data not found at \(path)") }
    }
}

/// PNG files built byte by byte (zlib "stored" blocks, no compression), for colour types,
/// bit depths and chunks that libpng's simplified writer does not produce.
enum HandPNG {
    static func chunk(_ type: String, _ body: [UInt8]) -> [UInt8] {
        let typeBytes = Array(type.utf8)
        var out = be32(UInt32(body.count)) + typeBytes + body
        let crc = (typeBytes + body).withUnsafeBytes { crc32($0) }
        out += be32(crc)
        return out
    }

    static func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }

    /// zlib stream of stored blocks.
    static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        var i = 0
        repeat {
            let n = min(65_535, data.count - i)
            let final: UInt8 = i + n == data.count ? 1 : 0
            out += [final, UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
            out += data[i..<(i + n)]
            i += n
        } while i < data.count
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in data { a = (a + UInt32(byte)) % 65_521; b = (b + a) % 65_521 }
        return out + be32(b << 16 | a)
    }

    /// A PNG of the given raw scanlines (filter byte 0 is prepended to each row here).
    static func make(width: Int, height: Int, bitDepth: UInt8, colorType: UInt8, rows: [[UInt8]],
                     extraChunks: [[UInt8]] = []) -> [UInt8] {
        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        png += chunk("IHDR", be32(UInt32(width)) + be32(UInt32(height)) + [bitDepth, colorType, 0, 0, 0])
        for c in extraChunks { png += c }
        var raw: [UInt8] = []
        for r in rows { raw.append(0); raw += r }
        png += chunk("IDAT", zlibStored(raw))
        png += chunk("IEND", [])
        return png
    }
}

/// Decodes and reports whether the outcome was clean: success or a TransFaceError.
/// Anything else (another error type) fails the test; a crash would end the run.
func decodesOrFailsCleanly(_ bytes: [UInt8], options: DecodeOptions = .init(), file: StaticString = #filePath,
                           line: UInt = #line) -> Bool {
    do {
        let image = try ImageDecoder.decode(bytes, options: options)
        XCTAssertEqual(image.pixels.count, image.width * image.height * 3, file: file, line: line)
        return true
    } catch is TransFaceError {
        return false
    } catch {
        XCTFail("unexpected error type: \(error)", file: file, line: line)
        return false
    }
}
