import XCTest

final class TFImagePlaceholderTests: XCTestCase {
    func testModuleBuilds() {}
}
