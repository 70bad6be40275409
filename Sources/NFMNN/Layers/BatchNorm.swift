import NFMTensor

/// Batch normalisation over the channel axis of [N, C, …], as torch.nn.BatchNorm1d / BatchNorm2d.
///
/// Training mode normalises with batch statistics and updates the running ones with torch's
/// momentum rule: running = (1 − momentum)·running + momentum·batch, using the *unbiased* batch
/// variance for the running variance. Eval mode normalises with the running statistics.
public class BatchNorm: Module, UnaryLayer {
    /// γ, [C].
    @ParameterInfo public var weight: Tensor
    /// β, [C].
    @ParameterInfo public var bias: Tensor
    /// Running mean, [C], saved under PyTorch's key.
    @BufferInfo(key: "running_mean") public var runningMean: Tensor
    /// Running (unbiased) variance, [C].
    @BufferInfo(key: "running_var") public var runningVariance: Tensor
    /// Training batches seen, saved as torch's int64 `num_batches_tracked`.
    @CounterInfo(key: "num_batches_tracked") public var batchesTracked: Int
    /// Added to the variance for stability.
    public let epsilon: Float
    /// Weight of the newest batch in the running statistics.
    public let momentum: Float
    let expectedRank: ClosedRange<Int>

    init(channels: Int, epsilon: Float, momentum: Float, expectedRank: ClosedRange<Int>) {
        self.epsilon = epsilon
        self.momentum = momentum
        self.expectedRank = expectedRank
        super.init()
        self.weight = Tensor(ones: [channels])
        self.bias = Tensor(zeros: [channels])
        self.runningMean = Tensor(zeros: [channels])
        self.runningVariance = Tensor(ones: [channels])
    }

    /// Normalises `x`; in training mode also updates the running statistics.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(
            expectedRank.contains(x.rank),
            "\(type(of: self)): input rank \(x.rank) (shape \(x.shape)) is not in \(expectedRank)")
        guard isTraining else {
            return batchNormInference(
                x, weight: weight, bias: bias, runningMean: runningMean, runningVariance: runningVariance, epsilon: epsilon)
        }
        // As torch: one value per channel has no batch statistics (its variance would be 0 and the
        // output all β), which is always a mistake, such as a batch of one through a vector layer.
        precondition(
            x.shape[1] == 0 || x.scalarCount / x.shape[1] != 1,
            "\(type(of: self)): expected more than 1 value per channel when training, got input of shape \(x.shape)")
        let (output, mean, variance) = batchNormTraining(x, weight: weight, bias: bias, epsilon: epsilon)
        let count = Float(x.scalarCount / x.shape[1])
        let unbiased = variance * (count / Swift.max(count - 1, 1))
        runningMean = (1 - momentum) * runningMean + momentum * mean
        runningVariance = (1 - momentum) * runningVariance + momentum * unbiased
        batchesTracked += 1
        return output
    }
}

/// torch.nn.BatchNorm1d: [N, C] or [N, C, L].
public final class BatchNorm1d: BatchNorm {
    /// A layer for `channels` features (γ = 1, β = 0, running mean 0, variance 1).
    public init(_ channels: Int, epsilon: Float = 1e-5, momentum: Float = 0.1) {
        super.init(channels: channels, epsilon: epsilon, momentum: momentum, expectedRank: 2...3)
    }
}

/// torch.nn.BatchNorm2d: [N, C, H, W].
public final class BatchNorm2d: BatchNorm {
    /// A layer for `channels` feature maps (γ = 1, β = 0, running mean 0, variance 1).
    public init(_ channels: Int, epsilon: Float = 1e-5, momentum: Float = 0.1) {
        super.init(channels: channels, epsilon: epsilon, momentum: momentum, expectedRank: 4...4)
    }
}
