import CVectorKernels
import Foundation

/// Batch statistics for batch norm in training mode, computed accurately: per channel, the mean, then
/// the biased variance as Σ(x − mean)² / M (two passes, never E[x²] − mean²). Values are summed in
/// 8 Float lanes that move into a Double total every 64 values (`BlockedSum`), so the relative error
/// stays near Float's rounding unit however large the batch.
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
        let chunks = Swift.min(channels, 4 * ComputeThreads.cores)
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
        // Pass 1: the mean.
        let mean = sumOverChannel(g, channel, buffers, squaresAbout: nil) / Double(count)
        // Pass 2: squared deviations from the Float nearest the mean, c; then
        // variance = Σ(x − c)² / M − (mean − c)² exactly.
        let center = Float(mean)
        let squares = sumOverChannel(g, channel, buffers, squaresAbout: center)
        let offset = mean - Double(center)
        buffers.mean[channel] = center
        buffers.variance[channel] = Float(Swift.max(squares / Double(count) - offset * offset, 0))
    }

    /// Σ x (or, given a center c, Σ (x − c)²) over one channel's values, image by image, in a
    /// `BlockedSum`; on the compiled path, the same sum in its C twin.
    private static func sumOverChannel(
        _ g: BatchNormGeometry, _ channel: Int, _ buffers: Buffers, squaresAbout center: Float?
    ) -> Double {
        if let vector = Kernels.vectorKernels {
            var sum = NFMBlockedSum()
            for n in 0..<g.batch {
                let run = buffers.input + (n * g.channels + channel) * g.spatial
                vector.blockedSumAdd(&sum, run, g.spatial, center != nil, center ?? 0)
            }
            // BlockedSum.value: the lanes still pending, then the total.
            let (l0, l1, l2, l3, l4, l5, l6, l7) = sum.lanes
            return sum.total + Double(SIMD8<Float>(l0, l1, l2, l3, l4, l5, l6, l7).sum())
        }
        var sum = BlockedSum()
        for n in 0..<g.batch {
            let run = buffers.input + (n * g.channels + channel) * g.spatial
            var i = 0
            if let center {
                let centers = SIMD8<Float>(repeating: center)
                while i + 8 <= g.spatial {
                    let deviation = UnsafeRawPointer(run + i).loadUnaligned(as: SIMD8<Float>.self) - centers
                    sum.add(deviation * deviation)
                    i += 8
                }
                while i < g.spatial {
                    let deviation = run[i] - center
                    sum.add(deviation * deviation)
                    i += 1
                }
            } else {
                while i + 8 <= g.spatial {
                    sum.add(UnsafeRawPointer(run + i).loadUnaligned(as: SIMD8<Float>.self))
                    i += 8
                }
                while i < g.spatial {
                    sum.add(run[i])
                    i += 1
                }
            }
        }
        return sum.value
    }
}

/// A sum of Float values: vectors go into 8 Float lanes, which move into a Double total every
/// 8 vectors (64 values), so no Float partial sum ever holds more than 8 values; single values go
/// into the Double total directly.
private struct BlockedSum {
    private var total = 0.0
    private var lanes = SIMD8<Float>()
    private var pending = 0

    @inline(__always)
    mutating func add(_ values: SIMD8<Float>) {
        lanes += values
        pending += 1
        if pending == 8 { flush() }
    }

    @inline(__always)
    mutating func add(_ value: Float) { total += Double(value) }

    /// The sum of everything added.
    var value: Double {
        var copy = self
        copy.flush()
        return copy.total
    }

    @inline(__always)
    private mutating func flush() {
        total += Double(lanes.sum())
        lanes = SIMD8<Float>()
        pending = 0
    }
}
