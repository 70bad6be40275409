import ArgumentParser

/// The flags of a comparison over seeds, the same in every program (`@OptionGroup var sweep: SweepOptions`).
public struct SweepOptions: ParsableArguments {
    /// `--seeds`: a count or a list; nil for a single run.
    @Option(help: ArgumentHelp(
        "Compare baseline and NFM over seeds: a count (5 = seeds 1…5) or a list (1,2,3). Each seed and model is a run under --run-dir; then a summary: mean ± 95% CI per model, the paired difference NFM − baseline, band plots. Under mpirun the seeds are spread over the ranks.",
        valueName: "seeds"),
        transform: { try SeedList(parsing: $0) })
    public var seeds: SeedList?

    /// `--seed-jobs`: runs at a time.
    @Option(help: ArgumentHelp(
        "With --seeds: runs at a time on this machine, each on 1 thread when more than 1. (default: one per core; one when continuing a sweep whose runs use every core)",
        discussion: "The runs' thread count is recorded with the sweep when it starts and kept when it continues, so that its numbers do not depend on this flag."))
    public var seedJobs: Int?

    /// No flags given.
    public init() {}

    /// Whether this invocation is a sweep: `--seeds` given, or `--resume` naming a sweep directory.
    public func isSweep(resume: String?) -> Bool {
        seeds != nil || resume.map(SeedSweep.isSweep) == true
    }
}
