import NFMKernels
import NFMTensor

/// Stochastic gradient descent with optional momentum, dampening, Nesterov momentum and L2 weight
/// decay: exactly `torch.optim.SGD` (single-tensor implementation).
///
/// With gradient g, parameter θ and buffer b, per step:
///
///     g ← g + weightDecay · θ
///     b ← g                                   on the parameter's first step with momentum
///     b ← momentum · b + (1 − dampening) · g  afterwards
///     g ← g + momentum · b   (Nesterov)   or   g ← b   (classical momentum)
///     θ ← θ − learningRate · g
///
/// Nesterov momentum in this form follows Sutskever, Martens, Dahl & Hinton, "On the importance of
/// initialization and momentum in deep learning" (ICML 2013). State: `momentum_buffer` per parameter
/// when momentum is non-zero; torch's SGD keeps no `step`.
public final class SGD: Optimizer {
    /// The step size.
    public var learningRate: Double
    /// The momentum factor (0 turns momentum off and keeps no state).
    public let momentum: Double
    /// The dampening applied to the gradient when it enters the momentum buffer.
    public let dampening: Double
    /// The L2 penalty coefficient, added to the gradient as `weightDecay · θ`.
    public let weightDecay: Double
    /// Whether to use Nesterov momentum.
    public let nesterov: Bool

    /// `momentum_buffer` per parameter name, created from the first gradient.
    private var momentumBuffers: [String: Tensor] = [:]

    /// An SGD optimizer; the defaults are torch's.
    public init(
        learningRate: Double = 1e-3, momentum: Double = 0, dampening: Double = 0, weightDecay: Double = 0,
        nesterov: Bool = false
    ) {
        precondition(learningRate >= 0, "SGD: invalid learning rate \(learningRate)")
        precondition(momentum >= 0, "SGD: invalid momentum \(momentum)")
        precondition(weightDecay >= 0, "SGD: invalid weight decay \(weightDecay)")
        // As torch: Nesterov's look-ahead is defined for an undamped buffer.
        precondition(
            !nesterov || (momentum > 0 && dampening == 0), "SGD: Nesterov momentum requires a momentum and zero dampening")
        self.learningRate = learningRate
        self.momentum = momentum
        self.dampening = dampening
        self.weightDecay = weightDecay
        self.nesterov = nesterov
    }

    /// Applies one SGD step to `parameter` in place.
    public func update(_ parameter: inout Tensor, named name: String, gradient: Tensor) {
        checkGradientShape(parameter, gradient, name: name, optimizer: "SGD")
        // Double scalars rounded once to Float where they meet the tensors, as torch's Python floats.
        let learningRate = Float(learningRate), momentum = Float(momentum), weightDecay = Float(weightDecay)
        let gradientScale = Float(1 - dampening), nesterov = nesterov

        guard self.momentum != 0 else {
            let step = SGDStep(
                learningRate: learningRate, momentum: 0, gradientScale: gradientScale, weightDecay: weightDecay,
                nesterov: nesterov, isFirstStep: false)
            parameter.withUniquelyOwnedBuffer {
                Kernels.backend.sgdStep(step, parameter: $0, gradient: gradient.buffer, momentumBuffer: nil)
            }
            return
        }

        // torch starts the buffer at the first (decayed) gradient itself, not at zero, so the first
        // step is a plain gradient step with no dampening applied.
        let isFirstStep = momentumBuffers[name] == nil
        if isFirstStep { momentumBuffers[name] = Tensor(zeros: parameter.shape) }
        let index = momentumBuffers.index(forKey: name)!
        checkStateShape(momentumBuffers.values[index], parameter, name: name, optimizer: "SGD")
        let step = SGDStep(
            learningRate: learningRate, momentum: momentum, gradientScale: gradientScale, weightDecay: weightDecay,
            nesterov: nesterov, isFirstStep: isFirstStep)
        parameter.withUniquelyOwnedBuffer { theta in
            momentumBuffers.values[index].withUniquelyOwnedBuffer { buffer in
                Kernels.backend.sgdStep(step, parameter: theta, gradient: gradient.buffer, momentumBuffer: buffer)
            }
        }
    }

    /// `state.<index>.momentum_buffer` for each parameter that has had a gradient (none without momentum).
    public func stateDict(parameterOrder: [String]) -> [String: Tensor] {
        flattenState(parameterOrder: parameterOrder, stateNames: momentumBuffers.keys, optimizer: "SGD") { name in
            momentumBuffers[name].map { [("momentum_buffer", $0)] }
        }
    }

    /// Restores the momentum buffers; throws on a missing, misshapen or unexpected entry.
    public func load(stateDict: [String: Tensor], parameters: [(name: String, tensor: Tensor)]) throws {
        let entryNames = momentum != 0 ? ["momentum_buffer"] : []
        let state = try unflattenState(stateDict, parameters: parameters, entryNames: entryNames)
        momentumBuffers = state.compactMapValues { $0["momentum_buffer"] }
    }
}
