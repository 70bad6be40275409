import Foundation
import Testing

/// A tiny data-parallel Sort-of-CLEVR run of the baseline: batches of 3 images over 2 ranks (shares
/// of 1 and 2), narrow layers.
let tinyDataParallelRun = [
    "--data-parallel", "--model", "baseline", "--batch-size", "3", "--train-images", "40", "--test-images", "20", "--ood-images", "20",
    "--widths", "8,8,8,8",
]

/// `nfm-classify --data-parallel` under mpirun (issue 15), as a user runs it.
@Suite(.serialized, .enabled(if: mpiTestsCanRun, "needs mpirun (bash scripts/setup.sh --mpi) and the built nfm-classify"))
struct DataParallelProgramTests {
    /// Two ranks train one run: rank 0 alone writes its files (one metrics row per step and name),
    /// and the run resumes with one rank, then with two again.
    @Test func rankZeroWritesTheRunAndItResumesWithAnyRankCount() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let program = productsDirectory + "/nfm-classify"
        let run = root + "/run"
        let schedule = ["--eval-every", "2", "--checkpoint-every", "2", "--run-dir", run]
        let first = try runProgram(executable(named: "mpirun")!, mpirun + [program] + tinyDataParallelRun + ["--steps", "4"] + schedule)
        #expect(first.status == 0, "\(first.output)")
        #expect(first.output.contains("data-parallel over 2 ranks"))
        #expect(try metricSteps(run, "train/loss") == [1, 2, 3, 4])
        #expect(try metricSteps(run, "eval/accuracy") == [2, 4])
        #expect(FileManager.default.fileExists(atPath: run + "/accuracy_by_question_type.csv"))

        let alone = try runProgram(program, ["--data-parallel", "--resume", run, "--steps", "6"])
        #expect(alone.status == 0, "\(alone.output)")
        #expect(alone.output.contains("resuming from \(run)/checkpoints/step-000000004"))
        let again = try runProgram(executable(named: "mpirun")!, mpirun + [program, "--data-parallel", "--resume", run, "--steps", "8"])
        #expect(again.status == 0, "\(again.output)")
        #expect(try metricSteps(run, "train/loss") == Array(1...8))
    }

    /// A batch that cannot feed every rank stops every rank with a clear error, not a hang.
    @Test func aBatchSmallerThanTheRankCountStopsTheJob() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        var arguments = tinyDataParallelRun
        arguments[arguments.firstIndex(of: "--batch-size")! + 1] = "1"
        let job = try runProgram(
            executable(named: "mpirun")!, mpirun + [productsDirectory + "/nfm-classify"] + arguments + ["--steps", "2", "--run-dir", root + "/run"],
            timeout: 60)
        #expect(job.status != 0)
        #expect(job.output.contains("a batch of 1 cannot feed 2 ranks"))
    }

    /// A rank killed mid-run ends the job (the other rank waits in the all-reduce; mpirun ends it),
    /// and the last checkpoint stays intact: a run of one rank resumes from it.
    @Test func aRankThatDiesEndsTheJobAndTheLastCheckpointResumes() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let program = productsDirectory + "/nfm-classify"
        let run = root + "/run"
        try MPISweepTests.killRankOne(
            of: [program] + tinyDataParallelRun + ["--steps", "100000", "--eval-every", "0", "--checkpoint-every", "3", "--run-dir", run], marker: run
        ) { FileManager.default.fileExists(atPath: run + "/checkpoints/latest") }
        let latest = try String(contentsOfFile: run + "/checkpoints/latest", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let step = try #require(Int(latest.dropFirst("step-".count)))
        let resumed = try runProgram(program, ["--data-parallel", "--resume", run, "--steps", String(step + 1)])
        #expect(resumed.status == 0, "\(resumed.output)")
        #expect(resumed.output.contains("resuming from \(run)/checkpoints/\(latest)"))
    }

    /// The steps at which `metrics.csv` of `run` logged `name`, in file order.
    func metricSteps(_ run: String, _ name: String) throws -> [Int] {
        try String(contentsOfFile: run + "/metrics.csv", encoding: .utf8).split(separator: "\n").dropFirst().compactMap { line in
            let fields = line.split(separator: ",")
            return fields.count > 2 && fields[1] == name ? Int(fields[0]) : nil
        }
    }
}
