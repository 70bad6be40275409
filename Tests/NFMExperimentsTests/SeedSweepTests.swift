import Foundation
import NFMLog
import Testing

@testable import NFMExperiments

/// A stand-in program for the sweep's child processes: `/bin/sh -c SCRIPT`, which reads the flags a
/// sweep passes (`--arm NAME`, `--seed S`, `--run-dir D` or `--resume D`), appends one line per
/// invocation to D/invocations, logs two steps of `eval/accuracy` and one of `eval/score`, and writes
/// final_metrics.json with accuracy 0.5 + seed/100, plus 0.02 + seed/1000 for the arm `nfm`. The arm
/// `broken` fails.
let fakeProgram = #"""
    arm=""; seed=""; dir=""; mode=fresh
    while [ $# -gt 0 ]; do
      case "$1" in
        --arm) arm=$2; shift 2;;
        --seed) seed=$2; shift 2;;
        --run-dir) dir=$2; shift 2;;
        --resume) dir=$2; mode=resume; shift 2;;
        *) shift;;
      esac
    done
    mkdir -p "$dir"
    echo "$mode threads=${NFM_THREADS:-all}" >> "$dir/invocations"
    if [ "$arm" = broken ]; then echo "error: the data file is corrupt" >&2; exit 3; fi
    value=$(awk -v s="$seed" -v a="$arm" 'BEGIN { v = 0.5 + s / 100; if (a == "nfm") v += 0.02 + s / 1000; printf "%.6f", v }')
    early=$(awk -v v="$value" 'BEGIN { printf "%.6f", v - 0.1 }')
    printf '{"step": 10, "eval/accuracy": %s, "wall_time_s": 1.0}\n{"step": 20, "eval/accuracy": %s, "eval/score": 1, "wall_time_s": 2.0}\n' "$early" "$value" > "$dir/metrics.jsonl"
    printf '{"eval/accuracy": %s, "parameters/total": 100}\n' "$value" > "$dir/final_metrics.json"
    echo "done"
    """#

func temporaryDirectory() throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("nfm-sweep-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func fakePlan(seeds: [UInt64], arms: [String] = ["baseline", "nfm"]) -> SweepPlan {
    SweepPlan(
        program: "fake", arguments: ["-c", fakeProgram, "fake"], arms: arms.map { SweepArm(name: $0, arguments: ["--arm", $0]) },
        seeds: seeds, headlineMetrics: ["eval/accuracy"])
}

func invocations(_ sweep: SeedSweep, seed: UInt64, arm: String) -> [String] {
    ((try? String(contentsOfFile: sweep.runDirectory(seed: seed, arm: arm) + "/invocations", encoding: .utf8)) ?? "")
        .split(separator: "\n").map(String.init)
}

@Suite(.serialized) struct SeedSweepTests {
    @Test func runsEverySeedAndModelAndSummarisesThePairs() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let sweep = try SeedSweep(plan: fakePlan(seeds: [1, 2, 3]), directory: root + "/sweep", concurrentRuns: 2, executable: URL(fileURLWithPath: "/bin/sh"))
        // A one-dot plot an older build drew, which the summary must not keep.
        try FileManager.default.createDirectory(atPath: root + "/sweep/plots", withIntermediateDirectories: true)
        try "stale".write(toFile: root + "/sweep/plots/eval_score.png", atomically: true, encoding: .utf8)
        var lines: [String] = []
        let outcome = try sweep.run { lines.append($0) }
        #expect(!outcome.interrupted && outcome.failures.isEmpty)
        for seed: UInt64 in [1, 2, 3] {
            for arm in ["baseline", "nfm"] { #expect(invocations(sweep, seed: seed, arm: arm) == ["fresh threads=1"]) }
        }
        let report = outcome.report
        #expect(report.values(of: "eval/accuracy", arm: "baseline").map(\.value) == [0.51, 0.52, 0.53])
        let paired = try #require(report.pairedDifference(of: "eval/accuracy"))
        #expect(paired.seeds == [1, 2, 3])
        // Differences 0.021, 0.022, 0.023: mean 0.022, s = 0.001, interval 0.022 ± 4.302653 · 0.001 / √3.
        #expect(abs(paired.test.difference.mean - 0.022) < 1e-9)
        #expect(abs(paired.test.difference.halfWidth - 4.302653 * 0.001 / 3.0.squareRoot()) < 1e-8)
        #expect(report.verdict(of: "eval/accuracy") == "nfm higher")
        // Every file of the summary, and a band plot per logged metric.
        let timings = try String(contentsOfFile: root + "/sweep/" + SeedSweep.timingsFile, encoding: .utf8).split(separator: "\n")
        #expect(timings.count == 1 + 6 && timings.dropFirst().allSatisfy { $0.split(separator: ",")[2] == "0" })
        for name in ["summary.md", "summary.csv", "seeds.csv", "curves.csv", "plots/eval_accuracy.png", "sweep.json"] {
            #expect(FileManager.default.fileExists(atPath: root + "/sweep/" + name), "\(name)")
        }
        // A metric logged at one step only has no curve, so no plot (and an older build's is removed).
        #expect(report.curves().contains { $0.metric == "eval/score" })
        #expect(!FileManager.default.fileExists(atPath: root + "/sweep/plots/eval_score.png"))
        let seedsCSV = try String(contentsOfFile: root + "/sweep/seeds.csv", encoding: .utf8)
        #expect(seedsCSV.split(separator: "\n").count == 1 + 6 * 2)
        let summaryCSV = try String(contentsOfFile: root + "/sweep/summary.csv", encoding: .utf8)
        #expect(summaryCSV.contains("eval/accuracy,nfm-baseline,3,"))
        // The curve at step 20 is the final values: mean 0.52 for the baseline.
        let curve = try #require(report.curves().first { $0.arm == "baseline" && $0.metric == "eval/accuracy" })
        #expect(curve.points.map(\.step) == [10, 20])
        #expect(abs(curve.points[1].mean - 0.52) < 1e-9 && curve.points[1].count == 3)
        #expect(lines.contains { $0.contains("seed 3 · nfm: finished") })
    }

    @Test func continuesAnInterruptedSweepAndAddsSeeds() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let directory = root + "/sweep"
        _ = try SeedSweep(plan: fakePlan(seeds: [1]), directory: directory, concurrentRuns: 1, executable: URL(fileURLWithPath: "/bin/sh")).run { _ in }
        // Seed 2's NFM run stopped after a checkpoint; seed 3's baseline stopped before its first one.
        let stopped = directory + "/seed-2/nfm"
        try FileManager.default.createDirectory(atPath: stopped, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: stopped + "/trainer.safetensors", contents: Data())
        let early = directory + "/seed-3/baseline"
        try FileManager.default.createDirectory(atPath: early, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: early + "/partial", contents: Data())

        let sweep = try SeedSweep(plan: fakePlan(seeds: [2, 3]), directory: directory, concurrentRuns: 1, executable: URL(fileURLWithPath: "/bin/sh"))
        #expect(sweep.plan.seeds == [1, 2, 3])
        let outcome = try sweep.run { _ in }
        #expect(invocations(sweep, seed: 1, arm: "nfm") == ["fresh threads=all"])  // finished before: not run again
        #expect(invocations(sweep, seed: 2, arm: "nfm") == ["resume threads=all"])
        #expect(invocations(sweep, seed: 3, arm: "baseline") == ["fresh threads=all"])
        #expect(FileManager.default.fileExists(atPath: early + ".set-aside/partial"))
        #expect(outcome.report.values(of: "eval/accuracy", arm: "nfm").count == 3)
    }

    @Test func continuesFromTheFilesCollectedIntoResults() throws {
        // A session ends after seed 1; what reaches git is collect.sh's copy: the plan and each run's
        // small files, with its logged metrics as metrics.csv only. A fresh checkout restores it.
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let sh = URL(fileURLWithPath: "/bin/sh")
        let first = try SeedSweep(plan: fakePlan(seeds: [1]), directory: root + "/first", concurrentRuns: 1, executable: sh)
        _ = try first.run { _ in }
        let results = root + "/results"
        try FileManager.default.createDirectory(atPath: results, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: first.directory + "/sweep.json", toPath: results + "/sweep.json")
        for arm in ["baseline", "nfm"] {
            let run = results + "/runs/seed-1-\(arm)"
            try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: first.runDirectory(seed: 1, arm: arm) + "/final_metrics.json", toPath: run + "/final_metrics.json")
            let value = arm == "nfm" ? 0.531 : 0.51
            try "step,name,value,wall_time_s\n10,eval/accuracy,\(value - 0.1),1.000\n20,eval/accuracy,\(value),2.000\n"
                .write(toFile: run + "/metrics.csv", atomically: true, encoding: .utf8)
        }
        // A run that had not finished leaves only its logged metrics: it starts afresh.
        try FileManager.default.createDirectory(atPath: results + "/runs/seed-2-nfm", withIntermediateDirectories: true)
        try "step,name,value,wall_time_s\n".write(toFile: results + "/runs/seed-2-nfm/metrics.csv", atomically: true, encoding: .utf8)

        let directory = root + "/second"
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../scripts/results/restore.sh").path
        func restore() throws -> Int32 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/bash")
            process.arguments = [script, results, directory]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            return process.terminationStatus
        }
        #expect(try restore() == 0)
        #expect(!FileManager.default.fileExists(atPath: directory + "/seed-2/nfm"))

        let sweep = try SeedSweep(plan: fakePlan(seeds: [1, 2]), directory: directory, concurrentRuns: 1, executable: sh)
        var lines: [String] = []
        let outcome = try sweep.run { lines.append($0) }
        #expect(lines.contains { $0.contains("2 already finished, 2 to run") })
        #expect(invocations(sweep, seed: 1, arm: "baseline").isEmpty && invocations(sweep, seed: 2, arm: "nfm") == ["fresh threads=all"])
        #expect(outcome.report.values(of: "eval/accuracy", arm: "nfm").map(\.value) == [0.531, 0.542])
        // Seed 1's curve comes back from the CSV.
        let curve = try #require(outcome.report.curves().first { $0.arm == "baseline" && $0.metric == "eval/accuracy" })
        #expect(curve.points.map(\.count) == [2, 2] && abs(curve.points[1].mean - 0.515) < 1e-9)
        // Restoring over an existing sweep is refused.
        #expect(try restore() == 1)
    }

    @Test func aSweepOfOneModelHasNoPairedColumn() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let sh = URL(fileURLWithPath: "/bin/sh")
        let single = try SeedSweep(plan: fakePlan(seeds: [1, 2], arms: ["baseline"]), directory: root + "/one", concurrentRuns: 1, executable: sh)
        let text = try single.run { _ in }.report.markdown()
        #expect(!text.contains("paired") && text.contains("| metric | baseline |"))
        let pair = try SeedSweep(plan: fakePlan(seeds: [1, 2]), directory: root + "/two", concurrentRuns: 1, executable: sh)
        #expect(try pair.run { _ in }.report.markdown().contains("The paired column is nfm − baseline"))
    }

    @Test func estimatesTheTimeLeftFromEachModelsRuns() {
        // Baseline runs took 60 and 80 s (mean 70), NFM runs 500 s: one baseline and two NFM runs left,
        // two at a time, is (70 + 2 · 500) / 2 = 535 s, not the 3 · 213.3 / 2 = 320 s of one mean for all.
        let durations = ["baseline": [60.0, 80.0], "nfm": [500.0]]
        #expect(SeedSweep.timeLeft(remainingRuns: ["baseline", "nfm", "nfm"], durations: durations, concurrentRuns: 2) == 535)
        #expect(SeedSweep.timeLeft(remainingRuns: ["baseline"], durations: durations, concurrentRuns: 1) == 70)
        // No NFM run has finished: no estimate rather than a baseline-sized one.
        #expect(SeedSweep.timeLeft(remainingRuns: ["nfm"], durations: ["baseline": [60]], concurrentRuns: 2) == nil)
    }

    @Test func keepsTheThreadsRecordedWhenTheSweepStarted() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        // Started one run at a time: each run on every core, and the plan says so.
        let directory = root + "/sweep"
        let first = try SeedSweep(plan: fakePlan(seeds: [1]), directory: directory, concurrentRuns: 1, executable: URL(fileURLWithPath: "/bin/sh"))
        _ = try first.run { _ in }
        #expect(try SeedSweep.savedPlan(in: directory).runThreads == .all)
        // Continued two at a time: the new seed's runs still get every core, as seed 1's did.
        let second = try SeedSweep(plan: fakePlan(seeds: [2]), directory: directory, concurrentRuns: 2, executable: URL(fileURLWithPath: "/bin/sh"))
        _ = try second.run { _ in }
        #expect(invocations(second, seed: 2, arm: "nfm") == ["fresh threads=all"])
        // A sweep saved before the thread count was recorded follows its concurrency, as it used to, and
        // records it from then on.
        let legacy = root + "/legacy"
        var plan = fakePlan(seeds: [1])
        plan.runThreads = nil
        try FileManager.default.createDirectory(atPath: legacy, withIntermediateDirectories: true)
        try JSONEncoder().encode(plan).write(to: URL(fileURLWithPath: legacy + "/" + SeedSweep.planFile))
        let continued = try SeedSweep(plan: fakePlan(seeds: [1]), directory: legacy, concurrentRuns: 2, executable: URL(fileURLWithPath: "/bin/sh"))
        _ = try continued.run { _ in }
        #expect(invocations(continued, seed: 1, arm: "baseline") == ["fresh threads=1"])
        #expect(try SeedSweep.savedPlan(in: legacy).runThreads == .one)
    }

    @Test func reportsAFailedRunAndKeepsTheOthers() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let sweep = try SeedSweep(
            plan: fakePlan(seeds: [1, 2], arms: ["baseline", "broken"]), directory: root + "/sweep", concurrentRuns: 2,
            executable: URL(fileURLWithPath: "/bin/sh"))
        let outcome = try sweep.run { _ in }
        #expect(outcome.failures.map(\.seed) == [1, 2] || outcome.failures.map(\.seed) == [2, 1])
        #expect(outcome.failures.allSatisfy { $0.arm == "broken" && $0.message.contains("the data file is corrupt") })
        #expect(outcome.report.values(of: "eval/accuracy", arm: "baseline").count == 2)
        let markdown = outcome.report.markdown()
        #expect(markdown.contains("Not finished: seed 1 broken, seed 2 broken."))
    }

    @Test func aSecondProcessCannotRunTheSameSweep() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let sweep = try SeedSweep(plan: fakePlan(seeds: [1]), directory: root + "/sweep", concurrentRuns: 1, executable: URL(fileURLWithPath: "/bin/sh"))
        try sweep.prepare()
        // Another process holds the directory's lock (played here by a second lock file description).
        let other = Process()
        other.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
        other.arguments = ["--exclusive", root + "/sweep/" + RunLock.fileName, "sleep", "5"]
        try other.run()
        defer { other.terminate() }
        usleep(300_000)
        #expect(throws: RunLockError.self) { try sweep.run { _ in } }
        #expect(invocations(sweep, seed: 1, arm: "nfm").isEmpty)
    }

    @Test func refusesADirectoryOfAnotherSweepOrRun() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        _ = try SeedSweep(plan: fakePlan(seeds: [1]), directory: root + "/sweep", concurrentRuns: 1, executable: URL(fileURLWithPath: "/bin/sh")).run { _ in }
        var other = fakePlan(seeds: [1])
        other.arguments.append("--steps=5")
        #expect(throws: SweepError.self) { try SeedSweep(plan: other, directory: root + "/sweep", concurrentRuns: 1) }
        _ = FileManager.default.createFile(atPath: root + "/run/config.json", contents: Data())
        try FileManager.default.createDirectory(atPath: root + "/run", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: root + "/run/config.json", contents: Data())
        #expect(throws: SweepError.notASweep(path: root + "/run")) { try SeedSweep(plan: fakePlan(seeds: [1]), directory: root + "/run", concurrentRuns: 1) }
    }
}
