// Losses, as torch.nn.functional: NLL, cross-entropy, MSE, BCE with logits, Huber and smooth-L1.

/// How a loss combines per-element values (torch's `reduction`).
public enum Reduction: Sendable {
    /// The mean over all elements (the default in torch).
    case mean
    /// The sum over all elements.
    case sum
    /// No reduction: one value per element.
    case none
}

extension Tensor {
    func reduced(_ reduction: Reduction) -> Tensor {
        switch reduction {
        case .mean: return mean()
        case .sum: return sum()
        case .none: return self
        }
    }
}

/// Negative log-likelihood of `targets` under `logProbabilities` [N, C] (torch.nn.functional.nll_loss).
public func nllLoss(_ logProbabilities: Tensor, targets: [Int], reduction: Reduction = .mean) -> Tensor {
    precondition(logProbabilities.rank == 2, "nllLoss: input must be [N, C], got \(logProbabilities.shape)")
    precondition(
        targets.count == logProbabilities.shape[0],
        "nllLoss: input \(logProbabilities.shape) and targets [\(targets.count)] differ in batch size")
    let picked = logProbabilities.gathering(alongAxis: 1, indices: Tensor(shape: [targets.count, 1], scalars: targets.map(Float.init)))
    return (-picked.reshaped(to: [targets.count])).reduced(reduction)
}

/// Cross-entropy of class `targets` given unnormalised `logits` [N, C] (torch.nn.functional.cross_entropy).
public func crossEntropy(logits: Tensor, targets: [Int], reduction: Reduction = .mean) -> Tensor {
    nllLoss(logSoftmax(logits, alongAxis: 1), targets: targets, reduction: reduction)
}

/// Mean squared error (torch.nn.functional.mse_loss).
public func mseLoss(_ prediction: Tensor, _ target: Tensor, reduction: Reduction = .mean) -> Tensor {
    precondition(prediction.shape == target.shape, "mseLoss: prediction \(prediction.shape) and target \(target.shape) differ")
    let difference = prediction - target
    return (difference * difference).reduced(reduction)
}

/// Binary cross-entropy on logits, computed stably as max(x, 0) − x·y + log(1 + e^−|x|)
/// (torch.nn.functional.binary_cross_entropy_with_logits).
public func binaryCrossEntropyWithLogits(logits: Tensor, targets: Tensor, reduction: Reduction = .mean) -> Tensor {
    precondition(logits.shape == targets.shape, "binaryCrossEntropyWithLogits: logits \(logits.shape) and targets \(targets.shape) differ")
    return (relu(logits) - logits * targets + softplus(-abs(logits))).reduced(reduction)
}

/// Huber loss with threshold `delta` (torch.nn.functional.huber_loss): ½d² for |d| < δ, else δ(|d| − ½δ).
public func huberLoss(_ prediction: Tensor, _ target: Tensor, delta: Float = 1, reduction: Reduction = .mean) -> Tensor {
    precondition(prediction.shape == target.shape, "huberLoss: prediction \(prediction.shape) and target \(target.shape) differ")
    let difference = prediction - target
    let magnitude = abs(difference)
    let quadratic = 0.5 * difference * difference
    let linear = delta * (magnitude - 0.5 * delta)
    return `where`(magnitude .< Tensor(delta), quadratic, linear).reduced(reduction)
}

/// Smooth-L1 loss with threshold `beta` (torch.nn.functional.smooth_l1_loss): Huber divided by β.
public func smoothL1Loss(_ prediction: Tensor, _ target: Tensor, beta: Float = 1, reduction: Reduction = .mean) -> Tensor {
    huberLoss(prediction, target, delta: beta, reduction: reduction) / beta
}
