import NFMKernels
import NFMTensor

/// Rescales `gradients` in place so that their global L2 norm is at most `maxNorm`, and returns the
/// norm they had before: `torch.nn.utils.clip_grad_norm_` with the 2-norm.
///
/// The total norm is taken over all the gradients together, as if concatenated into one vector. When
/// it exceeds `maxNorm`, every gradient is multiplied by `maxNorm / (total + 1e-6)`; the 1e-6 keeps
/// the clipped norm just under `maxNorm`, as torch's does. Gradients absent from the dictionary
/// (parameters without a gradient) take no part, as torch skips `grad is None`.
@discardableResult
public func clipGradientNorm(_ gradients: inout [String: Tensor], maxNorm: Float) -> Float {
    var sumOfSquares: Double = 0
    for gradient in gradients.values { sumOfSquares += Kernels.backend.sumOfSquares(gradient.buffer) }
    let totalNorm = Float(sumOfSquares.squareRoot())
    let coefficient = maxNorm / (totalNorm + 1e-6)
    // Written as "not ≥ 1" so that a NaN or infinite norm scales, and so poisons, every gradient,
    // as torch's clamp-then-multiply does; the training loop then sees the non-finite values.
    if !(coefficient >= 1) {
        for index in gradients.indices { gradients.values[index] = gradients.values[index] * coefficient }
    }
    return totalNorm
}
