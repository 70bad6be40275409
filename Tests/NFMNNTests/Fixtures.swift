import Foundation
import NFMNN
import NFMTensor
import XCTest

/// Reads the JSON fixtures written by scripts/reference/make_layer_fixtures.py.
enum Fixture {
    /// The parsed top-level object of `Fixtures/<name>.json`.
    static func load(_ name: String) throws -> [String: Any] {
        let url = try XCTUnwrap(
            Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures"),
            "Fixtures/\(name).json is missing; run scripts/reference/make_layer_fixtures.py")
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    /// A `{"shape": …, "data": …}` object as a tensor.
    static func tensor(_ json: Any?) -> Tensor {
        let dictionary = json as! [String: Any]
        let shape = dictionary["shape"] as! [Int]
        return Tensor(shape: shape, scalars: (dictionary["data"] as! [NSNumber]).map(\.floatValue))
    }

    /// A recorded state_dict (a list of entries in torch's order) as a `StateDict`.
    static func stateDict(_ json: Any?) -> StateDict {
        var result = StateDict()
        for entry in json as! [[String: Any]] {
            let key = entry["key"] as! String
            if entry["dtype"] as! String == "int64" {
                result[key] = .int64((entry["value"] as! NSNumber).int64Value)
            } else {
                result[key] = .float(tensor(entry))
            }
        }
        return result
    }
}

/// Fails unless `actual` has `expected`'s shape and every element satisfies
/// |actual − expected| ≤ absolute + relative·|expected|; the message names the first element that does not.
func assertClose(
    _ actual: Tensor, _ expected: Tensor, absolute: Float = 1e-4, relative: Float = 1e-3, _ message: String,
    file: StaticString = #filePath, line: UInt = #line
) {
    guard actual.shape == expected.shape else {
        XCTFail("\(message): shape \(actual.shape), expected \(expected.shape)", file: file, line: line)
        return
    }
    let (values, references) = (actual.scalars, expected.scalars)
    // Written so that a NaN fails.
    let failing = values.indices.filter {
        !(abs(values[$0] - references[$0]) <= absolute + relative * abs(references[$0]))
    }
    if let first = failing.first {
        XCTFail(
            "\(message): \(failing.count) of \(values.count) elements differ; element \(first) is \(values[first]), "
                + "expected \(references[first])",
            file: file, line: line)
    }
}

/// Fails unless two state dicts have the same keys in the same order, equal counters, and close float values.
func assertStateDictsMatch(
    _ actual: StateDict, _ expected: StateDict, _ message: String, absolute: Float = 1e-4, relative: Float = 1e-3,
    file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertEqual(actual.keys, expected.keys, "\(message): state dict keys or their order", file: file, line: line)
    for (key, expectedValue) in expected.entries {
        switch (actual[key], expectedValue) {
        case (.float(let tensor), .float(let expectedTensor)):
            assertClose(
                tensor, expectedTensor, absolute: absolute, relative: relative, "\(message): \(key)", file: file,
                line: line)
        case (.int64(let count), .int64(let expectedCount)):
            XCTAssertEqual(count, expectedCount, "\(message): \(key)", file: file, line: line)
        case (nil, _):
            XCTFail("\(message): \(key) is missing", file: file, line: line)
        case (let value?, _):
            XCTFail("\(message): \(key) is \(value), expected \(expectedValue)", file: file, line: line)
        }
    }
}
