import Foundation
import XCTest

@testable import NFMData

final class IDXTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("nfm-idx-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    /// A decompressor that must not be called (the test files are not gzip-compressed).
    func noDecompression(_ bytes: [UInt8]) throws -> [UInt8] {
        XCTFail("decompress called on uncompressed bytes")
        return bytes
    }

    func testParsesImagesAndLabels() throws {
        let pixels = (0..<(3 * 2 * 4)).map { UInt8($0 * 10) }
        let bytes = IDX.encode(dimensions: [3, 2, 4], values: pixels)
        XCTAssertEqual(Array(bytes.prefix(8)), [0, 0, 8, 3, 0, 0, 0, 3])
        let images = try IDX.parseImages(bytes, file: "images")
        XCTAssertEqual(images, IDX.Images(count: 3, rows: 2, columns: 4, pixels: pixels))
        let labels = try IDX.parseLabels(IDX.encode(dimensions: [4], values: [0, 9, 3, 3]), file: "labels")
        XCTAssertEqual(labels, [0, 9, 3, 3])
    }

    func testRejectsWrongMagicLengthAndNamesTheFile() {
        let labels = IDX.encode(dimensions: [2], values: [1, 2])
        XCTAssertThrowsError(try IDX.parseImages(labels, file: "/data/x-images")) { error in
            let message = String(describing: error)
            XCTAssertTrue(message.contains("/data/x-images"), message)
            XCTAssertTrue(message.contains("0x00000801") && message.contains("0x00000803"), message)
        }
        var truncated = IDX.encode(dimensions: [2, 28, 28], values: [UInt8](repeating: 0, count: 2 * 784))
        truncated.removeLast(100)
        XCTAssertThrowsError(try IDX.parseImages(truncated, file: "short")) { error in
            XCTAssertEqual(error as? DataError, .invalidFormat("short", reason: "2 images of 28×28 need 1584 bytes, the file has 1484 (truncated?)"))
        }
        XCTAssertThrowsError(try IDX.parseLabels(labels + [7], file: "long")) { error in
            XCTAssertTrue(String(describing: error).contains("2 labels need 10 bytes, the file has 11"))
        }
        XCTAssertThrowsError(try IDX.parseLabels([0x1F, 0x8B, 8, 0, 0, 0], file: "zipped")) { error in
            XCTAssertTrue(String(describing: error).contains("gzip"))
        }
        XCTAssertThrowsError(try IDX.parseLabels([0, 0], file: "tiny"))
    }

    func testLoadsASplitFromADirectoryAndChecksIt() throws {
        let pixels = (0..<(5 * 784)).map { UInt8($0 % 256) }
        try Data(IDX.encode(dimensions: [5, 28, 28], values: pixels)).write(
            to: directory.appendingPathComponent("t10k-images-idx3-ubyte.gz"))
        try Data(IDX.encode(dimensions: [5], values: [9, 0, 1, 2, 3])).write(
            to: directory.appendingPathComponent("t10k-labels-idx1-ubyte.gz"))
        let data = try FashionMNIST.load(split: .test, directory: directory.path, decompress: noDecompression)
        XCTAssertEqual(data.count, 5)
        XCTAssertEqual(data.labels, [9, 0, 1, 2, 3])
        let batch = data.batch(indices: [4, 0])
        XCTAssertEqual(batch.images.shape, [2, 1, 28, 28])
        XCTAssertEqual(batch.labels, [3, 9])
        XCTAssertEqual(batch.images[1, 0, 0, 5], 5 / 255)
        XCTAssertEqual(batch.images[0, 0, 27, 27], Float((4 * 784 + 783) % 256) / 255)
        XCTAssertEqual(data.imageTensor().shape, [5, 1, 28, 28])

        // Labels beyond 9, or a count that does not match the images, are refused.
        try Data(IDX.encode(dimensions: [5], values: [9, 0, 10, 2, 3])).write(
            to: directory.appendingPathComponent("t10k-labels-idx1-ubyte.gz"))
        XCTAssertThrowsError(try FashionMNIST.load(split: .test, directory: directory.path, decompress: noDecompression)) { error in
            XCTAssertTrue(String(describing: error).contains("label 10 at index 2"), "\(error)")
        }
        try Data(IDX.encode(dimensions: [4], values: [9, 0, 1, 2])).write(
            to: directory.appendingPathComponent("t10k-labels-idx1-ubyte.gz"))
        XCTAssertThrowsError(try FashionMNIST.load(split: .test, directory: directory.path, decompress: noDecompression)) { error in
            XCTAssertTrue(String(describing: error).contains("4 labels for the 5 images"), "\(error)")
        }
    }

    func testMissingFilesGiveTheSetupHint() {
        XCTAssertThrowsError(try FashionMNIST.load(split: .train, directory: directory.path, decompress: noDecompression)) { error in
            let message = String(describing: error)
            XCTAssertTrue(message.contains("train-images-idx3-ubyte.gz"), message)
            XCTAssertTrue(message.contains("run `bash scripts/setup.sh` to install dataset-fashion-mnist"), message)
        }
    }

    func testCompressedFilesGoThroughTheInjectedDecompressor() throws {
        struct Broken: Error {}
        let path = directory.appendingPathComponent("x.gz")
        try Data([0x1F, 0x8B, 8, 0]).write(to: path)
        XCTAssertThrowsError(try FashionMNIST.readFile(path.path) { _ in throw Broken() }) { error in
            guard case .decompressionFailed(let file, _) = error as? DataError else { return XCTFail("\(error)") }
            XCTAssertEqual(file, path.path)
        }
        XCTAssertEqual(try FashionMNIST.readFile(path.path) { _ in [1, 2, 3] }, [1, 2, 3])
    }

    /// The real files of dataset-fashion-mnist, gunzipped by /bin/gzip (NFMIO's gzip is injected by programs).
    func testRealFashionMNISTFilesParse() throws {
        let paths = FashionMNIST.paths(split: .test)
        guard FileManager.default.fileExists(atPath: paths.images), FileManager.default.fileExists(atPath: paths.labels),
            FileManager.default.isExecutableFile(atPath: "/bin/gzip")
        else {
            throw XCTSkip("Fashion-MNIST is not installed (\(DataError.fashionMNISTHint)) or /bin/gzip is missing")
        }
        for (split, expected) in [(FashionMNIST.Split.train, 60_000), (.test, 10_000)] {
            let data = try FashionMNIST.load(split: split, decompress: gunzip)
            XCTAssertEqual(data.count, expected)
            XCTAssertEqual(data.labels.count, expected)
            XCTAssertEqual(Set(data.labels), Set(0...9))
            // Fashion-MNIST is balanced: 6,000 (train) or 1,000 (test) of each class.
            XCTAssertEqual(data.labels.filter { $0 == 7 }.count, expected / 10)
            let batch = data.batch(indices: [0, expected - 1])
            XCTAssertEqual(batch.images.shape, [2, 1, 28, 28])
            XCTAssertEqual(batch.images.scalars.max() ?? 0, 1, accuracy: 0.2)
            XCTAssertGreaterThanOrEqual(batch.images.scalars.min() ?? -1, 0)
        }
    }

    /// Runs `/bin/gzip -dc` on the bytes, through a temporary file.
    func gunzip(_ bytes: [UInt8]) throws -> [UInt8] {
        let input = directory.appendingPathComponent("input-\(UUID().uuidString).gz")
        try Data(bytes).write(to: input)
        defer { try? FileManager.default.removeItem(at: input) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/gzip")
        process.arguments = ["-dc", input.path]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        // Read before waiting: the pipe's buffer is far smaller than the output.
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw DataError.decompressionFailed(input.path, reason: "gzip exited with \(process.terminationStatus)")
        }
        return [UInt8](data)
    }
}
