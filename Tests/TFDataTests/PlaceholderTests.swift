import XCTest

final class TFDataPlaceholderTests: XCTestCase {
    func testModuleBuilds() {}
}
