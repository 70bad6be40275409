// The seeds harness (issue 11): one comparison over seeds, shared by nfm-classify, nfm-generate and
// nfm-rl. Each (seed, model) is an ordinary run of the program in its own run directory, started as
// a child process of the same executable, so a sweep reuses everything a single run does (data,
// checkpoints, resume, NaN stop, metrics) and a run's failure cannot take the others down. Control
// and treatment of one seed get the same seed, hence the same data and batches: the paired design.
//
//   <sweep>/sweep.json              what is compared (program, common flags, models, seeds)
//   <sweep>/seed-<s>/<model>/       each run's directory (config, metrics, checkpoints, final_metrics.json)
//   <sweep>/logs/seed-<s>-<model>.log  each run's console output
//   <sweep>/summary.md, summary.csv, seeds.csv, curves.csv, plots/   the summary (SweepReport)
//
// A sweep continues where it stopped: finished runs are kept, interrupted ones resume from their
// latest checkpoint, and more seeds can be added later.

import Foundation
import NFMIO
import NFMLog
import NFMDistributed
import NFMTraining
import Synchronization

/// One arm of a comparison: a model and the program flags that select it.
public struct SweepArm: Codable, Sendable, Equatable {
    /// The model's name: its run folder and its label in tables and plots (`baseline`, `nfm`).
    public var name: String
    /// The program's flags that select this model, e.g. `["--model", "nfm"]`. The text
    /// ``SweepArm/runDirectoryToken`` in them stands for the run's directory (for outputs that
    /// would otherwise land in one place for every seed).
    public var arguments: [String]

    /// Stands for the run's directory in ``arguments``.
    public static let runDirectoryToken = "{run-dir}"

    /// An arm.
    public init(name: String, arguments: [String]) {
        self.name = name
        self.arguments = arguments
    }
}

/// A published or otherwise known value of a metric, drawn beside the sweep's curves as a
/// horizontal line (e.g. MinAtar's DQN return after 5M frames).
public struct SweepReference: Codable, Sendable, Equatable {
    /// The logged metric it belongs to.
    public var metric: String
    /// Its value.
    public var value: Double
    /// Its legend entry, with its source.
    public var label: String

    /// A reference line.
    public init(metric: String, value: Double, label: String) {
        self.metric = metric
        self.value = value
        self.label = label
    }
}

/// What a sweep runs: the same program and flags for every run, one arm per model, one run per seed
/// and arm. With two arms the first is the control and the second the treatment, and the summary
/// gives the paired difference treatment − control.
public struct SweepPlan: Codable, Sendable, Equatable {
    /// The program's name, for messages (`nfm-classify`).
    public var program: String
    /// The flags common to every run (the sweep's own flags, the seed, the run directory and the
    /// model choice removed).
    public var arguments: [String]
    /// The models, control first.
    public var arms: [SweepArm]
    /// The seeds.
    public var seeds: [UInt64]
    /// The final metrics printed as each run finishes (all final metrics go into the summary).
    public var headlineMetrics: [String]
    /// Known values drawn beside the curves (nil in sweeps saved before there were any).
    public var references: [SweepReference]?
    /// The threads each run trains on, fixed when the sweep starts and kept when it continues:
    /// oneDNN's multi-threaded reductions round differently with another thread count, so without it
    /// a sweep's numbers would depend on `--seed-jobs` (measured, results/README.md "One run at a
    /// time, or two?"). nil in sweeps saved before it was recorded.
    public var runThreads: SweepRunThreads?

    /// A plan.
    public init(
        program: String, arguments: [String], arms: [SweepArm], seeds: [UInt64], headlineMetrics: [String], references: [SweepReference] = []
    ) {
        self.references = references
        precondition(!arms.isEmpty && Set(arms.map(\.name)).count == arms.count, "SweepPlan: arms must be non-empty with distinct names")
        self.program = program
        self.arguments = arguments
        self.arms = arms
        self.seeds = seeds
        self.headlineMetrics = headlineMetrics
    }

    /// `arguments` without the options `options` (each with its value, as `--name value` or
    /// `--name=value`) and the value-less `flags`: how a program turns its own command line into
    /// the flags common to every run of a sweep.
    public static func removing(options: Set<String>, flags: Set<String> = [], from arguments: [String]) -> [String] {
        var kept: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            let name = argument.split(separator: "=", maxSplits: 1).first.map(String.init) ?? argument
            if options.contains(name) {
                index += argument.contains("=") ? 1 : 2
            } else if flags.contains(argument) {
                index += 1
            } else {
                kept.append(argument)
                index += 1
            }
        }
        return kept
    }
}

/// How many threads each run of a sweep trains on.
public enum SweepRunThreads: String, Codable, Sendable, Equatable {
    /// One thread (`NFM_THREADS=1`, `OMP_NUM_THREADS=1`), so that runs can go side by side, one per core.
    case one
    /// The program's own default: every core of the machine (or of this MPI rank's share).
    case all

    /// What a sweep whose plan does not say (saved before it was recorded) ran with: one thread
    /// when several runs went at once.
    public init(concurrentRuns: Int) { self = concurrentRuns > 1 ? .one : .all }
}

/// What went wrong setting up a sweep, said so that the user can act on it.
public enum SweepError: Error, CustomStringConvertible, LocalizedError, Sendable, Equatable {
    /// The directory holds a sweep of other settings.
    case differentSweep(path: String, saved: String, requested: String)
    /// The directory exists and is not a sweep.
    case notASweep(path: String)
    /// sweep.json cannot be read.
    case unreadablePlan(path: String, reason: String)
    /// A run could not be started.
    case cannotStart(path: String, reason: String)

    /// A sentence naming the directory and what to do.
    public var description: String {
        switch self {
        case .differentSweep(let path, let saved, let requested):
            return "\(path) holds a sweep of other settings (saved: \(saved); requested: \(requested)); "
                + "choose another --run-dir, or continue it with --resume \(path)"
        case .notASweep(let path):
            return "\(path) exists and is not a sweep directory (it has no \(SeedSweep.planFile)); choose another --run-dir"
        case .unreadablePlan(let path, let reason):
            return "cannot read the sweep plan \(path): \(reason)"
        case .cannotStart(let path, let reason):
            return "cannot start the run \(path): \(reason)"
        }
    }

    /// Same as ``description``.
    public var errorDescription: String? { description }
}

/// How a sweep invocation ended.
public struct SweepOutcome {
    /// The summary of every run of the sweep so far (earlier invocations' too).
    public var report: SweepReport
    /// The summary files written.
    public var outputs: [String]
    /// Ctrl-C stopped it: the runs that were going have checkpointed, and `--resume` continues.
    public var interrupted: Bool
    /// Runs that exited with an error in this invocation, with the end of their log.
    public var failures: [(seed: UInt64, arm: String, message: String)]
}

/// Runs a ``SweepPlan`` in a directory, `concurrentRuns` runs at a time, then writes its summary.
public final class SeedSweep {
    /// The plan's file inside a sweep directory.
    public static let planFile = "sweep.json"

    /// The plan (with the seeds of earlier invocations added).
    public let plan: SweepPlan
    /// The sweep directory.
    public let directory: String
    /// How many runs go at once (their threads are the plan's ``SweepPlan/runThreads``).
    public let concurrentRuns: Int
    /// The executable started for each run (by default this process's own).
    public let executable: URL
    /// This process's share of the runs when several processes run one sweep (the ranks of an MPI
    /// job, issue 15): the plan's seed number i (both models) belongs to rank i mod `ranks`, so that
    /// every rank gets whole pairs. (0, 1) runs every run.
    public let partition: (rank: Int, ranks: Int)
    /// Extra environment for every run (e.g. its thread count); applied after `NFM_THREADS`.
    public let environment: [String: String]

    /// Whether `path` is a sweep directory.
    public static func isSweep(_ path: String) -> Bool {
        FileManager.default.fileExists(atPath: path + "/" + planFile)
    }

    /// The saved plan of the sweep in `directory`.
    public static func savedPlan(in directory: String) throws -> SweepPlan {
        let path = directory + "/" + planFile
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SweepError.unreadablePlan(path: path, reason: "no such file")
        }
        do {
            return try JSONDecoder().decode(SweepPlan.self, from: data)
        } catch {
            throw SweepError.unreadablePlan(path: path, reason: "\(error)")
        }
    }

    /// A sweep of `plan` in `directory`: a new one (the directory must not exist, or be empty), or
    /// the continuation of the sweep saved there, which must have the same program, flags and models;
    /// seeds not in it yet are added.
    public init(
        plan: SweepPlan, directory: String, concurrentRuns: Int, executable: URL? = nil, partition: (rank: Int, ranks: Int) = (0, 1),
        environment: [String: String] = [:]
    ) throws {
        precondition(concurrentRuns >= 1, "SeedSweep: concurrentRuns must be at least 1, got \(concurrentRuns)")
        precondition(partition.ranks >= 1 && (0..<partition.ranks).contains(partition.rank), "SeedSweep: invalid partition \(partition)")
        self.partition = partition
        self.environment = environment
        var plan = plan
        let manager = FileManager.default
        if Self.isSweep(directory) {
            let saved = try Self.savedPlan(in: directory)
            guard saved.program == plan.program, saved.arguments == plan.arguments, saved.arms == plan.arms else {
                func text(_ plan: SweepPlan) -> String {
                    "\(plan.program) \(plan.arguments.joined(separator: " ")), models \(plan.arms.map(\.name).joined(separator: ", "))"
                }
                throw SweepError.differentSweep(path: directory, saved: text(saved), requested: text(plan))
            }
            plan.seeds = saved.seeds + plan.seeds.filter { !saved.seeds.contains($0) }
            plan.runThreads = saved.runThreads ?? plan.runThreads
        } else if manager.fileExists(atPath: directory), !((try? manager.contentsOfDirectory(atPath: directory))?.isEmpty ?? false) {
            throw SweepError.notASweep(path: directory)
        }
        // Recorded with the plan, so that every later invocation runs with the same threads.
        plan.runThreads = plan.runThreads ?? SweepRunThreads(concurrentRuns: concurrentRuns)
        self.plan = plan
        self.directory = directory
        self.concurrentRuns = concurrentRuns
        self.executable = executable ?? URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    }

    /// The run directory of `seed` and `arm`.
    public func runDirectory(seed: UInt64, arm: String) -> String { "\(directory)/seed-\(seed)/\(arm)" }

    /// The console log of `seed` and `arm`.
    public func logFile(seed: UInt64, arm: String) -> String { "\(directory)/logs/seed-\(seed)-\(arm).log" }

    /// The arguments of the run of `seed` and `arm`: a fresh run in its directory, or the resumption
    /// of the one there.
    public func arguments(seed: UInt64, arm: SweepArm, resume: Bool) -> [String] {
        let path = runDirectory(seed: seed, arm: arm.name)
        let armArguments = arm.arguments.map { $0.replacingOccurrences(of: SweepArm.runDirectoryToken, with: path) }
        return plan.arguments + armArguments + ["--seed", String(seed)] + (resume ? ["--resume"] : ["--run-dir"]) + [path]
    }

    private struct Job {
        var seed: UInt64
        var arm: SweepArm
        var resume: Bool
    }

    /// Creates the sweep directory and writes its plan (with every seed so far). ``run(log:synchronize:)``
    /// calls it; with several ranks, rank 0 calls it first, alone, and the others then open the sweep.
    public func prepare() throws {
        try FileManager.default.createDirectory(atPath: directory + "/logs", withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(plan), to: directory + "/" + Self.planFile)
    }

    /// Runs every unfinished run of this process's share, `concurrentRuns` at a time (each in a
    /// child process whose output goes to its log), printing a line as each starts and ends. With
    /// several ranks, `synchronize` (an MPI barrier) then waits for the others, and rank 0 alone
    /// writes the summary of all runs. Ctrl-C stops starting runs; the running ones checkpoint and
    /// stop, and the summary covers what finished.
    public func run(log print: (String) -> Void, synchronize: (() throws -> Void)? = nil) throws -> SweepOutcome {
        let manager = FileManager.default
        let ranked = partition.ranks > 1
        let prefix = ranked ? "rank \(partition.rank): " : ""
        func log(_ line: String) { print(prefix + line) }
        if partition.rank == 0 { try prepare() }
        // One sweep process per directory (an MPI job's rank 0 stands for the job): a second one
        // gets an error naming the first's pid and host.
        let lock = partition.rank == 0 ? try RunLock.acquire(directory: directory) : nil
        defer { withExtendedLifetime(lock) {} }

        var jobs: [Job] = []
        var finishedBefore = 0
        for (index, seed) in plan.seeds.enumerated() where index % partition.ranks == partition.rank {
            for arm in plan.arms {
                let path = runDirectory(seed: seed, arm: arm.name)
                if (try? FinalMetrics.read(directory: path)) != nil {
                    finishedBefore += 1
                    continue
                }
                var resume = false
                if manager.fileExists(atPath: path) {
                    if (try? Checkpoint.resolve(path)) != nil {
                        resume = true
                    } else {
                        // Stopped before its first checkpoint: nothing to resume. Set it aside, never delete.
                        let aside = Self.unusedName(path + ".set-aside")
                        try manager.moveItem(atPath: path, toPath: aside)
                        log("seed \(seed) · \(arm.name): \(path) has no checkpoint to resume; set aside as \(aside), starting afresh")
                    }
                }
                jobs.append(Job(seed: seed, arm: arm, resume: resume))
            }
        }
        let total = plan.seeds.indices.filter { $0 % partition.ranks == partition.rank }.count * plan.arms.count
        log("sweep: \(plan.program), models \(plan.arms.map(\.name).joined(separator: " vs ")), seeds \(plan.seeds.map(String.init).joined(separator: ","))")
        log("sweep: \(total) runs, \(finishedBefore) already finished, \(jobs.count) to run, \(concurrentRuns) at a time"
            + (plan.runThreads == .one ? " (one thread each)" : "") + "; directory \(directory)")

        // A run is a single process even when this one is an MPI rank.
        var environment = MPI.childEnvironment(ProcessInfo.processInfo.environment)
        environment[Self.parentVariable] = String(getpid())
        if plan.runThreads == .one {
            environment["NFM_THREADS"] = "1"
            environment["OMP_NUM_THREADS"] = "1"
        }
        environment.merge(self.environment) { _, new in new }
        let ended = Mutex<[Int]>([])
        let wake = DispatchSemaphore(value: 0)
        var running: [Int: (process: Process, start: Double)] = [:]
        var next = 0
        var completed = 0
        var durations: [String: [Double]] = [:]  // seconds of each model's runs finished in this invocation
        var settled = Set<Int>()  // jobs that ended: finished, failed or interrupted
        var failures: [(seed: UInt64, arm: String, message: String)] = []
        var interrupted = false
        var forwarded = false
        Interrupt.install()
        defer { Interrupt.uninstall() }

        while true {
            while running.count < concurrentRuns, next < jobs.count, !Interrupt.isRequested {
                let job = jobs[next]
                let index = next
                next += 1
                let process = Process()
                process.executableURL = executable
                process.arguments = arguments(seed: job.seed, arm: job.arm, resume: job.resume)
                process.environment = environment
                let logPath = logFile(seed: job.seed, arm: job.arm.name)
                if !manager.fileExists(atPath: logPath) { _ = manager.createFile(atPath: logPath, contents: nil) }
                guard let output = FileHandle(forWritingAtPath: logPath) else {
                    throw SweepError.cannotStart(path: logPath, reason: "cannot open the log for writing")
                }
                output.seekToEndOfFile()
                output.write(Data("\n$ \(plan.program) \(process.arguments!.joined(separator: " "))\n".utf8))
                process.standardOutput = output
                process.standardError = output
                process.standardInput = FileHandle.nullDevice
                process.terminationHandler = { _ in
                    ended.withLock { $0.append(index) }
                    wake.signal()
                }
                do {
                    try process.run()
                } catch {
                    throw SweepError.cannotStart(path: runDirectory(seed: job.seed, arm: job.arm.name), reason: "\(error)")
                }
                running[index] = (process, ProgressBar.monotonicSeconds())
                log("seed \(job.seed) · \(job.arm.name): \(job.resume ? "resuming" : "started") (log: \(logPath))")
            }
            if running.isEmpty { break }
            _ = wake.wait(timeout: .now() + 1)
            if Interrupt.isRequested && !forwarded {
                // A Ctrl-C at the terminal reaches the children too when they share its process
                // group; forward it only to those that do not, so that none gets two (a second
                // SIGINT makes a run exit without its checkpoint).
                forwarded = true
                interrupted = true
                for (_, entry) in running where getpgid(entry.process.processIdentifier) != getpgrp() { entry.process.interrupt() }
                log("sweep: interrupted; waiting for \(running.count) running run(s) to checkpoint")
            }
            for index in ended.withLock({ indices in defer { indices.removeAll() }; return indices }) {
                guard let entry = running.removeValue(forKey: index) else { continue }
                let job = jobs[index]
                settled.insert(index)
                let seconds = ProgressBar.monotonicSeconds() - entry.start
                let status = entry.process.terminationStatus
                let path = runDirectory(seed: job.seed, arm: job.arm.name)
                let name = "seed \(job.seed) · \(job.arm.name)"
                try recordTiming(seed: job.seed, arm: job.arm.name, status: status, seconds: seconds)
                if status == 0, let metrics = try? FinalMetrics.read(directory: path) {
                    completed += 1
                    durations[job.arm.name, default: []].append(seconds)
                    let headline = plan.headlineMetrics.compactMap { key in metrics[key].map { "\(key) \(ProgressBar.formatMetric($0))" } }
                    let remaining = jobs.indices.filter { !settled.contains($0) }.map { jobs[$0].arm.name }
                    let left: String
                    if remaining.isEmpty {
                        left = ""
                    } else if let seconds = Self.timeLeft(remainingRuns: remaining, durations: durations, concurrentRuns: concurrentRuns) {
                        left = ", about \(ProgressBar.formatDuration(seconds)) left"
                    } else {
                        left = ", \(remaining.count) left (no time estimate until a run of each model has finished)"
                    }
                    log("\(name): finished in \(ProgressBar.formatDuration(seconds))\(headline.isEmpty ? "" : " (" + headline.joined(separator: ", ") + ")")"
                        + " — \(finishedBefore + completed) of \(total) done\(left)")
                } else if status == 130 || Interrupt.isRequested {
                    interrupted = true
                    log("\(name): interrupted after \(ProgressBar.formatDuration(seconds)); its checkpoint resumes with the sweep")
                } else {
                    let message = "exit status \(status); last lines of \(logFile(seed: job.seed, arm: job.arm.name)):\n"
                        + Self.lastLines(of: logFile(seed: job.seed, arm: job.arm.name), count: 6)
                    failures.append((job.seed, job.arm.name, message))
                    log("\(name): FAILED, \(message)")
                }
            }
        }
        if let synchronize, ranked {
            log("my runs are done; waiting for the other ranks")
            try synchronize()
        }
        let report = try SweepReport.load(plan: plan, sweep: self)
        let outputs = partition.rank == 0 ? try report.write(to: directory) : []
        return SweepOutcome(report: report, outputs: outputs, interrupted: interrupted || Interrupt.isRequested, failures: failures)
    }

    /// The file that lists every run invocation's end: `seed,model,exit_status,seconds,ended_utc`,
    /// one line each, across every invocation of the sweep (a run resumed three times has three
    /// lines), so that a sweep's compute time adds up however often it was continued.
    public static let timingsFile = "timings.csv"

    private func recordTiming(seed: UInt64, arm: String, status: Int32, seconds: Double) throws {
        let path = directory + "/" + Self.timingsFile
        if !FileManager.default.fileExists(atPath: path) {
            try AtomicFile.write("seed,model,exit_status,seconds,ended_utc\n", to: path)
        }
        guard let file = FileHandle(forWritingAtPath: path) else { throw SweepError.cannotStart(path: path, reason: "cannot open for appending") }
        defer { try? file.close() }
        file.seekToEndOfFile()
        let ended = ISO8601DateFormatter().string(from: Date())
        file.write(Data("\(seed),\(arm),\(status),\(String(format: "%.1f", seconds)),\(ended)\n".utf8))
    }

    /// The environment variable that tells a run the process id of the sweep that started it.
    public static let parentVariable = "NFM_SWEEP_PARENT"

    /// In a run started by a sweep: watches the sweep's process and, should it die (killed, or its
    /// MPI job aborted because another rank died), interrupts this run as Ctrl-C does, so that it
    /// writes its checkpoint and stops instead of training on unwatched. Programs call it first
    /// thing; elsewhere it does nothing. (Linux's PR_SET_PDEATHSIG would do this, but `prctl` is
    /// variadic and Swift cannot call it.)
    public static func followParentProcess() {
        guard let parent = ProcessInfo.processInfo.environment[parentVariable].flatMap(Int32.init) else { return }
        Thread.detachNewThread {
            while getppid() == parent { sleep(1) }
            kill(getpid(), SIGINT)
        }
    }

    /// How long the runs still to finish (the model of each) should take at `concurrentRuns` at a
    /// time, from the mean duration of each model's finished runs; nil while one of those models has
    /// none, since models differ widely (an NFM-encoder DQN run takes about 9× as long as a baseline one).
    static func timeLeft(remainingRuns: [String], durations: [String: [Double]], concurrentRuns: Int) -> Double? {
        var total = 0.0
        for arm in remainingRuns {
            guard let seconds = durations[arm], !seconds.isEmpty else { return nil }
            total += seconds.reduce(0, +) / Double(seconds.count)
        }
        return total / Double(max(concurrentRuns, 1))
    }

    /// `base`, or `base-2`, `base-3`, … : the first name not taken.
    static func unusedName(_ base: String) -> String {
        var candidate = base
        var number = 2
        while FileManager.default.fileExists(atPath: candidate) {
            candidate = "\(base)-\(number)"
            number += 1
        }
        return candidate
    }

    /// The last `count` non-empty lines of the text file at `path`, indented.
    static func lastLines(of path: String, count: Int) -> String {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        // Progress bars redraw with carriage returns; keep each line's last state.
        let lines = text.split(separator: "\n").map { $0.split(separator: "\r").last.map(String.init) ?? "" }.filter { !$0.isEmpty }
        return lines.suffix(count).map { "    " + $0 }.joined(separator: "\n")
    }
}
