import Foundation
import NFMTensor

// Densities and divergences for the VAE (Kingma & Welling 2014) and the importance-weighted bound
// (Burda et al. 2016). Every function returns one value per example, [N], summed over the other axes.

/// Sums every axis but the first: [N, …] → [N].
func sumPerExample(_ x: Tensor) -> Tensor {
    x.rank == 1 ? x : x.flattened(fromAxis: 1).sum(alongAxis: 1)
}

/// log p(x | logits) of a Bernoulli likelihood, Σ x·log σ(l) + (1 − x)·log(1 − σ(l)), computed stably
/// as −BCE-with-logits. Targets in [0, 1] (grey levels are used as soft targets). [N].
public func bernoulliLogLikelihood(logits: Tensor, targets: Tensor) -> Tensor {
    -sumPerExample(binaryCrossEntropyWithLogits(logits: logits, targets: targets, reduction: .none))
}

/// KL(N(μ, σ²) ‖ N(0, I)) = ½ Σ (μ² + σ² − 1 − log σ²), with `logVariance` = log σ². [N].
public func gaussianKLToStandardNormal(mean: Tensor, logVariance: Tensor) -> Tensor {
    0.5 * sumPerExample(mean * mean + exp(logVariance) - 1 - logVariance)
}

/// KL(N(μ₁, σ₁²) ‖ N(μ₂, σ₂²)) for diagonal Gaussians:
/// ½ Σ (log σ₂² − log σ₁² + (σ₁² + (μ₁ − μ₂)²) / σ₂² − 1). [N].
public func gaussianKL(mean1: Tensor, logVariance1: Tensor, mean2: Tensor, logVariance2: Tensor) -> Tensor {
    let difference = mean1 - mean2
    return 0.5 * sumPerExample(logVariance2 - logVariance1 + (exp(logVariance1) + difference * difference) / exp(logVariance2) - 1)
}

/// log N(x; μ, diag(σ²)) = Σ −½ (log 2π + log σ² + (x − μ)² / σ²). [N].
public func gaussianLogDensity(_ x: Tensor, mean: Tensor, logVariance: Tensor) -> Tensor {
    let difference = x - mean
    let logTwoPi = Float(log(2 * Double.pi))
    return -0.5 * sumPerExample(logTwoPi + logVariance + difference * difference / exp(logVariance))
}

/// log N(x; 0, I). [N].
public func standardNormalLogDensity(_ x: Tensor) -> Tensor {
    let logTwoPi = Float(log(2 * Double.pi))
    return -0.5 * sumPerExample(logTwoPi + x * x)
}

/// log p(x) of 8-bit data under a discretised logistic per sub-pixel (Salimans et al. 2017,
/// PixelCNN++, with one mixture component): x ∈ [0, 1] is mapped to [−1, 1] and each of the 256
/// levels gets the logistic mass of its bin of width 2/255; the end bins take the tails. `mean` is
/// in [−1, 1] units and `logScale` is log s, clamped below at −7 as in PixelCNN++. [N].
public func discretizedLogisticLogLikelihood(_ x: Tensor, mean: Tensor, logScale: Tensor) -> Tensor {
    let centered = (2 * x - 1) - mean
    let clampedLogScale = clamp(logScale, min: -7)
    let inverseScale = exp(-clampedLogScale)
    let halfBin: Float = 1 / 255
    let plusIn = inverseScale * (centered + halfBin)
    let minusIn = inverseScale * (centered - halfBin)
    let cdfPlus = sigmoid(plusIn)
    let cdfMinus = sigmoid(minusIn)
    let logCdfPlus = plusIn - softplus(plusIn)  // log σ(plusIn), for the bin of level 0
    let logOneMinusCdfMinus = -softplus(minusIn)  // log(1 − σ(minusIn)), for level 255
    let cdfDelta = cdfPlus - cdfMinus
    let middleIn = inverseScale * centered
    // Where the bin mass underflows, use the density at the centre times the bin width.
    let logPdfMiddle = middleIn - clampedLogScale - 2 * softplus(middleIn)
    let logMass = `where`(
        cdfDelta .> Tensor(1e-5), log(clamp(cdfDelta, min: 1e-12)), logPdfMiddle - Float(log(127.5)))
    let scaled = 2 * x - 1
    let logProbability = `where`(scaled .< Tensor(-0.999), logCdfPlus, `where`(scaled .> Tensor(0.999), logOneMinusCdfMinus, logMass))
    return sumPerExample(logProbability)
}

/// log Σᵢ exp(xᵢ) along `axis`, stable: m + log Σ exp(x − m) with m the (constant) maximum.
public func logSumExp(_ x: Tensor, alongAxis axis: Int) -> Tensor {
    let maximum = x.detached().max(alongAxis: axis, keepDims: true)
    return (log(exp(x - maximum).sum(alongAxis: axis, keepDims: true)) + maximum).squeezed(axis: axis)
}
