import Foundation
import XCTest

@testable import NFMIO

#if canImport(Glibc)
    import Glibc
#endif

final class AtomicFileTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = try makeTemporaryDirectory()
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func contents(_ path: String) throws -> [UInt8] {
        try AtomicFile.readBytes(contentsOf: path)
    }

    private func directoryListing() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
    }

    func testWritesAndReplaces() throws {
        let path = directory + "/config.json"
        try AtomicFile.write(Array("first".utf8), to: path)
        XCTAssertEqual(try contents(path), Array("first".utf8))
        try AtomicFile.write(Data("second, longer".utf8), to: path)
        XCTAssertEqual(try contents(path), Array("second, longer".utf8))
        try AtomicFile.write("3", to: path)
        XCTAssertEqual(try contents(path), Array("3".utf8))
        try AtomicFile.write([UInt8](), to: path)
        XCTAssertEqual(try contents(path), [])
        XCTAssertEqual(try directoryListing(), ["config.json"])
    }

    func testRelativePathWritesIntoCurrentDirectory() throws {
        let previous = FileManager.default.currentDirectoryPath
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(directory))
        defer { _ = FileManager.default.changeCurrentDirectoryPath(previous) }
        try AtomicFile.write([1, 2, 3], to: "relative.bin")
        XCTAssertEqual(try contents(directory + "/relative.bin"), [1, 2, 3])
    }

    func testKeepsPermissionsOfTheReplacedFile() throws {
        let path = directory + "/private.txt"
        try AtomicFile.write("old", to: path)
        XCTAssertEqual(chmod(path, 0o600), 0)
        try AtomicFile.write("new", to: path)
        var status = stat()
        XCTAssertEqual(stat(path, &status), 0)
        XCTAssertEqual(status.st_mode & 0o777, 0o600)
    }

    func testMissingDirectoryThrowsNamingThePathAndReason() {
        let path = directory + "/missing/model.safetensors"
        XCTAssertThrowsError(try AtomicFile.write([1], to: path)) { error in
            let failure = error as? AtomicFileError
            XCTAssertEqual(failure, AtomicFileError(path: path, step: .createTemporary, code: ENOENT))
            XCTAssertEqual(
                "\(error)",
                "cannot write \(path): create temporary file failed: No such file or directory (errno 2); any previous file at that path is unchanged")
        }
    }

    /// A write that fails midway (here: the file-size limit, which raises EFBIG even for root)
    /// must keep the old file and remove the temporary one.
    func testFailedWriteKeepsOldContentAndRemovesTemporaryFile() throws {
        let path = directory + "/checkpoint.bin"
        let old = [UInt8](repeating: 7, count: 100)
        try AtomicFile.write(old, to: path)

        var previousLimit = rlimit()
        XCTAssertEqual(getrlimit(Int32(RLIMIT_FSIZE.rawValue), &previousLimit), 0)
        let previousHandler = signal(SIGXFSZ, SIG_IGN)  // otherwise exceeding the limit kills the process
        var limit = previousLimit
        limit.rlim_cur = 4096
        XCTAssertEqual(setrlimit(Int32(RLIMIT_FSIZE.rawValue), &limit), 0)
        defer {
            setrlimit(Int32(RLIMIT_FSIZE.rawValue), &previousLimit)
            signal(SIGXFSZ, previousHandler)
        }

        XCTAssertThrowsError(try AtomicFile.write([UInt8](repeating: 9, count: 10_000), to: path)) { error in
            XCTAssertEqual(error as? AtomicFileError, AtomicFileError(path: path, step: .write, code: EFBIG))
            XCTAssertTrue("\(error)".contains(path))
            XCTAssertTrue("\(error)".contains("File too large"), "\(error)")
        }
        XCTAssertEqual(try contents(path), old)
        XCTAssertEqual(try directoryListing(), ["checkpoint.bin"])
    }

    func testRenameOntoADirectoryFailsCleanly() throws {
        let path = directory + "/occupied"
        try FileManager.default.createDirectory(atPath: path + "/inner", withIntermediateDirectories: true)
        XCTAssertThrowsError(try AtomicFile.write([1, 2], to: path)) { error in
            XCTAssertEqual((error as? AtomicFileError)?.step, .rename)
            XCTAssertEqual((error as? AtomicFileError)?.path, path)
        }
        XCTAssertEqual(try directoryListing(), ["occupied"])
    }

    /// Full disk, for real: a 64 KiB tmpfs. Needs permission to mount, so it is skipped elsewhere.
    func testFullDiskKeepsOldContent() throws {
        let mountPoint = directory + "/small"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        guard getuid() == 0, run("/bin/mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", mountPoint]) == 0 else {
            throw XCTSkip("cannot mount a tmpfs here")
        }
        defer { _ = run("/bin/umount", [mountPoint]) }
        let path = mountPoint + "/metrics.json"
        try AtomicFile.write("old content", to: path)
        XCTAssertThrowsError(try AtomicFile.write([UInt8](repeating: 1, count: 1 << 20), to: path)) { error in
            XCTAssertEqual((error as? AtomicFileError)?.code, ENOSPC)
            XCTAssertTrue("\(error)".contains("No space left on device"), "\(error)")
        }
        XCTAssertEqual(try contents(path), Array("old content".utf8))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: mountPoint), ["metrics.json"])
    }

    func testReadBytesErrors() {
        XCTAssertThrowsError(try AtomicFile.readBytes(contentsOf: directory + "/nothing")) { error in
            XCTAssertEqual(error as? AtomicFileError, AtomicFileError(path: directory + "/nothing", step: .read, code: ENOENT))
        }
        XCTAssertThrowsError(try AtomicFile.readBytes(contentsOf: directory)) { error in
            XCTAssertEqual((error as? AtomicFileError)?.code, EISDIR)
        }
    }

    func testSplitsPaths() {
        XCTAssertTrue(AtomicFile.split("a.txt") == (".", "a.txt"))
        XCTAssertTrue(AtomicFile.split("/a.txt") == ("/", "a.txt"))
        XCTAssertTrue(AtomicFile.split("runs/x/a.txt") == ("runs/x", "a.txt"))
    }

    private func run(_ executable: String, _ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }
}
