import Foundation
import NFMIO
import XCTest

@testable import NFMLog

/// The lock of a run directory (issue 14).
extension RunDirectoryTests {
    func testSecondHolderGetsAnErrorNamingTheOwner() throws {
        let run = try RunDirectory(name: "run", root: root)
        let owner = String(decoding: try AtomicFile.readBytes(contentsOf: run.file(RunLock.fileName)), as: UTF8.self)
        XCTAssertTrue(owner.hasPrefix("pid \(getpid()) on host "), owner)
        // A second open file description conflicts as another process's would.
        XCTAssertThrowsError(try RunLock.lockFile(directory: run.path, key: "second")) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("is in use by pid \(getpid()) on host "), message)
            XCTAssertTrue(message.contains(run.path), message)
        }
        // Within this process the lock is shared: reopening the run (a resume) is not refused.
        let again = try RunDirectory(name: "run", root: root, resume: true)
        XCTAssertTrue(again.lock === run.lock)
    }

    func testAnotherProcessCannotTakeTheLock() throws {
        let flock = "/usr/bin/flock"
        guard FileManager.default.isExecutableFile(atPath: flock) else { throw XCTSkip("util-linux flock is not installed") }
        func otherProcessLocks(_ path: String) throws -> Bool {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: flock)
            process.arguments = ["--nonblock", path, "true"]
            try process.run()
            process.waitUntilExit()
            return process.terminationStatus == 0
        }
        var run: RunDirectory? = try RunDirectory(name: "run", root: root)
        let lockFile = run!.file(RunLock.fileName)
        XCTAssertFalse(try otherProcessLocks(lockFile), "another process took the lock of a run in use")
        run = nil
        XCTAssertFalse(FileManager.default.fileExists(atPath: lockFile), "the lock file is removed on release")
        XCTAssertTrue(try otherProcessLocks(root + "/run/" + RunLock.fileName))
    }

    func testStaleLockOfAKilledProcessIsTakenOver() throws {
        // A killed process leaves its lock file but no flock (the kernel drops it at exit).
        try FileManager.default.createDirectory(atPath: root + "/run", withIntermediateDirectories: true)
        try AtomicFile.write("pid 999999 on host gone, since 2026-01-01T00:00:00Z\n", to: root + "/run/" + RunLock.fileName)
        let run = try RunDirectory(name: "run", root: root, resume: true)
        XCTAssertEqual(run.lock.takenOverFrom, "pid 999999 on host gone, since 2026-01-01T00:00:00Z")
        let owner = String(decoding: try AtomicFile.readBytes(contentsOf: run.file(RunLock.fileName)), as: UTF8.self)
        XCTAssertTrue(owner.hasPrefix("pid \(getpid()) "), owner)

        // A process killed before it wrote anything leaves only its lock: a fresh run may start there.
        try FileManager.default.createDirectory(atPath: root + "/early", withIntermediateDirectories: true)
        try AtomicFile.write("pid 999998 on host gone\n", to: root + "/early/" + RunLock.fileName)
        XCTAssertEqual(try RunDirectory(name: "early", root: root).lock.takenOverFrom, "pid 999998 on host gone")
    }

    func testAPathSplitsIntoRootAndName() throws {
        let nested = try RunDirectory(path: root + "/runs/x/")
        XCTAssertEqual(nested.name, "x")
        XCTAssertEqual(nested.path, root + "/runs/x")
        // A bare name is relative to the working directory (Foundation's NSString path functions
        // crashed on it in nfm-generate).
        let previous = FileManager.default.currentDirectoryPath
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(root))
        defer { _ = FileManager.default.changeCurrentDirectoryPath(previous) }
        let bare = try RunDirectory(path: "bare")
        XCTAssertEqual(bare.path, "bare")
        XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/bare"))
    }
}
