// safetensors, the Hugging Face checkpoint format (https://github.com/huggingface/safetensors):
//
//   [8 bytes]  N, the header length, unsigned little-endian
//   [N bytes]  a UTF-8 JSON object: {"__metadata__": {string: string}, name: {"dtype": "F32",
//              "shape": [2, 3], "data_offsets": [begin, end]}, ...}, padded with spaces
//   [rest]     the tensors' bytes, little-endian, row-major; offsets are relative to this section
//
// Reading validates everything the reference implementation validates (and says where it failed),
// because checkpoints come from outside and a corrupt one must produce an error, not a crash or a
// silently wrong model. Writing reproduces the reference's layout byte for byte, so that PyTorch's
// `safetensors.torch.load_file` reads our checkpoints and ours read theirs.
//
// The format has no checksum, so a flipped byte in the tensor data would load as a different model.
// Files we write therefore record the CRC-32 of their data section in the metadata (key
// `nfm.crc32`, which other readers ignore), and reading a file that has one checks it.

import CZlib
import Foundation

/// The element type of a safetensors tensor, spelled as in the file's `dtype` field.
public enum SafeTensorDType: String, Sendable, CaseIterable, Hashable {
    /// Booleans, one byte each (0 or 1).
    case bool = "BOOL"
    /// Unsigned 8-bit integers.
    case uint8 = "U8"
    /// Signed 8-bit integers.
    case int8 = "I8"
    /// 8-bit floats with 5 exponent bits (raw bytes only; no typed accessor).
    case float8E5M2 = "F8_E5M2"
    /// 8-bit floats with 4 exponent bits (raw bytes only; no typed accessor).
    case float8E4M3 = "F8_E4M3"
    /// Signed 16-bit integers.
    case int16 = "I16"
    /// Unsigned 16-bit integers.
    case uint16 = "U16"
    /// IEEE half-precision floats.
    case float16 = "F16"
    /// bfloat16: the upper 16 bits of a Float32.
    case bfloat16 = "BF16"
    /// Signed 32-bit integers.
    case int32 = "I32"
    /// Unsigned 32-bit integers.
    case uint32 = "U32"
    /// IEEE single-precision floats (PyTorch's default).
    case float32 = "F32"
    /// IEEE double-precision floats.
    case float64 = "F64"
    /// Signed 64-bit integers (e.g. BatchNorm's `num_batches_tracked`).
    case int64 = "I64"
    /// Unsigned 64-bit integers.
    case uint64 = "U64"

    /// Bytes per element.
    public var byteCount: Int {
        switch self {
        case .bool, .uint8, .int8, .float8E5M2, .float8E4M3: return 1
        case .int16, .uint16, .float16, .bfloat16: return 2
        case .int32, .uint32, .float32: return 4
        case .float64, .int64, .uint64: return 8
        }
    }

    /// The position of this type in the reference implementation's `Dtype` enum. The reference
    /// lays tensors out by this order, descending (largest alignment first), then by name; every
    /// tensor then starts at an offset that is a multiple of its element size.
    var referenceOrder: Int { Self.allCases.firstIndex(of: self)! }
}

/// One tensor of a safetensors file: element type, shape and raw little-endian bytes.
///
/// This type does not depend on any tensor library; a tensor module converts to and from it.
public struct SafeTensor: Sendable, Equatable {
    /// The element type.
    public let dtype: SafeTensorDType
    /// The dimensions, outermost first (row-major). An empty shape is a scalar.
    public let shape: [Int]
    /// The elements as stored in the file: little-endian, row-major, `elementCount × dtype.byteCount` bytes.
    public let bytes: [UInt8]

    /// The number of elements: the product of ``shape`` (1 for a scalar).
    public var elementCount: Int { shape.reduce(1, *) }

    /// Wraps raw little-endian `bytes` of type `dtype` and the given `shape`.
    ///
    /// The byte count must equal the shape's element count times the element size; a mismatch is
    /// a programming error and stops the program with both sizes named.
    public init(dtype: SafeTensorDType, shape: [Int], bytes: [UInt8]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "SafeTensor: shape \(shape) has a negative dimension")
        let count = shape.reduce(1, *)
        precondition(
            count * dtype.byteCount == bytes.count,
            "SafeTensor: shape \(shape) of \(dtype.rawValue) needs \(count * dtype.byteCount) bytes, got \(bytes.count)")
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
    }

    /// A Float32 (`F32`) tensor holding `values` in row-major order.
    public init(_ values: [Float], shape: [Int]) {
        self.init(dtype: .float32, shape: shape, bytes: Self.checkedBytes(values.map(\.bitPattern), shape: shape))
    }

    /// A Float64 (`F64`) tensor holding `values` in row-major order.
    public init(_ values: [Double], shape: [Int]) {
        self.init(dtype: .float64, shape: shape, bytes: Self.checkedBytes(values.map(\.bitPattern), shape: shape))
    }

    /// An Int64 (`I64`) tensor holding `values` in row-major order.
    public init(_ values: [Int64], shape: [Int]) {
        self.init(dtype: .int64, shape: shape, bytes: Self.checkedBytes(values, shape: shape))
    }

    /// An Int32 (`I32`) tensor holding `values` in row-major order.
    public init(_ values: [Int32], shape: [Int]) {
        self.init(dtype: .int32, shape: shape, bytes: Self.checkedBytes(values, shape: shape))
    }

    /// A UInt8 (`U8`) tensor holding `values` in row-major order.
    public init(_ values: [UInt8], shape: [Int]) {
        self.init(dtype: .uint8, shape: shape, bytes: Self.checkedBytes(values, shape: shape))
    }

    /// A boolean (`BOOL`) tensor holding `values` in row-major order, one byte (0 or 1) each.
    public init(_ values: [Bool], shape: [Int]) {
        self.init(dtype: .bool, shape: shape, bytes: Self.checkedBytes(values.map { $0 ? 1 : 0 as UInt8 }, shape: shape))
    }

    private static func checkedBytes<T: FixedWidthInteger>(_ values: [T], shape: [Int]) -> [UInt8] {
        let count = shape.reduce(1, *)
        precondition(values.count == count, "SafeTensor: shape \(shape) holds \(count) elements, got \(values.count) values")
        return littleEndianBytes(values)
    }

    /// The elements as `Float`. Reads `F32` exactly and converts `F16`, `BF16` and `F64`
    /// (F64 is rounded to the nearest Float). Throws ``SafeTensorsError/dtypeMismatch(dtype:requested:)``
    /// for integer and 8-bit float tensors.
    public func floats() throws(SafeTensorsError) -> [Float] {
        switch dtype {
        case .float32: return decodeLittleEndian(bytes, as: UInt32.self).map(Float.init(bitPattern:))
        case .float64: return decodeLittleEndian(bytes, as: UInt64.self).map { Float(Double(bitPattern: $0)) }
        case .float16: return decodeLittleEndian(bytes, as: UInt16.self).map(floatFromHalf)
        case .bfloat16: return decodeLittleEndian(bytes, as: UInt16.self).map { Float(bitPattern: UInt32($0) << 16) }
        default: throw .dtypeMismatch(dtype: dtype, requested: "Float (F32, F64, F16, BF16)")
        }
    }

    /// The elements as `Double`. Reads `F64` exactly and widens `F32`, `F16` and `BF16` exactly.
    /// Throws ``SafeTensorsError/dtypeMismatch(dtype:requested:)`` for other types.
    public func doubles() throws(SafeTensorsError) -> [Double] {
        switch dtype {
        case .float64: return decodeLittleEndian(bytes, as: UInt64.self).map(Double.init(bitPattern:))
        case .float32, .float16, .bfloat16: return try floats().map(Double.init)
        default: throw .dtypeMismatch(dtype: dtype, requested: "Double (F64, F32, F16, BF16)")
        }
    }

    /// The elements as `Int64`. Reads `I64` and widens every other integer type and `BOOL` exactly.
    /// Throws ``SafeTensorsError/dtypeMismatch(dtype:requested:)`` for floats, and
    /// ``SafeTensorsError/valueOutOfRange(dtype:requested:)`` for a `U64` value above `Int64.max`.
    public func int64s() throws(SafeTensorsError) -> [Int64] {
        switch dtype {
        case .int64: return decodeLittleEndian(bytes, as: Int64.self)
        case .int32: return decodeLittleEndian(bytes, as: Int32.self).map(Int64.init)
        case .int16: return decodeLittleEndian(bytes, as: Int16.self).map(Int64.init)
        case .int8: return bytes.map { Int64(Int8(bitPattern: $0)) }
        case .uint32: return decodeLittleEndian(bytes, as: UInt32.self).map(Int64.init)
        case .uint16: return decodeLittleEndian(bytes, as: UInt16.self).map(Int64.init)
        case .uint8, .bool: return bytes.map(Int64.init)
        case .uint64:
            let values = decodeLittleEndian(bytes, as: UInt64.self)
            guard values.allSatisfy({ $0 <= UInt64(Int64.max) }) else {
                throw .valueOutOfRange(dtype: dtype, requested: "Int64")
            }
            return values.map { Int64($0) }
        default: throw .dtypeMismatch(dtype: dtype, requested: "Int64 (integer types and BOOL)")
        }
    }
}

/// The contents of a safetensors file: named tensors in file order, and the string metadata.
public struct SafeTensorsFile: Sendable {
    /// The tensors, in the order of their data in the file.
    public let tensors: [(name: String, tensor: SafeTensor)]
    /// The `__metadata__` entries (empty when the file has none).
    public let metadata: [String: String]
    private let indexByName: [String: Int]

    /// Collects `tensors` (names must be unique) and `metadata`.
    public init(tensors: [(name: String, tensor: SafeTensor)], metadata: [String: String] = [:]) {
        var index: [String: Int] = [:]
        for (position, entry) in tensors.enumerated() {
            precondition(index.updateValue(position, forKey: entry.name) == nil, "SafeTensorsFile: duplicate tensor name \"\(entry.name)\"")
        }
        self.tensors = tensors
        self.metadata = metadata
        self.indexByName = index
    }

    /// The tensor called `name`, or nil.
    public subscript(name: String) -> SafeTensor? {
        indexByName[name].map { tensors[$0].tensor }
    }

    /// The tensor names, in file order.
    public var names: [String] { tensors.map(\.name) }
}

/// What is wrong with a safetensors file or request, with the tensor name and byte positions.
public indirect enum SafeTensorsError: Error, CustomStringConvertible, LocalizedError, Sendable, Equatable {
    /// No file at the path.
    case fileNotFound(path: String)
    /// The file exists but could not be read (permissions, a directory, an I/O error).
    case unreadable(path: String, reason: String)
    /// Fewer than the 8 bytes that hold the header length.
    case fileTooShort(byteCount: Int)
    /// The header length is above the reference's 100 MB limit (a sign of a corrupt or foreign file).
    case headerTooLarge(headerLength: UInt64, limit: Int)
    /// The header length runs past the end of the file.
    case headerLengthExceedsFile(headerLength: UInt64, available: Int)
    /// The header does not start with `{`.
    case headerNotObject(firstByte: UInt8)
    /// The header is not valid JSON (or a string in it is not UTF-8); `offset` is the file offset.
    case headerNotJSON(offset: Int, reason: String)
    /// The `__metadata__` entry is not an object of strings.
    case invalidMetadata(reason: String)
    /// A tensor entry lacks a field or has one of the wrong form.
    case invalidEntry(name: String, reason: String)
    /// A tensor's dtype is not one this reader knows.
    case unknownDType(name: String, dtype: String)
    /// The shape's element count times the element size differs from the byte range's length.
    case sizeMismatch(name: String, dtype: SafeTensorDType, shape: [Int], expectedBytes: Int, begin: Int, end: Int)
    /// `data_offsets` has begin after end, or end past the data section.
    case offsetsOutOfRange(name: String, begin: Int, end: Int, dataLength: Int)
    /// Two tensors share bytes.
    case overlappingTensors(name: String, begin: Int, previous: String, previousEnd: Int)
    /// Bytes between two tensors (or before the first) belong to no tensor.
    case gapBetweenTensors(name: String, begin: Int, previous: String?, previousEnd: Int)
    /// Bytes after the last tensor belong to no tensor.
    case trailingBytes(dataEnd: Int, dataLength: Int)
    /// Two tensors to be written share a name.
    case duplicateName(String)
    /// A tensor to be written is called `__metadata__`, which the format reserves.
    case reservedName
    /// A typed accessor was asked for a type the tensor's dtype cannot convert to.
    case dtypeMismatch(dtype: SafeTensorDType, requested: String)
    /// An element does not fit the requested type.
    case valueOutOfRange(dtype: SafeTensorDType, requested: String)
    /// The data section does not match the CRC-32 recorded in the metadata when the file was written.
    case checksumMismatch(recorded: String, computed: String)
    /// One of the errors above, in the file at `path`.
    case inFile(path: String, error: SafeTensorsError)

    /// The error without the file context of ``inFile(path:error:)``.
    public var reason: SafeTensorsError {
        if case .inFile(_, let error) = self { return error.reason }
        return self
    }

    /// A sentence saying what is wrong and where.
    public var description: String {
        switch self {
        case .fileNotFound(let path):
            return "no safetensors file at \(path)"
        case .unreadable(let path, let reason):
            return "cannot read safetensors file \(path): \(reason)"
        case .fileTooShort(let count):
            return "file is \(count) bytes long, too short for the 8-byte header length"
        case .headerTooLarge(let length, let limit):
            return "header length \(length) (bytes 0-7) exceeds the \(limit)-byte limit; the file is corrupt or not safetensors"
        case .headerLengthExceedsFile(let length, let available):
            return "header length \(length) (bytes 0-7) is larger than the \(available) bytes that follow it; the file is truncated or corrupt"
        case .headerNotObject(let byte):
            return "header must start with '{' at byte 8, found byte 0x\(String(byte, radix: 16, uppercase: true))"
        case .headerNotJSON(let offset, let reason):
            return "header is not valid JSON: \(reason) at byte \(offset)"
        case .invalidMetadata(let reason):
            return "__metadata__ \(reason); it must be an object whose values are strings"
        case .invalidEntry(let name, let reason):
            return "tensor \"\(name)\": \(reason)"
        case .unknownDType(let name, let dtype):
            let known = SafeTensorDType.allCases.map(\.rawValue).joined(separator: ", ")
            return "tensor \"\(name)\": unknown dtype \"\(dtype)\" (known: \(known))"
        case .sizeMismatch(let name, let dtype, let shape, let expected, let begin, let end):
            return "tensor \"\(name)\": shape \(shape) of \(dtype.rawValue) needs \(expected) bytes, "
                + "but data_offsets [\(begin), \(end)] hold \(end - begin)"
        case .offsetsOutOfRange(let name, let begin, let end, let dataLength):
            if begin > end { return "tensor \"\(name)\": data_offsets [\(begin), \(end)] end before they begin" }
            return "tensor \"\(name)\": data_offsets [\(begin), \(end)] run past the end of the \(dataLength)-byte data section"
        case .overlappingTensors(let name, let begin, let previous, let previousEnd):
            return "tensor \"\(name)\" begins at data offset \(begin), inside tensor \"\(previous)\", which ends at \(previousEnd)"
        case .gapBetweenTensors(let name, let begin, let previous, let previousEnd):
            let after = previous.map { "tensor \"\($0)\" ends at \(previousEnd)" } ?? "the data section starts at 0"
            return "tensor \"\(name)\" begins at data offset \(begin), but \(after): \(begin - previousEnd) bytes belong to no tensor"
        case .trailingBytes(let dataEnd, let dataLength):
            return "the last tensor ends at data offset \(dataEnd), but the data section holds \(dataLength) bytes: "
                + "\(dataLength - dataEnd) trailing bytes belong to no tensor"
        case .duplicateName(let name):
            return "two tensors are named \"\(name)\""
        case .reservedName:
            return "a tensor may not be named \"__metadata__\"; the format reserves that key"
        case .dtypeMismatch(let dtype, let requested):
            return "tensor of dtype \(dtype.rawValue) cannot be read as \(requested)"
        case .valueOutOfRange(let dtype, let requested):
            return "tensor of dtype \(dtype.rawValue) holds a value that does not fit \(requested)"
        case .checksumMismatch(let recorded, let computed):
            return "the tensor data's CRC-32 is \(computed), but the file recorded \(recorded) when it was written; the file is damaged"
        case .inFile(let path, let error):
            return "\(path): \(error.description)"
        }
    }

    /// Same as ``description``, for `localizedDescription`.
    public var errorDescription: String? { description }
}

/// Reads and writes safetensors files.
public enum SafeTensors {
    /// The reference implementation's limit on the header length (100 MB), which guards against
    /// allocating gigabytes for a corrupt length field.
    public static let maximumHeaderLength = 100_000_000

    /// Reads the file at `path`. Errors about the content are wrapped in
    /// ``SafeTensorsError/inFile(path:error:)`` so that the message names the file.
    public static func read(contentsOf path: String) throws(SafeTensorsError) -> SafeTensorsFile {
        let bytes: [UInt8]
        do {
            bytes = try AtomicFile.readBytes(contentsOf: path)
        } catch let error as AtomicFileError {
            if error.code == ENOENT { throw .fileNotFound(path: path) }
            throw .unreadable(path: path, reason: "\(error.reason) (errno \(error.code))")
        } catch {
            throw .unreadable(path: path, reason: "\(error)")
        }
        do {
            return try decode(bytes)
        } catch {
            throw .inFile(path: path, error: error)
        }
    }

    /// Parses a whole safetensors file held in memory. Never traps on corrupt input.
    public static func decode(_ bytes: [UInt8]) throws(SafeTensorsError) -> SafeTensorsFile {
        guard bytes.count >= 8 else { throw .fileTooShort(byteCount: bytes.count) }
        let headerLength = bytes[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        // Compare as UInt64 before converting: a corrupt length can exceed Int.max.
        guard headerLength <= UInt64(maximumHeaderLength) else {
            throw .headerTooLarge(headerLength: headerLength, limit: maximumHeaderLength)
        }
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw .headerLengthExceedsFile(headerLength: headerLength, available: bytes.count - 8)
        }
        let headerEnd = 8 + Int(headerLength)
        guard headerLength > 0 else { throw .headerNotJSON(offset: 8, reason: "the header is empty") }
        guard bytes[8] == UInt8(ascii: "{") else { throw .headerNotObject(firstByte: bytes[8]) }
        let json: JSONValue
        do {
            json = try JSONParser.parse(Array(bytes[8..<headerEnd]))
        } catch {
            throw .headerNotJSON(offset: 8 + error.offset, reason: error.message)
        }
        guard case .object(let members) = json else {
            throw .headerNotJSON(offset: 8, reason: "the header is \(json.kindName), not an object")
        }

        let dataLength = bytes.count - headerEnd
        var metadata: [String: String] = [:]
        var entries: [(name: String, dtype: SafeTensorDType, shape: [Int], begin: Int, end: Int)] = []
        for (name, value) in members {
            if name == "__metadata__" {
                guard case .object(let pairs) = value else { throw .invalidMetadata(reason: "is \(value.kindName)") }
                for (key, item) in pairs {
                    guard case .string(let text) = item else {
                        throw .invalidMetadata(reason: "entry \"\(key)\" is \(item.kindName)")
                    }
                    metadata[key] = text
                }
                continue
            }
            entries.append(try parseEntry(name: name, value: value, dataLength: dataLength))
        }

        // The reference requires the tensors to tile the data section exactly: sorted by offset,
        // each begins where the previous ends, and the last ends at the end of the file.
        entries.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        var expectedBegin = 0
        var previous: String? = nil
        for entry in entries {
            if entry.begin < expectedBegin {
                throw .overlappingTensors(name: entry.name, begin: entry.begin, previous: previous ?? "", previousEnd: expectedBegin)
            }
            if entry.begin > expectedBegin {
                throw .gapBetweenTensors(name: entry.name, begin: entry.begin, previous: previous, previousEnd: expectedBegin)
            }
            expectedBegin = entry.end
            previous = entry.name
        }
        if expectedBegin != dataLength { throw .trailingBytes(dataEnd: expectedBegin, dataLength: dataLength) }
        if let recorded = metadata.removeValue(forKey: checksumKey) {
            let computed = checksum(bytes[headerEnd...])
            if recorded != computed { throw .checksumMismatch(recorded: recorded, computed: computed) }
        }

        let tensors = entries.map { entry in
            (
                name: entry.name,
                tensor: SafeTensor(
                    dtype: entry.dtype, shape: entry.shape,
                    bytes: Array(bytes[(headerEnd + entry.begin)..<(headerEnd + entry.end)]))
            )
        }
        return SafeTensorsFile(tensors: tensors, metadata: metadata)
    }

    private static func parseEntry(name: String, value: JSONValue, dataLength: Int) throws(SafeTensorsError)
        -> (name: String, dtype: SafeTensorDType, shape: [Int], begin: Int, end: Int)
    {
        guard case .object(let fields) = value else {
            throw .invalidEntry(name: name, reason: "entry is \(value.kindName), expected an object with dtype, shape and data_offsets")
        }
        func field(_ key: String) throws(SafeTensorsError) -> JSONValue {
            guard let found = fields.first(where: { $0.key == key }) else {
                throw .invalidEntry(name: name, reason: "missing \"\(key)\"")
            }
            return found.value
        }
        let dtypeValue = try field("dtype")
        guard case .string(let dtypeName) = dtypeValue else {
            throw .invalidEntry(name: name, reason: "\"dtype\" is \(dtypeValue.kindName), expected a string")
        }
        guard let dtype = SafeTensorDType(rawValue: dtypeName) else { throw .unknownDType(name: name, dtype: dtypeName) }

        func integers(_ key: String) throws(SafeTensorsError) -> [Int] {
            let value = try field(key)
            guard case .array(let items) = value else {
                throw .invalidEntry(name: name, reason: "\"\(key)\" is \(value.kindName), expected an array of integers")
            }
            var result: [Int] = []
            for (index, item) in items.enumerated() {
                guard let integer = item.nonNegativeInteger else {
                    throw .invalidEntry(name: name, reason: "\"\(key)\"[\(index)] is not a non-negative integer that fits in 64 bits")
                }
                result.append(integer)
            }
            return result
        }
        let shape = try integers("shape")
        let offsets = try integers("data_offsets")
        guard offsets.count == 2 else {
            throw .invalidEntry(name: name, reason: "\"data_offsets\" has \(offsets.count) elements, expected [begin, end]")
        }
        let (begin, end) = (offsets[0], offsets[1])
        guard begin <= end, end <= dataLength else {
            throw .offsetsOutOfRange(name: name, begin: begin, end: end, dataLength: dataLength)
        }
        // Multiply with overflow checks: a corrupt shape like [2^40, 2^40] must not trap.
        var byteCount = dtype.byteCount
        var overflow = false
        for dimension in shape where !overflow {
            (byteCount, overflow) = byteCount.multipliedReportingOverflow(by: dimension)
        }
        guard !overflow, byteCount == end - begin else {
            throw .sizeMismatch(
                name: name, dtype: dtype, shape: shape, expectedBytes: overflow ? Int.max : byteCount, begin: begin, end: end)
        }
        return (name, dtype, shape, begin, end)
    }

    /// Encodes `tensors` and `metadata` as a safetensors file, exactly as the reference writer does:
    /// tensors ordered by element size (descending, in the reference's dtype order) then by name
    /// (bytewise), a compact JSON header with `__metadata__` first (its keys sorted), padded with
    /// spaces to a multiple of 8 bytes. Empty metadata writes no `__metadata__` entry.
    public static func encode(
        _ tensors: [(name: String, tensor: SafeTensor)], metadata: [String: String] = [:]
    ) throws(SafeTensorsError) -> [UInt8] {
        var names = Set<String>()
        for (name, _) in tensors {
            if name == "__metadata__" { throw .reservedName }
            if !names.insert(name).inserted { throw .duplicateName(name) }
        }
        let ordered = tensors.sorted { left, right in
            let (leftOrder, rightOrder) = (left.tensor.dtype.referenceOrder, right.tensor.dtype.referenceOrder)
            if leftOrder != rightOrder { return leftOrder > rightOrder }
            return left.name.utf8.lexicographicallyPrecedes(right.name.utf8)
        }

        var header: [UInt8] = [UInt8(ascii: "{")]
        var first = true
        func separator() {
            if !first { header.append(UInt8(ascii: ",")) }
            first = false
        }
        if !metadata.isEmpty {
            separator()
            JSONWriter.appendString("__metadata__", to: &header)
            header.append(contentsOf: Array(":{".utf8))
            for (index, key) in metadata.keys.sorted().enumerated() {
                if index > 0 { header.append(UInt8(ascii: ",")) }
                JSONWriter.appendString(key, to: &header)
                header.append(UInt8(ascii: ":"))
                JSONWriter.appendString(metadata[key]!, to: &header)
            }
            header.append(UInt8(ascii: "}"))
        }
        var offset = 0
        for (name, tensor) in ordered {
            separator()
            JSONWriter.appendString(name, to: &header)
            let shape = tensor.shape.map(String.init).joined(separator: ",")
            let entry = ":{\"dtype\":\"\(tensor.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + tensor.bytes.count)]}"
            header.append(contentsOf: Array(entry.utf8))
            offset += tensor.bytes.count
        }
        header.append(UInt8(ascii: "}"))
        // Pad with spaces so that the data section starts 8-byte aligned, as the reference does.
        header.append(contentsOf: [UInt8](repeating: UInt8(ascii: " "), count: (8 - header.count % 8) % 8))

        var output: [UInt8] = []
        output.reserveCapacity(8 + header.count + offset)
        output.append(contentsOf: littleEndianBytes([UInt64(header.count)]))
        output.append(contentsOf: header)
        for (_, tensor) in ordered { output.append(contentsOf: tensor.bytes) }
        return output
    }

    /// The metadata key of the data section's CRC-32 (8 lowercase hex digits), recorded by
    /// ``write(_:metadata:to:)-([(String,SafeTensor)],_,_)`` and checked (then dropped from the
    /// metadata) by ``decode(_:)``.
    public static let checksumKey = "nfm.crc32"

    /// Writes `tensors` and `metadata` to `path` (laid out as `encode(_:metadata:)` does, with the
    /// data section's CRC-32 added to the metadata under ``checksumKey``) through ``AtomicFile``,
    /// so a failed write leaves any previous file intact. Throws ``SafeTensorsError`` for invalid
    /// names and ``AtomicFileError`` for I/O failures.
    public static func write(
        _ tensors: [(name: String, tensor: SafeTensor)], metadata: [String: String] = [:], to path: String
    ) throws {
        // The data section does not depend on the metadata, so encode once to checksum it.
        let plain = try encode(tensors, metadata: metadata)
        let headerLength = Int(plain[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        var checked = metadata
        checked[checksumKey] = checksum(plain[(8 + headerLength)...])
        try AtomicFile.write(encode(tensors, metadata: checked), to: path)
    }

    /// The CRC-32 (zlib's) of `bytes` as 8 lowercase hex digits.
    static func checksum(_ bytes: ArraySlice<UInt8>) -> String {
        var crc: UInt = 0
        bytes.withUnsafeBufferPointer { buffer in
            var offset = 0
            while offset < buffer.count {
                let count = Swift.min(buffer.count - offset, 1 << 30)
                crc = CZlib.crc32(crc, buffer.baseAddress! + offset, UInt32(count))
                offset += count
            }
        }
        let digits = String(crc, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }

    /// Writes a dictionary of tensors to `path`, laid out and written as the array form is.
    public static func write(_ tensors: [String: SafeTensor], metadata: [String: String] = [:], to path: String) throws {
        try write(tensors.map { (name: $0.key, tensor: $0.value) }, metadata: metadata, to: path)
    }

    /// Writes the tensors and metadata of `file` to `path`.
    public static func write(_ file: SafeTensorsFile, to path: String) throws {
        try write(file.tensors, metadata: file.metadata, to: path)
    }
}

// MARK: - Byte conversions

/// `values` as little-endian bytes.
func littleEndianBytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
    let size = MemoryLayout<T>.size
    var bytes = [UInt8](repeating: 0, count: values.count * size)
    bytes.withUnsafeMutableBytes { raw in
        #if _endian(little)
            // The in-memory layout already is the file layout: one copy.
            values.withUnsafeBytes { raw.copyMemory(from: $0) }
        #else
            for (index, value) in values.enumerated() {
                raw.storeBytes(of: value.littleEndian, toByteOffset: index * size, as: T.self)
            }
        #endif
    }
    return bytes
}

/// Little-endian `bytes` as values of `T` (the byte count must be a multiple of the size).
func decodeLittleEndian<T: FixedWidthInteger>(_ bytes: [UInt8], as type: T.Type) -> [T] {
    let size = MemoryLayout<T>.size
    let count = bytes.count / size
    return [T](unsafeUninitializedCapacity: count) { buffer, initialized in
        bytes.withUnsafeBytes { raw in
            #if _endian(little)
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[0..<(count * size)]))
            #else
                for index in 0..<count {
                    buffer[index] = T(littleEndian: raw.loadUnaligned(fromByteOffset: index * size, as: T.self))
                }
            #endif
        }
        initialized = count
    }
}

/// Converts IEEE half-precision bits to Float (exactly; every half is representable).
func floatFromHalf(_ half: UInt16) -> Float {
    let sign = UInt32(half >> 15) << 31
    let exponent = UInt32(half >> 10) & 0x1F
    let mantissa = UInt32(half) & 0x3FF
    switch exponent {
    case 0:
        // Zero or subnormal: mantissa × 2^-24.
        let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
        return sign != 0 ? -magnitude : magnitude
    case 0x1F:
        return Float(bitPattern: sign | 0x7F80_0000 | mantissa << 13)  // infinity or NaN
    default:
        return Float(bitPattern: sign | (exponent + 112) << 23 | mantissa << 13)
    }
}
