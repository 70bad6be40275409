import Foundation

/// An error in data read from outside the program: a missing file, a malformed file, or bytes that do not decompress.
///
/// Each description names the file and says what is wrong, so that a user can act on it without reading the code.
public enum DataError: Error, Equatable, Sendable, CustomStringConvertible, LocalizedError {
    /// The file at the path does not exist; `hint` says how to get it.
    case missingFile(String, hint: String)
    /// The file exists but could not be read (permissions, I/O); `reason` is the system's message.
    case unreadableFile(String, reason: String)
    /// The file was read, but its bytes do not have the expected format; `reason` says what differs.
    case invalidFormat(String, reason: String)
    /// The file is compressed and the injected decompressor failed; `reason` is its error.
    case decompressionFailed(String, reason: String)

    /// The hint for the Fashion-MNIST files, which the Debian package dataset-fashion-mnist installs.
    public static let fashionMNISTHint = "run `bash scripts/setup.sh` to install dataset-fashion-mnist"

    /// A one-line message naming the file and the problem.
    public var description: String {
        switch self {
        case .missingFile(let path, let hint): return "missing file \(path): \(hint)"
        case .unreadableFile(let path, let reason): return "cannot read \(path): \(reason)"
        case .invalidFormat(let path, let reason): return "invalid file \(path): \(reason)"
        case .decompressionFailed(let path, let reason): return "cannot decompress \(path): \(reason)"
        }
    }

    /// The same message as `description`, for Foundation's error printing.
    public var errorDescription: String? { description }
}
