import TFCore
@testable import TFData
import TFImage
import TFTestSupport
import TFWiring
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// A real training set: LFW photos aligned with their landmarks to 112x112, JPEG-encoded
/// (quality 95, as insightface's pack_img), packed into RecordIO and fed back by the loader with
/// TFImage's decoder.
final class AlignedLFWTests: XCTestCase {
    static let lfw = Reference.shared + "/data/lfw"

    /// The first `count` images of the LFW training list, packed aligned into `dir`.
    static func packAligned(count: Int?, to dir: String) throws -> LabeledImageList {
        var list = try LabeledImageList.listFile(lfw + "/splits/train.tsv", root: lfw)
        if let count { list.paths = Array(list.paths.prefix(count)); list.labels = Array(list.labels.prefix(count)) }
        let table = try LandmarkTable(path: lfw + "/landmarks/included_5pt.tsv")
        var options = RecordIOPacker.Options()
        options.transcode = { bytes, name in
            let image = try ImageDecoder.decode(bytes)
            let rel = String(name.dropFirst(lfw.count + 1))
            guard let lm = table.points(for: rel) else { throw TransFaceError.notFound("no landmarks for \(rel)") }
            let face = try image.pixels.withUnsafeBufferPointer { p in
                try FaceAlignment.align(try ImageView(base: p.baseAddress!, width: image.width, height: image.height, format: .rgb),
                                        landmarks: lm).image
            }
            return try ImageEncoder.jpeg(face, quality: 95)
        }
        try RecordIOPacker.pack(ImageListDataset(list), to: dir, options: options)
        return list
    }

    func testLoaderDecodesAlignedJPEGRecords() throws {
        let dir = try Reference.temporaryFolder()
        defer { Reference.removeTree(dir) }
        let list = try Self.packAligned(count: 24, to: dir)
        let ds = try RecordIODataset(path: dir)
        XCTAssertEqual(ds.count, 24)
        var o = DataLoader.Options()
        o.batchSize = 8; o.threads = 2; o.epochs = 1; o.seed = 3
        let loader = try DataLoader(dataset: ds, decode: DataLoader.standardDecoder, options: o)
        var seen = 0
        while let b = try loader.next() {
            for (k, i) in b.indices.enumerated() {
                let s = try ds.sample(at: i)
                XCTAssertEqual(s.label, list.labels[i])
                var want = try ImageDecoder.decode(s.image).pixels
                XCTAssertEqual(want.count, 112 * 112 * 3)
                if b.flipped[k] {
                    var m = want
                    for y in 0..<112 { for x in 0..<112 { for c in 0..<3 { m[(y * 112 + x) * 3 + c] = want[(y * 112 + 111 - x) * 3 + c] } } }
                    want = m
                }
                XCTAssertTrue(b.images[(k * 37632)..<((k + 1) * 37632)].elementsEqual(want))
                seen += 1
            }
        }
        XCTAssertEqual(seen, 24)
        // a corrupt JPEG names its record
        let bad = MemoryDataset([EncodedSample(label: 0, image: [0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3])])
        o.batchSize = 1
        XCTAssertThrowsError(try DataLoader(dataset: bad, decode: DataLoader.standardDecoder, options: o).next()) { e in
            XCTAssertTrue("\(e)".contains("memory #0"), "\(e)")
        }
    }

    /// Loader throughput on the whole aligned LFW training set (4,436 images): batches of 128.
    /// Run once in release: TRANSFACE_LOADER_BENCH=1 swift test -c release -Xswiftc -enable-testing --filter testLoaderThroughput
    func testLoaderThroughput() throws {
        guard getenv("TRANSFACE_LOADER_BENCH") != nil else { throw XCTSkip("set TRANSFACE_LOADER_BENCH=1 (release build)") }
        let dir = try Reference.temporaryFolder()
        defer { Reference.removeTree(dir) }
        let packStart = monotonicSeconds()
        _ = try Self.packAligned(count: nil, to: dir)
        let packSeconds = monotonicSeconds() - packStart
        let ds = try RecordIODataset(path: dir)
        let recBytes = try ReadableFile(path: dir + "/train.rec").size
        print("packed \(ds.count) aligned LFW faces (JPEG q95, \(recBytes / 1024) KiB) in \(packSeconds) s")
        for threads in [1, 2, 4] {
            var o = DataLoader.Options()
            o.batchSize = 128; o.threads = threads; o.prefetch = 2 * threads; o.epochs = 3
            let loader = try DataLoader(dataset: ds, decode: DataLoader.standardDecoder, options: o)
            let start = monotonicSeconds()
            var images = 0, batches = 0
            while let b = try loader.next() { images += b.count; batches += 1 }
            let s = monotonicSeconds() - start
            print("loader, \(threads) thread(s): \(batches) batches of 128 in \(s) s: \(Int(Double(images) / s)) images/s, \(Double(batches) / s) batches/s")
        }
    }
}
