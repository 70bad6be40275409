// Atomic, durable file replacement. A checkpoint or config that is half-written when the disk fills
// or the process is killed is worse than no file: the next run would load garbage. So every durable
// output is first written to a temporary file beside the destination, fsynced, and then renamed
// over the destination (rename(2) within one directory is atomic on POSIX file systems), and the
// directory is fsynced so that the rename itself survives a power loss.

import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

// `AtomicFile.write` shadows the C function of the same name inside the enum, so call it by module.
private func systemWrite(_ descriptor: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
        return Glibc.write(descriptor, bytes, count)
    #elseif canImport(Musl)
        return Musl.write(descriptor, bytes, count)
    #else
        return Darwin.write(descriptor, bytes, count)
    #endif
}

/// An error from ``AtomicFile``: which destination, which step failed, and the system's reason.
public struct AtomicFileError: Error, CustomStringConvertible, LocalizedError, Sendable, Equatable {
    /// The step of an atomic write that failed.
    public enum Step: String, Sendable, Equatable {
        /// Creating the temporary file beside the destination.
        case createTemporary = "create temporary file"
        /// Writing the bytes into the temporary file.
        case write = "write"
        /// Flushing the temporary file to the disk (fsync).
        case sync = "fsync"
        /// Closing the temporary file (network file systems report late write errors here).
        case close = "close"
        /// Renaming the temporary file over the destination.
        case rename = "rename"
        /// Flushing the directory entry after the rename; the new content is already in place.
        case syncDirectory = "fsync of the directory"
        /// Reading a file (``AtomicFile/readBytes(contentsOf:)``).
        case read = "read"
    }

    /// The destination path the caller asked to write (or read).
    public let path: String
    /// The step that failed.
    public let step: Step
    /// The `errno` value reported by the system call.
    public let code: Int32

    /// Creates an error for `path` that failed at `step` with the system error `code`.
    public init(path: String, step: Step, code: Int32) {
        self.path = path
        self.step = step
        self.code = code
    }

    /// The system's text for ``code``, e.g. "No space left on device".
    public var reason: String { String(cString: strerror(code)) }

    /// A sentence naming the path, the failed step and the system's reason.
    public var description: String {
        switch step {
        case .read:
            return "cannot read \(path): \(reason) (errno \(code))"
        case .syncDirectory:
            return "wrote \(path), but the \(step.rawValue) failed: \(reason) (errno \(code)); "
                + "the new content may not survive a power loss"
        default:
            return "cannot write \(path): \(step.rawValue) failed: \(reason) (errno \(code)); "
                + "any previous file at that path is unchanged"
        }
    }

    /// Same as ``description``, for `localizedDescription`.
    public var errorDescription: String? { description }
}

/// Writes whole files atomically: readers see either the old content or the new, never a mix,
/// and a failed write (full disk, missing directory, killed process) leaves the old file intact.
public enum AtomicFile {
    /// Replaces the file at `path` with `bytes`, atomically and durably.
    ///
    /// Writes a temporary file in the same directory, fsyncs it, renames it over `path` and fsyncs
    /// the directory. On failure the temporary file is removed, the old file is left as it was and
    /// an ``AtomicFileError`` names the path and the system's reason. If `path` already exists its
    /// permission bits are kept; otherwise the file is created with mode 0644 (less the umask).
    /// A symbolic link at `path` is replaced by a regular file, as `rename(2)` does.
    public static func write(_ bytes: [UInt8], to path: String) throws {
        try bytes.withUnsafeBytes { try write(buffer: $0, to: path) }
    }

    /// Replaces the file at `path` with `data`, atomically and durably, as the `[UInt8]` form does.
    public static func write(_ data: Data, to path: String) throws {
        try data.withUnsafeBytes { try write(buffer: $0, to: path) }
    }

    /// Replaces the file at `path` with the UTF-8 encoding of `text`, atomically and durably.
    public static func write(_ text: String, to path: String) throws {
        try write(Array(text.utf8), to: path)
    }

    /// Reads the whole file at `path`, throwing an ``AtomicFileError`` with step `.read` that names
    /// the path and the system's reason (e.g. ENOENT) when it cannot.
    public static func readBytes(contentsOf path: String) throws -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        if descriptor < 0 { throw AtomicFileError(path: path, step: .read, code: errno) }
        defer { close(descriptor) }
        var status = stat()
        if fstat(descriptor, &status) != 0 { throw AtomicFileError(path: path, step: .read, code: errno) }
        if (status.st_mode & S_IFMT) == S_IFDIR { throw AtomicFileError(path: path, step: .read, code: EISDIR) }
        // The size is only a hint: the file may grow or shrink while we read, so read until EOF.
        var result = [UInt8]()
        result.reserveCapacity(max(Int(status.st_size), 0))
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw AtomicFileError(path: path, step: .read, code: errno)
            }
            if count == 0 { break }
            result.append(contentsOf: chunk[0..<count])
        }
        return result
    }

    /// The directory that holds `path` ("." for a bare file name), and the file's own name.
    static func split(_ path: String) -> (directory: String, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let directory = String(path[..<slash])
        return (directory.isEmpty ? "/" : directory, String(path[path.index(after: slash)...]))
    }

    private static func write(buffer: UnsafeRawBufferPointer, to path: String) throws {
        let (directory, name) = split(path)
        if name.isEmpty || name == "." || name == ".." {
            throw AtomicFileError(path: path, step: .createTemporary, code: EISDIR)
        }
        // Keep the permission bits of a file we replace (a user may have made it read-only to others).
        var existing = stat()
        let existingMode: mode_t? =
            stat(path, &existing) == 0 && (existing.st_mode & S_IFMT) == S_IFREG
            ? existing.st_mode & 0o7777 : nil

        // A hidden name in the same directory: rename(2) is only atomic within one file system.
        // O_EXCL with a random suffix avoids clobbering a concurrent writer's temporary file.
        var temporary = ""
        var descriptor: Int32 = -1
        for _ in 0..<16 {
            temporary = "\(directory)/.\(name).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if descriptor >= 0 || errno != EEXIST { break }
        }
        if descriptor < 0 { throw AtomicFileError(path: path, step: .createTemporary, code: errno) }

        // From here on, any failure must remove the temporary file so that it does not pile up.
        var closed = false
        func fail(_ step: AtomicFileError.Step, _ code: Int32) -> AtomicFileError {
            if !closed { close(descriptor) }
            unlink(temporary)
            return AtomicFileError(path: path, step: step, code: code)
        }
        if let existingMode, fchmod(descriptor, existingMode) != 0 { throw fail(.createTemporary, errno) }

        var offset = 0
        while offset < buffer.count {
            let written = systemWrite(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw fail(.write, errno)
            }
            offset += written
        }
        if fsync(descriptor) != 0 { throw fail(.sync, errno) }
        closed = true
        if close(descriptor) != 0 { throw fail(.close, errno) }
        if rename(temporary, path) != 0 { throw fail(.rename, errno) }

        // Make the rename durable. Some file systems do not support fsync on a directory (EINVAL);
        // the rename is then as durable as that file system allows, so that is not an error.
        let directoryDescriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryDescriptor < 0 { return }
        defer { close(directoryDescriptor) }
        if fsync(directoryDescriptor) != 0 && errno != EINVAL && errno != ENOTSUP {
            throw AtomicFileError(path: path, step: .syncDirectory, code: errno)
        }
    }
}
