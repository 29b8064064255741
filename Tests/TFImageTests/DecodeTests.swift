import Foundation
import TFCore
import TFImage
import TFTestSupport
import XCTest

final class DecodeRealFilesTests: XCTestCase {
    /// Every LFW photo decodes to 250x250 RGB (two threads; the decoding itself is C).
    func testEveryLFWPhotoDecodes() throws {
        try ImageTestData.skipUnlessPresent(ImageTestData.lfw)
        let paths = ImageTestData.files(under: ImageTestData.lfw, extensions: ["jpg"])
        XCTAssertEqual(paths.count, 5985)
        let threads = 2
        var failures = [[String]](repeating: [], count: threads)
        var checksums = [UInt64](repeating: 0, count: threads)
        let start = Date()
        failures.withUnsafeMutableBufferPointer { failures in
            checksums.withUnsafeMutableBufferPointer { checksums in
                DispatchQueue.concurrentPerform(iterations: threads) { t in
                    for i in stride(from: t, to: paths.count, by: threads) {
                        do {
                            let image = try ImageDecoder.decodeFile(paths[i])
                            if image.width != 250 || image.height != 250 {
                                failures[t].append("\(paths[i]): \(image.width)x\(image.height)")
                            }
                            checksums[t] &+= UInt64(image.pixels[image.pixels.count / 2])
                        } catch {
                            failures[t].append("\(error)")
                        }
                    }
                }
            }
        }
        let seconds = Date().timeIntervalSince(start)
        let all = failures.flatMap { $0 }
        XCTAssertEqual(all, [], "\(all.count) LFW photos failed")
        print("LFW: \(paths.count - all.count) of \(paths.count) photos decoded in \(String(format: "%.2f", seconds)) s on \(threads) threads")
    }

    /// The 400 ORL PGMs decode to grey expanded to RGB, equal to the raw raster.
    func testEveryORLImageDecodes() throws {
        try ImageTestData.skipUnlessPresent(ImageTestData.orl)
        let paths = ImageTestData.files(under: ImageTestData.orl, extensions: ["pgm"])
        XCTAssertEqual(paths.count, 400)
        for path in paths {
            let bytes = try ImageTestData.read(path)
            let image = try ImageDecoder.decode(bytes)
            XCTAssertEqual(image.width, 92)
            XCTAssertEqual(image.height, 112)
            let raster = Array(bytes.suffix(92 * 112))  // maxval 255, the raster ends the file
            for p in 0..<(92 * 112) where image.pixels[3 * p] != raster[p] || image.pixels[3 * p + 1] != raster[p] || image.pixels[3 * p + 2] != raster[p] {
                XCTFail("\(path): pixel \(p) differs from the raster"); break
            }
            let info = try bytes.withUnsafeBytes { try ImageDecoder.info($0) }
            XCTAssertEqual(info, ImageInfo(width: 92, height: 112, format: .pnm, channels: 1))
        }
    }

    /// The photos of photos_misc (progressive, 4:4:4, 4:2:0, ICC profiles) decode or fail cleanly.
    func testPhotosMiscDecodeOrFailCleanly() throws {
        try ImageTestData.skipUnlessPresent(ImageTestData.photosMisc)
        let paths = ImageTestData.files(under: ImageTestData.photosMisc, extensions: ["jpg", "jpeg"])
        XCTAssertEqual(paths.count, 12)
        var decoded = 0
        for path in paths {
            do {
                let bytes = try ImageTestData.read(path)
                let info = try bytes.withUnsafeBytes { try ImageDecoder.info($0) }
                let image = try ImageDecoder.decode(bytes)
                XCTAssertEqual([image.width, image.height], [info.width, info.height], path)
                XCTAssertEqual(info.format, .jpeg)
                decoded += 1
                print("\((path as NSString).lastPathComponent): \(info.width)x\(info.height), \(info.channels) channels")
            } catch let e as TransFaceError {
                print("\(path): refused cleanly: \(e)")
            }
        }
        XCTAssertEqual(decoded, 12, "every photo of photos_misc is a valid JPEG")
    }

    /// Our decoded pixels equal the reference's (OpenCV imread, BGR to RGB) exactly.
    func testDecodedPixelsEqualTheReference() throws {
        try ImageTestData.skipUnlessPresent(ImageTestData.align)
        let paths = try String(contentsOfFile: ImageTestData.align + "/paths.txt", encoding: .utf8)
            .split(separator: "\n").map(String.init)
        let reference = try NPYArray(path: ImageTestData.align + "/decoded_rgb.npy")
        XCTAssertEqual(reference.shape, [paths.count, 250, 250, 3])
        let size = 250 * 250 * 3
        var worst = 0, differing = 0
        for (i, p) in paths.enumerated() {
            let image = try ImageDecoder.decodeFile(ImageTestData.data + "/" + p)
            let ref = reference.bytes[(i * size)..<((i + 1) * size)]
            for (a, b) in zip(image.pixels, ref) where a != b {
                differing += 1
                worst = max(worst, abs(Int(a) - Int(b)))
            }
        }
        print("decoded vs reference decoded_rgb: \(differing) differing bytes over \(paths.count) images, max |diff| \(worst)")
        XCTAssertEqual(differing, 0)
    }
}

final class DecodeVariantsTests: XCTestCase {
    /// A smooth synthetic RGB image (compresses well, so JPEG errors stay small).
    static func gradient(width: Int, height: Int) -> [UInt8] {
        var px = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                px[3 * (y * width + x)] = UInt8(x * 255 / max(width - 1, 1))
                px[3 * (y * width + x) + 1] = UInt8(y * 255 / max(height - 1, 1))
                px[3 * (y * width + x) + 2] = UInt8((x + y) * 127 / max(width + height - 2, 1))
            }
        }
        return px
    }

    static func meanAbsDiff(_ a: [UInt8], _ b: [UInt8]) -> Double {
        precondition(a.count == b.count)
        return Double(zip(a, b).reduce(0) { $0 + abs(Int($1.0) - Int($1.1)) }) / Double(a.count)
    }

    func testJPEGSubsamplingsProgressiveGreyAndCMYK() throws {
        let (w, h) = (67, 45)  // not multiples of the MCU size
        let rgb = Self.gradient(width: w, height: h)
        for subsampling in [JPEGSubsampling.s444, .s422, .s420] {
            for progressive in [false, true] {
                let jpeg = try ImageEncoder.jpeg(rgb, width: w, height: h, quality: 95, subsampling: subsampling, progressive: progressive)
                let image = try ImageDecoder.decode(jpeg)
                XCTAssertEqual([image.width, image.height], [w, h])
                XCTAssertLessThan(Self.meanAbsDiff(image.pixels, rgb), 2.0, "\(subsampling) progressive \(progressive)")
                XCTAssertEqual(try jpeg.withUnsafeBytes { try ImageDecoder.info($0) }.channels, 3)
            }
        }
        // Grey: expanded to R = G = B.
        let grey = (0..<(w * h)).map { UInt8(($0 * 7) % 256 / 2 + 60) }
        let greyJPEG = try ImageEncoder.jpeg(grey, width: w, height: h, channels: 1, quality: 100)
        let g = try ImageDecoder.decode(greyJPEG)
        XCTAssertEqual(try greyJPEG.withUnsafeBytes { try ImageDecoder.info($0) }.channels, 1)
        for p in 0..<(w * h) {
            XCTAssertTrue(g.pixels[3 * p] == g.pixels[3 * p + 1] && g.pixels[3 * p] == g.pixels[3 * p + 2])
        }
        // CMYK (TurboJPEG writes YCCK): converted as OpenCV does, c = k - (255 - c) * k >> 8.
        var cmyk = [UInt8](repeating: 0, count: w * h * 4)
        for p in 0..<(w * h) { cmyk[4 * p] = 200; cmyk[4 * p + 1] = 100; cmyk[4 * p + 2] = 30; cmyk[4 * p + 3] = 255 }
        let cmykJPEG = try ImageEncoder.jpeg(cmyk, width: w, height: h, channels: 4, quality: 100, subsampling: .s444)
        XCTAssertEqual(try cmykJPEG.withUnsafeBytes { try ImageDecoder.info($0) }.channels, 4)
        let c = try ImageDecoder.decode(cmykJPEG)
        let expected: [Int] = [200, 100, 30].map { 255 - ((255 - $0) * 255 >> 8) }
        for k in 0..<3 { XCTAssertLessThanOrEqual(abs(Int(c.pixels[k]) - expected[k]), 2, "CMYK channel \(k)") }
    }

    func testPNGColourTypesAndDepths() throws {
        let (w, h) = (5, 3)
        // 8-bit RGB and RGBA through libpng's writer.
        let rgb = Self.gradient(width: w, height: h)
        XCTAssertEqual(try ImageDecoder.decode(try ImageEncoder.png(rgb, width: w, height: h)).pixels, rgb)
        var rgba = [UInt8](repeating: 0, count: w * h * 4)
        for p in 0..<(w * h) {
            rgba[4 * p] = rgb[3 * p]; rgba[4 * p + 1] = rgb[3 * p + 1]; rgba[4 * p + 2] = rgb[3 * p + 2]
            rgba[4 * p + 3] = UInt8(p * 17 % 256)  // includes alpha 0: colours must survive
        }
        let rgbaPNG = try ImageEncoder.png(rgba, width: w, height: h, channels: 4)
        XCTAssertEqual(try rgbaPNG.withUnsafeBytes { try ImageDecoder.info($0) }.channels, 4)
        XCTAssertEqual(try ImageDecoder.decode(rgbaPNG).pixels, rgb, "alpha is dropped, colours kept")
        // Grey and grey + alpha.
        let grey: [UInt8] = (0..<(w * h)).map { UInt8($0 * 16) }
        let greyRGB: [UInt8] = grey.flatMap { [$0, $0, $0] as [UInt8] }
        XCTAssertEqual(try ImageDecoder.decode(try ImageEncoder.png(grey, width: w, height: h, channels: 1)).pixels, greyRGB)
        let ga: [UInt8] = grey.flatMap { [$0, 0] as [UInt8] }
        XCTAssertEqual(try ImageDecoder.decode(try ImageEncoder.png(ga, width: w, height: h, channels: 2)).pixels, greyRGB)

        // 16-bit RGB, hand-made, no gAMA: v * 257 must come back as v (no gamma conversion).
        let rows16: [[UInt8]] = (0..<h).map { y in
            (0..<w).flatMap { x in (0..<3).flatMap { c -> [UInt8] in let v = UInt16(rgb[3 * (y * w + x) + c]) * 257; return [UInt8(v >> 8), UInt8(v & 0xFF)] } }
        }
        let png16 = HandPNG.make(width: w, height: h, bitDepth: 16, colorType: 2, rows: rows16)
        XCTAssertEqual(try ImageDecoder.decode(png16).pixels, rgb, "16-bit samples scale to 8 bits")
        // 16-bit grey.
        let rowsG16: [[UInt8]] = (0..<h).map { y in (0..<w).flatMap { x -> [UInt8] in let v = UInt16(grey[y * w + x]) * 257; return [UInt8(v >> 8), UInt8(v & 0xFF)] } }
        XCTAssertEqual(try ImageDecoder.decode(HandPNG.make(width: w, height: h, bitDepth: 16, colorType: 0, rows: rowsG16)).pixels, greyRGB)
        // Palette with tRNS (alpha dropped; palette colours kept).
        let palette: [UInt8] = [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]
        let trns: [UInt8] = [0, 128, 255, 255]
        let rowsP: [[UInt8]] = (0..<h).map { y in (0..<w).map { x in UInt8((x + y) % 4) } }
        let pal = HandPNG.make(width: w, height: h, bitDepth: 8, colorType: 3, rows: rowsP,
                               extraChunks: [HandPNG.chunk("PLTE", palette), HandPNG.chunk("tRNS", trns)])
        let palImage = try ImageDecoder.decode(pal)
        for y in 0..<h {
            for x in 0..<w {
                let i = (x + y) % 4
                XCTAssertEqual(Array(palImage.pixels[(3 * (y * w + x))..<(3 * (y * w + x) + 3)]), Array(palette[(3 * i)..<(3 * i + 3)]))
            }
        }
        // 1-bit grey: 0 black, 1 white.
        let rows1: [[UInt8]] = (0..<h).map { _ in [0b1010_1000] }
        let bits = try ImageDecoder.decode(HandPNG.make(width: w, height: h, bitDepth: 1, colorType: 0, rows: rows1))
        XCTAssertEqual(bits.pixels.enumerated().filter { $0.offset % 3 == 0 }.map(\.element).prefix(5), [255, 0, 255, 0, 255])
    }

    func testPNMVariants() throws {
        let cases: [(String, [UInt8])] = [
            ("P1\n# comment\n3 2\n1 0 1\n0 1 0\n", [0, 255, 0, 255, 0, 255]),
            ("P2 3 2 15\n0 15 7\n# c\n1 2 3\n", [0, 255, 119, 17, 34, 51]),
            ("P3\n1 2\n255\n1 2 3 4 5 6\n", [1, 2, 3, 4, 5, 6]),
        ]
        for (text, expectedSamples) in cases {
            let image = try ImageDecoder.decode(Array(text.utf8))
            let isRGB = text.hasPrefix("P3")
            let expected = isRGB ? expectedSamples : expectedSamples.flatMap { [$0, $0, $0] }
            XCTAssertEqual(image.pixels, expected, text)
        }
        // P4: rows padded to bytes.
        let p4 = Array("P4\n10 2\n".utf8) + [0b1010_0000, 0b1100_0000, 0b0000_0000, 0b0100_0000]
        let b = try ImageDecoder.decode(p4)
        XCTAssertEqual(b.pixels.enumerated().filter { $0.offset % 3 == 0 }.map(\.element),
                       [0, 255, 0, 255, 255, 255, 255, 255, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255, 255, 0])
        // P5 16-bit and P6 with a small maxval.
        let p5 = Array("P5 2 1 65535\n".utf8) + [0xFF, 0xFF, 0x80, 0x00]
        XCTAssertEqual(try ImageDecoder.decode(p5).pixels, [255, 255, 255, 128, 128, 128])
        let p6 = Array("P6 1 1 3\n".utf8) + [0, 1, 3]
        XCTAssertEqual(try ImageDecoder.decode(p6).pixels, [0, 85, 255])
        // Round trip through the writer.
        let rgb = Self.gradient(width: 7, height: 4)
        XCTAssertEqual(try ImageDecoder.decode(try ImageEncoder.pnm(rgb, width: 7, height: 4)).pixels, rgb)
    }

    func testEncodersRoundTripAndWriteFiles() throws {
        let rgb = Self.gradient(width: 33, height: 17)
        let image = RGBImage(width: 33, height: 17, pixels: rgb)
        XCTAssertEqual(try ImageDecoder.decode(try ImageEncoder.png(image)), image)
        let folder = try Reference.temporaryFolder()
        defer { Reference.removeTree(folder) }
        let path = folder + "/crop.png"
        try ImageEncoder.write(try ImageEncoder.png(image), to: path)
        XCTAssertEqual(try ImageDecoder.decodeFile(path), image)
        let jpeg = try ImageEncoder.jpeg(image, quality: 100, subsampling: .s444)
        XCTAssertLessThan(Self.meanAbsDiff(try ImageDecoder.decode(jpeg).pixels, rgb), 1.0)
        // PNG with row padding (stride).
        var padded = [UInt8](repeating: 0, count: 17 * 120)
        for y in 0..<17 { for i in 0..<99 { padded[y * 120 + i] = rgb[y * 99 + i] } }
        XCTAssertEqual(try ImageDecoder.decode(try ImageEncoder.png(padded, width: 33, height: 17, stride: 120)).pixels, rgb)
    }
}

final class DecodeErrorTests: XCTestCase {
    private func expectError(_ bytes: [UInt8], _ kind: TransFaceError.Kind, _ words: [String], options: DecodeOptions = .init(),
                             file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try ImageDecoder.decode(bytes, options: options)
            XCTFail("decoded, expected \(kind)", file: file, line: line)
        } catch let e as TransFaceError {
            XCTAssertEqual(e.kind, kind, e.message, file: file, line: line)
            for w in words { XCTAssertTrue(e.message.contains(w), "'\(e.message)' lacks '\(w)'", file: file, line: line) }
        } catch {
            XCTFail("\(error)", file: file, line: line)
        }
    }

    func testForeignAndEmptyData() throws {
        expectError([], .format, ["0 bytes"])
        expectError(Array("GIF89a.....".utf8), .format, ["GIF", "not supported"])
        expectError(Array("BM6\0\0\0".utf8), .format, ["BMP"])
        expectError(Array("RIFF\0\0\0\0WEBPVP8 ".utf8), .format, ["WebP"])
        expectError(Array("<html><body>".utf8), .format, ["not a JPEG, PNG or PNM", "3c 68 74"])
        expectError([0xFF, 0xD8, 0xFF], .format, ["JPEG"])
        expectError([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], .format, ["PNG"])
        expectError(Array("P6\n".utf8), .format, ["PNM", "width"])
        expectError(Array("P5 2 2 0\n".utf8), .format, ["maxval"])
        expectError(Array("P5 2 2 255\n\u{1}\u{2}\u{3}".utf8), .format, ["truncated"])
        expectError(Array("P2 2 2 255\n1 2 3".utf8), .format, ["truncated"])
        XCTAssertThrowsError(try ImageDecoder.decodeFile("/nonexistent/x.jpg")) { e in
            XCTAssertEqual((e as? TransFaceError)?.kind, .io)
        }
    }

    /// A truncated JPEG is refused by default (libjpeg's warning) and decodes with acceptDamaged.
    func testTruncatedJPEG() throws {
        try ImageTestData.skipUnlessPresent(ImageTestData.lfw)
        let bytes = try ImageTestData.read(ImageTestData.lfw + "/George_W_Bush/George_W_Bush_0476.jpg")
        let cut = Array(bytes.prefix(bytes.count / 2))
        expectError(cut, .format, ["JPEG", "Premature end", "accept_damaged"])
        let damaged = try ImageDecoder.decode(cut, options: DecodeOptions(acceptDamaged: true))
        XCTAssertEqual([damaged.width, damaged.height], [250, 250])
        let full = try ImageDecoder.decode(bytes)
        XCTAssertEqual(Array(damaged.pixels.prefix(250 * 3 * 20)), Array(full.pixels.prefix(250 * 3 * 20)), "top rows are intact")
        // Without its last two bytes (EOI) too.
        expectError(Array(bytes.dropLast(2)), .format, ["JPEG"])
    }

    /// Headers claiming huge images are refused before any allocation.
    func testHugeDimensionsRefusedBeforeAllocating() throws {
        var sof: [UInt8] = [0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0xFF, 0xDC, 0xFF, 0xDC, 0x03]
        sof += [1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]
        let png = HandPNG.make(width: 200_000, height: 100_000, bitDepth: 8, colorType: 2, rows: [[0, 0, 0]])
        let pnm = Array("P6 1000000 1000000 255\n".utf8)
        for (name, bytes) in [("JPEG", sof), ("PNG", png), ("PNM", pnm)] {
            var called = false
            XCTAssertThrowsError(try bytes.withUnsafeBytes { data in
                try ImageDecoder.decode(data) { _ in called = true; throw TransFaceError(.internal, "allocation requested") }
            }) { e in
                XCTAssertEqual((e as? TransFaceError)?.kind, .invalidArgument, "\(name): \(e)")
                XCTAssertTrue("\(e)".contains("max_pixels"), "\(e)")
            }
            XCTAssertFalse(called, "\(name): the destination was requested")
            XCTAssertThrowsError(try bytes.withUnsafeBytes { try ImageDecoder.info($0) }, name)
        }
        // A small limit applies to a real image; no limit (0) lets it through.
        let small = DecodeOptions(maxPixels: 100)
        expectError(try ImageEncoder.png(DecodeVariantsTests.gradient(width: 11, height: 10), width: 11, height: 10), .invalidArgument,
                    ["110 pixels", "100"], options: small)
        // With no limit, a PNM claiming more data than present is refused as truncated, unallocated.
        var called = false
        XCTAssertThrowsError(try pnm.withUnsafeBytes { data in
            try ImageDecoder.decode(data, options: DecodeOptions(maxPixels: 0)) { _ in called = true; throw TransFaceError(.internal, "x") }
        }) { e in XCTAssertTrue("\(e)".contains("truncated"), "\(e)") }
        XCTAssertFalse(called)
        // Sides beyond int32 are refused whatever the limit.
        expectError(Array("P5 3000000000 1 255\n".utf8), .format, ["width exceeds"], options: DecodeOptions(maxPixels: 0))
    }

    /// Seeded byte flips, insertions and truncations of real JPEG, PNG and PGM files: every
    /// outcome is a decoded image or a TransFaceError.
    func testMutatedFilesNeverCrash() throws {
        try ImageTestData.skipUnlessPresent(ImageTestData.lfw)
        let jpeg = try ImageTestData.read(ImageTestData.lfw + "/Tony_Blair/Tony_Blair_0127.jpg")
        let photo = try ImageDecoder.decode(jpeg)
        let progressive = try ImageEncoder.jpeg(photo.pixels, width: photo.width, height: photo.height, quality: 90, progressive: true)
        let png = try ImageEncoder.png(try ImageDecoder.decode(jpeg))
        let pgm = try ImageTestData.read(ImageTestData.orl + "/s1/1.pgm")
        var rng = SeededRNG(seed: 2024, stream: 7)
        var outcomes: [String: (ok: Int, refused: Int)] = [:]
        for (name, original) in [("jpeg", jpeg), ("progressive", progressive), ("png", png), ("pgm", pgm)] {
            var ok = 0, refused = 0
            for trial in 0..<150 {
                var bytes = original
                switch trial % 5 {
                case 0, 1:  // flip 1 to 8 bytes, biased towards the headers
                    for _ in 0..<(1 + Int(rng.next() % 8)) {
                        let limit = trial % 2 == 0 ? min(bytes.count, 700) : bytes.count
                        bytes[Int(rng.next() % UInt64(limit))] ^= UInt8(1 + rng.next() % 255)
                    }
                case 2:  // truncate anywhere
                    bytes = Array(bytes.prefix(Int(rng.next() % UInt64(bytes.count))))
                case 3:  // insert or delete a run
                    let at = Int(rng.next() % UInt64(bytes.count))
                    if rng.next() % 2 == 0 {
                        bytes.insert(contentsOf: (0..<(1 + Int(rng.next() % 16))).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: at)
                    } else {
                        bytes.removeSubrange(at..<min(bytes.count, at + 1 + Int(rng.next() % 16)))
                    }
                default:  // overwrite a 16-bit field in the first 64 bytes with an extreme value
                    let at = Int(rng.next() % UInt64(min(62, bytes.count - 2)))
                    bytes[at] = rng.next() % 2 == 0 ? 0xFF : 0x00
                    bytes[at + 1] = rng.next() % 2 == 0 ? 0xFF : 0x00
                }
                let options = DecodeOptions(maxPixels: 4_000_000, acceptDamaged: trial % 3 == 0)
                if decodesOrFailsCleanly(bytes, options: options) { ok += 1 } else { refused += 1 }
            }
            outcomes[name] = (ok, refused)
        }
        print("mutations (decoded, refused): \(outcomes.sorted { $0.key < $1.key })")
    }

    /// Every truncation of a small PNG, PPM and JPEG is refused cleanly.
    func testEveryTruncation() throws {
        let rgb = DecodeVariantsTests.gradient(width: 9, height: 7)
        let files = [try ImageEncoder.png(rgb, width: 9, height: 7), try ImageEncoder.pnm(rgb, width: 9, height: 7),
                     try ImageEncoder.jpeg(rgb, width: 9, height: 7, quality: 80)]
        for (name, file) in zip(["png", "ppm", "jpeg"], files) {
            var decoded: [Int] = []
            for n in 0..<file.count where decodesOrFailsCleanly(Array(file.prefix(n))) { decoded.append(n) }
            XCTAssertTrue(decodesOrFailsCleanly(file))
            if name == "png" {
                // libpng does not insist on the 12-byte IEND chunk: with all image data present
                // the image is complete and decodes to the same pixels.
                XCTAssertTrue(decoded.allSatisfy { $0 >= file.count - 12 }, "png prefixes that decode: \(decoded)")
                for n in decoded { XCTAssertEqual(try ImageDecoder.decode(Array(file.prefix(n))).pixels, rgb) }
            } else {
                XCTAssertEqual(decoded, [], "\(name) of \(file.count) bytes: these prefixes decode")
            }
        }
    }
}
