import Foundation
import NFMKernels
import NFMTensor

/// Adam: Kingma & Ba, "Adam: A Method for Stochastic Optimization" (ICLR 2015), with optional
/// AMSGrad (Reddi, Kale & Kumar, "On the Convergence of Adam and Beyond", ICLR 2018) and L2 weight
/// decay added to the gradient: exactly `torch.optim.Adam` (single-tensor implementation).
///
/// With gradient g, parameter θ and step t (counted per parameter, from 1), per step:
///
///     g ← g + weightDecay · θ                 (Adam; AdamW decays θ instead, see `AdamW`)
///     m ← lerp(m, g, 1 − β₁)                  exp_avg
///     v ← β₂ · v + (1 − β₂) · g²              exp_avg_sq
///     v̂ ← max(v̂, v)                           max_exp_avg_sq, with AMSGrad; otherwise v̂ = v
///     θ ← θ − lr / (1 − β₁ᵗ) · m / (√v̂ / √(1 − β₂ᵗ) + ε)
///
/// As in torch, ε is added after dividing √v̂ by the bias correction, and scalar arithmetic (bias
/// corrections, 1 − β) is done in double precision and rounded once to Float where it meets the
/// tensors; hence `Double` hyper-parameters (from a Float β₂ = 0.999, 1 − β₂ would be off by
/// 1.3e-5 relative). State per parameter: `step`, `exp_avg`, `exp_avg_sq` and, with AMSGrad,
/// `max_exp_avg_sq`.
public class Adam: Optimizer {
    /// The step size.
    public var learningRate: Double
    /// The decay rates (β₁, β₂) of the first and second moment averages.
    public let betas: (Double, Double)
    /// The term added to the denominator for numerical stability.
    public let epsilon: Double
    /// The weight decay coefficient: an L2 penalty for `Adam`, decoupled for `AdamW`.
    public let weightDecay: Double
    /// Whether to use the AMSGrad variant (the running maximum of the second moment).
    public let amsgrad: Bool
    /// True for AdamW: θ ← θ · (1 − lr · weightDecay) instead of adding weightDecay · θ to the gradient.
    let decoupledWeightDecay: Bool

    /// torch's `state[p]` for one parameter.
    final class ParameterState {
        var step: Int
        var exponentialAverage: Tensor
        var exponentialAverageOfSquares: Tensor
        var maximumExponentialAverageOfSquares: Tensor?

        init(
            step: Int, exponentialAverage: Tensor, exponentialAverageOfSquares: Tensor,
            maximumExponentialAverageOfSquares: Tensor?
        ) {
            self.step = step
            self.exponentialAverage = exponentialAverage
            self.exponentialAverageOfSquares = exponentialAverageOfSquares
            self.maximumExponentialAverageOfSquares = maximumExponentialAverageOfSquares
        }
    }

    private var states: [String: ParameterState] = [:]

    /// An Adam optimizer; the defaults are torch's.
    public convenience init(
        learningRate: Double = 1e-3, betas: (Double, Double) = (0.9, 0.999), epsilon: Double = 1e-8,
        weightDecay: Double = 0, amsgrad: Bool = false
    ) {
        self.init(
            learningRate: learningRate, betas: betas, epsilon: epsilon, weightDecay: weightDecay, amsgrad: amsgrad,
            decoupledWeightDecay: false)
    }

    init(
        learningRate: Double, betas: (Double, Double), epsilon: Double, weightDecay: Double, amsgrad: Bool,
        decoupledWeightDecay: Bool
    ) {
        let optimizer = decoupledWeightDecay ? "AdamW" : "Adam"
        precondition(learningRate >= 0, "\(optimizer): invalid learning rate \(learningRate)")
        precondition(epsilon >= 0, "\(optimizer): invalid epsilon \(epsilon)")
        precondition((0..<1).contains(betas.0), "\(optimizer): invalid β₁ \(betas.0)")
        precondition((0..<1).contains(betas.1), "\(optimizer): invalid β₂ \(betas.1)")
        precondition(weightDecay >= 0, "\(optimizer): invalid weight decay \(weightDecay)")
        self.learningRate = learningRate
        self.betas = betas
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.amsgrad = amsgrad
        self.decoupledWeightDecay = decoupledWeightDecay
    }

    private var displayName: String { decoupledWeightDecay ? "AdamW" : "Adam" }

    /// Applies one Adam (or AdamW) step to `parameter` in place.
    public func update(_ parameter: inout Tensor, named name: String, gradient: Tensor) {
        checkGradientShape(parameter, gradient, name: name, optimizer: displayName)
        let state: ParameterState
        if let existing = states[name] {
            checkStateShape(existing.exponentialAverage, parameter, name: name, optimizer: displayName)
            state = existing
        } else {
            state = ParameterState(
                step: 0, exponentialAverage: Tensor(zeros: parameter.shape),
                exponentialAverageOfSquares: Tensor(zeros: parameter.shape),
                maximumExponentialAverageOfSquares: amsgrad ? Tensor(zeros: parameter.shape) : nil)
            states[name] = state
        }
        state.step += 1

        // Scalars, computed as torch does: in double precision, rounded once to Float where they
        // meet the tensors.
        let (beta1, beta2) = betas
        let stepCount = Double(state.step)
        let biasCorrection1 = 1 - pow(beta1, stepCount)
        let biasCorrection2 = 1 - pow(beta2, stepCount)
        let negativeStepSize = Float(-(learningRate / biasCorrection1))
        let biasCorrection2Root = Float(biasCorrection2.squareRoot())
        let decay = Float(1 - learningRate * weightDecay)
        let averageWeight = Float(1 - beta1), squareDecay = Float(beta2), squareWeight = Float(1 - beta2)
        let step = AdamStep(
            negativeStepSize: negativeStepSize, biasCorrection2Root: biasCorrection2Root, decay: decay,
            averageWeight: averageWeight, squareDecay: squareDecay, squareWeight: squareWeight, epsilon: Float(epsilon),
            weightDecay: Float(weightDecay), decoupled: decoupledWeightDecay)

        // One fused pass over θ, g, m, v (and v̂) in the backend: no temporaries.
        parameter.withUniquelyOwnedBuffer { theta in
            state.exponentialAverage.withUniquelyOwnedBuffer { m in
                state.exponentialAverageOfSquares.withUniquelyOwnedBuffer { v in
                    withOptionalUniqueBuffer(&state.maximumExponentialAverageOfSquares) { vMax in
                        Kernels.backend.adamStep(
                            step, parameter: theta, gradient: gradient.buffer, average: m, averageOfSquares: v,
                            maximumAverageOfSquares: vMax)
                    }
                }
            }
        }
    }

    private var entryNames: [String] {
        ["step", "exp_avg", "exp_avg_sq"] + (amsgrad ? ["max_exp_avg_sq"] : [])
    }

    /// `state.<index>.step`, `.exp_avg`, `.exp_avg_sq` (and `.max_exp_avg_sq`) for each parameter that has had a gradient.
    public func stateDict(parameterOrder: [String]) -> [String: Tensor] {
        flattenState(parameterOrder: parameterOrder, stateNames: states.keys, optimizer: displayName) { name in
            guard let state = states[name] else { return nil }
            var entries: [(name: String, tensor: Tensor)] = [
                (stepEntry, Tensor(Float(state.step))),
                ("exp_avg", state.exponentialAverage),
                ("exp_avg_sq", state.exponentialAverageOfSquares),
            ]
            if let maximum = state.maximumExponentialAverageOfSquares { entries.append(("max_exp_avg_sq", maximum)) }
            return entries
        }
    }

    /// Restores steps and moments; throws on a missing, misshapen or unexpected entry.
    public func load(stateDict: [String: Tensor], parameters: [(name: String, tensor: Tensor)]) throws {
        let loaded = try unflattenState(stateDict, parameters: parameters, entryNames: entryNames)
        states = loaded.mapValues { entries in
            ParameterState(
                step: Int(entries[stepEntry]!.item), exponentialAverage: entries["exp_avg"]!,
                exponentialAverageOfSquares: entries["exp_avg_sq"]!,
                maximumExponentialAverageOfSquares: entries["max_exp_avg_sq"])
        }
    }
}

/// AdamW: Adam with decoupled weight decay, Loshchilov & Hutter, "Decoupled Weight Decay
/// Regularization" (ICLR 2019): exactly `torch.optim.AdamW` (single-tensor implementation).
///
/// Identical to `Adam` except that weight decay shrinks the parameter directly,
/// θ ← θ · (1 − lr · weightDecay), before the Adam step, instead of entering the gradient and the
/// moment estimates as an L2 term. The state has the same names as Adam's.
public final class AdamW: Adam {
    /// An AdamW optimizer; the defaults are torch's (note weight decay 0.01).
    public init(
        learningRate: Double = 1e-3, betas: (Double, Double) = (0.9, 0.999), epsilon: Double = 1e-8,
        weightDecay: Double = 1e-2, amsgrad: Bool = false
    ) {
        super.init(
            learningRate: learningRate, betas: betas, epsilon: epsilon, weightDecay: weightDecay, amsgrad: amsgrad,
            decoupledWeightDecay: true)
    }
}
