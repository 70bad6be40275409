// One process at a time in a run directory. Two processes training in one directory would
// interleave their metrics and overwrite each other's checkpoints, so a run directory holds a lock
// file, `.lock`, while a process works in it. The lock is flock(2) on that file: the kernel drops
// it when its holder exits, however it exits (SIGKILL included), so a lock left by a killed
// process is stale by construction and the next process simply takes it over. The file's content
// (pid, host, start time) is only there to name the owner in the error a second process gets.

import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

import Synchronization

/// Why a run directory could not be locked.
public enum RunLockError: Error, CustomStringConvertible, LocalizedError, Sendable, Equatable {
    /// Another process holds the lock.
    case inUse(directory: String, owner: String)
    /// The lock file could not be created or locked.
    case cannotLock(path: String, reason: String)

    /// A sentence naming the directory, the owner and what to do.
    public var description: String {
        switch self {
        case .inUse(let directory, let owner):
            return "run directory \(directory) is in use by \(owner); wait for that process to finish or stop it, "
                + "or use another run directory (the lock is \(directory)/\(RunLock.fileName))"
        case .cannotLock(let path, let reason):
            return "cannot lock the run directory with \(path): \(reason)"
        }
    }

    /// Same as ``description``, for `localizedDescription`.
    public var errorDescription: String? { description }
}

/// The exclusive lock of a run directory, held from ``acquire(directory:)`` until the last
/// reference is released (or the process exits).
///
/// Within one process the lock is shared: opening the same directory again (a test that resumes
/// a run it still holds, a program that reopens its run) returns the lock already held, since one
/// process cannot race itself.
public final class RunLock: @unchecked Sendable {
    /// The lock file's name inside the run directory.
    public static let fileName = ".lock"

    /// The lock file's path.
    public let path: String
    /// Who held the lock before us and left without releasing it (a killed process), if anyone.
    public let takenOverFrom: String?
    private let descriptor: Int32
    private let key: String

    /// Locks held by this process, by canonical directory path.
    private static let held = Mutex<[String: Weak]>([:])

    private final class Weak: @unchecked Sendable {
        weak var lock: RunLock?
        init(_ lock: RunLock) { self.lock = lock }
    }

    private init(path: String, descriptor: Int32, key: String, takenOverFrom: String?) {
        self.path = path
        self.descriptor = descriptor
        self.key = key
        self.takenOverFrom = takenOverFrom
    }

    /// Locks `directory` (which must exist) for this process.
    ///
    /// - Throws: ``RunLockError/inUse(directory:owner:)`` naming the other process's pid and host
    ///   when another process holds it; ``RunLockError/cannotLock(path:reason:)`` when the lock file
    ///   cannot be created (read-only or full file system).
    public static func acquire(directory: String) throws -> RunLock {
        let key = realpath(directory, nil).map { pointer in
            defer { free(pointer) }
            return String(cString: pointer)
        } ?? directory
        return try held.withLock { table in
            if let existing = table[key]?.lock { return existing }
            let lock = try lockFile(directory: directory, key: key)
            table[key] = Weak(lock)
            return lock
        }
    }

    /// Takes the flock of `directory/.lock` with a new open file description (so it conflicts even
    /// with a lock held by this process); internal so that tests can play a second process.
    static func lockFile(directory: String, key: String) throws -> RunLock {
        let path = directory + "/" + fileName
        while true {
            let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            if descriptor < 0 { throw RunLockError.cannotLock(path: path, reason: String(cString: strerror(errno))) }
            if flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
                let code = errno
                let owner = readOwner(descriptor)
                close(descriptor)
                if code == EWOULDBLOCK {
                    throw RunLockError.inUse(directory: directory, owner: owner ?? "another process (the lock file names no owner)")
                }
                throw RunLockError.cannotLock(path: path, reason: String(cString: strerror(code)))
            }
            // A holder that released removes the file; if we locked a file that was removed (or
            // replaced) meanwhile, our lock guards nothing: try again on the file now at the path.
            var opened = stat(), current = stat()
            if fstat(descriptor, &opened) != 0 || stat(path, &current) != 0 || opened.st_ino != current.st_ino || opened.st_dev != current.st_dev {
                close(descriptor)
                continue
            }
            let previous = readOwner(descriptor)
            let record = "pid \(getpid()) on host \(hostName()), since \(ISO8601DateFormatter().string(from: Date()))\n"
            if ftruncate(descriptor, 0) != 0 || pwriteFully(descriptor, record) != nil {
                let reason = String(cString: strerror(errno))
                unlink(path)
                close(descriptor)
                throw RunLockError.cannotLock(path: path, reason: reason)
            }
            return RunLock(path: path, descriptor: descriptor, key: key, takenOverFrom: previous)
        }
    }

    deinit {
        // Remove the file before unlocking, so that no process can lock the file being removed
        // without noticing (see the inode check in lockFile).
        unlink(path)
        close(descriptor)
        Self.held.withLock { table in
            if table[key]?.lock == nil { table[key] = nil }
        }
    }

    private static func readOwner(_ descriptor: Int32) -> String? {
        var buffer = [UInt8](repeating: 0, count: 512)
        let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        let text = String(decoding: buffer[0..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? nil : text
    }

    private static func pwriteFully(_ descriptor: Int32, _ text: String) -> Int32? {
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
        return written == bytes.count ? nil : (written < 0 ? errno : EIO)
    }

    private static func hostName() -> String {
        var buffer = [UInt8](repeating: 0, count: 256)
        let status = buffer.withUnsafeMutableBytes { gethostname($0.baseAddress!.assumingMemoryBound(to: CChar.self), 255) }
        guard status == 0 else { return "unknown" }
        return String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)
    }
}
