import XCTest

final class TFTrainPlaceholderTests: XCTestCase {
    func testModuleBuilds() {}
}
