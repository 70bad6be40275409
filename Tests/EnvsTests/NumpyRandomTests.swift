import Envs
import Foundation
import XCTest

/// `NumpyRandomState` against draws recorded from numpy's legacy RandomState
/// (scripts/reference/numpy_random_fixture.py → Fixtures/numpy_random.json).
final class NumpyRandomTests: XCTestCase {
    /// The fixture file.
    struct Fixture: Decodable {
        /// numpy version that wrote it.
        let numpy: String
        /// Seeded generators and what they produced.
        let cases: [Case]
    }

    /// One seeded generator and the operations run on it in order.
    struct Case: Decodable {
        /// Integer seed (numpy: init_genrand), or nil.
        let seed: UInt32?
        /// Array seed (numpy: init_by_array), or nil.
        let seedArray: [UInt32]?
        /// `get_state()[1][0..<4]` right after seeding.
        let stateHead: [UInt32]
        /// `get_state()[1][623]` right after seeding.
        let stateTail: UInt32
        /// The draws.
        let operations: [Operation]
    }

    /// One numpy call (or a run of scalar calls) and its results.
    struct Operation: Decodable {
        /// uint32, randomSample, randomSampleArray, randomInteger, randomIntegerArray or choiceCount.
        let kind: String
        /// How many values.
        let count: Int
        /// Integer results.
        let values: [Int]?
        /// Double results, as hexadecimal IEEE 754 bit patterns.
        let doubles: [String]?
        /// randint's low.
        let low: Int?
        /// randint's high, or choice's n.
        let high: Int?
    }

    private func loadFixture() throws -> Fixture {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "numpy_random", withExtension: "json",
                                                  subdirectory: "Fixtures"))
        return try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }

    func testMatchesNumpyLegacyRandomState() throws {
        let fixture = try loadFixture()
        XCTAssertGreaterThanOrEqual(fixture.cases.count, 6)
        var checked = 0
        for testCase in fixture.cases {
            var random: NumpyRandomState
            let label: String
            if let seed = testCase.seed {
                random = NumpyRandomState(seed: seed)
                label = "seed \(seed)"
            } else {
                let key = try XCTUnwrap(testCase.seedArray)
                random = NumpyRandomState(seedArray: key)
                label = "seed array \(key)"
            }
            XCTAssertEqual((0..<4).map { random.stateWord(at: $0) }, testCase.stateHead, "\(label): seeded state")
            XCTAssertEqual(random.stateWord(at: 623), testCase.stateTail, "\(label): seeded state")
            for (number, operation) in testCase.operations.enumerated() {
                let at = "\(label), operation \(number) (\(operation.kind))"
                switch operation.kind {
                case "uint32":
                    let got = (0..<operation.count).map { _ in Int(random.nextUInt32()) }
                    XCTAssertEqual(got, try XCTUnwrap(operation.values), at)
                case "randomSample", "randomSampleArray":
                    let expected = try XCTUnwrap(operation.doubles).map { Double(bitPattern: UInt64($0, radix: 16)!) }
                    let got = (0..<operation.count).map { _ in random.randomSample() }
                    XCTAssertEqual(got.map(\.bitPattern), expected.map(\.bitPattern), at)
                case "randomInteger", "randomIntegerArray":
                    let low = try XCTUnwrap(operation.low)
                    let high = try XCTUnwrap(operation.high)
                    let got = (0..<operation.count).map { _ in random.randomInteger(low: low, high: high) }
                    XCTAssertEqual(got, try XCTUnwrap(operation.values), "\(at) low \(low) high \(high)")
                case "choiceCount":
                    let high = try XCTUnwrap(operation.high)
                    let got = (0..<operation.count).map { _ in random.choice(count: high) }
                    XCTAssertEqual(got, try XCTUnwrap(operation.values), at)
                default:
                    XCTFail("\(at): unknown operation kind")
                }
                checked += operation.count
            }
        }
        XCTAssertGreaterThan(checked, 3000)
    }

    /// numpy's integer seed is not the one-element array seed: `RandomState(5)` ≠ `RandomState([5])`.
    func testIntegerSeedDiffersFromArraySeed() {
        var integer = NumpyRandomState(seed: 5)
        var array = NumpyRandomState(seedArray: [5])
        XCTAssertNotEqual(integer.nextUInt32(), array.nextUInt32())
    }

    /// A one-value range returns `low` without consuming a draw, as numpy does (Asterix relies on it).
    func testSingleValueRangeDrawsNothing() {
        var random = NumpyRandomState(seed: 42)
        var reference = random
        XCTAssertEqual(random.randomInteger(low: 3, high: 4), 3)
        XCTAssertEqual(random.nextUInt32(), reference.nextUInt32())
    }

    /// `choice` over elements picks by the same draw as `choice(count:)`.
    func testChoiceOfElementsUsesRandint() {
        var first = NumpyRandomState(seed: 7)
        var second = first
        let letters = ["a", "b", "c", "d", "e"]
        for _ in 0..<50 {
            XCTAssertEqual(first.choice(letters), letters[second.choice(count: letters.count)])
        }
    }
}
