import NFMKernels
import NFMTensor

/// RMSprop: Tieleman & Hinton, "Lecture 6.5 — RMSprop: divide the gradient by a running average of
/// its recent magnitude" (COURSERA: Neural Networks for Machine Learning, 2012); the centered variant
/// is Graves, "Generating Sequences With Recurrent Neural Networks" (arXiv:1308.0850, 2013). Exactly
/// `torch.optim.RMSprop` (single-tensor implementation).
///
/// With gradient g and parameter θ, per step:
///
///     g ← g + weightDecay · θ
///     s ← α · s + (1 − α) · g²                square_avg
///     a ← lerp(a, g, 1 − α)                   grad_avg (centered only)
///     d ← √(s − a²) + ε   (centered)   or   d ← √s + ε
///     b ← momentum · b + g / d;  θ ← θ − lr · b     with momentum (momentum_buffer)
///     θ ← θ − lr · g / d                             without
///
/// ε is added outside the square root, as torch does (TensorFlow adds it inside). The DQN baseline
/// uses `RMSprop(learningRate: 2.5e-4, alpha: 0.95, epsilon: 0.01, centered: true)`.
/// State per parameter: `step`, `square_avg`, and `momentum_buffer` / `grad_avg` when used.
public final class RMSprop: Optimizer {
    /// The step size.
    public var learningRate: Double
    /// The smoothing constant of the running averages.
    public let alpha: Double
    /// The term added to the denominator for numerical stability.
    public let epsilon: Double
    /// The L2 penalty coefficient, added to the gradient as `weightDecay · θ`.
    public let weightDecay: Double
    /// The momentum factor (0: none, and no buffer is kept).
    public let momentum: Double
    /// Whether to normalise by the estimated variance (subtracting the squared mean gradient)
    /// rather than the uncentered second moment.
    public let centered: Bool

    /// torch's `state[p]` for one parameter.
    final class ParameterState {
        var step: Int
        var squareAverage: Tensor
        var momentumBuffer: Tensor?
        var gradientAverage: Tensor?

        init(step: Int, squareAverage: Tensor, momentumBuffer: Tensor?, gradientAverage: Tensor?) {
            self.step = step
            self.squareAverage = squareAverage
            self.momentumBuffer = momentumBuffer
            self.gradientAverage = gradientAverage
        }
    }

    private var states: [String: ParameterState] = [:]

    /// An RMSprop optimizer; the defaults are torch's.
    public init(
        learningRate: Double = 1e-2, alpha: Double = 0.99, epsilon: Double = 1e-8, weightDecay: Double = 0,
        momentum: Double = 0, centered: Bool = false
    ) {
        precondition(learningRate >= 0, "RMSprop: invalid learning rate \(learningRate)")
        precondition(alpha >= 0, "RMSprop: invalid alpha \(alpha)")
        precondition(epsilon >= 0, "RMSprop: invalid epsilon \(epsilon)")
        precondition(weightDecay >= 0, "RMSprop: invalid weight decay \(weightDecay)")
        precondition(momentum >= 0, "RMSprop: invalid momentum \(momentum)")
        self.learningRate = learningRate
        self.alpha = alpha
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.momentum = momentum
        self.centered = centered
    }

    /// Applies one RMSprop step to `parameter` in place.
    public func update(_ parameter: inout Tensor, named name: String, gradient: Tensor) {
        checkGradientShape(parameter, gradient, name: name, optimizer: "RMSprop")
        let state: ParameterState
        if let existing = states[name] {
            checkStateShape(existing.squareAverage, parameter, name: name, optimizer: "RMSprop")
            state = existing
        } else {
            // Buffers start at zero, including the momentum buffer (unlike SGD's).
            state = ParameterState(
                step: 0, squareAverage: Tensor(zeros: parameter.shape),
                momentumBuffer: momentum > 0 ? Tensor(zeros: parameter.shape) : nil,
                gradientAverage: centered ? Tensor(zeros: parameter.shape) : nil)
            states[name] = state
        }
        // RMSprop's formulas do not use the step; torch counts it anyway, and so do we for checkpoints.
        state.step += 1

        // Double scalars rounded once to Float where they meet the tensors, as torch's Python floats.
        let learningRate = Float(learningRate), alpha = Float(alpha), epsilon = Float(epsilon)
        let step = RMSpropStep(
            learningRate: learningRate, alpha: alpha, averageWeight: Float(1 - self.alpha), epsilon: epsilon,
            weightDecay: Float(weightDecay), momentum: Float(momentum))

        // One fused pass over θ, g, s (and a, b) in the backend: no temporaries.
        parameter.withUniquelyOwnedBuffer { theta in
            state.squareAverage.withUniquelyOwnedBuffer { squareAverage in
                withOptionalUniqueBuffer(&state.gradientAverage) { gradientAverage in
                    withOptionalUniqueBuffer(&state.momentumBuffer) { buffer in
                        Kernels.backend.rmspropStep(
                            step, parameter: theta, gradient: gradient.buffer, squareAverage: squareAverage,
                            gradientAverage: gradientAverage, momentumBuffer: buffer)
                    }
                }
            }
        }
    }

    private var entryNames: [String] {
        ["step", "square_avg"] + (momentum > 0 ? ["momentum_buffer"] : []) + (centered ? ["grad_avg"] : [])
    }

    /// `state.<index>.step`, `.square_avg` (and `.momentum_buffer`, `.grad_avg`) for each parameter that has had a gradient.
    public func stateDict(parameterOrder: [String]) -> [String: Tensor] {
        flattenState(parameterOrder: parameterOrder, stateNames: states.keys, optimizer: "RMSprop") { name in
            guard let state = states[name] else { return nil }
            var entries: [(name: String, tensor: Tensor)] = [
                (stepEntry, Tensor(Float(state.step))), ("square_avg", state.squareAverage),
            ]
            if let buffer = state.momentumBuffer { entries.append(("momentum_buffer", buffer)) }
            if let average = state.gradientAverage { entries.append(("grad_avg", average)) }
            return entries
        }
    }

    /// Restores steps and averages; throws on a missing, misshapen or unexpected entry.
    public func load(stateDict: [String: Tensor], parameters: [(name: String, tensor: Tensor)]) throws {
        let loaded = try unflattenState(stateDict, parameters: parameters, entryNames: entryNames)
        states = loaded.mapValues { entries in
            ParameterState(
                step: Int(entries[stepEntry]!.item), squareAverage: entries["square_avg"]!,
                momentumBuffer: entries["momentum_buffer"], gradientAverage: entries["grad_avg"])
        }
    }
}

/// An optional tensor's uniquely owned buffer for an in-place step: `nil` when there is no tensor.
func withOptionalUniqueBuffer<Result>(_ tensor: inout Tensor?, _ body: (TensorBuffer?) -> Result) -> Result {
    guard tensor != nil else { return body(nil) }
    return tensor!.withUniquelyOwnedBuffer { body($0) }
}
