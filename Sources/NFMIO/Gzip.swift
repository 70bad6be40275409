// gzip and zlib streams through zlib (the IDX files of Fashion-MNIST ship gzip-compressed).

import CZlib
import Foundation

/// What went wrong compressing or decompressing, with zlib's message and the input position.
public enum GzipError: Error, CustomStringConvertible, LocalizedError, Sendable, Equatable {
    /// The input is not a valid gzip or zlib stream; `offset` is the input byte where zlib stopped.
    case corrupt(offset: Int, message: String)
    /// The input ends before the stream does (an incomplete download, a cut file).
    case truncated(inputLength: Int, outputSoFar: Int)
    /// Bytes after the end of the last stream that do not start another stream.
    case trailingData(offset: Int, count: Int)
    /// The output would exceed the caller's limit.
    case outputTooLarge(limit: Int)
    /// zlib failed for another reason (out of memory, a version mismatch); `code` is zlib's status.
    case zlibFailure(code: Int32, message: String)

    /// A sentence saying what is wrong and where.
    public var description: String {
        switch self {
        case .corrupt(let offset, let message):
            return "corrupt compressed data at input byte \(offset): \(message)"
        case .truncated(let length, let output):
            return "compressed data is truncated: the \(length) input bytes end inside the stream (after \(output) output bytes)"
        case .trailingData(let offset, let count):
            return "\(count) bytes of trailing data after the compressed stream, at input byte \(offset)"
        case .outputTooLarge(let limit):
            return "decompressed data exceeds the limit of \(limit) bytes"
        case .zlibFailure(let code, let message):
            return "zlib failed with status \(code): \(message)"
        }
    }

    /// Same as ``description``, for `localizedDescription`.
    public var errorDescription: String? { description }
}

/// gzip compression and decompression of whole buffers.
public enum Gzip {
    /// Decompresses a gzip or zlib stream (detected from its header: zlib's windowBits 15 + 32).
    /// Concatenated gzip members (as `cat a.gz b.gz` makes) are decompressed one after another, as
    /// `gunzip` does. Throws ``GzipError/truncated(inputLength:outputSoFar:)`` when the input ends
    /// early, ``GzipError/corrupt(offset:message:)`` for invalid data, and
    /// ``GzipError/outputTooLarge(limit:)`` when the output would exceed `maximumOutputSize`.
    public static func decompress(_ bytes: [UInt8], maximumOutputSize: Int = Int.max) throws(GzipError) -> [UInt8] {
        var stream = z_stream()
        let status = inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        if status != Z_OK { throw .zlibFailure(code: status, message: message(of: stream)) }
        defer { inflateEnd(&stream) }

        // Compressed data usually expands 2-10×; start at 4× and double when full.
        var output = [UInt8](repeating: 0, count: min(max(bytes.count * 4, 1024), maximumOutputSize))
        var produced = 0
        var consumed = 0
        var input = bytes
        let result: Result<Void, GzipError> = input.withUnsafeMutableBufferPointer { inputBuffer in
            while true {
                if produced == output.count {
                    if output.count >= maximumOutputSize { return .failure(.outputTooLarge(limit: maximumOutputSize)) }
                    let grown = output.count > maximumOutputSize / 2 ? maximumOutputSize : output.count * 2
                    output.append(contentsOf: [UInt8](repeating: 0, count: grown - output.count))
                }
                stream.next_in = inputBuffer.baseAddress.map { $0 + consumed }
                stream.avail_in = UInt32(clamping: inputBuffer.count - consumed)
                let inputBefore = stream.avail_in
                let outputSpace = UInt32(clamping: output.count - produced)
                let code = output.withUnsafeMutableBufferPointer { outputBuffer -> Int32 in
                    stream.next_out = outputBuffer.baseAddress! + produced
                    stream.avail_out = outputSpace
                    return inflate(&stream, Z_NO_FLUSH)
                }
                consumed += Int(inputBefore - stream.avail_in)
                produced += Int(outputSpace - stream.avail_out)
                switch code {
                case Z_STREAM_END:
                    if consumed == inputBuffer.count { return .success(()) }
                    // Another gzip member follows (magic 1f 8b): decode it too. Anything else is garbage.
                    if inputBuffer.count - consumed >= 2 && inputBuffer[consumed] == 0x1F && inputBuffer[consumed + 1] == 0x8B {
                        inflateReset(&stream)
                        continue
                    }
                    return .failure(.trailingData(offset: consumed, count: inputBuffer.count - consumed))
                case Z_OK:
                    continue
                case Z_BUF_ERROR:
                    // No progress possible: either the output is full (grow it) or the input ran out.
                    if produced == output.count { continue }
                    return .failure(.truncated(inputLength: inputBuffer.count, outputSoFar: produced))
                case Z_DATA_ERROR, Z_NEED_DICT:
                    let text = code == Z_NEED_DICT ? "the stream needs a preset dictionary" : message(of: stream)
                    return .failure(.corrupt(offset: consumed, message: text))
                default:
                    return .failure(.zlibFailure(code: code, message: message(of: stream)))
                }
            }
        }
        try result.get()
        output.removeSubrange(produced...)
        return output
    }

    /// Compresses `bytes` as one gzip member (zlib's windowBits 15 + 16) at `level`
    /// (0 = store … 9 = smallest; -1 = zlib's default, 6).
    public static func compress(_ bytes: [UInt8], level: Int32 = Z_DEFAULT_COMPRESSION) throws(GzipError) -> [UInt8] {
        var stream = z_stream()
        let status = deflateInit2_(
            &stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        if status != Z_OK { throw .zlibFailure(code: status, message: message(of: stream)) }
        defer { deflateEnd(&stream) }

        // deflateBound accounts for the gzip wrapper, so one call normally suffices; the loop
        // below still grows the buffer if it did not.
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, UInt(bytes.count))) + 64)
        var produced = 0
        var input = bytes
        let result: Result<Void, GzipError> = input.withUnsafeMutableBufferPointer { inputBuffer in
            var consumed = 0
            while true {
                if produced == output.count { output.append(contentsOf: [UInt8](repeating: 0, count: output.count)) }
                stream.next_in = inputBuffer.baseAddress.map { $0 + consumed }
                stream.avail_in = UInt32(clamping: inputBuffer.count - consumed)
                let inputBefore = stream.avail_in
                let outputSpace = UInt32(clamping: output.count - produced)
                let finished = consumed + Int(inputBefore) == inputBuffer.count
                let code = output.withUnsafeMutableBufferPointer { outputBuffer -> Int32 in
                    stream.next_out = outputBuffer.baseAddress! + produced
                    stream.avail_out = outputSpace
                    return deflate(&stream, finished ? Z_FINISH : Z_NO_FLUSH)
                }
                consumed += Int(inputBefore - stream.avail_in)
                produced += Int(outputSpace - stream.avail_out)
                switch code {
                case Z_STREAM_END: return .success(())
                case Z_OK, Z_BUF_ERROR: continue
                default: return .failure(.zlibFailure(code: code, message: message(of: stream)))
                }
            }
        }
        try result.get()
        output.removeSubrange(produced...)
        return output
    }

    private static func message(of stream: z_stream) -> String {
        stream.msg.map { String(cString: $0) } ?? "no message from zlib"
    }
}
