/// Why a training run stopped early; each says what happened and what was kept.
public enum TrainingError: Error, CustomStringConvertible {
    /// A metric (a loss) became NaN or infinite; the last good checkpoint is untouched.
    case nonFiniteMetric(step: Int, name: String, value: Double, lastCheckpoint: String?)
    /// `--resume` named something that holds no checkpoint.
    case noCheckpoint(path: String)
    /// A checkpoint exists but does not fit this run.
    case incompatibleCheckpoint(path: String, reason: String)
    /// A run has checkpoints but none of them loads; nothing in the run was changed.
    case noIntactCheckpoint(run: String, failures: [(path: String, reason: String)])
    /// A run's config.json cannot be read, and no checkpoint holds a readable copy.
    case unreadableConfiguration(path: String, reason: String)

    /// A readable explanation.
    public var description: String {
        switch self {
        case let .nonFiniteMetric(step, name, value, lastCheckpoint):
            let kept = lastCheckpoint.map { "the last good checkpoint is \($0)" } ?? "no checkpoint had been written yet"
            return "training stopped: \(name) is \(value) at step \(step); \(kept). Try a lower learning rate or gradient clipping."
        case let .noCheckpoint(path):
            return "no checkpoint found at \(path) (expected a run directory with checkpoints/latest, or a checkpoint directory holding trainer.safetensors)"
        case let .incompatibleCheckpoint(path, reason):
            return "checkpoint \(path) does not fit this run: \(reason)"
        case let .noIntactCheckpoint(run, failures):
            return "cannot resume \(run): no checkpoint loads, and nothing in the run was changed:\n"
                + failures.map { "  \($0.path): \($0.reason)" }.joined(separator: "\n")
                + "\nCheck that the run's settings are those it was made with; to start over, use a new run directory."
        case let .unreadableConfiguration(path, reason):
            return "cannot read the run's settings \(path): \(reason)"
        }
    }
}
