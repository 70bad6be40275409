import Foundation
import NFMLog
import NFMNN
import NFMOptimizers
import NFMTensor

/// How long to train and how often to evaluate and checkpoint.
public struct TrainingConfiguration: Sendable {
    /// Total optimisation steps.
    public var steps: Int
    /// Evaluate every this many steps (and always at the end); 0 evaluates only at the end.
    public var evaluationInterval: Int
    /// Checkpoint every this many steps (and always at the end); 0 checkpoints only at the end.
    public var checkpointInterval: Int
    /// How many checkpoint directories to keep.
    public var keptCheckpoints: Int
    /// Progress-bar label.
    public var label: String

    /// A configuration.
    public init(steps: Int, evaluationInterval: Int = 0, checkpointInterval: Int = 0, keptCheckpoints: Int = 2, label: String = "train") {
        self.steps = steps
        self.evaluationInterval = evaluationInterval
        self.checkpointInterval = checkpointInterval
        self.keptCheckpoints = keptCheckpoints
        self.label = label
    }
}

extension TrainingConfiguration {
    /// Whether the trainer evaluates after `step`: every `evaluationInterval` steps and after the last.
    public func evaluates(afterStep step: Int) -> Bool {
        step == steps || (evaluationInterval > 0 && step % evaluationInterval == 0)
    }
}

/// How a run ended.
public enum TrainingOutcome: Equatable, Sendable {
    /// All steps ran.
    case completed(steps: Int)
    /// Ctrl-C: a checkpoint was written at this step.
    case interrupted(step: Int)
}

/// The bookkeeping around a program's own training step (DESIGN.md §1: "the program writes the
/// step; the trainer does checkpoints, resume, NaN stop, progress"): step counting, periodic
/// evaluation, metrics (CSV, JSONL, PNG curves), atomic checkpoints of modules, optimizers, the
/// random generator and program state, exact resume, a stop with a clear error on NaN or Inf, and
/// a checkpoint on Ctrl-C.
///
/// Randomness for the step comes from `generator`, which the trainer checkpoints; a step that
/// draws its batch from the step number (see NFMData's loaders) and its noise from `generator`
/// resumes exactly.
public final class Trainer {
    /// The run directory (config, metrics, plots, checkpoints).
    public let run: RunDirectory
    /// The schedule.
    public let configuration: TrainingConfiguration
    /// Steps completed so far.
    public internal(set) var step = 0
    /// The generator the step draws from; saved in checkpoints.
    public var generator: SeededGenerator
    /// The metrics writer (`metrics.csv`, `metrics.jsonl`).
    public let metrics: MetricsWriter
    /// The most recent complete checkpoint directory.
    public internal(set) var lastCheckpoint: String?
    /// What a resume did (the checkpoint used, damaged ones set aside, a metrics file rebuilt);
    /// empty for a fresh run.
    public private(set) var resumeNotes: [String] = []
    let modules: Modules
    let optimizers: Optimizers
    let programState: ProgramState?

    /// A trainer for `modules` (saved as `<name>.safetensors`) and `optimizers` (each with the
    /// module whose parameters it updates).
    ///
    /// With `resumeFrom` (a run directory, or one checkpoint directory) every piece of state is
    /// restored and the run continues after the saved step. Of a run directory's checkpoints the
    /// newest that loads is used; newer damaged ones are set aside as `checkpoints/damaged-step-N`
    /// (never deleted). A run with no checkpoint yet starts at step 0. Every checkpoint file and
    /// the metrics files are read and checked before anything in the run is written, so a resume
    /// that throws leaves the run directory as it was. Metric rows logged after the restored step
    /// are dropped, and only those. What was done is printed and kept in ``resumeNotes``.
    public init(
        run: RunDirectory, configuration: TrainingConfiguration, seed: UInt64,
        modules: [(name: String, module: Module)],
        optimizers: [(name: String, optimizer: any Optimizer, module: Module)] = [],
        programState: ProgramState? = nil, resumeFrom: String? = nil
    ) throws {
        self.run = run
        self.configuration = configuration
        self.generator = SeededGenerator(seed: seed)
        self.modules = modules
        self.optimizers = optimizers
        self.programState = programState
        if let resumeFrom {
            let plan = try Self.prepareResume(
                from: resumeFrom, run: run, modules: modules, optimizers: optimizers, programState: programState)
            (metrics, lastCheckpoint, resumeNotes) = try Self.commitResume(plan, run: run, totalSteps: configuration.steps)
            step = plan.step
            if let generator = plan.generator { self.generator = generator }
            for note in resumeNotes { FileHandle.standardOutput.write(Data((note + "\n").utf8)) }
        } else {
            self.metrics = try MetricsWriter(directory: run.path, resume: false)
        }
    }

    /// Runs from the current step to `configuration.steps`. `step(number, &generator)` performs one
    /// optimisation step and returns its metrics (e.g. `["train/loss": 0.7]`); `evaluate(number)`
    /// returns evaluation metrics (e.g. `["eval/accuracy": 0.8]`). Any non-finite metric stops the
    /// run with `TrainingError.nonFiniteMetric` before anything of that step is saved.
    @discardableResult
    public func run(
        step trainStep: (_ step: Int, _ generator: inout SeededGenerator) throws -> [String: Double],
        evaluate: ((_ step: Int) throws -> [String: Double])? = nil
    ) throws -> TrainingOutcome {
        Interrupt.install()
        defer { Interrupt.uninstall() }
        let progress = ProgressBar(total: configuration.steps, label: configuration.label, initialStep: step)
        while step < configuration.steps {
            var stepGenerator = generator
            let values = FaultInjection.poison(try trainStep(step, &stepGenerator), step: step + 1)
            try checkFinite(values, at: step + 1)
            generator = stepGenerator
            step += 1
            FaultInjection.interruptIfArmed(afterStep: step)
            try metrics.log(step: step, values: values)
            progress.update(step: step, metricList: values.sorted { $0.key < $1.key }.prefix(3).map { ($0.key, $0.value) })
            let last = step == configuration.steps
            if let evaluate, configuration.evaluates(afterStep: step) {
                let evaluation = try evaluate(step)
                try checkFinite(evaluation, at: step)
                try metrics.log(step: step, values: evaluation)
            }
            if last || (configuration.checkpointInterval > 0 && step % configuration.checkpointInterval == 0) {
                _ = try writeCheckpoint()
            }
            if Interrupt.isRequested {
                let path = try writeCheckpoint()
                progress.finish()
                print("interrupted at step \(step); checkpoint written to \(path). Resume with --resume \(run.path)")
                return .interrupted(step: step)
            }
        }
        progress.finish()
        if lastCheckpoint == nil || !lastCheckpoint!.hasSuffix(String(format: "step-%09d", step)) { _ = try writeCheckpoint() }
        run.record(output: metrics.csvPath, description: "metrics (CSV)")
        run.record(output: metrics.jsonlPath, description: "metrics (JSON Lines)")
        for plot in try metrics.writePlots(to: run.path) { run.record(output: plot, description: "learning curve") }
        if let lastCheckpoint { run.record(output: lastCheckpoint, description: "checkpoint") }
        return .completed(steps: step)
    }

    private func checkFinite(_ values: [String: Double], at step: Int) throws {
        for (name, value) in values.sorted(by: { $0.key < $1.key }) where !value.isFinite {
            throw TrainingError.nonFiniteMetric(step: step, name: name, value: value, lastCheckpoint: lastCheckpoint)
        }
    }
}
