// Batch normalisation for the oneDNN backend, in Swift, parallel over channels.
//
// oneDNN 2.6 has only its reference `ncsp_bnorm` for plain NCHW data. Measured on this machine
// (load average 8) on 64×48×1444, training forward: 234 ms per call, about one sixth of the whole
// baseline train step; these loops take a fraction of that. Training-mode statistics come from
// BatchNormStatistics; the normalisation and the backward are here. Each channel's N·S values (at
// most a few hundred KiB here) stay in the core's cache between passes.

import CVectorKernels
import Dispatch
import Foundation

/// Batch norm over [N, C, S] with the formulas of the reference backend (and of PyTorch).
enum BatchNormalization {
    /// input [N, C, S] → output with the given statistics.
    static func forwardInference(
        _ g: BatchNormGeometry, input: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
        beta: UnsafePointer<Float>, mean: UnsafePointer<Float>, variance: UnsafePointer<Float>,
        epsilon: Float, output: UnsafeMutablePointer<Float>
    ) {
        let (batch, channels, spatial) = (g.batch, g.channels, g.spatial)
        nonisolated(unsafe) let input = input, output = output
        nonisolated(unsafe) let gamma = gamma, beta = beta, mean = mean, variance = variance
        let vector = Kernels.vectorKernels
        forEachChannel(g) { c in
            let scale = gamma[c] / (variance[c] + epsilon).squareRoot()
            let shift = beta[c] - mean[c] * scale
            for n in 0..<batch {
                let source = input + (n * channels + c) * spatial, destination = output + (n * channels + c) * spatial
                if let vector {
                    vector.scaleShift(source, destination, spatial, scale, shift)
                } else {
                    for s in 0..<spatial { destination[s] = source[s] * scale + shift }
                }
            }
        }
    }

    /// With M = N·S, x̂ = (x − mean)/σ, σ = √(variance + ε), per channel: gradBeta = Σ dy,
    /// gradGamma = Σ dy·x̂, gradInput = γ/σ · (dy − gradBeta/M − x̂·gradGamma/M).
    static func backward(
        _ g: BatchNormGeometry, input: UnsafePointer<Float>, gradOutput: UnsafePointer<Float>,
        gamma: UnsafePointer<Float>, mean: UnsafePointer<Float>, variance: UnsafePointer<Float>,
        epsilon: Float, gradInput: UnsafeMutablePointer<Float>,
        gradGamma: UnsafeMutablePointer<Float>, gradBeta: UnsafeMutablePointer<Float>
    ) {
        let (batch, channels, spatial) = (g.batch, g.channels, g.spatial)
        let count = Float(batch * spatial)
        nonisolated(unsafe) let input = input, gradOutput = gradOutput, gradInput = gradInput
        nonisolated(unsafe) let gradGamma = gradGamma, gradBeta = gradBeta
        nonisolated(unsafe) let gamma = gamma, mean = mean, variance = variance
        let vector = Kernels.vectorKernels
        forEachChannel(g) { c in
            let channelMean = mean[c]
            let inverseDeviation = 1 / (variance[c] + epsilon).squareRoot()
            var sumOfGradients = 0.0, sumOfProducts = 0.0
            for n in 0..<batch {
                let offset = (n * channels + c) * spatial
                if let vector {
                    var (gradients, products): (Float, Float) = (0, 0)
                    vector.gradientSums(gradOutput + offset, input + offset, spatial, channelMean, &gradients, &products)
                    sumOfGradients += Double(gradients)
                    sumOfProducts += Double(products)
                } else {
                    sumOfGradients += Double(sum(gradOutput + offset, spatial))
                    sumOfProducts += Double(sumOfProductsWithDeviations(gradOutput + offset, input + offset, spatial, from: channelMean))
                }
            }
            // Σ dy·x̂ = Σ dy·(x − mean) / σ.
            let gradientOfGamma = Float(sumOfProducts) * inverseDeviation
            gradBeta[c] = Float(sumOfGradients)
            gradGamma[c] = gradientOfGamma
            let scale = gamma[c] * inverseDeviation
            let meanGradient = Float(sumOfGradients) / count
            let normalisedScale = gradientOfGamma / count * inverseDeviation  // times (x − mean) gives x̂·gradGamma/M
            for n in 0..<batch {
                let offset = (n * channels + c) * spatial
                let dy = gradOutput + offset, x = input + offset, dx = gradInput + offset
                if let vector {
                    vector.batchNormInputGradient(dy, x, dx, spatial, scale, meanGradient, channelMean, normalisedScale)
                    continue
                }
                for s in 0..<spatial {
                    dx[s] = scale * (dy[s] - meanGradient - (x[s] - channelMean) * normalisedScale)
                }
            }
        }
    }

    // MARK: Vectorised reductions (eight lanes; Swift does not reassociate float sums by itself)

    @inline(__always)
    private static func sum(_ values: UnsafePointer<Float>, _ count: Int) -> Float {
        var lanes = SIMD8<Float>()
        var i = 0
        let raw = UnsafeRawPointer(values)
        while i + 8 <= count {
            lanes += raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
        var total = lanes.sum()
        while i < count {
            total += values[i]
            i += 1
        }
        return total
    }

    @inline(__always)
    private static func sumOfProductsWithDeviations(
        _ gradients: UnsafePointer<Float>, _ values: UnsafePointer<Float>, _ count: Int, from center: Float
    ) -> Float {
        var lanes = SIMD8<Float>()
        let centers = SIMD8<Float>(repeating: center)
        var i = 0
        let rawGradients = UnsafeRawPointer(gradients), rawValues = UnsafeRawPointer(values)
        while i + 8 <= count {
            let deviation = rawValues.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) - centers
            lanes += rawGradients.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) * deviation
            i += 8
        }
        var total = lanes.sum()
        while i < count {
            total += gradients[i] * (values[i] - center)
            i += 1
        }
        return total
    }

    /// Runs `body` for every channel, spread over the cores when there is enough work.
    private static func forEachChannel(_ g: BatchNormGeometry, _ body: @Sendable (Int) -> Void) {
        let chunks = min(g.channels, 4 * ComputeThreads.cores)
        if g.batch * g.channels * g.spatial < 1 << 15 || chunks < 2 {
            for c in 0..<g.channels { body(c) }
            return
        }
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            for c in (chunk * g.channels / chunks)..<((chunk + 1) * g.channels / chunks) { body(c) }
        }
    }
}
