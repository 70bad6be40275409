import Foundation
import NFMNN
import NFMTensor
import XCTest

/// Reads the JSON fixtures written by scripts/reference/make_generate_fixtures.py.
enum Fixture {
    /// The parsed top-level object of `Fixtures/<name>.json`.
    static func load(_ name: String) throws -> [String: Any] {
        let url = try XCTUnwrap(
            Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures"),
            "Fixtures/\(name).json is missing; run scripts/reference/make_generate_fixtures.py")
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    /// A `{"shape": …, "values": …}` object as a tensor.
    static func tensor(_ json: Any?) -> Tensor {
        let dictionary = json as! [String: Any]
        return Tensor(shape: dictionary["shape"] as! [Int], scalars: (dictionary["values"] as! [NSNumber]).map(\.floatValue))
    }

    /// A list of numbers as Doubles.
    static func doubles(_ json: Any?) -> [Double] { (json as! [NSNumber]).map(\.doubleValue) }
}

/// Fails unless the shapes agree and every element satisfies |a − e| ≤ absolute + relative·|e|;
/// names the first element that does not (a NaN fails).
func assertClose(
    _ actual: Tensor, _ expected: Tensor, absolute: Float = 1e-5, relative: Float = 1e-4, _ message: String,
    file: StaticString = #filePath, line: UInt = #line
) {
    guard actual.shape == expected.shape else {
        XCTFail("\(message): shape \(actual.shape), expected \(expected.shape)", file: file, line: line)
        return
    }
    let (values, references) = (actual.scalars, expected.scalars)
    if let bad = values.indices.first(where: { !(abs(values[$0] - references[$0]) <= absolute + relative * abs(references[$0])) }) {
        XCTFail("\(message): element \(bad) is \(values[bad]), expected \(references[bad])", file: file, line: line)
    }
}

/// A fresh temporary directory, removed when the test ends.
func temporaryDirectory(_ test: XCTestCase) throws -> String {
    let path = NSTemporaryDirectory() + "generatekit-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    return path
}
