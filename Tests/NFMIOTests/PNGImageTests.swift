import Foundation
import XCTest

@testable import NFMIO

final class PNGImageTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = try makeTemporaryDirectory()
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// An image whose every sample differs, so that a swapped channel or row shows up.
    private func gradient(width: Int, height: Int, channels: Int) -> PNGImage {
        let pixels = (0..<(width * height * channels)).map { UInt8(truncatingIfNeeded: $0 * 7 + $0 / 3) }
        return PNGImage(width: width, height: height, channels: channels, pixels: pixels)
    }

    func testFileRoundTripForEveryChannelCount() throws {
        for channels in [1, 3, 4] {
            let image = gradient(width: 13, height: 7, channels: channels)
            let path = directory + "/image\(channels).png"
            try image.write(to: path)
            let read = try PNGImage.read(contentsOf: path)
            XCTAssertEqual(read, image, "channels \(channels)")
        }
    }

    func testEncodedBytesArePNGAndDecode() throws {
        let image = PNGImage(width: 2, height: 2, channels: 3, pixels: [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30])
        let encoded = try image.encoded()
        XCTAssertEqual(Array(encoded.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        let decoded = try PNGImage.decode(encoded)
        XCTAssertEqual(decoded.width, 2)
        XCTAssertEqual(decoded.height, 2)
        XCTAssertEqual(decoded.channels, 3)
        XCTAssertEqual(decoded.pixel(x: 0, y: 0), [255, 0, 0])
        XCTAssertEqual(decoded.pixel(x: 1, y: 0), [0, 255, 0])
        XCTAssertEqual(decoded.pixel(x: 0, y: 1), [0, 0, 255])
        XCTAssertEqual(decoded.pixel(x: 1, y: 1), [10, 20, 30])
    }

    func testMissingFileCarriesPathAndLibpngMessage() {
        let path = directory + "/absent.png"
        XCTAssertThrowsError(try PNGImage.read(contentsOf: path)) { error in
            guard case .decodeFailed(let failedPath, let message)? = error as? PNGError else {
                return XCTFail("unexpected error \(error)")
            }
            XCTAssertEqual(failedPath, path)
            XCTAssertFalse(message.isEmpty)
            XCTAssertTrue("\(error)".hasPrefix("cannot read PNG \(path): "), "\(error)")
        }
    }

    func testCorruptAndTruncatedDataThrowLibpngMessages() throws {
        XCTAssertThrowsError(try PNGImage.decode(Array("not a png at all".utf8))) { error in
            guard case .decodeFailed(nil, let message)? = error as? PNGError else { return XCTFail("\(error)") }
            XCTAssertFalse(message.isEmpty)
        }
        let encoded = try gradient(width: 20, height: 20, channels: 3).encoded()
        // Every cut before the final 12-byte IEND chunk loses image data. (A cut inside IEND loses
        // nothing, and libpng's simplified reader rightly stops once the pixels are complete.)
        for length in 0..<(encoded.count - 12) {
            XCTAssertThrowsError(try PNGImage.decode(Array(encoded[0..<length])), "prefix of \(length) bytes")
        }
        // A corrupted data chunk fails its CRC (or the inflate), and must throw rather than trap.
        var corrupt = encoded
        corrupt[encoded.count / 2] ^= 0xFF
        XCTAssertThrowsError(try PNGImage.decode(corrupt))
    }

    func testWriteIntoMissingDirectoryThrowsAtomicFileError() {
        XCTAssertThrowsError(try gradient(width: 2, height: 2, channels: 1).write(to: directory + "/no/such.png")) { error in
            XCTAssertEqual((error as? AtomicFileError)?.step, .createTemporary)
        }
    }
}

final class GzipTests: XCTestCase {
    func testDecompressesGzipAndZlibStreams() throws {
        // `printf 'hello world\n' | gzip -n` and Python's `zlib.compress(b'hello zlib')`.
        let gzip = bytes(hex: "1f8b0800000000000003cb48cdc9c95728cf2fca49e102002d3b08af0c000000")
        XCTAssertEqual(try Gzip.decompress(gzip), Array("hello world\n".utf8))
        let zlib = bytes(hex: "789ccb48cdc9c957a8cac94c0200159503e6")
        XCTAssertEqual(try Gzip.decompress(zlib), Array("hello zlib".utf8))
    }

    func testRoundTripAtSeveralSizes() throws {
        var generator = SplitMix64(seed: 7)
        let random = (0..<50_000).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let repetitive = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 % 17) }
        for input in [[], [42], Array("abc".utf8), random, repetitive] {
            let compressed = try Gzip.compress(input)
            XCTAssertEqual(Array(compressed.prefix(2)), [0x1F, 0x8B], "gzip magic")
            XCTAssertEqual(try Gzip.decompress(compressed), input)
        }
        // Repetitive data must really shrink (the output buffer grows from 4× input to 300 KB).
        XCTAssertLessThan(try Gzip.compress(repetitive).count, 3000)
        XCTAssertEqual(try Gzip.compress(repetitive, level: 0).count > 300_000, true)
    }

    func testTruncatedInputThrowsTruncated() throws {
        let input = (0..<5000).map { UInt8(truncatingIfNeeded: $0 * 31 % 251) }
        let compressed = try Gzip.compress(input)
        for length in 0..<compressed.count {
            XCTAssertThrowsError(try Gzip.decompress(Array(compressed[0..<length]))) { error in
                guard case .truncated(let inputLength, _)? = error as? GzipError else {
                    return XCTFail("prefix \(length): expected truncated, got \(error)")
                }
                XCTAssertEqual(inputLength, length)
            }
        }
    }

    func testCorruptInputThrowsCorruptWithZlibMessage() throws {
        let compressed = try Gzip.compress(Array(repeating: Array("corrupt me ".utf8), count: 100).flatMap { $0 })
        var corrupt = compressed
        corrupt[compressed.count - 6] ^= 0x55  // inside the CRC-32 trailer
        XCTAssertThrowsError(try Gzip.decompress(corrupt)) { error in
            XCTAssertEqual(error as? GzipError, .corrupt(offset: compressed.count - 4, message: "incorrect data check"))
            XCTAssertEqual("\(error)", "corrupt compressed data at input byte \(compressed.count - 4): incorrect data check")
        }
        XCTAssertThrowsError(try Gzip.decompress([0x1F, 0x8B, 0x09, 0, 0, 0, 0, 0, 0, 3])) { error in
            guard case .corrupt(_, let message)? = error as? GzipError else { return XCTFail("\(error)") }
            XCTAssertEqual(message, "unknown compression method")
        }
    }

    func testConcatenatedMembersAndTrailingData() throws {
        let first = try Gzip.compress(Array("first ".utf8))
        let second = try Gzip.compress(Array("second".utf8))
        XCTAssertEqual(try Gzip.decompress(first + second), Array("first second".utf8))
        XCTAssertThrowsError(try Gzip.decompress(first + [0, 0, 0])) { error in
            XCTAssertEqual(error as? GzipError, .trailingData(offset: first.count, count: 3))
        }
    }

    func testOutputLimit() throws {
        let compressed = try Gzip.compress([UInt8](repeating: 0, count: 100_000))
        XCTAssertThrowsError(try Gzip.decompress(compressed, maximumOutputSize: 50_000)) { error in
            XCTAssertEqual(error as? GzipError, .outputTooLarge(limit: 50_000))
        }
        XCTAssertEqual(try Gzip.decompress(compressed, maximumOutputSize: 100_000).count, 100_000)
    }
}

final class ImageGridTests: XCTestCase {
    func testLayoutChoosesNearSquareGrids() {
        let grid = ImageGrid()
        XCTAssertTrue(grid.layout(count: 1) == (1, 1))
        XCTAssertTrue(grid.layout(count: 2) == (1, 2))
        XCTAssertTrue(grid.layout(count: 3) == (2, 2))
        XCTAssertTrue(grid.layout(count: 49) == (7, 7))
        XCTAssertTrue(grid.layout(count: 50) == (7, 8))
        XCTAssertTrue(ImageGrid(columns: 4).layout(count: 10) == (3, 4))
        XCTAssertTrue(ImageGrid(columns: 16).layout(count: 3) == (1, 3))
    }

    func testGrayImagesWithPaddingClampingAndEmptyCell() {
        // Three 1×2 gray images → 2×2 grid; padding 1 in colour (10, 20, 30).
        let images: [Float] = [0, 1, 0.5, -0.5, 1.5, .nan]
        let grid = ImageGrid(padding: 1, paddingColor: RGBColor(red: 10, green: 20, blue: 30))
        let picture = grid.render(images, count: 3, channels: 1, height: 1, width: 2)
        XCTAssertEqual(picture.width, 2 * 2 + 3)
        XCTAssertEqual(picture.height, 2 * 1 + 3)
        XCTAssertEqual(picture.channels, 3)
        let pad: [UInt8] = [10, 20, 30]
        let expectedRows: [[[UInt8]]] = [
            [pad, pad, pad, pad, pad, pad, pad],
            [pad, [0, 0, 0], [255, 255, 255], pad, [128, 128, 128], [0, 0, 0], pad],
            [pad, pad, pad, pad, pad, pad, pad],
            [pad, [255, 255, 255], [0, 0, 0], pad, pad, pad, pad],  // NaN is black; cell 4 is empty
            [pad, pad, pad, pad, pad, pad, pad],
        ]
        for y in 0..<picture.height {
            for x in 0..<picture.width {
                XCTAssertEqual(picture.pixel(x: x, y: y), expectedRows[y][x], "pixel (\(x), \(y))")
            }
        }
    }

    func testColourImagesWithRangeAndScale() throws {
        // One 1×2 RGB image in -1…1, scaled 2×, no padding: planes R = [-1, 1], G = [0, 1], B = [1, -1].
        let images: [Float] = [-1, 1, 0, 1, 1, -1]
        let grid = ImageGrid(padding: 0, scale: 2, range: -1...1)
        let picture = grid.render(images, count: 1, channels: 3, height: 1, width: 2)
        XCTAssertEqual(picture.width, 4)
        XCTAssertEqual(picture.height, 2)
        for y in 0..<2 {
            XCTAssertEqual(picture.pixel(x: 0, y: y), [0, 128, 255])
            XCTAssertEqual(picture.pixel(x: 1, y: y), [0, 128, 255])
            XCTAssertEqual(picture.pixel(x: 2, y: y), [255, 255, 0])
            XCTAssertEqual(picture.pixel(x: 3, y: y), [255, 255, 0])
        }
        // The grid is an ordinary PNG.
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try picture.write(to: directory + "/grid.png")
        XCTAssertEqual(try PNGImage.read(contentsOf: directory + "/grid.png"), picture)
    }

    func testCellPositionsWithColumnsAndScale() {
        // Five 2×2 images, 3 columns, scale 3, padding 2: image k has constant value k/4.
        var images: [Float] = []
        for index in 0..<5 { images += [Float](repeating: Float(index) / 4, count: 4) }
        let picture = ImageGrid(columns: 3, padding: 2, paddingColor: .white, scale: 3).render(
            images, count: 5, channels: 1, height: 2, width: 2)
        XCTAssertEqual(picture.width, 3 * 6 + 4 * 2)
        XCTAssertEqual(picture.height, 2 * 6 + 3 * 2)
        for index in 0..<5 {
            let originX = 2 + (index % 3) * 8
            let originY = 2 + (index / 3) * 8
            let level = UInt8(Float(index) / 4 * 255 + 0.5)
            for (x, y) in [(originX, originY), (originX + 5, originY + 5)] {
                XCTAssertEqual(picture.pixel(x: x, y: y), [level, level, level], "image \(index)")
            }
            XCTAssertEqual(picture.pixel(x: originX - 1, y: originY), [255, 255, 255])
            XCTAssertEqual(picture.pixel(x: originX + 6, y: originY), [255, 255, 255])
        }
    }
}
