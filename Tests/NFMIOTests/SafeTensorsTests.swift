import Foundation
import XCTest

@testable import NFMIO

/// Bytes from a hex string (test fixtures).
func bytes(hex: String) -> [UInt8] {
    var result: [UInt8] = []
    var index = hex.startIndex
    while index < hex.endIndex {
        let next = hex.index(index, offsetBy: 2)
        result.append(UInt8(hex[index..<next], radix: 16)!)
        index = next
    }
    return result
}

/// A fresh empty directory under the system temporary directory.
func makeTemporaryDirectory(_ label: String = #function) throws -> String {
    let safe = label.filter { $0.isLetter || $0.isNumber }
    let path = NSTemporaryDirectory() + "nfmio-\(safe)-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// An 8-byte little-endian header length, the header text, then `data`.
func safetensorsFile(header: String, data: [UInt8] = []) -> [UInt8] {
    let headerBytes = Array(header.utf8)
    return littleEndianBytes([UInt64(headerBytes.count)]) + headerBytes + data
}

final class SafeTensorsTests: XCTestCase {
    // Written by safetensors 0.8.0 (`safetensors.torch.save`, PyTorch 2.13) from:
    //   {"weight": torch.arange(6, dtype=torch.float32).reshape(2, 3) / 4,
    //    "bias": torch.tensor([-1.5, 0.0, 2.25]), "num_batches_tracked": torch.tensor(7),
    //    "mask": torch.tensor([True, False]), "half": torch.tensor([1.0, -2.5], dtype=torch.float16),
    //    "ids": torch.tensor([1, -2, 3], dtype=torch.int32), "bf": torch.tensor([0.5], dtype=torch.bfloat16),
    //    "dbl": torch.tensor([0.1], dtype=torch.float64), "u8": torch.tensor([200, 3], dtype=torch.uint8),
    //    "i8": torch.tensor([-5], dtype=torch.int8), "i16": torch.tensor([-300], dtype=torch.int16),
    //    "empty": torch.zeros(0, 3)}, metadata={"format": "pt"}
    static let referenceHex =
        "e8020000000000007b225f5f6d657461646174615f5f223a7b22666f726d6174223a227074227d2c226e756d5f626174636865735f747261636b6564223a7b226474797065223a22493634222c227368617065223a5b5d2c22646174615f6f666673657473223a5b302c385d7d2c2264626c223a7b226474797065223a22463634222c227368617065223a5b315d2c22646174615f6f666673657473223a5b382c31365d7d2c2262696173223a7b226474797065223a22463332222c227368617065223a5b335d2c22646174615f6f666673657473223a5b31362c32385d7d2c22656d707479223a7b226474797065223a22463332222c227368617065223a5b302c335d2c22646174615f6f666673657473223a5b32382c32385d7d2c22776569676874223a7b226474797065223a22463332222c227368617065223a5b322c335d2c22646174615f6f666673657473223a5b32382c35325d7d2c22696473223a7b226474797065223a22493332222c227368617065223a5b335d2c22646174615f6f666673657473223a5b35322c36345d7d2c226266223a7b226474797065223a2242463136222c227368617065223a5b315d2c22646174615f6f666673657473223a5b36342c36365d7d2c2268616c66223a7b226474797065223a22463136222c227368617065223a5b325d2c22646174615f6f666673657473223a5b36362c37305d7d2c22693136223a7b226474797065223a22493136222c227368617065223a5b315d2c22646174615f6f666673657473223a5b37302c37325d7d2c226938223a7b226474797065223a224938222c227368617065223a5b315d2c22646174615f6f666673657473223a5b37322c37335d7d2c227538223a7b226474797065223a225538222c227368617065223a5b325d2c22646174615f6f666673657473223a5b37332c37355d7d2c226d61736b223a7b226474797065223a22424f4f4c222c227368617065223a5b325d2c22646174615f6f666673657473223a5b37352c37375d7d7d2020202020202007000000000000009a9999999999b93f0000c0bf0000000000001040000000000000803e0000003f0000403f0000803f0000a03f01000000feffffff03000000003f003c00c1d4fefbc8030100"

    /// The tensors of the reference file, built with our initialisers.
    static func referenceTensors() -> [(name: String, tensor: SafeTensor)] {
        [
            ("weight", SafeTensor([0, 0.25, 0.5, 0.75, 1, 1.25] as [Float], shape: [2, 3])),
            ("bias", SafeTensor([-1.5, 0, 2.25] as [Float], shape: [3])),
            ("num_batches_tracked", SafeTensor([7] as [Int64], shape: [])),
            ("mask", SafeTensor([true, false], shape: [2])),
            // 1.0 and -2.5 as IEEE half: 0x3C00, 0xC100.
            ("half", SafeTensor(dtype: .float16, shape: [2], bytes: [0x00, 0x3C, 0x00, 0xC1])),
            ("ids", SafeTensor([1, -2, 3] as [Int32], shape: [3])),
            // 0.5 as bfloat16: 0x3F00.
            ("bf", SafeTensor(dtype: .bfloat16, shape: [1], bytes: [0x00, 0x3F])),
            ("dbl", SafeTensor([0.1] as [Double], shape: [1])),
            ("u8", SafeTensor([200, 3] as [UInt8], shape: [2])),
            ("i8", SafeTensor(dtype: .int8, shape: [1], bytes: [UInt8(bitPattern: -5)])),
            ("i16", SafeTensor(dtype: .int16, shape: [1], bytes: littleEndianBytes([Int16(-300)]))),
            ("empty", SafeTensor([] as [Float], shape: [0, 3])),
        ]
    }

    func testEncodeMatchesReferenceWriterByteForByte() throws {
        let encoded = try SafeTensors.encode(Self.referenceTensors(), metadata: ["format": "pt"])
        XCTAssertEqual(encoded, bytes(hex: Self.referenceHex))
    }

    func testDecodesReferenceFile() throws {
        let file = try SafeTensors.decode(bytes(hex: Self.referenceHex))
        XCTAssertEqual(file.metadata, ["format": "pt"])
        XCTAssertEqual(
            file.names, ["num_batches_tracked", "dbl", "bias", "empty", "weight", "ids", "bf", "half", "i16", "i8", "u8", "mask"])
        XCTAssertEqual(try file["weight"]?.floats(), [0, 0.25, 0.5, 0.75, 1, 1.25])
        XCTAssertEqual(file["weight"]?.shape, [2, 3])
        XCTAssertEqual(try file["bias"]?.floats(), [-1.5, 0, 2.25])
        XCTAssertEqual(try file["num_batches_tracked"]?.int64s(), [7])
        XCTAssertEqual(file["num_batches_tracked"]?.shape, [])
        XCTAssertEqual(file["num_batches_tracked"]?.elementCount, 1)
        XCTAssertEqual(try file["mask"]?.int64s(), [1, 0])
        XCTAssertEqual(try file["half"]?.floats(), [1, -2.5])
        XCTAssertEqual(try file["ids"]?.int64s(), [1, -2, 3])
        XCTAssertEqual(try file["bf"]?.floats(), [0.5])
        XCTAssertEqual(try file["dbl"]?.doubles(), [0.1])
        XCTAssertEqual(try file["dbl"]?.floats(), [Float(0.1)])
        XCTAssertEqual(try file["u8"]?.int64s(), [200, 3])
        XCTAssertEqual(try file["i8"]?.int64s(), [-5])
        XCTAssertEqual(try file["i16"]?.int64s(), [-300])
        XCTAssertEqual(file["empty"]?.shape, [0, 3])
        XCTAssertEqual(try file["empty"]?.floats(), [])
        XCTAssertNil(file["missing"])
    }

    func testWriteAndReadFileRoundTrip() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/model.safetensors"
        let values = (0..<1000).map { Float($0) * 0.001 - 0.5 }
        let tensors: [String: SafeTensor] = [
            "layer.weight": SafeTensor(values, shape: [10, 100]),
            "layer.steps": SafeTensor([Int64.min, -1, 0, Int64.max], shape: [2, 2]),
            "layer.double": SafeTensor([Double.pi, -0.0, .infinity], shape: [3]),
        ]
        try SafeTensors.write(tensors, metadata: ["epoch": "3", "note": "quote \" and ünïcode\n"], to: path)
        let file = try SafeTensors.read(contentsOf: path)
        XCTAssertEqual(file.metadata, ["epoch": "3", "note": "quote \" and ünïcode\n"])
        XCTAssertEqual(try file["layer.weight"]?.floats(), values)
        XCTAssertEqual(try file["layer.steps"]?.int64s(), [Int64.min, -1, 0, Int64.max])
        XCTAssertEqual(try file["layer.double"]?.doubles(), [Double.pi, -0.0, .infinity])
        for (name, tensor) in tensors { XCTAssertEqual(file[name], tensor, name) }
        // I64 and F64 (8-byte) first, then F32: every tensor starts at a multiple of its element size.
        XCTAssertEqual(file.names, ["layer.steps", "layer.double", "layer.weight"])
        // No temporary files are left beside the output.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["model.safetensors"])

        // The data section's CRC-32 is recorded, so one flipped bit in a tensor is an error, not a
        // silently different model; readers that ignore the key (PyTorch) see the same tensors.
        var bytes = try AtomicFile.readBytes(contentsOf: path)
        XCTAssertEqual(try SafeTensors.decode(bytes).metadata, file.metadata)
        XCTAssertNotNil(String(decoding: bytes, as: UTF8.self).range(of: "\"\(SafeTensors.checksumKey)\":\""))
        bytes[bytes.count - 5] ^= 0x10
        XCTAssertThrowsError(try SafeTensors.decode(bytes)) { error in
            XCTAssertTrue("\(error)".contains("the file is damaged"), "\(error)")
        }
    }

    func testHeaderIsPaddedWithSpacesToEightBytes() throws {
        for nameLength in 1...16 {
            let name = String(repeating: "n", count: nameLength)
            let encoded = try SafeTensors.encode([(name, SafeTensor([1] as [Float], shape: [1]))])
            let headerLength = Int(decodeLittleEndian(Array(encoded[0..<8]), as: UInt64.self)[0])
            XCTAssertEqual(headerLength % 8, 0, "name length \(nameLength)")
            let header = String(decoding: encoded[8..<(8 + headerLength)], as: UTF8.self)
            XCTAssertTrue(header.hasPrefix("{\"\(name)\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}"), header)
            // Only spaces follow the closing brace, and fewer than 8 of them.
            let padding = header.reversed().prefix { $0 == " " }.count
            XCTAssertTrue(header.dropLast(padding).hasSuffix("}"))
            XCTAssertLessThan(padding, 8)
            XCTAssertEqual(encoded.count, 8 + headerLength + 4)
        }
    }

    func testTypedAccessorsRejectWrongDTypes() {
        let floats = SafeTensor([1, 2] as [Float], shape: [2])
        XCTAssertThrowsError(try floats.int64s()) { error in
            XCTAssertEqual(error as? SafeTensorsError, .dtypeMismatch(dtype: .float32, requested: "Int64 (integer types and BOOL)"))
            XCTAssertEqual("\(error)", "tensor of dtype F32 cannot be read as Int64 (integer types and BOOL)")
        }
        let integers = SafeTensor([1, 2] as [Int64], shape: [2])
        XCTAssertThrowsError(try integers.floats())
        let huge = SafeTensor(dtype: .uint64, shape: [1], bytes: littleEndianBytes([UInt64.max]))
        XCTAssertThrowsError(try huge.int64s()) { error in
            XCTAssertEqual(error as? SafeTensorsError, .valueOutOfRange(dtype: .uint64, requested: "Int64"))
        }
    }

    func testHalfPrecisionConversion() {
        XCTAssertEqual(floatFromHalf(0x0000), 0)
        XCTAssertEqual(floatFromHalf(0x8000).sign, .minus)
        XCTAssertEqual(floatFromHalf(0x3C00), 1)
        XCTAssertEqual(floatFromHalf(0x7BFF), 65504)  // largest finite half
        XCTAssertEqual(floatFromHalf(0x0001), Float(sign: .plus, exponent: -24, significand: 1))  // smallest subnormal
        XCTAssertEqual(floatFromHalf(0x03FF), Float(1023) * Float(sign: .plus, exponent: -24, significand: 1))
        XCTAssertEqual(floatFromHalf(0x7C00), .infinity)
        XCTAssertEqual(floatFromHalf(0xFC00), -.infinity)
        XCTAssertTrue(floatFromHalf(0x7E00).isNaN)
    }

    func testWriteRejectsDuplicateAndReservedNames() {
        let tensor = SafeTensor([1] as [Float], shape: [1])
        XCTAssertThrowsError(try SafeTensors.encode([("a", tensor), ("a", tensor)])) {
            XCTAssertEqual($0 as? SafeTensorsError, .duplicateName("a"))
        }
        XCTAssertThrowsError(try SafeTensors.encode([("__metadata__", tensor)])) {
            XCTAssertEqual($0 as? SafeTensorsError, .reservedName)
        }
    }

    func testMissingFileNamesThePath() {
        XCTAssertThrowsError(try SafeTensors.read(contentsOf: "/nonexistent/dir/model.safetensors")) { error in
            XCTAssertEqual(error as? SafeTensorsError, .fileNotFound(path: "/nonexistent/dir/model.safetensors"))
            XCTAssertEqual(error.localizedDescription, "no safetensors file at /nonexistent/dir/model.safetensors")
        }
    }

    func testCorruptFileErrorNamesThePath() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/short.safetensors"
        try AtomicFile.write([1, 2, 3], to: path)
        XCTAssertThrowsError(try SafeTensors.read(contentsOf: path)) { error in
            XCTAssertEqual(error as? SafeTensorsError, .inFile(path: path, error: .fileTooShort(byteCount: 3)))
            XCTAssertEqual((error as? SafeTensorsError)?.reason, .fileTooShort(byteCount: 3))
            XCTAssertEqual("\(error)", "\(path): file is 3 bytes long, too short for the 8-byte header length")
        }
    }

    /// Decodes `bytes` and returns the error it must throw.
    private func decodeError(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) -> SafeTensorsError? {
        do {
            _ = try SafeTensors.decode(bytes)
            XCTFail("decoding succeeded but should have failed", file: file, line: line)
            return nil
        } catch {
            return error
        }
    }

    func testHeaderLengthErrors() {
        XCTAssertEqual(decodeError([]), .fileTooShort(byteCount: 0))
        XCTAssertEqual(decodeError([8, 0, 0, 0, 0, 0, 0]), .fileTooShort(byteCount: 7))
        XCTAssertEqual(decodeError([UInt8](repeating: 0xFF, count: 8)), .headerTooLarge(headerLength: UInt64.max, limit: 100_000_000))
        XCTAssertEqual(decodeError(littleEndianBytes([UInt64(50)]) + Array("{}".utf8)), .headerLengthExceedsFile(headerLength: 50, available: 2))
        XCTAssertEqual(
            decodeError(littleEndianBytes([UInt64(50)]) + Array("{}".utf8))?.description,
            "header length 50 (bytes 0-7) is larger than the 2 bytes that follow it; the file is truncated or corrupt")
        XCTAssertEqual(decodeError(littleEndianBytes([UInt64(0)])), .headerNotJSON(offset: 8, reason: "the header is empty"))
        XCTAssertEqual(decodeError(safetensorsFile(header: "[]")), .headerNotObject(firstByte: UInt8(ascii: "[")))
    }

    func testHeaderJSONErrorsGiveTheByteOffset() {
        // File offset = 8 (length prefix) + offset in the header.
        XCTAssertEqual(
            decodeError(safetensorsFile(header: "{\"a\" 1}")),
            .headerNotJSON(offset: 13, reason: "expected ':' after key \"a\", found character '1'"))
        XCTAssertEqual(
            decodeError(safetensorsFile(header: "{\"a\":{}} x")),
            .headerNotJSON(offset: 17, reason: "unexpected character 'x' after the JSON value"))
        XCTAssertEqual(
            decodeError(safetensorsFile(header: "{\"a\":{}, \"a\":{}}")),
            .headerNotJSON(offset: 17, reason: "duplicate key \"a\""))
        let invalidUTF8 = littleEndianBytes([UInt64(8)]) + [0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x3A, 0x31, 0x7D]
        XCTAssertEqual(decodeError(invalidUTF8), .headerNotJSON(offset: 9, reason: "string is not valid UTF-8"))
        let deep = "{\"a\":" + String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000) + "}"
        XCTAssertEqual(decodeError(safetensorsFile(header: deep)), .headerNotJSON(offset: 8 + 5 + 63, reason: "nesting deeper than 64 levels"))
        XCTAssertEqual(decodeError(safetensorsFile(header: "{\"a\":01}")), .headerNotJSON(offset: 13, reason: "a number may not have a leading zero"))
    }

    func testEntryErrors() {
        let data = [UInt8](repeating: 0, count: 8)
        func entry(_ fields: String) -> [UInt8] { safetensorsFile(header: "{\"w\":{\(fields)}}", data: data) }
        XCTAssertEqual(
            decodeError(entry("\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]")),
            .unknownDType(name: "w", dtype: "F33"))
        XCTAssertEqual(
            decodeError(entry("\"shape\":[2],\"data_offsets\":[0,8]")), .invalidEntry(name: "w", reason: "missing \"dtype\""))
        XCTAssertEqual(
            decodeError(entry("\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]")),
            .sizeMismatch(name: "w", dtype: .float32, shape: [3], expectedBytes: 12, begin: 0, end: 8))
        XCTAssertEqual(
            decodeError(entry("\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]"))?.description,
            "tensor \"w\": shape [3] of F32 needs 12 bytes, but data_offsets [0, 8] hold 8")
        XCTAssertEqual(
            decodeError(entry("\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]")),
            .offsetsOutOfRange(name: "w", begin: 0, end: 16, dataLength: 8))
        XCTAssertEqual(
            decodeError(entry("\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]")),
            .offsetsOutOfRange(name: "w", begin: 8, end: 0, dataLength: 8))
        XCTAssertEqual(
            decodeError(entry("\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]")),
            .invalidEntry(name: "w", reason: "\"shape\"[0] is not a non-negative integer that fits in 64 bits"))
        XCTAssertEqual(
            decodeError(entry("\"dtype\":\"F32\",\"shape\":[true],\"data_offsets\":[0,8]")),
            .invalidEntry(name: "w", reason: "\"shape\"[0] is not a non-negative integer that fits in 64 bits"))
        XCTAssertEqual(
            decodeError(entry("\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]")),
            .invalidEntry(name: "w", reason: "\"shape\"[0] is not a non-negative integer that fits in 64 bits"))
        XCTAssertEqual(
            decodeError(entry("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,99999999999999999999]")),
            .invalidEntry(name: "w", reason: "\"data_offsets\"[1] is not a non-negative integer that fits in 64 bits"))
        // A shape whose byte count overflows Int must be an error, not a trap.
        XCTAssertEqual(
            decodeError(entry("\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]")),
            .sizeMismatch(name: "w", dtype: .float64, shape: [4_294_967_296, 4_294_967_296], expectedBytes: Int.max, begin: 0, end: 8))
        XCTAssertEqual(
            decodeError(entry("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]")),
            .invalidEntry(name: "w", reason: "\"data_offsets\" has 1 elements, expected [begin, end]"))
        XCTAssertEqual(
            decodeError(safetensorsFile(header: "{\"w\":[]}", data: data)),
            .invalidEntry(name: "w", reason: "entry is an array, expected an object with dtype, shape and data_offsets"))
        XCTAssertEqual(
            decodeError(safetensorsFile(header: "{\"__metadata__\":{\"a\":1}}")),
            .invalidMetadata(reason: "entry \"a\" is a number"))
    }

    func testLayoutErrors() {
        let data = [UInt8](repeating: 0, count: 12)
        func file(_ a: (Int, Int), _ b: (Int, Int), dataCount: Int = 12) -> [UInt8] {
            let header =
                "{\"a\":{\"dtype\":\"U8\",\"shape\":[\(a.1 - a.0)],\"data_offsets\":[\(a.0),\(a.1)]},"
                + "\"b\":{\"dtype\":\"U8\",\"shape\":[\(b.1 - b.0)],\"data_offsets\":[\(b.0),\(b.1)]}}"
            return safetensorsFile(header: header, data: Array(data[0..<dataCount]))
        }
        XCTAssertNoThrow(try SafeTensors.decode(file((0, 4), (4, 12))))
        XCTAssertEqual(decodeError(file((0, 6), (4, 12))), .overlappingTensors(name: "b", begin: 4, previous: "a", previousEnd: 6))
        XCTAssertEqual(decodeError(file((0, 4), (6, 12))), .gapBetweenTensors(name: "b", begin: 6, previous: "a", previousEnd: 4))
        XCTAssertEqual(decodeError(file((2, 4), (4, 12))), .gapBetweenTensors(name: "a", begin: 2, previous: nil, previousEnd: 0))
        XCTAssertEqual(decodeError(file((0, 4), (4, 10))), .trailingBytes(dataEnd: 10, dataLength: 12))
        XCTAssertEqual(
            decodeError(file((0, 4), (4, 10)))?.description,
            "the last tensor ends at data offset 10, but the data section holds 12 bytes: 2 trailing bytes belong to no tensor")
    }

    func testFuzzTruncationAtEveryLength() {
        let reference = bytes(hex: Self.referenceHex)
        for length in 0..<reference.count {
            XCTAssertThrowsError(try SafeTensors.decode(Array(reference[0..<length])), "prefix of \(length) bytes")
        }
        XCTAssertNoThrow(try SafeTensors.decode(reference))
    }

    func testFuzzByteFlipsThrowOrLoadButNeverTrap() {
        let reference = bytes(hex: Self.referenceHex)
        let headerEnd = 8 + 0x2E8
        var loaded = 0
        var failed = 0
        for position in 0..<reference.count {
            for mask: UInt8 in [0x01, 0x04, 0x20, 0x80, 0xFF] {
                var corrupt = reference
                corrupt[position] ^= mask
                do {
                    _ = try SafeTensors.decode(corrupt)
                    loaded += 1
                    // The length prefix must always be caught.
                    XCTAssertGreaterThanOrEqual(position, 8, "flip at \(position) with mask \(mask) loaded")
                } catch {
                    failed += 1
                    // Data bytes are not validated, so flipping them must still load.
                    XCTAssertLessThan(position, headerEnd, "flip in the data at \(position): \(error)")
                    XCTAssertFalse("\(error)".isEmpty)
                }
            }
        }
        XCTAssertGreaterThan(loaded, 0)
        XCTAssertGreaterThan(failed, 0)

        // Random multi-byte corruption with a fixed seed, including random lengths.
        var generator = SplitMix64(seed: 42)
        for _ in 0..<3000 {
            var corrupt = reference
            for _ in 0..<Int.random(in: 1...8, using: &generator) {
                corrupt[Int.random(in: 0..<corrupt.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            if Bool.random(using: &generator) { corrupt.removeLast(Int.random(in: 0..<corrupt.count, using: &generator)) }
            _ = try? SafeTensors.decode(corrupt)
        }
    }
}

/// A small seeded generator so that fuzz cases are reproducible.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
