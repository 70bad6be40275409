// Plain Swift loops for every kernel, written to be read, not to be fast. Tests check the oneDNN
// backend against these on odd shapes, and these against hand-computed values. Each kernel spells
// out the textbook definition with the loop order of the formula; sums that are formed in one place
// accumulate in Double so that the reference is more accurate than the path it checks.

/// The obviously-correct backend: nested loops straight from each operation's definition
/// (PyTorch semantics) for GEMM, convolution, pooling and batch norm, and the portable primitives
/// (PortablePrimitives.swift) for the rest. Slow; meant for tests, for checking new backends, and
/// for running a whole model when a fast path is in doubt (`NFM_BACKEND=reference`).
public struct ReferenceBackend: ComputeBackend {
    /// Creates the (stateless) reference backend.
    public init() {}

    /// "reference".
    public var name: String { "reference" }

    // MARK: Matrix products

    /// C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C, row-major with row strides lda, ldb, ldc.
    /// As in BLAS, beta = 0 means C is not read (so NaN or garbage in C does not leak through).
    public func gemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
        alpha: Float, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        // op(A)[i, p]: A is stored m×k, or k×m when transposed.
        func elementOfA(_ i: Int, _ p: Int) -> Float { transposeA ? a[p * lda + i] : a[i * lda + p] }
        // op(B)[p, j]: B is stored k×n, or n×k when transposed.
        func elementOfB(_ p: Int, _ j: Int) -> Float { transposeB ? b[j * ldb + p] : b[p * ldb + j] }
        for i in 0..<m {
            for j in 0..<n {
                var sum = 0.0
                for p in 0..<k { sum += Double(elementOfA(i, p)) * Double(elementOfB(p, j)) }
                let product = Float(sum) * alpha
                c[i * ldc + j] = beta == 0 ? product : product + beta * c[i * ldc + j]
            }
        }
    }

    /// `count` independent gemms: matrix i of A, B, C starts at a + i·strideA, b + i·strideB, c + i·strideC.
    public func batchedGemm(
        count: Int, transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
        alpha: Float, a: UnsafePointer<Float>, lda: Int, strideA: Int,
        b: UnsafePointer<Float>, ldb: Int, strideB: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, strideC: Int
    ) {
        for index in 0..<count {
            gemm(
                transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                alpha: alpha, a: a + index * strideA, lda: lda,
                b: b + index * strideB, ldb: ldb,
                beta: beta, c: c + index * strideC, ldc: ldc)
        }
    }

    // MARK: Convolution

    /// input [N, Cin, H, W], weight [Cout, Cin, kh, kw], bias [Cout]? → output [N, Cout, Ho, Wo].
    /// output[n, o, y, x] = bias[o] + Σ_{i, ky, kx} input[n, i, y·s − p + ky, x·s − p + kx] · weight[o, i, ky, kx],
    /// where positions outside the input read as zero.
    public func conv2dForward(
        _ g: Conv2dGeometry, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>
    ) {
        let layout = ConvolutionLayout(g)
        for n in 0..<g.batch {
            for o in 0..<g.outputChannels {
                for y in 0..<g.outputHeight {
                    for x in 0..<g.outputWidth {
                        var sum = Double(bias?[o] ?? 0)
                        for i in 0..<g.inputChannels {
                            for ky in 0..<g.kernelHeight {
                                for kx in 0..<g.kernelWidth {
                                    let inputY = y * g.strideHeight - g.paddingHeight + ky
                                    let inputX = x * g.strideWidth - g.paddingWidth + kx
                                    guard layout.inputContains(inputY, inputX) else { continue }
                                    sum += Double(input[layout.input(n, i, inputY, inputX)])
                                        * Double(weight[layout.weight(o, i, ky, kx)])
                                }
                            }
                        }
                        output[layout.output(n, o, y, x)] = Float(sum)
                    }
                }
            }
        }
    }

    /// gradOutput [N, Cout, Ho, Wo], weight [Cout, Cin, kh, kw] → gradInput [N, Cin, H, W].
    /// Each forward product input·weight sends gradOutput·weight back to the input position it read.
    public func conv2dBackwardData(
        _ g: Conv2dGeometry, gradOutput: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        gradInput: UnsafeMutablePointer<Float>
    ) {
        let layout = ConvolutionLayout(g)
        gradInput.update(repeating: 0, count: layout.inputCount)
        for n in 0..<g.batch {
            for o in 0..<g.outputChannels {
                for y in 0..<g.outputHeight {
                    for x in 0..<g.outputWidth {
                        let gradient = gradOutput[layout.output(n, o, y, x)]
                        for i in 0..<g.inputChannels {
                            for ky in 0..<g.kernelHeight {
                                for kx in 0..<g.kernelWidth {
                                    let inputY = y * g.strideHeight - g.paddingHeight + ky
                                    let inputX = x * g.strideWidth - g.paddingWidth + kx
                                    guard layout.inputContains(inputY, inputX) else { continue }
                                    gradInput[layout.input(n, i, inputY, inputX)] +=
                                        gradient * weight[layout.weight(o, i, ky, kx)]
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// input [N, Cin, H, W], gradOutput [N, Cout, Ho, Wo] → gradWeight [Cout, Cin, kh, kw], gradBias [Cout]?.
    /// gradWeight[o, i, ky, kx] = Σ_{n, y, x} gradOutput[n, o, y, x] · input[n, i, y·s − p + ky, x·s − p + kx];
    /// gradBias[o] = Σ_{n, y, x} gradOutput[n, o, y, x].
    public func conv2dBackwardWeights(
        _ g: Conv2dGeometry, input: UnsafePointer<Float>, gradOutput: UnsafePointer<Float>,
        gradWeight: UnsafeMutablePointer<Float>, gradBias: UnsafeMutablePointer<Float>?
    ) {
        let layout = ConvolutionLayout(g)
        for o in 0..<g.outputChannels {
            for i in 0..<g.inputChannels {
                for ky in 0..<g.kernelHeight {
                    for kx in 0..<g.kernelWidth {
                        var sum = 0.0
                        for n in 0..<g.batch {
                            for y in 0..<g.outputHeight {
                                for x in 0..<g.outputWidth {
                                    let inputY = y * g.strideHeight - g.paddingHeight + ky
                                    let inputX = x * g.strideWidth - g.paddingWidth + kx
                                    guard layout.inputContains(inputY, inputX) else { continue }
                                    sum += Double(gradOutput[layout.output(n, o, y, x)])
                                        * Double(input[layout.input(n, i, inputY, inputX)])
                                }
                            }
                        }
                        gradWeight[layout.weight(o, i, ky, kx)] = Float(sum)
                    }
                }
            }
        }
        if let gradBias {
            sumPerChannel(gradOutput, batch: g.batch, channels: g.outputChannels, spatial: g.outputHeight * g.outputWidth, into: gradBias)
        }
    }

    // MARK: Transposed convolution
    //
    // A transposed convolution is the adjoint of the convolution that maps its output back to its
    // input (`ConvTranspose2dGeometry.adjointConvolution`, same weight buffer): its forward is that
    // convolution's backward-data pass, its backward-data is that convolution's forward, and its
    // weight gradient is that convolution's with input and output gradient swapped.

    /// input [N, Cin, H, W], weight [Cin, Cout, kh, kw], bias [Cout]? → output [N, Cout, Ho, Wo].
    /// Each input element scatters input·weight[i, o] to output position (y·s − p + ky, x·s − p + kx);
    /// positions that fall outside the output are dropped.
    public func convTranspose2dForward(
        _ g: ConvTranspose2dGeometry, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>
    ) {
        conv2dBackwardData(g.adjointConvolution, gradOutput: input, weight: weight, gradInput: output)
        guard let bias else { return }
        let spatial = g.outputHeight * g.outputWidth
        for n in 0..<g.batch {
            for o in 0..<g.outputChannels {
                let plane = output + (n * g.outputChannels + o) * spatial
                for index in 0..<spatial { plane[index] += bias[o] }
            }
        }
    }

    /// gradOutput [N, Cout, Ho, Wo], weight [Cin, Cout, kh, kw] → gradInput [N, Cin, H, W]
    /// (a plain convolution of gradOutput).
    public func convTranspose2dBackwardData(
        _ g: ConvTranspose2dGeometry, gradOutput: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        gradInput: UnsafeMutablePointer<Float>
    ) {
        conv2dForward(g.adjointConvolution, input: gradOutput, weight: weight, bias: nil, output: gradInput)
    }

    /// input [N, Cin, H, W], gradOutput [N, Cout, Ho, Wo] → gradWeight [Cin, Cout, kh, kw], gradBias [Cout]?.
    /// gradWeight[i, o, ky, kx] = Σ_{n, y, x} input[n, i, y, x] · gradOutput[n, o, y·s − p + ky, x·s − p + kx];
    /// gradBias[o] = Σ_{n, y, x} gradOutput[n, o, y, x] over the whole output.
    public func convTranspose2dBackwardWeights(
        _ g: ConvTranspose2dGeometry, input: UnsafePointer<Float>, gradOutput: UnsafePointer<Float>,
        gradWeight: UnsafeMutablePointer<Float>, gradBias: UnsafeMutablePointer<Float>?
    ) {
        conv2dBackwardWeights(g.adjointConvolution, input: gradOutput, gradOutput: input, gradWeight: gradWeight, gradBias: nil)
        if let gradBias {
            sumPerChannel(gradOutput, batch: g.batch, channels: g.outputChannels, spatial: g.outputHeight * g.outputWidth, into: gradBias)
        }
    }

    /// sums[c] = Σ_{n, s} values[n, c, s] (in Double), for bias gradients.
    private func sumPerChannel(_ values: UnsafePointer<Float>, batch: Int, channels: Int, spatial: Int, into sums: UnsafeMutablePointer<Float>) {
        for channel in 0..<channels {
            var sum = 0.0
            for n in 0..<batch {
                let plane = values + (n * channels + channel) * spatial
                for index in 0..<spatial { sum += Double(plane[index]) }
            }
            sums[channel] = Float(sum)
        }
    }

    // MARK: Pooling

    /// input [N, C, H, W] → output [N, C, Ho, Wo], indices [N, C, Ho, Wo] for `.max`.
    /// Max: the window's largest value, and its flat position h·W + w in the (n, c) plane; padding never
    /// wins; ties go to the first in row-major window order, and NaN wins (as PyTorch's CPU kernel).
    /// Average: window sum divided by kh·kw (padding counted) or by the in-bounds count (excluded).
    public func pool2dForward(
        _ g: Pool2dGeometry, kind: PoolKind, input: UnsafePointer<Float>,
        output: UnsafeMutablePointer<Float>, indices: PoolIndices?
    ) {
        g.checkPadding("pool2dForward")
        for plane in 0..<(g.batch * g.channels) {
            let inputPlane = input + plane * g.inputHeight * g.inputWidth
            for y in 0..<g.outputHeight {
                for x in 0..<g.outputWidth {
                    let window = PoolWindow(g, y, x)
                    let outputIndex = plane * g.outputHeight * g.outputWidth + y * g.outputWidth + x
                    switch kind {
                    case .max:
                        guard let indices else { preconditionFailure("pool2dForward: .max needs indices, \(g)") }
                        var best = -Float.infinity
                        var bestPosition = window.rows.lowerBound * g.inputWidth + window.columns.lowerBound
                        for h in window.rows {
                            for w in window.columns {
                                let value = inputPlane[h * g.inputWidth + w]
                                if value > best || value.isNaN {
                                    best = value
                                    bestPosition = h * g.inputWidth + w
                                }
                            }
                        }
                        output[outputIndex] = best
                        indices[outputIndex] = Int32(bestPosition)
                    case .average(let countIncludePadding):
                        var sum = 0.0
                        for h in window.rows {
                            for w in window.columns { sum += Double(inputPlane[h * g.inputWidth + w]) }
                        }
                        let divisor = countIncludePadding ? g.kernelHeight * g.kernelWidth : window.count
                        output[outputIndex] = Float(sum / Double(divisor))
                    }
                }
            }
        }
    }

    /// gradOutput [N, C, Ho, Wo] (+ indices for `.max`) → gradInput [N, C, H, W].
    /// Max: each gradient goes to the saved argmax. Average: each gradient is shared equally (by the
    /// forward's divisor) among the window's in-bounds positions. Overlapping windows add up.
    public func pool2dBackward(
        _ g: Pool2dGeometry, kind: PoolKind, gradOutput: UnsafePointer<Float>,
        indices: UnsafePointer<Int32>?, gradInput: UnsafeMutablePointer<Float>
    ) {
        g.checkPadding("pool2dBackward")
        let planeSize = g.inputHeight * g.inputWidth
        gradInput.update(repeating: 0, count: g.batch * g.channels * planeSize)
        for plane in 0..<(g.batch * g.channels) {
            for y in 0..<g.outputHeight {
                for x in 0..<g.outputWidth {
                    let outputIndex = plane * g.outputHeight * g.outputWidth + y * g.outputWidth + x
                    let gradient = gradOutput[outputIndex]
                    switch kind {
                    case .max:
                        guard let indices else { preconditionFailure("pool2dBackward: .max needs indices, \(g)") }
                        gradInput[plane * planeSize + Int(indices[outputIndex])] += gradient
                    case .average(let countIncludePadding):
                        let window = PoolWindow(g, y, x)
                        let divisor = countIncludePadding ? g.kernelHeight * g.kernelWidth : window.count
                        for h in window.rows {
                            for w in window.columns {
                                gradInput[plane * planeSize + h * g.inputWidth + w] += gradient / Float(divisor)
                            }
                        }
                    }
                }
            }
        }
    }

    // MARK: Batch normalisation

    /// input [N, C, S], gamma, beta [C] → output [N, C, S], mean, variance [C] (biased: divide by N·S).
    /// output = gamma · (input − mean) / √(variance + ε) + beta, per channel.
    public func batchNormForwardTraining(
        _ g: BatchNormGeometry, input: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
        beta: UnsafePointer<Float>, epsilon: Float, output: UnsafeMutablePointer<Float>,
        mean: UnsafeMutablePointer<Float>, variance: UnsafeMutablePointer<Float>
    ) {
        for c in 0..<g.channels {
            let statistics = channelStatistics(g, input, channel: c)
            mean[c] = Float(statistics.mean)
            variance[c] = Float(statistics.variance)
        }
        batchNormForwardInference(
            g, input: input, gamma: gamma, beta: beta, mean: mean, variance: variance,
            epsilon: epsilon, output: output)
    }

    /// input [N, C, S], gamma, beta, mean, variance [C] → output [N, C, S], with the given statistics.
    public func batchNormForwardInference(
        _ g: BatchNormGeometry, input: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
        beta: UnsafePointer<Float>, mean: UnsafePointer<Float>, variance: UnsafePointer<Float>,
        epsilon: Float, output: UnsafeMutablePointer<Float>
    ) {
        for n in 0..<g.batch {
            for c in 0..<g.channels {
                let inverseDeviation = 1 / (Double(variance[c]) + Double(epsilon)).squareRoot()
                for s in 0..<g.spatial {
                    let index = (n * g.channels + c) * g.spatial + s
                    let normalised = (Double(input[index]) - Double(mean[c])) * inverseDeviation
                    output[index] = Float(Double(gamma[c]) * normalised + Double(beta[c]))
                }
            }
        }
    }

    /// input, gradOutput [N, C, S], gamma, mean, variance [C] → gradInput [N, C, S], gradGamma, gradBeta [C].
    /// With M = N·S, x̂ = (x − mean)/σ and σ = √(variance + ε), per channel:
    /// gradBeta = Σ dy, gradGamma = Σ dy·x̂, gradInput = gamma/(M·σ) · (M·dy − gradBeta − x̂·gradGamma).
    public func batchNormBackward(
        _ g: BatchNormGeometry, input: UnsafePointer<Float>, gradOutput: UnsafePointer<Float>,
        gamma: UnsafePointer<Float>, mean: UnsafePointer<Float>, variance: UnsafePointer<Float>,
        epsilon: Float, gradInput: UnsafeMutablePointer<Float>,
        gradGamma: UnsafeMutablePointer<Float>, gradBeta: UnsafeMutablePointer<Float>
    ) {
        let count = Double(g.batch * g.spatial)
        for c in 0..<g.channels {
            let deviation = (Double(variance[c]) + Double(epsilon)).squareRoot()
            func index(_ n: Int, _ s: Int) -> Int { (n * g.channels + c) * g.spatial + s }
            func normalised(_ n: Int, _ s: Int) -> Double { (Double(input[index(n, s)]) - Double(mean[c])) / deviation }
            var sumOfGradients = 0.0
            var sumOfGradientsTimesNormalised = 0.0
            for n in 0..<g.batch {
                for s in 0..<g.spatial {
                    sumOfGradients += Double(gradOutput[index(n, s)])
                    sumOfGradientsTimesNormalised += Double(gradOutput[index(n, s)]) * normalised(n, s)
                }
            }
            gradBeta[c] = Float(sumOfGradients)
            gradGamma[c] = Float(sumOfGradientsTimesNormalised)
            let scale = Double(gamma[c]) / (count * deviation)
            for n in 0..<g.batch {
                for s in 0..<g.spatial {
                    let term = count * Double(gradOutput[index(n, s)]) - sumOfGradients
                        - normalised(n, s) * sumOfGradientsTimesNormalised
                    gradInput[index(n, s)] = Float(scale * term)
                }
            }
        }
    }

    /// Mean and biased variance of channel `channel` over the batch and spatial positions (two passes).
    private func channelStatistics(
        _ g: BatchNormGeometry, _ input: UnsafePointer<Float>, channel: Int
    ) -> (mean: Double, variance: Double) {
        let count = Double(g.batch * g.spatial)
        var sum = 0.0
        for n in 0..<g.batch {
            for s in 0..<g.spatial { sum += Double(input[(n * g.channels + channel) * g.spatial + s]) }
        }
        let mean = sum / count
        var sumOfSquares = 0.0
        for n in 0..<g.batch {
            for s in 0..<g.spatial {
                let difference = Double(input[(n * g.channels + channel) * g.spatial + s]) - mean
                sumOfSquares += difference * difference
            }
        }
        return (mean, sumOfSquares / count)
    }
}

// MARK: - Index helpers (flat row-major offsets, named so that the loops above read like the formulas)

/// Flat offsets into the buffers of a convolution.
private struct ConvolutionLayout {
    let g: Conv2dGeometry
    init(_ g: Conv2dGeometry) { self.g = g }
    var inputCount: Int { g.batch * g.inputChannels * g.inputHeight * g.inputWidth }
    func inputContains(_ y: Int, _ x: Int) -> Bool { 0 <= y && y < g.inputHeight && 0 <= x && x < g.inputWidth }
    /// input [N, Cin, H, W]
    func input(_ n: Int, _ i: Int, _ y: Int, _ x: Int) -> Int {
        ((n * g.inputChannels + i) * g.inputHeight + y) * g.inputWidth + x
    }
    /// output [N, Cout, Ho, Wo]
    func output(_ n: Int, _ o: Int, _ y: Int, _ x: Int) -> Int {
        ((n * g.outputChannels + o) * g.outputHeight + y) * g.outputWidth + x
    }
    /// weight [Cout, Cin, kh, kw]
    func weight(_ o: Int, _ i: Int, _ ky: Int, _ kx: Int) -> Int {
        ((o * g.inputChannels + i) * g.kernelHeight + ky) * g.kernelWidth + kx
    }
}

extension ConvTranspose2dGeometry {
    /// The convolution this transposed convolution is the adjoint of: from this one's output
    /// [N, Cout, Ho, Wo] to its input [N, Cin, H, W], with the same kernel, stride and padding, whose
    /// [Cout', Cin', kh, kw] weight is this one's [Cin, Cout, kh, kw] buffer. Its output size comes out
    /// as H because the output padding is smaller than the stride.
    var adjointConvolution: Conv2dGeometry {
        Conv2dGeometry(
            batch: batch, inputChannels: outputChannels, inputHeight: outputHeight, inputWidth: outputWidth,
            outputChannels: inputChannels, kernelHeight: kernelHeight, kernelWidth: kernelWidth,
            strideHeight: strideHeight, strideWidth: strideWidth, paddingHeight: paddingHeight, paddingWidth: paddingWidth)
    }
}

extension Pool2dGeometry {
    /// PyTorch's rule (padding at most half the kernel) guarantees that every window overlaps the
    /// input, so that a max always exists and an average never divides by zero.
    func checkPadding(_ function: String) {
        precondition(
            2 * paddingHeight <= kernelHeight && 2 * paddingWidth <= kernelWidth,
            "\(function): padding must be at most half the kernel, \(self)")
    }
}

/// The in-bounds part of the pooling window of output position (y, x): padding is never read.
struct PoolWindow {
    /// Input rows the window covers, clipped to the input.
    let rows: Range<Int>
    /// Input columns the window covers, clipped to the input.
    let columns: Range<Int>
    init(_ g: Pool2dGeometry, _ y: Int, _ x: Int) {
        let top = y * g.strideHeight - g.paddingHeight
        let left = x * g.strideWidth - g.paddingWidth
        rows = max(top, 0)..<min(top + g.kernelHeight, g.inputHeight)
        columns = max(left, 0)..<min(left + g.kernelWidth, g.inputWidth)
    }
    /// Number of in-bounds positions (the divisor of average pooling that excludes padding).
    var count: Int { rows.count * columns.count }
}
