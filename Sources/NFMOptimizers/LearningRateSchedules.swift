import Foundation

/// A learning rate as a function of the step (or epoch) count, in the closed form of a
/// `torch.optim.lr_scheduler` scheduler.
///
/// `learningRate(at: t)` is what torch's `scheduler.get_last_lr()` returns after `t` calls of
/// `scheduler.step()`; `t = 0` is the rate before the first call. The training loop assigns it:
/// `optimizer.learningRate = schedule.learningRate(at: epoch)`. Rates are `Double`, as torch's
/// Python floats and the optimizers' hyper-parameters.
public protocol LearningRateSchedule: Sendable {
    /// The learning rate after `step` scheduler steps.
    func learningRate(at step: Int) -> Double
}

/// Multiplies the rate by `gamma` every `stepSize` steps: `torch.optim.lr_scheduler.StepLR`,
/// lr = base · gamma^⌊t / stepSize⌋.
public struct StepLR: LearningRateSchedule {
    /// The rate at step 0.
    public var baseLearningRate: Double
    /// The number of steps between decays.
    public var stepSize: Int
    /// The multiplicative decay factor.
    public var gamma: Double

    /// A step decay schedule; torch's default `gamma` is 0.1.
    public init(baseLearningRate: Double, stepSize: Int, gamma: Double = 0.1) {
        precondition(stepSize > 0, "StepLR: step size must be positive, got \(stepSize)")
        self.baseLearningRate = baseLearningRate
        self.stepSize = stepSize
        self.gamma = gamma
    }

    /// base · gamma^⌊step / stepSize⌋.
    public func learningRate(at step: Int) -> Double {
        baseLearningRate * pow(gamma, Double(step / stepSize))
    }
}

/// Cosine annealing from the base rate down to `minimumLearningRate` over `annealingSteps` steps
/// (Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts", ICLR 2017, without
/// restarts): `torch.optim.lr_scheduler.CosineAnnealingLR`,
/// lr = η_min + (base − η_min) · (1 + cos(π t / T_max)) / 2.
///
/// Past `annealingSteps` the cosine continues and the rate rises again, as torch's does.
public struct CosineAnnealingLR: LearningRateSchedule {
    /// The rate at step 0.
    public var baseLearningRate: Double
    /// torch's `T_max`: the number of steps to reach the minimum.
    public var annealingSteps: Int
    /// torch's `eta_min`: the rate reached after `annealingSteps`.
    public var minimumLearningRate: Double

    /// A cosine annealing schedule; torch's default minimum is 0.
    public init(baseLearningRate: Double, annealingSteps: Int, minimumLearningRate: Double = 0) {
        precondition(annealingSteps > 0, "CosineAnnealingLR: annealing steps must be positive, got \(annealingSteps)")
        self.baseLearningRate = baseLearningRate
        self.annealingSteps = annealingSteps
        self.minimumLearningRate = minimumLearningRate
    }

    /// η_min + (base − η_min) · (1 + cos(π · step / annealingSteps)) / 2.
    public func learningRate(at step: Int) -> Double {
        let phase = Double.pi * Double(step) / Double(annealingSteps)
        return minimumLearningRate + (baseLearningRate - minimumLearningRate) * (1 + cos(phase)) / 2
    }
}

/// Scales the base rate by a factor moving linearly from `startFactor` to `endFactor` over
/// `totalSteps` steps, then constant: `torch.optim.lr_scheduler.LinearLR`. With `endFactor` 1 this
/// is the linear warm-up of Goyal et al., "Accurate, Large Minibatch SGD" (arXiv:1706.02677, 2017).
public struct LinearLR: LearningRateSchedule {
    /// The rate the factors multiply.
    public var baseLearningRate: Double
    /// The factor at step 0.
    public var startFactor: Double
    /// The factor from `totalSteps` on.
    public var endFactor: Double
    /// torch's `total_iters`: the number of steps to go from the start to the end factor.
    public var totalSteps: Int

    /// A linear schedule; the defaults are torch's (start 1/3, end 1, 5 steps).
    public init(baseLearningRate: Double, startFactor: Double = 1.0 / 3, endFactor: Double = 1, totalSteps: Int = 5) {
        precondition(startFactor > 0 && startFactor <= 1, "LinearLR: start factor must be in (0, 1], got \(startFactor)")
        precondition(endFactor >= 0 && endFactor <= 1, "LinearLR: end factor must be in [0, 1], got \(endFactor)")
        precondition(totalSteps > 0, "LinearLR: total steps must be positive, got \(totalSteps)")
        self.baseLearningRate = baseLearningRate
        self.startFactor = startFactor
        self.endFactor = endFactor
        self.totalSteps = totalSteps
    }

    /// base · (start + (end − start) · min(step, totalSteps) / totalSteps).
    public func learningRate(at step: Int) -> Double {
        let progress = Double(min(step, totalSteps)) / Double(totalSteps)
        return baseLearningRate * (startFactor + (endFactor - startFactor) * progress)
    }
}

/// The base rate times a factor given by a function of the step: `torch.optim.lr_scheduler.LambdaLR`.
/// Any warm-up or decay rule without a dedicated type fits here.
public struct LambdaLR: LearningRateSchedule {
    /// The rate the factor multiplies.
    public var baseLearningRate: Double
    /// The multiplicative factor for a step (torch's `lr_lambda`).
    public var factor: @Sendable (Int) -> Double

    /// A schedule of `baseLearningRate · factor(step)`.
    public init(baseLearningRate: Double, factor: @escaping @Sendable (Int) -> Double) {
        self.baseLearningRate = baseLearningRate
        self.factor = factor
    }

    /// base · factor(step).
    public func learningRate(at step: Int) -> Double { baseLearningRate * factor(step) }
}
