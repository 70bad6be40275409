import Foundation
import Testing

@testable import NFMExperiments

/// Where `swift build` put the programs: beside this test binary.
let productsDirectory = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().path

/// The path of `name` on PATH, or nil.
func executable(named name: String) -> String? {
    for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
        let path = "\(directory)/\(name)"
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return nil
}

/// mpirun (`bash scripts/setup.sh --mpi` installs Open MPI) and the nfm-classify binary are both there.
let mpiTestsCanRun = executable(named: "mpirun") != nil && FileManager.default.isExecutableFile(atPath: productsDirectory + "/nfm-classify")

/// Runs `path arguments` with `environment` added; returns its exit status and output.
@discardableResult
func runProgram(_ path: String, _ arguments: [String], environment: [String: String] = [:], timeout: Double = 300) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
    let output = FileManager.default.temporaryDirectory.appendingPathComponent("nfm-mpi-\(UUID().uuidString).log")
    _ = FileManager.default.createFile(atPath: output.path, contents: nil)
    let handle = try FileHandle(forWritingTo: output)
    process.standardOutput = handle
    process.standardError = handle
    try process.run()
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { usleep(100_000) }
    if process.isRunning { process.terminate() }
    process.waitUntilExit()
    try handle.close()
    let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
    try? FileManager.default.removeItem(at: output)
    return (process.terminationStatus, text)
}

/// A tiny Sort-of-CLEVR comparison: 2 seeds × {baseline, NFM}, a few steps on narrow models.
let tinySweep = [
    "--seeds", "2", "--steps", "3", "--train-images", "40", "--test-images", "20", "--ood-images", "20",
    "--eval-every", "0", "--checkpoint-every", "0", "--widths", "8,8,8,8",
]

let mpirun = ["--allow-run-as-root", "--oversubscribe", "-np", "2"]

@Suite(.serialized, .enabled(if: mpiTestsCanRun, "needs mpirun (bash scripts/setup.sh --mpi) and the built nfm-classify"))
struct MPISweepTests {
    /// Issue 15: `mpirun -np 2 nfm-classify --seeds 2` runs seed 1 on rank 0 and seed 2 on rank 1,
    /// and every run's final metrics equal those of the same sweep in one process, bit for bit (both
    /// on one thread per run, since the thread count can change the reduction order).
    @Test func seedsAcrossRanksEqualSeedsRunOneByOne() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let program = productsDirectory + "/nfm-classify"
        let single = try runProgram(program, tinySweep + ["--run-dir", root + "/single"], environment: ["NFM_THREADS": "1"])
        #expect(single.status == 0, "\(single.output)")
        let ranks = try runProgram(executable(named: "mpirun")!, mpirun + [program] + tinySweep + ["--run-dir", root + "/ranks"])
        #expect(ranks.status == 0, "\(ranks.output)")
        #expect(ranks.output.contains("rank 0: seed 1 · nfm: finished") && ranks.output.contains("rank 1: seed 2 · nfm: finished"))
        let expected = try String(contentsOfFile: root + "/single/seeds.csv", encoding: .utf8)
        let actual = try String(contentsOfFile: root + "/ranks/seeds.csv", encoding: .utf8)
        #expect(actual == expected)
        #expect(expected.split(separator: "\n").count > 4)
    }

    /// A rank killed mid-sweep ends the job with mpirun's message instead of a hang, and the run the
    /// other rank was training stops with its checkpoint (it follows its sweep process).
    @Test func aRankThatDiesEndsTheJobAndKeepsCheckpoints() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let program = productsDirectory + "/nfm-classify"
        var arguments = tinySweep
        arguments[arguments.firstIndex(of: "--steps")! + 1] = "100000"
        arguments[arguments.firstIndex(of: "--checkpoint-every")! + 1] = "5"
        // Once both ranks' first runs have a checkpoint, rank 1's sweep process is killed.
        func checkpointed(_ seed: Int) -> Bool { FileManager.default.fileExists(atPath: "\(root)/sweep/seed-\(seed)/baseline/checkpoints/latest") }
        try Self.killRankOne(of: [program] + arguments + ["--run-dir", root + "/sweep"], marker: root + "/sweep") { checkpointed(1) && checkpointed(2) }
        // Rank 0's run saw its sweep process go, wrote a checkpoint and stopped.
        let stopped = Date().addingTimeInterval(30)
        while !Self.processes(whereEnvironmentHas: "NFM_SWEEP_PARENT=", argument: root + "/sweep").isEmpty && Date() < stopped { usleep(200_000) }
        #expect(Self.processes(whereEnvironmentHas: "NFM_SWEEP_PARENT=", argument: root + "/sweep").isEmpty)
        #expect(checkpointed(1))
    }

    /// Starts `mpirun -np 2 command`, waits (up to 120 s) until `ready()`, kills rank 1 (the process
    /// whose command line has `marker` in it) and expects mpirun to end within 60 s, with a failure.
    static func killRankOne(of command: [String], marker: String, when ready: () -> Bool) throws {
        let job = Process()
        job.executableURL = URL(fileURLWithPath: executable(named: "mpirun")!)
        job.arguments = mpirun + command
        job.standardOutput = FileHandle.nullDevice
        job.standardError = FileHandle.nullDevice
        try job.run()
        let deadline = Date().addingTimeInterval(120)
        while !ready() && Date() < deadline && job.isRunning { usleep(200_000) }
        let rankOne = try #require(processes(whereEnvironmentHas: "OMPI_COMM_WORLD_RANK=1", argument: marker).first)
        kill(rankOne, SIGKILL)
        let end = Date().addingTimeInterval(60)
        while job.isRunning && Date() < end { usleep(200_000) }
        #expect(!job.isRunning, "mpirun did not end after a rank died")
        if job.isRunning { job.terminate() }
        job.waitUntilExit()
        #expect(job.terminationStatus != 0)
    }

    /// Process ids whose environment has the entry `entry` (a prefix) and whose command line has `argument` in it.
    static func processes(whereEnvironmentHas entry: String, argument: String) -> [Int32] {
        let pids = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap(Int32.init)
        return pids.filter { pid in
            guard let environment = FileManager.default.contents(atPath: "/proc/\(pid)/environ"),
                let commandLine = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline")
            else { return false }
            let variables = environment.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            return variables.contains { $0.hasPrefix(entry) } && String(decoding: commandLine, as: UTF8.self).contains(argument)
        }
    }
}
