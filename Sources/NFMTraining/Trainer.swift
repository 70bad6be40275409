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
    let modules: [(name: String, module: Module)]
    let optimizers: [(name: String, optimizer: any Optimizer, module: Module)]
    let programState: ProgramState?

    /// A trainer for `modules` (saved as `<name>.safetensors`) and `optimizers` (each with the
    /// module whose parameters it updates). With `resumeFrom` (a run directory or checkpoint
    /// directory) every piece of state is restored and the run continues after the saved step.
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
            let directory = try Checkpoint.resolve(resumeFrom)
            // Load before opening the metrics so that rows logged after the checkpoint are dropped.
            var saved = 0
            if let state = try? StateDict.load(contentsOf: directory + "/" + Checkpoint.trainerFile),
                case .int64(let value) = state["step"]
            {
                saved = Int(value)
            }
            self.metrics = try MetricsWriter(directory: run.path, resume: true, discardingStepsAfter: saved)
            try restoreCheckpoint(from: directory)
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
            let values = try trainStep(step, &stepGenerator)
            try checkFinite(values, at: step + 1)
            generator = stepGenerator
            step += 1
            try metrics.log(step: step, values: values)
            progress.update(step: step, metricList: values.sorted { $0.key < $1.key }.prefix(3).map { ($0.key, $0.value) })
            let last = step == configuration.steps
            if let evaluate, last || (configuration.evaluationInterval > 0 && step % configuration.evaluationInterval == 0) {
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
