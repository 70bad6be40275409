import NFMKernels

// Batch normalisation through the backend, and dropout.

private func batchNormGeometry(_ x: Tensor, _ parameter: Tensor, op: String) -> BatchNormGeometry {
    precondition(x.rank >= 2, "\(op): input must be [N, C, …], got \(x.shape)")
    precondition(parameter.shape == [x.shape[1]], "\(op): input \(x.shape) has \(x.shape[1]) channels but weight is \(parameter.shape)")
    return BatchNormGeometry(batch: x.shape[0], channels: x.shape[1], spatial: x.shape[2...].reduce(1, *))
}

/// Training-mode batch norm over [N, C, …] with batch statistics. Returns the output and the batch
/// mean and *biased* variance per channel (the caller updates running statistics with them, as
/// torch does with momentum and the unbiased variance).
public func batchNormTraining(
    _ x: Tensor, weight: Tensor, bias: Tensor, epsilon: Float = 1e-5
) -> (output: Tensor, mean: Tensor, variance: Tensor) {
    let geometry = batchNormGeometry(x, weight, op: "batchNorm")
    precondition(bias.shape == weight.shape, "batchNorm: bias \(bias.shape) does not match weight \(weight.shape)")
    let mean = Tensor(zeros: [geometry.channels]), variance = Tensor(zeros: [geometry.channels])
    let input = x.detached(), gamma = weight.detached()
    let output = Tensor.computed(x.shape) {
        Kernels.backend.batchNormForwardTraining(
            geometry, input: input.storage, gamma: gamma.storage, beta: bias.storage, epsilon: epsilon, output: $0,
            mean: mean.storage, variance: variance.storage)
    }
    let recorded = output.recorded("batchNorm", inputs: [x, weight, bias]) { g in
        let gradGamma = Tensor(zeros: gamma.shape), gradBeta = Tensor(zeros: gamma.shape)
        let gradInput = Tensor.computed(input.shape) {
            Kernels.backend.batchNormBackward(
                geometry, input: input.storage, gradOutput: g.storage, gamma: gamma.storage, mean: mean.storage,
                variance: variance.storage, epsilon: epsilon, gradInput: $0, gradGamma: gradGamma.storage,
                gradBeta: gradBeta.storage)
        }
        return [gradInput, gradGamma, gradBeta]
    }
    return (recorded, mean, variance)
}

/// Eval-mode batch norm over [N, C, …] with given (running) statistics.
public func batchNormInference(
    _ x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor, runningVariance: Tensor, epsilon: Float = 1e-5
) -> Tensor {
    let geometry = batchNormGeometry(x, weight, op: "batchNorm")
    precondition(
        bias.shape == weight.shape && runningMean.shape == weight.shape && runningVariance.shape == weight.shape,
        "batchNorm: bias \(bias.shape), running mean \(runningMean.shape) and variance \(runningVariance.shape) must match weight \(weight.shape)")
    let output = Tensor.computed(x.shape) {
        Kernels.backend.batchNormForwardInference(
            geometry, input: x.storage, gamma: weight.storage, beta: bias.storage, mean: runningMean.storage,
            variance: runningVariance.storage, epsilon: epsilon, output: $0)
    }
    // In eval mode the statistics are constants: y = (x − μ)·γ/σ + β is affine in x, γ and β.
    let input = x.detached(), gamma = weight.detached()
    let (mean, variance) = (runningMean.detached(), runningVariance.detached())
    let channelShape = [1, weight.shape[0]] + Array(repeating: 1, count: x.rank - 2)
    let reduceAxes = [0] + Array(2..<x.rank)
    return output.recorded("batchNormInference", inputs: [x, weight, bias]) { g in
        let inverseDeviation = (1 / sqrt(variance + epsilon)).reshaped(to: channelShape)
        let normalized = (input - mean.reshaped(to: channelShape)) * inverseDeviation
        return [
            g * (gamma.reshaped(to: channelShape) * inverseDeviation),
            (g * normalized).sum(alongAxes: reduceAxes),
            g.sum(alongAxes: reduceAxes),
        ]
    }
}

/// Inverted dropout (torch.nn.functional.dropout in training): zeroes each element with
/// `probability` and scales the rest by 1/(1 − p), drawing the mask from `generator`.
public func dropout(_ x: Tensor, probability: Float, using generator: inout SeededGenerator) -> Tensor {
    precondition(probability >= 0 && probability < 1, "dropout: probability \(probability) must be in [0, 1)")
    if probability == 0 { return x }
    let keepScale = 1 / (1 - probability)
    let mask = Tensor.randomUniform(x.shape, using: &generator).applying(.keepMask(probability: probability, scale: keepScale))
    return x * mask
}
