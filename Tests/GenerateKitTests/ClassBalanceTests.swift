import GenerateKit
import XCTest

/// The class balance of generated samples, against values worked out by hand.
final class ClassBalanceTests: XCTestCase {
    func testSharesCountEachClass() {
        XCTAssertEqual(ClassBalance.shares(of: [0, 2, 2, 3], classCount: 4), [0.25, 0, 0.5, 0.25])
        XCTAssertEqual(ClassBalance.shares(of: [], classCount: 2), [0, 0])
    }

    func testDivergenceAgainstHandValues() {
        // Σ p log(p / q): ½ log(½ / ¼) twice = log 2.
        XCTAssertEqual(ClassBalance.divergence([0.5, 0.5, 0], from: [0.25, 0.25, 0.5]), log(2), accuracy: 1e-12)
        // One class of ten equally common ones: log 10.
        let uniform = [Double](repeating: 0.1, count: 10)
        var single = [Double](repeating: 0, count: 10)
        single[3] = 1
        XCTAssertEqual(ClassBalance.divergence(single, from: uniform), log(10), accuracy: 1e-12)
        // 0.7 log(0.7 / 0.4) + 0.3 log(0.3 / 0.6) = 0.7 · 0.5596158 − 0.3 · 0.6931472 = 0.1837869.
        XCTAssertEqual(ClassBalance.divergence([0.7, 0.3], from: [0.4, 0.6]), 0.1837869, accuracy: 1e-7)
        XCTAssertEqual(ClassBalance.divergence(uniform, from: uniform), 0)
        // A class the reference never has, drawn by the generator: infinite.
        XCTAssertEqual(ClassBalance.divergence([0.5, 0.5], from: [1, 0]), .infinity)
    }
}
