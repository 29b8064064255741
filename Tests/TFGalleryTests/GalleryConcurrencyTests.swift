import Foundation
import TFCore
import TFTestSupport
import XCTest
@testable import TFGallery

final class GalleryConcurrencyTests: XCTestCase {
    typealias F = GalleryFixture

    /// Four threads search while one enrols and removes; every search sees a consistent gallery.
    func testReadersWithOneWriter() throws {
        let dir = try F.folder(); defer { Reference.removeTree(dir) }
        let g = try Gallery.open(path: dir + "/g.tfg", fingerprint: F.fingerprint, options: GalleryOptions(searchThreads: 2))
        for i in 0..<2000 { try g.enrol(label: "seed\(i)", embeddings: F.vectors(5, seed: UInt64(i))) }
        let failures = Mutex(0)
        let searches = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 5) { worker in
            do {
                if worker == 0 {
                    for i in 0..<150 {
                        try g.enrol(label: "w\(i)", embeddings: F.vectors(2, seed: UInt64(10_000 + i)))
                        if i % 3 == 0 { try g.remove(label: "w\(i)") }
                    }
                } else {
                    for q in 0..<40 {
                        let hits = try g.search(queries: F.vectors(2, seed: UInt64(worker * 1000 + q)), k: 10, threshold: 0.3)
                        for h in hits {
                            if h.count != 10 || Set(h.map(\.label)).count != 10 || zip(h, h.dropFirst()).contains(where: { $0.score < $1.score }) {
                                failures.withLock { $0 += 1 }
                            }
                        }
                        searches.withLock { $0 += 1 }
                    }
                }
            } catch {
                failures.withLock { $0 += 1 }
            }
        }
        XCTAssertEqual(failures.withLock { $0 }, 0)
        XCTAssertEqual(searches.withLock { $0 }, 160)
        XCTAssertEqual(g.count, 2000 * 5 + 100 * 2)
    }
}

import Synchronization
