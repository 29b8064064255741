import TFCore
@testable import TFData
import TFTestSupport
import XCTest

/// Writes a test file (no fsync: tests write many).
func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    guard let f = fopen(path, "wb") else { throw TransFaceError.io("cannot create \(path)") }
    defer { fclose(f) }
    guard bytes.isEmpty || fwrite(bytes, 1, bytes.count, f) == bytes.count else { throw TransFaceError.io("cannot write \(path)") }
}

func le32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

let magicBytes = le32(RecordIO.magic)

/// An in-memory dataset of small byte strings.
final class MemoryDataset: FaceDataset {
    var samples: [EncodedSample]
    init(_ samples: [EncodedSample]) { self.samples = samples }
    var count: Int { samples.count }
    var numClasses: Int? { Int(samples.map(\.label).max() ?? -1) + 1 }
    func sample(at index: Int) throws -> EncodedSample { samples[index] }
    func name(at index: Int) -> String { "memory #\(index)" }
}

final class RecordIOTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws { dir = try Reference.temporaryFolder() }
    override func tearDown() { Reference.removeTree(dir) }

    func testPhysicalLayoutWithoutMagic() throws {
        let payload: [UInt8] = [1, 2, 3, 4, 5]
        let enc = try RecordIO.encode(payload)
        XCTAssertEqual(enc, magicBytes + le32(5) + payload + [0, 0, 0])
        XCTAssertEqual(try RecordIO.encode([]), magicBytes + le32(0))
    }

    /// dmlc-core splits at a magic word on a 4-byte boundary: part 1 (cflag 1) holds the bytes
    /// before it, the magic is dropped, the rest follows as part 3 (cflag 3).
    func testMagicInsidePayloadIsSplitLikeDmlcCore() throws {
        let payload: [UInt8] = [9, 9, 9, 9] + magicBytes + [7, 7, 7, 7, 7, 7]
        let enc = try RecordIO.encode(payload)
        let expected = magicBytes + le32(1 << 29 | 4) + [9, 9, 9, 9]
            + magicBytes + le32(3 << 29 | 6) + [7, 7, 7, 7, 7, 7, 0, 0]
        XCTAssertEqual(enc, expected)
        // magic at offset 0, twice in a row and at the very end: parts of length 0 (cflag 1, 2, 2, 3)
        let tricky = magicBytes + magicBytes + [1, 2, 3, 4] + magicBytes
        let enc2 = try RecordIO.encode(tricky)
        XCTAssertEqual(enc2, magicBytes + le32(1 << 29 | 0) + magicBytes + le32(2 << 29 | 0)
                       + magicBytes + le32(2 << 29 | 4) + [1, 2, 3, 4] + magicBytes + le32(3 << 29 | 0))
        // an unaligned magic is not split
        let unaligned: [UInt8] = [1] + magicBytes + [2, 3, 4]
        XCTAssertEqual(try RecordIO.encode(unaligned), magicBytes + le32(8) + unaligned)
        // the reader re-inserts the magic words
        for p in [payload, tricky, unaligned, magicBytes, [UInt8]()] {
            let path = dir + "/one.rec"
            try writeFile(path, try RecordIO.encode(p) + (try RecordIO.encode([42])))
            let f = try ReadableFile(path: path)
            let (got, next) = try RecordIO.readRecord(f, at: 0)
            XCTAssertEqual(got, p)
            XCTAssertEqual(try RecordIO.readRecord(f, at: next).payload, [42])
            XCTAssertEqual(try RecordIO.scanOffsets(f).count, 2)
        }
    }

    func testIRHeaderPackUnpack() throws {
        let h = IRHeader(label: 17, id: 5)
        let packed = h.pack(image: [0xFF, 0xD8])
        XCTAssertEqual(packed.count, 26)
        XCTAssertEqual(Array(packed[0..<4]), le32(0))
        XCTAssertEqual(Array(packed[4..<8]), le32(Float(17).bitPattern))
        let (u, start) = try IRHeader.unpack(packed)
        XCTAssertEqual(u, h)
        XCTAssertEqual(start, 24)
        let multi = IRHeader(labels: [3, 9.5], id: 1)
        let (m, s2) = try IRHeader.unpack(multi.pack(image: [1]))
        XCTAssertEqual(m.labels, [3, 9.5])
        XCTAssertEqual(m.label, 0)
        XCTAssertEqual(s2, 32)
        XCTAssertEqual(try m.classLabel(), 3)
        XCTAssertThrowsError(try IRHeader.unpack([UInt8](repeating: 0, count: 23)))
        var bad = multi.pack(image: [])
        bad[0] = 200  // 200 labels announced
        XCTAssertThrowsError(try IRHeader.unpack(bad))
        XCTAssertThrowsError(try IRHeader(label: .nan, id: 0).classLabel())
    }

    /// Sample images whose bytes include the magic word at aligned offsets of the payload.
    static func samples(_ n: Int, classes: Int) -> [EncodedSample] {
        (0..<n).map { i in
            var img: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0] + Array("image \(i)".utf8)
            // after the 24-byte header the image starts at offset 24 (aligned): put a magic at image offset 4k
            while img.count % 4 != 0 { img.append(0x20) }
            if i % 3 == 0 { img += magicBytes + [UInt8(i & 0xFF), 1, 2] }
            return EncodedSample(label: Int32((i * 7) % classes), image: img)
        }
    }

    func testPackFlatAndLegacyRoundTrip() throws {
        let data = MemoryDataset(Self.samples(50, classes: 6))
        for layout in [RecordIOPacker.Layout.flat, .legacy] {
            let out = dir + "/\(layout)"
            var o = RecordIOPacker.Options()
            o.layout = layout
            let summary = try RecordIOPacker.pack(data, to: out, options: o)
            XCTAssertEqual(summary.images, 50)
            XCTAssertEqual(summary.classes, 6)
            let ds = try RecordIODataset(path: out)
            XCTAssertEqual(ds.count, 50)
            XCTAssertEqual(ds.numClasses, 6)
            XCTAssertEqual(ds.property, DatasetProperty(numClasses: 6, width: 112, height: 112, imageCount: 50))
            XCTAssertEqual(try DataFiles.readText(out + "/property"), "6,112,112\n50\n")
            var seen: [[UInt8]: Int32] = [:]
            for i in 0..<ds.count { let s = try ds.sample(at: i); seen[s.image] = s.label }
            XCTAssertEqual(seen.count, 50)
            for s in data.samples { XCTAssertEqual(seen[s.image], s.label) }
            switch layout {
            case .flat:
                XCTAssertEqual(ds.layout, .flat)
                XCTAssertEqual(ds.imageKeys, Array(0..<50))
                XCTAssertEqual(try ds.sample(at: 7).image, data.samples[7].image)
                XCTAssertEqual(try ds.record(at: 7).header.id, 7)
            case .legacy:
                XCTAssertEqual(ds.layout, .legacy(first: 51, end: 57))
                XCTAssertEqual(ds.imageKeys, Array(1...50))
                let ranges = try ds.identityRanges()
                XCTAssertEqual(ranges.count, 6)
                XCTAssertEqual(ranges.first?.lowerBound, 1)
                XCTAssertEqual(ranges.last?.upperBound, 51)
                for (c, r) in ranges.enumerated() {
                    for k in r { XCTAssertEqual(try ds.sample(at: k - 1).label, Int32(c)) }
                }
            }
            // the index is "%d\t%d\n" per record, offsets point at magic words
            let idx = try DataFiles.readText(out + "/train.idx")
            let rec = try DataFiles.readAll(out + "/train.rec")
            for line in idx.split(separator: "\n") {
                let off = Int(line.split(separator: "\t")[1])!
                XCTAssertEqual(Array(rec[off..<(off + 4)]), magicBytes)
            }
            // the split records are really there
            var split = 0
            var off = 0
            while off < rec.count {
                let lrec = rec.withUnsafeBytes { loadLE32($0, off + 4) }
                if lrec >> 29 == 1 { split += 1 }
                off += 8 + (Int(lrec & ((1 << 29) - 1)) + 3) / 4 * 4
            }
            XCTAssertEqual(split, 17, "every third image holds an aligned magic word")
        }
    }

    func testPackFromImageFolderAndListFile() throws {
        let root = dir + "/folder"
        for (who, n) in [("bob", 2), ("alice", 3)] {
            try DataFiles.makeDirectories(root + "/" + who)
            for k in 0..<n { try writeFile(root + "/\(who)/\(k).jpg", Array("\(who) \(k)".utf8)) }
        }
        try writeFile(root + "/alice/notes.txt", [1])
        let list = try LabeledImageList.imageFolder(root)
        XCTAssertEqual(list.classNames, ["alice", "bob"])
        XCTAssertEqual(list.paths, ["alice/0.jpg", "alice/1.jpg", "alice/2.jpg", "bob/0.jpg", "bob/1.jpg"])
        XCTAssertEqual(list.labels, [0, 0, 0, 1, 1])
        try RecordIOPacker.pack(ImageListDataset(list), to: dir + "/packed")
        let ds = try RecordIODataset(path: dir + "/packed/train.rec")
        XCTAssertEqual(try ds.sample(at: 4).image, Array("bob 1".utf8))

        try writeFile(dir + "/list.tsv", Array("path\tlabel\tname\nalice/1.jpg\t4\tx\nbob/0.jpg\t2\ty\n".utf8))
        let l2 = try LabeledImageList.listFile(dir + "/list.tsv", root: root)
        XCTAssertEqual(l2.paths, ["alice/1.jpg", "bob/0.jpg"])
        XCTAssertEqual(l2.labels, [4, 2])
        XCTAssertEqual(try ImageListDataset(l2).sample(at: 1).image, Array("bob 0".utf8))
        try writeFile(dir + "/train.lst", Array("0\t3.000000\talice/0.jpg\n1\t1.000000\tbob/1.jpg\n".utf8))
        let l3 = try LabeledImageList.listFile(dir + "/train.lst", root: root, format: .im2rec)
        XCTAssertEqual(l3.labels, [3, 1])

        // paths may not leave the root
        for bad in ["../secret.jpg\t1\n", "/etc/passwd\t1\n", "alice/../../x.jpg\t0\n"] {
            try writeFile(dir + "/bad.tsv", Array(bad.utf8))
            XCTAssertThrowsError(try LabeledImageList.listFile(dir + "/bad.tsv", root: root)) { e in
                XCTAssertEqual((e as? TransFaceError)?.kind, .format, "\(e)")
            }
        }
        // the LFW training list of ../shared resolves under lfw/
        let lfw = Reference.shared + "/data/lfw"
        let train = try LabeledImageList.listFile(lfw + "/splits/train.tsv", root: lfw)
        XCTAssertEqual(train.count, 4436)
        XCTAssertEqual(train.numClasses, 298)
        XCTAssertTrue(DataFiles.isFile(try train.fullPath(0)))
    }

    func testPropertyAndIndexParsing() throws {
        XCTAssertEqual(try DatasetProperty(text: "85742,112,112\n5822653\n"), DatasetProperty(numClasses: 85742, imageCount: 5822653))
        XCTAssertEqual(try DatasetProperty(text: "10,112,112\n20\nshuffled\n1700000000\n").imageCount, 20)
        XCTAssertThrowsError(try DatasetProperty(text: "abc\n"))
        XCTAssertThrowsError(try RecordIOIndex(text: "0\t0\n0\t8\n", recordFileSize: 100))  // duplicate key
        XCTAssertThrowsError(try RecordIOIndex(text: "0\t100\n", recordFileSize: 100))  // past the end
        XCTAssertThrowsError(try RecordIOIndex(text: "0 x\n", recordFileSize: 100))
        XCTAssertEqual(try RecordIOIndex(text: "3\t0\n\n5\t8\r\n", recordFileSize: 100).keys, [3, 5])
    }

    func testNoIndexFileScansTheRecords() throws {
        let w = try RecordIOWriter(recordPath: dir + "/x.rec")
        for i in 0..<5 { try w.writeImage(key: i, label: Float(i), id: UInt64(i), image: magicBytes + [UInt8(i)]) }
        try w.finish()
        unlink(dir + "/x.idx")
        let ds = try RecordIODataset(recordPath: dir + "/x.rec")
        XCTAssertEqual(ds.count, 5)
        XCTAssertEqual(try ds.sample(at: 3).image, magicBytes + [3])
    }

    /// Byte flips and truncations of .rec and .idx files: every read either succeeds or throws;
    /// nothing traps.
    func testFuzzedFilesNeverCrash() throws {
        let data = MemoryDataset(Self.samples(12, classes: 3))
        var o = RecordIOPacker.Options()
        o.layout = .legacy
        try RecordIOPacker.pack(data, to: dir + "/good", options: o)
        let rec = try DataFiles.readAll(dir + "/good/train.rec")
        let idx = try DataFiles.readAll(dir + "/good/train.idx")
        var rng = SeededRNG(seed: 1)
        var opened = 0, failed = 0, readErrors = 0
        func attempt(_ r: [UInt8], _ x: [UInt8]) throws {
            try writeFile(dir + "/f/train.rec", r)
            try writeFile(dir + "/f/train.idx", x)
            do {
                let ds = try RecordIODataset(path: dir + "/f")
                opened += 1
                for i in 0..<ds.count {
                    do { _ = try ds.sample(at: i) } catch { readErrors += 1 }
                }
                _ = try? ds.identityRanges()
            } catch {
                failed += 1
            }
        }
        try DataFiles.makeDirectories(dir + "/f")
        for _ in 0..<150 {
            var r = rec
            let k = Int(rng.next() % UInt64(r.count))
            r[k] ^= UInt8(1 << (rng.next() % 8))
            if rng.next() % 4 == 0 { r[Int(rng.next() % UInt64(r.count))] = UInt8(truncatingIfNeeded: rng.next()) }
            try attempt(r, idx)
        }
        for _ in 0..<60 {
            var x = idx
            x[Int(rng.next() % UInt64(x.count))] = [0x30, 0x39, 0x09, 0x0A, 0x2D, 0x41][Int(rng.next() % 6)]
            try attempt(rec, x)
        }
        for cut in stride(from: 0, to: rec.count, by: 7) { try attempt(Array(rec[..<cut]), idx) }
        for cut in stride(from: 0, to: idx.count, by: 3) { try attempt(rec, Array(idx[..<cut])) }
        print("fuzzed RecordIO: \(opened) opened, \(failed) refused at open, \(readErrors) record reads refused")
        XCTAssertGreaterThan(failed + readErrors, 50)
    }
}
