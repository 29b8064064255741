import TFCore
@testable import TFData
import TFTestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// A dataset whose "encoded images" are 3 bytes (kind, index low, index high) and a decoder that
/// paints a deterministic picture from them. Kind 0xEE fails to decode, 0xDD decodes to the
/// wrong size.
final class SyntheticDataset: FaceDataset {
    let n: Int
    var corrupt: Set<Int> = []
    var wrongSize: Set<Int> = []
    init(_ n: Int) { self.n = n }
    var count: Int { n }
    var numClasses: Int? { 7 }
    func sample(at i: Int) throws -> EncodedSample {
        let kind: UInt8 = corrupt.contains(i) ? 0xEE : (wrongSize.contains(i) ? 0xDD : 1)
        return EncodedSample(label: Int32(i % 7), image: [kind, UInt8(i & 0xFF), UInt8(i >> 8)])
    }
    func name(at i: Int) -> String { "synthetic/\(i).jpg" }

    static func picture(_ i: Int, _ w: Int, _ h: Int) -> [UInt8] {
        var p = [UInt8](repeating: 0, count: w * h * 3)
        for y in 0..<h { for x in 0..<w { for c in 0..<3 { p[(y * w + x) * 3 + c] = UInt8((i * 7 + x * 3 + y * 5 + c * 11) % 256) } } }
        return p
    }

    static func decoder(_ w: Int, _ h: Int, delayMicros: UInt32 = 0) -> ImageDecodeFunction {
        return { bytes, name in
            if delayMicros > 0 { usleep(delayMicros) }
            guard bytes.count == 3 else { throw TransFaceError.format("not an image") }
            if bytes[0] == 0xEE { throw TransFaceError.format("corrupt JPEG data") }
            let i = Int(bytes[1]) | Int(bytes[2]) << 8
            if bytes[0] == 0xDD { return (picture(i, w + 1, h), w + 1, h) }
            return (picture(i, w, h), w, h)
        }
    }
}

final class DataLoaderTests: XCTestCase {
    func options(batch: Int = 10, threads: Int = 2, seed: UInt64 = 42, epochs: Int? = 3) -> DataLoader.Options {
        var o = DataLoader.Options()
        o.batchSize = batch; o.threads = threads; o.prefetch = threads * 2; o.seed = seed
        o.width = 8; o.height = 6; o.epochs = epochs
        return o
    }

    func all(_ loader: DataLoader) throws -> [DataLoader.Batch] {
        var out: [DataLoader.Batch] = []
        while let b = try loader.next() { out.append(b) }
        return out
    }

    func same(_ a: [DataLoader.Batch], _ b: [DataLoader.Batch], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, file: file, line: line)
        for (x, y) in zip(a, b) {
            XCTAssertEqual(x.indices, y.indices, file: file, line: line)
            XCTAssertEqual(x.labels, y.labels, file: file, line: line)
            XCTAssertEqual(x.flipped, y.flipped, file: file, line: line)
            XCTAssertEqual(x.images, y.images, file: file, line: line)
            XCTAssertEqual(x.position, y.position, file: file, line: line)
        }
    }

    func testDeterministicWhateverTheThreadCount() throws {
        let ds = SyntheticDataset(103)
        let one = try all(DataLoader(dataset: ds, decode: SyntheticDataset.decoder(8, 6), options: options(threads: 1)))
        let four = try all(DataLoader(dataset: ds, decode: SyntheticDataset.decoder(8, 6, delayMicros: 50), options: options(threads: 4)))
        XCTAssertEqual(one.count, 30)  // 10 full batches per epoch (dropLast), 3 epochs
        same(one, four)
    }

    func testEpochOrderFlipsAndPixels() throws {
        let ds = SyntheticDataset(103)
        let batches = try all(DataLoader(dataset: ds, decode: SyntheticDataset.decoder(8, 6), options: options()))
        var orders: [[Int]] = []
        for e in 0..<3 {
            let idx = batches.filter { $0.epoch == e }.flatMap(\.indices)
            XCTAssertEqual(idx.count, 100)
            XCTAssertEqual(Set(idx).count, 100)
            XCTAssertEqual(Array(DataLoader.permutation(count: 103, epoch: e, seed: 42, shuffle: true).prefix(100)), idx)
            orders.append(idx)
        }
        XCTAssertNotEqual(orders[0], orders[1])
        let flips = batches.flatMap(\.flipped)
        XCTAssertGreaterThan(flips.filter { $0 }.count, 100)
        XCTAssertLessThan(flips.filter { $0 }.count, 200)
        // pixels: the decoded picture, mirrored when flipped; labels from the dataset
        let b = batches[4]
        for (k, i) in b.indices.enumerated() {
            var want = SyntheticDataset.picture(i, 8, 6)
            if b.flipped[k] {
                var m = want
                for y in 0..<6 { for x in 0..<8 { for c in 0..<3 { m[(y * 8 + x) * 3 + c] = want[(y * 8 + 7 - x) * 3 + c] } } }
                want = m
            }
            XCTAssertEqual(Array(b.images[(k * 144)..<((k + 1) * 144)]), want)
            XCTAssertEqual(b.labels[k], Int32(i % 7))
        }
        // another seed, another order
        let other = try DataLoader(dataset: ds, decode: SyntheticDataset.decoder(8, 6), options: options(seed: 43)).next()!
        XCTAssertNotEqual(other.indices, batches[0].indices)
    }

    func testResumeIsExact() throws {
        let ds = SyntheticDataset(57)
        var o = options(batch: 8, epochs: 5)
        let full = try all(DataLoader(dataset: ds, decode: SyntheticDataset.decoder(8, 6), options: o))
        XCTAssertEqual(full.count, 35)
        for cut in [0, 6, 7, 20] {
            let position = try LoaderPosition(words: full[cut].position.words)
            o.threads = 3
            let resumed = try all(DataLoader(dataset: ds, decode: SyntheticDataset.decoder(8, 6), options: o, resume: position))
            same(resumed, Array(full[(cut + 1)...]))
        }
        // the loader's own position follows the batches it returned
        let l = try DataLoader(dataset: ds, decode: SyntheticDataset.decoder(8, 6), options: o)
        XCTAssertEqual(l.position, LoaderPosition.start(seed: 42, datasetCount: 57))
        _ = try l.next(); _ = try l.next()
        XCTAssertEqual(l.position, full[1].position)
        l.close()
        XCTAssertThrowsError(try l.next())
        // a position of another run is refused
        var wrongSeed = o
        wrongSeed.seed = 1
        XCTAssertThrowsError(try DataLoader(dataset: ds, decode: SyntheticDataset.decoder(8, 6), options: wrongSeed, resume: full[3].position))
        XCTAssertThrowsError(try DataLoader(dataset: SyntheticDataset(58), decode: SyntheticDataset.decoder(8, 6), options: o, resume: full[3].position))
    }

    func testSequentialOrderAndPartialLastBatch() throws {
        var o = options(batch: 10, epochs: 2)
        o.shuffle = false; o.flip = false; o.dropLast = false
        let b = try all(DataLoader(dataset: SyntheticDataset(23), decode: SyntheticDataset.decoder(8, 6), options: o))
        XCTAssertEqual(b.map(\.count), [10, 10, 3, 10, 10, 3])
        XCTAssertEqual(b[2].indices, [20, 21, 22])
        XCTAssertEqual(b[3].indices, Array(0..<10))
        XCTAssertFalse(b.flatMap(\.flipped).contains(true))
        // dropLast with fewer samples than a batch can never produce one
        var d = o
        d.dropLast = true; d.batchSize = 30
        XCTAssertThrowsError(try DataLoader(dataset: SyntheticDataset(23), decode: SyntheticDataset.decoder(8, 6), options: d))
    }

    func testErrorsNameTheSampleOrAreSkipped() throws {
        let ds = SyntheticDataset(40)
        ds.corrupt = [13]
        ds.wrongSize = [29]
        var o = options(batch: 5, epochs: 1)
        o.shuffle = false
        let l = try DataLoader(dataset: ds, decode: SyntheticDataset.decoder(8, 6), options: o)
        XCTAssertEqual(try l.next()?.indices, [0, 1, 2, 3, 4])
        XCTAssertEqual(try l.next()?.indices, [5, 6, 7, 8, 9])
        XCTAssertThrowsError(try l.next()) { e in
            XCTAssertEqual((e as? TransFaceError)?.kind, .format)
            XCTAssertTrue("\(e)".contains("synthetic/13.jpg"), "\(e)")
            XCTAssertTrue("\(e)".contains("corrupt JPEG"), "\(e)")
        }
        XCTAssertThrowsError(try l.next())  // the loader stays failed
        XCTAssertEqual(l.position.index, 10)  // at the last good batch
        o.skipCorrupt = true
        let b = try all(DataLoader(dataset: ds, decode: SyntheticDataset.decoder(8, 6), options: o))
        XCTAssertEqual(b.map(\.count), [5, 5, 4, 5, 5, 4, 5, 5])
        XCTAssertEqual(b[2].skipped.map(\.index), [13])
        XCTAssertTrue(b[5].skipped[0].message.contains("9x6"), b[5].skipped[0].message)
    }

    func testCloseWhileWorkersAreBusy() throws {
        let ds = SyntheticDataset(1000)
        var o = options(batch: 10, threads: 3, epochs: nil)
        o.prefetch = 6
        let l = try DataLoader(dataset: ds, decode: SyntheticDataset.decoder(8, 6, delayMicros: 200), options: o)
        _ = try l.next()
        l.close()
        // dropping an unclosed loader joins its threads too
        var l2: DataLoader? = try DataLoader(dataset: ds, decode: SyntheticDataset.decoder(8, 6, delayMicros: 200), options: o)
        _ = try l2!.next()
        l2 = nil
        XCTAssertThrowsError(try DataLoader(dataset: SyntheticDataset(0), decode: SyntheticDataset.decoder(8, 6), options: o))
        o.threads = 0
        XCTAssertThrowsError(try DataLoader(dataset: ds, decode: SyntheticDataset.decoder(8, 6), options: o))
    }

    /// LFW JPEGs packed as-is into a RecordIO file feed the loader (the decoder here only checks
    /// the JPEG signature; image decoding is TFImage's).
    func testLoaderOverPackedLFWRecordIO() throws {
        let lfw = Reference.shared + "/data/lfw"
        var list = try LabeledImageList.listFile(lfw + "/splits/train.tsv", root: lfw)
        list.paths = Array(list.paths.prefix(40)); list.labels = Array(list.labels.prefix(40))
        let dir = try Reference.temporaryFolder()
        defer { Reference.removeTree(dir) }
        try RecordIOPacker.pack(ImageListDataset(list), to: dir)
        let ds = try RecordIODataset(path: dir)
        XCTAssertEqual(try ds.sample(at: 3).image, try DataFiles.readAll(try list.fullPath(3)))
        var o = options(batch: 8, epochs: 1)
        o.width = 4; o.height = 4
        let decode: ImageDecodeFunction = { bytes, name in
            guard bytes.starts(with: [0xFF, 0xD8, 0xFF]) else { throw TransFaceError.format("not a JPEG") }
            return ([UInt8](repeating: bytes[3], count: 48), 4, 4)
        }
        let b = try all(DataLoader(dataset: ds, decode: decode, options: o))
        XCTAssertEqual(b.count, 5)
        XCTAssertEqual(Set(b.flatMap(\.labels)), Set(list.labels))
    }
}
