import XCTest

final class TFEvalPlaceholderTests: XCTestCase {
    func testModuleBuilds() {}
}
