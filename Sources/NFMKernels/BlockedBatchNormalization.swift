// Batch normalisation on activations that stay in oneDNN's blocked layout between a convolution and
// the next ([N][C/b][S][b]: b channels interleaved per pixel, nChw8c on AVX2, nChw16c on AVX-512), so
// that conv → ReLU → batch norm → conv converts nothing to NCHW (TensorLayout, BENCHMARKS.md).
//
// The same formulas as BatchNormStatistics and BatchNormalization, with the same care for accuracy:
// per channel the mean, then Σ(x − c)² about the Float c nearest it (never E[x²] − mean²), summed in
// Float partials of at most 8 values that move into a Double total. Only the order of the sums differs
// (here each lane is a channel and a partial holds 8 pixels), so results agree with the plain path to
// Float rounding, not bit for bit.

import Dispatch
import Foundation

enum BlockedBatchNormalization {
    /// Channels per block (b) and the caller's buffers.
    struct Operands: @unchecked Sendable {
        var block: Int
        var input: UnsafePointer<Float>
        var gradOutput: UnsafePointer<Float>? = nil
        var output: UnsafeMutablePointer<Float>? = nil
        var gamma: UnsafePointer<Float>
        var beta: UnsafePointer<Float>? = nil
        var mean: UnsafeMutablePointer<Float>
        var variance: UnsafeMutablePointer<Float>
        var gradGamma: UnsafeMutablePointer<Float>? = nil
        var gradBeta: UnsafeMutablePointer<Float>? = nil
    }

    /// Training mode: mean and biased variance [C] from the batch (overwritten), then output.
    static func forwardTraining(_ g: BatchNormGeometry, _ operands: Operands, epsilon: Float) {
        forEachBlock(g, operands.block) { block in
            statistics(g, operands, block: block)
            normalise(g, operands, block: block, epsilon: epsilon)
        }
    }

    /// With given statistics (inference, or the running ones).
    static func forwardInference(_ g: BatchNormGeometry, _ operands: Operands, epsilon: Float) {
        forEachBlock(g, operands.block) { block in normalise(g, operands, block: block, epsilon: epsilon) }
    }

    /// gradBeta = Σ dy, gradGamma = Σ dy·x̂, gradInput = γ/σ · (dy − gradBeta/M − x̂·gradGamma/M), written to
    /// `operands.output`.
    static func backward(_ g: BatchNormGeometry, _ operands: Operands, epsilon: Float) {
        forEachBlock(g, operands.block) { block in backwardBlock(g, operands, block: block, epsilon: epsilon) }
    }

    // MARK: One block of b channels

    /// The b values of pixel s of image n in channel block `block`.
    @inline(__always)
    private static func offset(_ g: BatchNormGeometry, _ b: Int, n: Int, block: Int, pixel s: Int) -> Int {
        ((n * (g.channels / b) + block) * g.spatial + s) * b
    }

    /// Σ over the block's pixels of `term`, per lane, in Float partials of 8 pixels moved into Doubles:
    /// the BlockedSum of BatchNormStatistics with lanes as channels. `term` gets the offset of a
    /// pixel's b values and the index of one of its 8-lane vectors, and returns that vector's terms.
    @inline(__always)
    private static func laneSums(
        _ g: BatchNormGeometry, _ b: Int, block: Int, _ term: (_ base: Int, _ vector: Int) -> SIMD8<Float>
    ) -> [Double] {
        let vectors = b / 8
        var totals = [SIMD8<Double>](repeating: .zero, count: vectors)
        var partials = [SIMD8<Float>](repeating: .zero, count: vectors)
        var pending = 0
        for n in 0..<g.batch {
            for s in 0..<g.spatial {
                let base = offset(g, b, n: n, block: block, pixel: s)
                for v in 0..<vectors { partials[v] += term(base, v) }
                pending += 1
                if pending == 8 {
                    for v in 0..<vectors {
                        totals[v] += SIMD8<Double>(partials[v])
                        partials[v] = .zero
                    }
                    pending = 0
                }
            }
        }
        var result: [Double] = []
        for v in 0..<vectors {
            let total = totals[v] + SIMD8<Double>(partials[v])
            for lane in 0..<8 { result.append(total[lane]) }
        }
        return result
    }

    @inline(__always)
    private static func load(_ pointer: UnsafePointer<Float>, _ index: Int) -> SIMD8<Float> {
        UnsafeRawPointer(pointer + index).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always)
    private static func store(_ value: SIMD8<Float>, _ pointer: UnsafeMutablePointer<Float>, _ index: Int) {
        UnsafeMutableRawPointer(pointer + index).storeBytes(of: value, as: SIMD8<Float>.self)
    }

    /// Eight lanes of a per-channel array, from lane 8·v of the block.
    @inline(__always)
    private static func lanes(_ values: [Float], _ v: Int) -> SIMD8<Float> {
        SIMD8<Float>(values[(8 * v)..<(8 * v + 8)])
    }

    private static func statistics(_ g: BatchNormGeometry, _ o: Operands, block: Int) {
        let b = o.block, count = Double(g.batch * g.spatial), x = o.input
        guard count > 0 else {
            for lane in 0..<b { o.mean[block * b + lane] = 0; o.variance[block * b + lane] = 0 }
            return
        }
        let means = laneSums(g, b, block: block) { base, v in load(x, base + 8 * v) }.map { $0 / count }
        let centers = means.map { Float($0) }
        let centerVectors = (0..<(b / 8)).map { lanes(centers, $0) }
        let squares = laneSums(g, b, block: block) { base, v in
            let deviation = load(x, base + 8 * v) - centerVectors[v]
            return deviation * deviation
        }
        for lane in 0..<b {
            let offset = means[lane] - Double(centers[lane])
            o.mean[block * b + lane] = centers[lane]
            o.variance[block * b + lane] = Float(Swift.max(squares[lane] / count - offset * offset, 0))
        }
    }

    private static func normalise(_ g: BatchNormGeometry, _ o: Operands, block: Int, epsilon: Float) {
        let b = o.block, x = o.input, y = o.output!, beta = o.beta!
        var scales = [Float](repeating: 0, count: b), shifts = scales
        for lane in 0..<b {
            let c = block * b + lane
            scales[lane] = o.gamma[c] / (o.variance[c] + epsilon).squareRoot()
            shifts[lane] = beta[c] - o.mean[c] * scales[lane]
        }
        let scaleVectors = (0..<(b / 8)).map { lanes(scales, $0) }, shiftVectors = (0..<(b / 8)).map { lanes(shifts, $0) }
        for n in 0..<g.batch {
            for s in 0..<g.spatial {
                let base = offset(g, b, n: n, block: block, pixel: s)
                for v in 0..<(b / 8) {
                    // x · scale + shift, unfused, as the plain loop.
                    store(load(x, base + 8 * v) * scaleVectors[v] + shiftVectors[v], y, base + 8 * v)
                }
            }
        }
    }

    private static func backwardBlock(_ g: BatchNormGeometry, _ o: Operands, block: Int, epsilon: Float) {
        let b = o.block, x = o.input, dy = o.gradOutput!, dx = o.output!
        let count = Float(g.batch * g.spatial)
        let means = (0..<b).map { o.mean[block * b + $0] }
        let meanVectors = (0..<(b / 8)).map { lanes(means, $0) }
        let gradientSums = laneSums(g, b, block: block) { base, v in load(dy, base + 8 * v) }
        let productSums = laneSums(g, b, block: block) { base, v in
            load(dy, base + 8 * v) * (load(x, base + 8 * v) - meanVectors[v])
        }
        var scales = [Float](repeating: 0, count: b), meanGradients = scales, normalisedScales = scales
        for lane in 0..<b {
            let c = block * b + lane
            let inverseDeviation = 1 / (o.variance[c] + epsilon).squareRoot()
            let gradientOfGamma = Float(productSums[lane]) * inverseDeviation
            o.gradBeta![c] = Float(gradientSums[lane])
            o.gradGamma![c] = gradientOfGamma
            scales[lane] = o.gamma[c] * inverseDeviation
            meanGradients[lane] = Float(gradientSums[lane]) / count
            normalisedScales[lane] = gradientOfGamma / count * inverseDeviation
        }
        let scaleVectors = (0..<(b / 8)).map { lanes(scales, $0) }
        let meanGradientVectors = (0..<(b / 8)).map { lanes(meanGradients, $0) }
        let normalisedScaleVectors = (0..<(b / 8)).map { lanes(normalisedScales, $0) }
        for n in 0..<g.batch {
            for s in 0..<g.spatial {
                let base = offset(g, b, n: n, block: block, pixel: s)
                for v in 0..<(b / 8) {
                    let i = base + 8 * v
                    let deviation = load(x, i) - meanVectors[v]
                    store(
                        scaleVectors[v] * (load(dy, i) - meanGradientVectors[v] - deviation * normalisedScaleVectors[v]), dx, i)
                }
            }
        }
    }

    /// Runs `body` for every channel block, spread over the cores when there is enough work.
    private static func forEachBlock(_ g: BatchNormGeometry, _ b: Int, _ body: @Sendable (Int) -> Void) {
        let blocks = g.channels / b
        let chunks = Swift.min(blocks, 4 * ComputeThreads.cores)
        if g.batch * g.channels * g.spatial < 1 << 15 || chunks < 2 {
            for block in 0..<blocks { body(block) }
            return
        }
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            for block in (chunk * blocks / chunks)..<((chunk + 1) * blocks / chunks) { body(block) }
        }
    }
}
