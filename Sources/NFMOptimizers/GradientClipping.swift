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
    for gradient in gradients.values {
        gradient.withUnsafeBufferPointer { sumOfSquares += sumOfSquaresInDouble($0) }
    }
    let totalNorm = Float(sumOfSquares.squareRoot())
    let coefficient = maxNorm / (totalNorm + 1e-6)
    // Written as "not ≥ 1" so that a NaN or infinite norm scales, and so poisons, every gradient,
    // as torch's clamp-then-multiply does; the training loop then sees the non-finite values.
    if !(coefficient >= 1) {
        for index in gradients.indices {
            gradients.values[index].withUnsafeMutableBufferPointer { g in
                for i in g.indices { g[i] *= coefficient }
            }
        }
    }
    return totalNorm
}

/// Σ x² in double precision: 6.9M float32 squares summed in float would lose digits. Four
/// independent partial sums let the additions overlap instead of waiting on one another.
func sumOfSquaresInDouble(_ values: UnsafeBufferPointer<Float>) -> Double {
    var partial: (Double, Double, Double, Double) = (0, 0, 0, 0)
    let blocked = values.count & ~3
    var i = 0
    while i < blocked {
        let a = Double(values[i]), b = Double(values[i + 1]), c = Double(values[i + 2]), d = Double(values[i + 3])
        partial.0 += a * a
        partial.1 += b * b
        partial.2 += c * c
        partial.3 += d * d
        i += 4
    }
    for j in blocked..<values.count { partial.0 += Double(values[j]) * Double(values[j]) }
    return (partial.0 + partial.1) + (partial.2 + partial.3)
}
