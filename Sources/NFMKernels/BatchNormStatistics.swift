import Foundation

/// Batch statistics for batch norm in training mode, computed accurately: per channel, the mean, then
/// the biased variance as Σ(x − mean)² / M (two passes, never E[x²] − mean²). Each contiguous run is
/// summed in blocks of 64 values in 8 Float lanes (8 values per lane), and the block sums are added
/// in Double, so the relative error stays near Float's rounding unit however large the batch.
///
/// Why it exists: oneDNN 2.6's training-mode batch norm returned variances with relative errors
/// near 1e-5 on sparse post-ReLU channels (20–80× PyTorch's), which shifts every normalised value by
/// up to 1e-4 and which NFM's top-k attention then amplifies (ModelParityTests in NFMLayersTests).
/// The oneDNN backend computes the statistics here and lets oneDNN only normalise with them.
enum BatchNormStatistics {
    /// input [N, C, S] → mean [C] and biased variance [C] (overwritten).
    static func compute(
        _ g: BatchNormGeometry, input: UnsafePointer<Float>, mean: UnsafeMutablePointer<Float>,
        variance: UnsafeMutablePointer<Float>
    ) {
        let channels = g.channels
        guard channels > 0 else { return }
        let buffers = Buffers(input: input, mean: mean, variance: variance)
        let work = g.batch * channels * g.spatial
        let chunks = Swift.min(channels, 4 * ProcessInfo.processInfo.activeProcessorCount)
        if work < 1 << 16 || chunks < 2 {
            for channel in 0..<channels { computeChannel(g, channel, buffers) }
            return
        }
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            for channel in (chunk * channels / chunks)..<((chunk + 1) * channels / chunks) {
                computeChannel(g, channel, buffers)
            }
        }
    }

    /// The caller's buffers; each channel writes only its own mean and variance.
    private struct Buffers: @unchecked Sendable {
        let input: UnsafePointer<Float>
        let mean: UnsafeMutablePointer<Float>
        let variance: UnsafeMutablePointer<Float>
    }

    private static func computeChannel(_ g: BatchNormGeometry, _ channel: Int, _ buffers: Buffers) {
        let count = g.batch * g.spatial
        guard count > 0 else {
            buffers.mean[channel] = 0
            buffers.variance[channel] = 0
            return
        }
        var total = 0.0
        for n in 0..<g.batch { total += blockedSum(buffers.input + (n * g.channels + channel) * g.spatial, g.spatial) }
        let mean = total / Double(count)
        // Deviations from the Float nearest the mean; Σ(x − c)² / M − (mean − c)² is the variance exactly.
        let center = Float(mean)
        var squares = 0.0
        for n in 0..<g.batch {
            squares += blockedSumOfSquares(buffers.input + (n * g.channels + channel) * g.spatial, g.spatial, around: center)
        }
        let offset = mean - Double(center)
        buffers.mean[channel] = center
        buffers.variance[channel] = Float(Swift.max(squares / Double(count) - offset * offset, 0))
    }

    /// Σ x over `count` contiguous values.
    @inline(__always)
    private static func blockedSum(_ x: UnsafePointer<Float>, _ count: Int) -> Double {
        var total = 0.0
        var start = 0
        while start < count {
            let end = Swift.min(start + 64, count)
            var lanes = SIMD8<Float>()
            var i = start
            while i + 8 <= end {
                lanes += UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
                i += 8
            }
            var block = Double(lanes.sum())
            while i < end {
                block += Double(x[i])
                i += 1
            }
            total += block
            start = end
        }
        return total
    }

    /// Σ (x − center)² over `count` contiguous values.
    @inline(__always)
    private static func blockedSumOfSquares(_ x: UnsafePointer<Float>, _ count: Int, around center: Float) -> Double {
        var total = 0.0
        var start = 0
        let centers = SIMD8<Float>(repeating: center)
        while start < count {
            let end = Swift.min(start + 64, count)
            var lanes = SIMD8<Float>()
            var i = start
            while i + 8 <= end {
                let deviation = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self) - centers
                lanes += deviation * deviation
                i += 8
            }
            var block = Double(lanes.sum())
            while i < end {
                let deviation = Double(x[i] - center)
                block += deviation * deviation
                i += 1
            }
            total += block
            start = end
        }
        return total
    }
}
