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
        let weightDecay = Float(weightDecay), momentum = Float(momentum)
        let averageWeight = Float(1 - self.alpha)

        // One fused pass over θ, g, s (and a, b): no temporaries.
        func run(
            _ theta: UnsafeMutableBufferPointer<Float>, _ g: UnsafeBufferPointer<Float>,
            _ squareAverage: UnsafeMutableBufferPointer<Float>,
            _ gradientAverage: UnsafeMutableBufferPointer<Float>?, _ buffer: UnsafeMutableBufferPointer<Float>?
        ) {
            var start = 0
            if weightDecay == 0 && buffer == nil, let gradientAverage {
                start = centeredStepInLanes(theta, g, squareAverage, gradientAverage)
            }
            for i in start..<theta.count {
                let gradient = weightDecay != 0 ? g[i] + weightDecay * theta[i] : g[i]
                squareAverage[i] = squareAverage[i] * alpha + averageWeight * gradient * gradient
                var denominator: Float
                if let gradientAverage {
                    gradientAverage[i] = interpolate(gradientAverage[i], gradient, weight: averageWeight)
                    // As torch, no clamp at zero: s − a² ≥ 0 holds exactly for these averages, and
                    // only rounding can break it.
                    denominator = (squareAverage[i] - gradientAverage[i] * gradientAverage[i]).squareRoot()
                } else {
                    denominator = squareAverage[i].squareRoot()
                }
                denominator = denominator + epsilon
                if let buffer {
                    buffer[i] = buffer[i] * momentum + gradient / denominator
                    theta[i] = theta[i] - learningRate * buffer[i]
                } else {
                    theta[i] = theta[i] - learningRate * (gradient / denominator)
                }
            }
        }

        // The centered step without momentum or weight decay (the DQN baseline's RMSprop), eight
        // elements at a time: the same IEEE operations in the same order as the scalar loop below
        // (lerp with a weight under ½ is start + weight·(end − start)), so the results are
        // identical. Measured: the scalar loop was 22% of a DQN training frame.
        func centeredStepInLanes(
            _ theta: UnsafeMutableBufferPointer<Float>, _ g: UnsafeBufferPointer<Float>,
            _ squareAverage: UnsafeMutableBufferPointer<Float>, _ gradientAverage: UnsafeMutableBufferPointer<Float>
        ) -> Int {
            guard abs(averageWeight) < 0.5 else { return 0 }
            let lanes = 8, whole = theta.count / lanes * lanes
            let thetaRaw = UnsafeMutableRawPointer(theta.baseAddress!), gRaw = UnsafeRawPointer(g.baseAddress!)
            let squareRaw = UnsafeMutableRawPointer(squareAverage.baseAddress!)
            let averageRaw = UnsafeMutableRawPointer(gradientAverage.baseAddress!)
            let alphas = SIMD8<Float>(repeating: alpha), weights = SIMD8<Float>(repeating: averageWeight)
            let epsilons = SIMD8<Float>(repeating: epsilon), rates = SIMD8<Float>(repeating: learningRate)
            var i = 0
            while i < whole {
                let offset = i * MemoryLayout<Float>.stride
                let gradient = gRaw.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self)
                let square = squareRaw.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self) * alphas
                    + weights * gradient * gradient
                let previous = averageRaw.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self)
                let average = previous + weights * (gradient - previous)
                let denominator = (square - average * average).squareRoot() + epsilons
                let updated = thetaRaw.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self)
                    - rates * (gradient / denominator)
                squareRaw.storeBytes(of: square, toByteOffset: offset, as: SIMD8<Float>.self)
                averageRaw.storeBytes(of: average, toByteOffset: offset, as: SIMD8<Float>.self)
                thetaRaw.storeBytes(of: updated, toByteOffset: offset, as: SIMD8<Float>.self)
                i += lanes
            }
            return whole
        }

        parameter.withUnsafeMutableBufferPointer { theta in
            gradient.withUnsafeBufferPointer { g in
                state.squareAverage.withUnsafeMutableBufferPointer { squareAverage in
                    withOptionalMutableBuffer(&state.gradientAverage) { gradientAverage in
                        withOptionalMutableBuffer(&state.momentumBuffer) { buffer in
                            run(theta, g, squareAverage, gradientAverage, buffer)
                        }
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

/// Mutable access to an optional tensor's elements: `nil` when there is no tensor.
func withOptionalMutableBuffer<Result>(
    _ tensor: inout Tensor?, _ body: (UnsafeMutableBufferPointer<Float>?) -> Result
) -> Result {
    guard tensor != nil else { return body(nil) }
    return tensor!.withUnsafeMutableBufferPointer { body($0) }
}
