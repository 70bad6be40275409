import CVectorKernels

// The fused optimizer steps (torch.optim semantics; the optimizers in NFMOptimizers cite the papers
// and compute these scalars). One pass over the parameter, its gradient and its state, in place,
// with no temporaries. The scalars arrive already rounded to Float as torch rounds its Python floats,
// so that the loops below do exactly torch's Float32 arithmetic. On a compiled vector path
// (`Kernels.vectorISA`) each step runs its C twin in CVectorKernels, with the same arithmetic.
// Shapes: parameter, gradient and every state buffer have the same count.

/// The scalars of one SGD step (torch.optim.SGD).
public struct SGDStep: Hashable, Sendable {
    /// lr.
    public var learningRate: Float
    /// μ; 0 means no momentum buffer.
    public var momentum: Float
    /// 1 − dampening.
    public var gradientScale: Float
    /// The L2 penalty λ (0: none).
    public var weightDecay: Float
    /// Nesterov's look-ahead.
    public var nesterov: Bool
    /// True on the first step with momentum: torch starts the buffer at the first (decayed)
    /// gradient itself, not at zero, so that step is undamped.
    public var isFirstStep: Bool

    /// Memberwise initialiser.
    public init(learningRate: Float, momentum: Float, gradientScale: Float, weightDecay: Float, nesterov: Bool, isFirstStep: Bool) {
        self.learningRate = learningRate
        self.momentum = momentum
        self.gradientScale = gradientScale
        self.weightDecay = weightDecay
        self.nesterov = nesterov
        self.isFirstStep = isFirstStep
    }
}

/// The scalars of one Adam or AdamW step (torch.optim.Adam / AdamW), bias corrections included.
public struct AdamStep: Hashable, Sendable {
    /// −lr / (1 − β₁ᵗ).
    public var negativeStepSize: Float
    /// √(1 − β₂ᵗ).
    public var biasCorrection2Root: Float
    /// 1 − lr·λ, AdamW's shrink factor.
    public var decay: Float
    /// 1 − β₁, the weight of the new gradient in the first moment.
    public var averageWeight: Float
    /// β₂.
    public var squareDecay: Float
    /// 1 − β₂.
    public var squareWeight: Float
    /// ε.
    public var epsilon: Float
    /// λ (0: none).
    public var weightDecay: Float
    /// AdamW (true) or Adam's L2 term folded into the gradient (false).
    public var decoupled: Bool

    /// Memberwise initialiser.
    public init(
        negativeStepSize: Float, biasCorrection2Root: Float, decay: Float, averageWeight: Float, squareDecay: Float,
        squareWeight: Float, epsilon: Float, weightDecay: Float, decoupled: Bool
    ) {
        self.negativeStepSize = negativeStepSize
        self.biasCorrection2Root = biasCorrection2Root
        self.decay = decay
        self.averageWeight = averageWeight
        self.squareDecay = squareDecay
        self.squareWeight = squareWeight
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.decoupled = decoupled
    }
}

/// The scalars of one RMSprop step (torch.optim.RMSprop).
public struct RMSpropStep: Hashable, Sendable {
    /// lr.
    public var learningRate: Float
    /// α, the decay of the squared average.
    public var alpha: Float
    /// 1 − α, the weight of the new square (and, centered, of the new gradient).
    public var averageWeight: Float
    /// ε.
    public var epsilon: Float
    /// λ (0: none).
    public var weightDecay: Float
    /// μ (0: no momentum buffer).
    public var momentum: Float

    /// Memberwise initialiser.
    public init(learningRate: Float, alpha: Float, averageWeight: Float, epsilon: Float, weightDecay: Float, momentum: Float) {
        self.learningRate = learningRate
        self.alpha = alpha
        self.averageWeight = averageWeight
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.momentum = momentum
    }
}

/// torch's `Tensor.lerp_` for one element, with ATen's two formulas: `start + weight·(end − start)`
/// for |weight| < 0.5 and `end − (end − start)·(1 − weight)` otherwise, each exact at its own end.
@inline(__always)
func interpolate(_ start: Float, _ end: Float, weight: Float) -> Float {
    let difference = end - start
    return abs(weight) < 0.5 ? start + weight * difference : end - difference * (1 - weight)
}

extension ComputeBackend {
    /// Portable `sgdStep`.
    public func sgdStep(_ step: SGDStep, parameter: TensorBuffer, gradient: TensorBuffer, momentumBuffer: TensorBuffer?) {
        let theta = parameter.mutableBuffer, g = gradient.buffer
        let (learningRate, momentum, weightDecay) = (step.learningRate, step.momentum, step.weightDecay)
        defer { withExtendedLifetime((parameter, gradient, momentumBuffer)) {} }
        if let vector = Kernels.vectorKernels {
            var scalars = NFMSGDScalars(
                learningRate: learningRate, momentum: momentum, gradientScale: step.gradientScale,
                weightDecay: weightDecay, nesterov: step.nesterov, isFirstStep: step.isFirstStep)
            return vector.sgdStep(&scalars, parameter.pointer, gradient.pointer, momentumBuffer?.pointer, parameter.count)
        }
        guard let momentumBuffer else {
            for i in theta.indices {
                let direction = weightDecay != 0 ? g[i] + weightDecay * theta[i] : g[i]
                theta[i] = theta[i] - learningRate * direction
            }
            return
        }
        let buffer = momentumBuffer.mutableBuffer
        for i in theta.indices {
            var direction = weightDecay != 0 ? g[i] + weightDecay * theta[i] : g[i]
            buffer[i] = step.isFirstStep ? direction : buffer[i] * momentum + step.gradientScale * direction
            direction = step.nesterov ? direction + momentum * buffer[i] : buffer[i]
            theta[i] = theta[i] - learningRate * direction
        }
    }

    /// Portable `adamStep`.
    public func adamStep(
        _ step: AdamStep, parameter: TensorBuffer, gradient: TensorBuffer, average: TensorBuffer,
        averageOfSquares: TensorBuffer, maximumAverageOfSquares: TensorBuffer?
    ) {
        defer { withExtendedLifetime((parameter, gradient, average, averageOfSquares, maximumAverageOfSquares)) {} }
        if let vector = Kernels.vectorKernels {
            var scalars = NFMAdamScalars(
                negativeStepSize: step.negativeStepSize, biasCorrection2Root: step.biasCorrection2Root,
                decay: step.decay, averageWeight: step.averageWeight, squareDecay: step.squareDecay,
                squareWeight: step.squareWeight, epsilon: step.epsilon, weightDecay: step.weightDecay,
                decoupled: step.decoupled)
            return vector.adamStep(
                &scalars, parameter.pointer, gradient.pointer, average.pointer, averageOfSquares.pointer,
                maximumAverageOfSquares?.pointer, parameter.count)
        }
        let theta = parameter.mutableBuffer, g = gradient.buffer
        let m = average.mutableBuffer, v = averageOfSquares.mutableBuffer, vMax = maximumAverageOfSquares?.mutableBuffer
        let (weightDecay, decay, decoupled) = (step.weightDecay, step.decay, step.decoupled)
        for i in theta.indices {
            var gradient = g[i]
            if weightDecay != 0 {
                // AdamW (Loshchilov & Hutter 2019) shrinks θ before the step and leaves the
                // moments free of the penalty; Adam folds the L2 term into the gradient.
                if decoupled { theta[i] = theta[i] * decay } else { gradient = gradient + weightDecay * theta[i] }
            }
            m[i] = interpolate(m[i], gradient, weight: step.averageWeight)
            v[i] = v[i] * step.squareDecay + step.squareWeight * gradient * gradient
            var second = v[i]
            if let vMax {
                // NaN-propagating like torch.maximum.
                vMax[i] = second.isNaN || second > vMax[i] ? second : vMax[i]
                second = vMax[i]
            }
            let denominator = second.squareRoot() / step.biasCorrection2Root + step.epsilon
            theta[i] = theta[i] + step.negativeStepSize * (m[i] / denominator)
        }
    }

    /// Portable `rmspropStep`.
    public func rmspropStep(
        _ step: RMSpropStep, parameter: TensorBuffer, gradient: TensorBuffer, squareAverage: TensorBuffer,
        gradientAverage: TensorBuffer?, momentumBuffer: TensorBuffer?
    ) {
        let theta = parameter.mutableBuffer, g = gradient.buffer, squares = squareAverage.mutableBuffer
        let averages = gradientAverage?.mutableBuffer, buffer = momentumBuffer?.mutableBuffer
        let (learningRate, alpha, epsilon) = (step.learningRate, step.alpha, step.epsilon)
        let (weightDecay, momentum, averageWeight) = (step.weightDecay, step.momentum, step.averageWeight)
        defer { withExtendedLifetime((parameter, gradient, squareAverage, gradientAverage, momentumBuffer)) {} }
        if let vector = Kernels.vectorKernels {
            var scalars = NFMRMSpropScalars(
                learningRate: learningRate, alpha: alpha, averageWeight: averageWeight, epsilon: epsilon,
                weightDecay: weightDecay, momentum: momentum)
            return vector.rmspropStep(
                &scalars, parameter.pointer, gradient.pointer, squareAverage.pointer, gradientAverage?.pointer,
                momentumBuffer?.pointer, parameter.count)
        }
        var start = 0
        if weightDecay == 0 && buffer == nil, let averages {
            start = centeredRMSpropInLanes(step, theta, g, squares, averages)
        }
        for i in start..<theta.count {
            let gradient = weightDecay != 0 ? g[i] + weightDecay * theta[i] : g[i]
            squares[i] = squares[i] * alpha + averageWeight * gradient * gradient
            var denominator: Float
            if let averages {
                averages[i] = interpolate(averages[i], gradient, weight: averageWeight)
                // As torch, no clamp at zero: s − a² ≥ 0 holds exactly for these averages, and
                // only rounding can break it.
                denominator = (squares[i] - averages[i] * averages[i]).squareRoot()
            } else {
                denominator = squares[i].squareRoot()
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
}

/// The centered RMSprop step without momentum or weight decay (the DQN baseline's), eight elements
/// at a time: the same IEEE operations in the same order as the scalar loop of `rmspropStep` (lerp
/// with a weight under ½ is start + weight·(end − start)), so the results are identical. Returns
/// how many leading elements it did. Measured: the scalar loop was 22% of a DQN training frame.
private func centeredRMSpropInLanes(
    _ step: RMSpropStep, _ theta: UnsafeMutableBufferPointer<Float>, _ g: UnsafeBufferPointer<Float>,
    _ squareAverage: UnsafeMutableBufferPointer<Float>, _ gradientAverage: UnsafeMutableBufferPointer<Float>
) -> Int {
    guard abs(step.averageWeight) < 0.5 else { return 0 }
    let lanes = 8, whole = theta.count / lanes * lanes
    let thetaRaw = UnsafeMutableRawPointer(theta.baseAddress!), gRaw = UnsafeRawPointer(g.baseAddress!)
    let squareRaw = UnsafeMutableRawPointer(squareAverage.baseAddress!)
    let averageRaw = UnsafeMutableRawPointer(gradientAverage.baseAddress!)
    let alphas = SIMD8<Float>(repeating: step.alpha), weights = SIMD8<Float>(repeating: step.averageWeight)
    let epsilons = SIMD8<Float>(repeating: step.epsilon), rates = SIMD8<Float>(repeating: step.learningRate)
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
