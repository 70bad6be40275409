import ClassifyKit
import Foundation
import NFMData
import NFMIO
import XCTest

final class FashionMNISTDataTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "nfm-classify-fashion-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    func configuration() -> ClassifyConfiguration {
        var configuration = ClassifyConfiguration.defaults(preset: .quick, dataset: .fashionMNIST)
        configuration.dataDirectory = directory
        return configuration
    }

    func testMissingFilesNameTheFileAndTheSetupCommand() {
        XCTAssertThrowsError(try ClassifyData.load(configuration())) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains(directory + "/train-images-idx3-ubyte.gz"), message)
            XCTAssertTrue(message.contains("run `bash scripts/setup.sh`"), message)
        }
    }

    func testCorruptGzipNamesTheFile() throws {
        try writeFashionMNIST(to: directory, training: 8, test: 4)
        let path = directory + "/t10k-labels-idx1-ubyte.gz"
        // Keep the gzip magic, so the reader tries to decompress it, and cut the stream short.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        try bytes.prefix(12).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try ClassifyData.load(configuration())) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains(path), message)
            XCTAssertTrue(message.contains("cannot decompress"), message)
        }
    }

    func testWrongContentsNameTheFile() throws {
        try writeFashionMNIST(to: directory, training: 8, test: 4)
        let path = directory + "/train-labels-idx1-ubyte.gz"
        // A valid gzip of an images file where the labels should be.
        let wrong = try Gzip.compress(IDX.encode(dimensions: [1, 28, 28], values: [UInt8](repeating: 0, count: 784)))
        try Data(wrong).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try ClassifyData.load(configuration())) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains(path) && message.contains("magic number"), message)
        }
    }

    func testValidFilesLoadAndTheImageCountsAreLimits() throws {
        try writeFashionMNIST(to: directory, training: 8, test: 4)
        var limited = configuration()
        limited.trainingImages = 5
        guard case .fashionMNIST(let train, let test) = try ClassifyData.load(limited) else { return XCTFail("not Fashion-MNIST") }
        XCTAssertEqual(train?.count, 5)
        XCTAssertEqual(test.count, 4, "more test images asked for than there are: all of them")
        XCTAssertEqual(train?.labels, [0, 1, 2, 3, 4])
    }
}

/// Writes small gzip-compressed Fashion-MNIST IDX files: image i is filled with 20·(label) + i and
/// its label is i mod 10, so that the classes differ in brightness and can be learnt.
func writeFashionMNIST(to directory: String, training: Int, test: Int) throws {
    for (split, count) in [(FashionMNIST.Split.train, training), (.test, test)] {
        let paths = FashionMNIST.paths(split: split, directory: directory)
        let labels = (0..<count).map { UInt8($0 % 10) }
        var pixels: [UInt8] = []
        for (index, label) in labels.enumerated() {
            pixels += [UInt8](repeating: UInt8((Int(label) * 20 + index) % 256), count: 28 * 28)
        }
        try Data(Gzip.compress(IDX.encode(dimensions: [count, 28, 28], values: pixels))).write(to: URL(fileURLWithPath: paths.images))
        try Data(Gzip.compress(IDX.encode(dimensions: [count], values: labels))).write(to: URL(fileURLWithPath: paths.labels))
    }
}
