// What `--seeds` does in every program, written once: start a sweep or continue one, print its
// summary and outputs, and turn the outcome into an exit status.

import Foundation
import NFMDistributed
import NFMKernels
import NFMLog

/// The command-line side of a sweep, shared by nfm-classify, nfm-generate and nfm-rl.
public enum SweepCommand {
    /// Runs at a time when `--seed-jobs` is not given and the sweep is new: one per core (of this
    /// MPI rank's share), each on one thread. Measured on the quiet 2-core machine (results/README.md,
    /// 2 seeds × 2 models of the Sort-of-CLEVR quick preset at 150 steps): two at a time took 96–98 s,
    /// one after another on both cores 104–111 s; a DQN run trains on one thread anyway (41–42 s
    /// against 82–85 s).
    public static var defaultConcurrentRuns: Int { MPI.threadsPerLocalRank ?? ComputeThreads.cores }

    /// The sweep options every program removes from its command line before passing it to the runs.
    public static let sweepOptions: Set<String> = ["--seeds", "--seed-jobs", "--run-dir", "--resume", "--seed"]

    /// Starts the sweep of `seeds` (in `directory`, default `runs/<program>-seeds-<time>`) or, when
    /// `resume` names a sweep directory, continues it (adding `seeds` if given). `arms` are the
    /// models; `arguments` the program's command line (its own name excluded), from which the sweep
    /// options and `modelOptions` / `modelFlags` are removed to give the flags every run shares.
    /// Prints progress, the summary table and the outputs through `log`; returns the exit status:
    /// 0, 1 if a run failed, 130 if interrupted. `runThreads` is for a program whose runs choose
    /// their thread count themselves (nfm-rl's `--threads`, one by default): then a continued sweep
    /// goes one run per core whatever its plan recorded.
    public static func run(
        program: String, arguments: [String], seeds: SeedList?, resume: String?, directory: String?, concurrentRuns: Int?,
        arms: [SweepArm], modelOptions: Set<String> = [], modelFlags: Set<String> = [], headlineMetrics: [String],
        references: [SweepReference] = [], runThreads: SweepRunThreads? = nil, log: (String) -> Void
    ) throws -> Int32 {
        if let concurrentRuns, concurrentRuns < 1 { throw SweepCommandError("--seed-jobs must be at least 1, got \(concurrentRuns)") }
        // Under mpirun each rank runs its share of the seeds (issue 15); the ranks on one machine
        // share its cores.
        let mpi = try MPI.launched()
        defer { mpi?.finalize() }
        var environment: [String: String] = [:]
        if mpi != nil, let threads = MPI.threadsPerLocalRank.map(String.init) {
            environment = ["NFM_THREADS": threads, "OMP_NUM_THREADS": threads]
        }
        func makeSweep(directory chosen: String?) throws -> SeedSweep {
            let partition = mpi.map { (rank: $0.rank, ranks: $0.size) } ?? (0, 1)
            if let resume {
                if directory != nil { throw SweepCommandError("--resume and --run-dir both name the sweep's directory; give only --resume") }
                var plan = try SeedSweep.savedPlan(in: resume)
                plan.seeds += (seeds?.seeds ?? []).filter { !plan.seeds.contains($0) }
                // A sweep whose runs use every core continues one run at a time unless told otherwise.
                let defaultRuns = (runThreads ?? plan.runThreads) == .all ? 1 : defaultConcurrentRuns
                return try SeedSweep(
                    plan: plan, directory: resume, concurrentRuns: concurrentRuns ?? defaultRuns, partition: partition,
                    environment: environment)
            }
            guard let seeds else { throw SweepCommandError("a sweep needs --seeds (a count such as 5, or a list such as 1,2,3)") }
            let common = SweepPlan.removing(options: sweepOptions.union(modelOptions), flags: modelFlags, from: arguments)
            var plan = SweepPlan(
                program: program, arguments: common, arms: arms, seeds: seeds.seeds, headlineMetrics: headlineMetrics, references: references)
            plan.runThreads = runThreads
            let path = chosen ?? "runs/" + RunDirectory.timestampedName(program: program, model: "seeds")
            return try SeedSweep(
                plan: plan, directory: path, concurrentRuns: concurrentRuns ?? defaultConcurrentRuns, partition: partition,
                environment: environment)
        }
        let sweep: SeedSweep
        if let mpi, mpi.size > 1 {
            // Rank 0 checks the flags and lays out the directory alone; the others then open it.
            if mpi.rank == 0 {
                do {
                    sweep = try makeSweep(directory: directory)
                    try sweep.prepare()
                } catch {
                    log("\(program): error: \((error as? LocalizedError)?.errorDescription ?? "\(error)")")
                    mpi.abort(code: 1)
                }
                _ = try mpi.broadcast(sweep.directory)
                try mpi.barrier()
            } else {
                let chosen = try mpi.broadcast("")
                try mpi.barrier()
                sweep = try makeSweep(directory: resume == nil ? chosen : nil)
            }
        } else {
            sweep = try makeSweep(directory: directory)
        }
        let outcome = try sweep.run(log: log, synchronize: mpi.map { mpi in { try mpi.barrier() } })
        guard sweep.partition.rank == 0 else { return outcome.failures.isEmpty ? (outcome.interrupted ? 130 : 0) : 1 }
        log("")
        log(outcome.report.formatted())
        log("Outputs:")
        for path in outcome.outputs where !path.contains("/plots/") { log("  \(path)") }
        log("  \(sweep.directory)/plots/ (learning curves: mean over seeds with a 95% band)")
        log("  \(sweep.directory)/seed-<s>/<model>/ (each run), \(sweep.directory)/logs/ (each run's output)")
        if outcome.interrupted {
            log("interrupted: continue with \(program) --resume \(sweep.directory)")
            return 130
        }
        if !outcome.failures.isEmpty {
            log("\(outcome.failures.count) run(s) failed; fix the cause and continue with \(program) --resume \(sweep.directory)")
            return 1
        }
        return 0
    }
}

/// A wrong combination of sweep flags.
public struct SweepCommandError: Error, CustomStringConvertible, LocalizedError {
    /// What is wrong and what to do.
    public let description: String
    /// An error saying `description`.
    public init(_ description: String) { self.description = description }
    /// Same as ``description``.
    public var errorDescription: String? { description }
}
