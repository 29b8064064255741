import TFCore
@testable import TFData
import TFTestSupport
import XCTest

/// Pairs lists, landmark tables and `.bin` sets on the real files of ../shared/data.
final class PairsTests: XCTestCase {
    let lfw = Reference.shared + "/data/lfw"
    let orl = Reference.shared + "/data/orl_faces"

    func testLFWView2PairsTxt() throws {
        let p = try PairList.load(lfw + "/protocol/pairs.txt")
        XCTAssertEqual(p.count, 6000)
        XCTAssertEqual(p.sets, 10)
        XCTAssertEqual(p.perSet, 300)
        XCTAssertEqual(p.pairs[0], VerificationPair(path1: "Abel_Pacheco/Abel_Pacheco_0001.jpg", path2: "Abel_Pacheco/Abel_Pacheco_0004.jpg", same: true))
        XCTAssertEqual(p.pairs[300].same, false)
        XCTAssertEqual(p.pairs[600].same, true)
        // each set: 300 same then 300 different
        for s in 0..<10 {
            XCTAssertEqual(p.pairs[(s * 600)..<(s * 600 + 300)].filter(\.same).count, 300)
            XCTAssertEqual(p.pairs[(s * 600 + 300)..<(s * 600 + 600)].filter(\.same).count, 0)
        }
    }

    func testDevTestPairsTxtAndTSVAgree() throws {
        let txt = try PairList.load(lfw + "/protocol/pairsDevTest.txt", naming: PairNaming("images/{name}/{name}_{num4}.jpg"))
        let tsv = try PairList.load(lfw + "/splits/devtest_pairs.tsv")
        XCTAssertEqual(txt.count, 1000)
        XCTAssertEqual(txt.sets, 1)
        XCTAssertEqual(txt.pairs, tsv.pairs)
        XCTAssertEqual(tsv.issame.prefix(500).filter { $0 }.count, 500)
        XCTAssertEqual(tsv.uniqueImages().paths.count, 1549)
        XCTAssertEqual(try PairList.load(lfw + "/protocol/pairsDevTrain.txt").count, 2200)
    }

    func testORLPairs() throws {
        let txt = try PairList.load(orl + "/splits/pairs_test.txt", naming: .orl)
        let tsv = try PairList.load(orl + "/splits/pairs_test.tsv")
        XCTAssertEqual(txt.count, 900)
        XCTAssertEqual(txt.pairs, tsv.pairs)
        XCTAssertEqual(tsv.pairs[449].path2, "s40/10.pgm")
        for p in tsv.pairs.prefix(5) { XCTAssertTrue(DataFiles.isFile(orl + "/" + p.path1)) }
    }

    func testMalformedPairsFiles() {
        XCTAssertThrowsError(try PairList.lfw("2\nA\t1\t2\n"))  // too few lines
        XCTAssertThrowsError(try PairList.lfw("1\nA\t1\tB\t2\nA\t1\t2\n"))  // different pair where a same pair belongs
        XCTAssertThrowsError(try PairList.lfw("1\nA\t1\t2\nA\tx\tB\t2\n"))
        XCTAssertThrowsError(try PairList.tsv("a\tb\n1\t2\n"))
        XCTAssertThrowsError(try PairList.tsv("path1\tpath2\tsame\nx\ty\tmaybe\n"))
        XCTAssertEqual(PairNaming.lfw.path(name: "A_B", number: 7), "A_B/A_B_0007.jpg")
        XCTAssertEqual(PairNaming.lfw.path(name: "X", number: 12345), "X/X_12345.jpg")
    }

    func testLandmarkTables() throws {
        let t = try LandmarkTable(path: lfw + "/landmarks/included_5pt.tsv")
        XCTAssertEqual(t.count, 5985)
        XCTAssertEqual(t.sources, ["mtcnn_sphereface", "cuhk_manual"])
        XCTAssertEqual(t.points(for: "images/AJ_Lamas/AJ_Lamas_0001.jpg"), [104, 112, 148, 117, 129, 134, 95, 152, 148, 158])
        XCTAssertEqual(t.points(for: "images/AJ_Lamas/AJ_Lamas_0001.jpg", preferring: ["cuhk_manual"])?.first, 104.25)
        XCTAssertNil(t.points(for: "images/nobody.jpg"))
        let o = try LandmarkTable(path: orl + "/landmarks_mtcnn_5pt.tsv")
        XCTAssertEqual(o.count, 400)
        XCTAssertEqual(o.points(for: "s1/1.pgm")?.first, 25.76)
        let raw = try LandmarkTable(text: "A/a.jpg 1 2 3 4 5 6 7 8 9 10\n")
        XCTAssertEqual(raw.points(for: "A/a.jpg")?.last, 10)
        XCTAssertThrowsError(try LandmarkTable(text: "path\tleye_x\nx\t1\n"))
    }

    /// A `.bin` built from the LFW devtest pairs like lfw2pack (JPEG files stored verbatim)
    /// round-trips through both protocols.
    func testDevTestBinRoundTrip() throws {
        let pairs = try PairList.load(lfw + "/splits/devtest_pairs.tsv")
        let bin = try VerificationBin.fromPairs(pairs, root: lfw)
        XCTAssertEqual(bin.pairs, 1000)
        XCTAssertEqual(bin.images[0], try DataFiles.readAll(lfw + "/images/Abdullah_Gul/Abdullah_Gul_0013.jpg"))
        XCTAssertEqual(Array(bin.images[1999].prefix(2)), [0xFF, 0xD8])
        let dir = try Reference.temporaryFolder()
        defer { Reference.removeTree(dir) }
        for proto in [4, 2] {
            let path = dir + "/lfw_devtest_p\(proto).bin"
            try bin.write(path: path, protocol: proto)
            let back = try VerificationBin.read(path: path)
            XCTAssertEqual(back, bin)
        }
        XCTAssertThrowsError(try VerificationBin.fromPairs(PairList(pairs: [VerificationPair(path1: "../x.jpg", path2: "a", same: true)]), root: lfw))
    }
}
