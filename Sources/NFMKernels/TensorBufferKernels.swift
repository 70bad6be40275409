// The `TensorBuffer` forms of the kernels whose protocol requirements take raw memory (GEMM,
// convolution, pooling, batch norm): the ops of NFMTensor call these, so that the memory is
// reached here, inside NFMKernels, and nowhere above. Shapes are those of the requirements in
// ComputeBackend.swift; every buffer is dense and whole (offset 0).

/// The argmax positions that max pooling's forward saves for its backward, per output element
/// (Int32, as PyTorch's indices). Opaque above NFMKernels; the pullback only holds it.
public final class PoolSavedIndices: @unchecked Sendable {
    var indices: [Int32]
    init(count: Int) { indices = [Int32](repeating: 0, count: count) }
}

extension ComputeBackend {
    /// C [m, n] = op(A) · op(B) (alpha 1, beta 0), row strides lda, ldb and n.
    public func gemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
        a: TensorBuffer, lda: Int, b: TensorBuffer, ldb: Int, c: TensorBuffer
    ) {
        gemm(
            transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 1, a: a.pointer, lda: lda,
            b: b.pointer, ldb: ldb, beta: 0, c: c.pointer, ldc: n)
        withExtendedLifetime((a, b, c)) {}
    }

    /// `count` products C_i [m, n] = op(A_i) · op(B_i), matrix i at i·strideA (likewise B; C dense).
    public func batchedGemm(
        count: Int, transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
        a: TensorBuffer, lda: Int, strideA: Int, b: TensorBuffer, ldb: Int, strideB: Int, c: TensorBuffer
    ) {
        batchedGemm(
            count: count, transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 1,
            a: a.pointer, lda: lda, strideA: strideA, b: b.pointer, ldb: ldb, strideB: strideB,
            beta: 0, c: c.pointer, ldc: n, strideC: m * n)
        withExtendedLifetime((a, b, c)) {}
    }

    /// input [N, Cin, H, W], weight [Cout, Cin, kh, kw], bias [Cout]? → output [N, Cout, Ho, Wo].
    public func conv2dForward(
        _ g: Conv2dGeometry, input: TensorBuffer, weight: TensorBuffer, bias: TensorBuffer?, output: TensorBuffer
    ) {
        conv2dForward(g, input: input.pointer, weight: weight.pointer, bias: bias?.pointer, output: output.pointer)
        withExtendedLifetime((input, weight, bias, output)) {}
    }

    /// gradOutput [N, Cout, Ho, Wo], weight [Cout, Cin, kh, kw] → gradInput [N, Cin, H, W].
    public func conv2dBackwardData(_ g: Conv2dGeometry, gradOutput: TensorBuffer, weight: TensorBuffer, gradInput: TensorBuffer) {
        conv2dBackwardData(g, gradOutput: gradOutput.pointer, weight: weight.pointer, gradInput: gradInput.pointer)
        withExtendedLifetime((gradOutput, weight, gradInput)) {}
    }

    /// input [N, Cin, H, W], gradOutput [N, Cout, Ho, Wo] → gradWeight [Cout, Cin, kh, kw], gradBias [Cout]?.
    public func conv2dBackwardWeights(
        _ g: Conv2dGeometry, input: TensorBuffer, gradOutput: TensorBuffer, gradWeight: TensorBuffer, gradBias: TensorBuffer?
    ) {
        conv2dBackwardWeights(
            g, input: input.pointer, gradOutput: gradOutput.pointer, gradWeight: gradWeight.pointer, gradBias: gradBias?.pointer)
        withExtendedLifetime((input, gradOutput, gradWeight, gradBias)) {}
    }

    /// input [N, Cin, H, W], weight [Cin, Cout, kh, kw], bias [Cout]? → output [N, Cout, Ho, Wo].
    public func convTranspose2dForward(
        _ g: ConvTranspose2dGeometry, input: TensorBuffer, weight: TensorBuffer, bias: TensorBuffer?, output: TensorBuffer
    ) {
        convTranspose2dForward(g, input: input.pointer, weight: weight.pointer, bias: bias?.pointer, output: output.pointer)
        withExtendedLifetime((input, weight, bias, output)) {}
    }

    /// gradOutput [N, Cout, Ho, Wo], weight [Cin, Cout, kh, kw] → gradInput [N, Cin, H, W].
    public func convTranspose2dBackwardData(
        _ g: ConvTranspose2dGeometry, gradOutput: TensorBuffer, weight: TensorBuffer, gradInput: TensorBuffer
    ) {
        convTranspose2dBackwardData(g, gradOutput: gradOutput.pointer, weight: weight.pointer, gradInput: gradInput.pointer)
        withExtendedLifetime((gradOutput, weight, gradInput)) {}
    }

    /// input [N, Cin, H, W], gradOutput [N, Cout, Ho, Wo] → gradWeight [Cin, Cout, kh, kw], gradBias [Cout]?.
    public func convTranspose2dBackwardWeights(
        _ g: ConvTranspose2dGeometry, input: TensorBuffer, gradOutput: TensorBuffer, gradWeight: TensorBuffer,
        gradBias: TensorBuffer?
    ) {
        convTranspose2dBackwardWeights(
            g, input: input.pointer, gradOutput: gradOutput.pointer, gradWeight: gradWeight.pointer, gradBias: gradBias?.pointer)
        withExtendedLifetime((input, gradOutput, gradWeight, gradBias)) {}
    }

    /// input [N, C, H, W] → output [N, C, Ho, Wo]; returns the argmax positions for `.max`, nil for averages.
    public func pool2dForward(_ g: Pool2dGeometry, kind: PoolKind, input: TensorBuffer, output: TensorBuffer) -> PoolSavedIndices? {
        defer { withExtendedLifetime((input, output)) {} }
        guard case .max = kind else {
            pool2dForward(g, kind: kind, input: input.pointer, output: output.pointer, indices: nil)
            return nil
        }
        let saved = PoolSavedIndices(count: output.count)
        saved.indices.withUnsafeMutableBufferPointer { indices in
            pool2dForward(g, kind: kind, input: input.pointer, output: output.pointer, indices: indices.baseAddress!)
        }
        return saved
    }

    /// gradOutput [N, C, Ho, Wo] → gradInput [N, C, H, W], through the saved argmax positions for `.max`.
    public func pool2dBackward(
        _ g: Pool2dGeometry, kind: PoolKind, gradOutput: TensorBuffer, indices: PoolSavedIndices?, gradInput: TensorBuffer
    ) {
        if let indices {
            indices.indices.withUnsafeBufferPointer { saved in
                pool2dBackward(g, kind: kind, gradOutput: gradOutput.pointer, indices: saved.baseAddress!, gradInput: gradInput.pointer)
            }
        } else {
            pool2dBackward(g, kind: kind, gradOutput: gradOutput.pointer, indices: nil, gradInput: gradInput.pointer)
        }
        withExtendedLifetime((gradOutput, indices, gradInput)) {}
    }

    /// Training-mode batch norm: input/output [N, C, S]; gamma, beta, mean, variance (biased) [C].
    public func batchNormForwardTraining(
        _ g: BatchNormGeometry, input: TensorBuffer, gamma: TensorBuffer, beta: TensorBuffer, epsilon: Float,
        output: TensorBuffer, mean: TensorBuffer, variance: TensorBuffer
    ) {
        batchNormForwardTraining(
            g, input: input.pointer, gamma: gamma.pointer, beta: beta.pointer, epsilon: epsilon, output: output.pointer,
            mean: mean.pointer, variance: variance.pointer)
        withExtendedLifetime((input, gamma, beta, output, mean, variance)) {}
    }

    /// Eval-mode batch norm with the given (running) statistics: input/output [N, C, S]; the rest [C].
    public func batchNormForwardInference(
        _ g: BatchNormGeometry, input: TensorBuffer, gamma: TensorBuffer, beta: TensorBuffer, mean: TensorBuffer,
        variance: TensorBuffer, epsilon: Float, output: TensorBuffer
    ) {
        batchNormForwardInference(
            g, input: input.pointer, gamma: gamma.pointer, beta: beta.pointer, mean: mean.pointer,
            variance: variance.pointer, epsilon: epsilon, output: output.pointer)
        withExtendedLifetime((input, gamma, beta, mean, variance, output)) {}
    }

    /// Backward of training-mode batch norm: gradInput [N, C, S], gradGamma and gradBeta [C].
    public func batchNormBackward(
        _ g: BatchNormGeometry, input: TensorBuffer, gradOutput: TensorBuffer, gamma: TensorBuffer, mean: TensorBuffer,
        variance: TensorBuffer, epsilon: Float, gradInput: TensorBuffer, gradGamma: TensorBuffer, gradBeta: TensorBuffer
    ) {
        batchNormBackward(
            g, input: input.pointer, gradOutput: gradOutput.pointer, gamma: gamma.pointer, mean: mean.pointer,
            variance: variance.pointer, epsilon: epsilon, gradInput: gradInput.pointer, gradGamma: gradGamma.pointer,
            gradBeta: gradBeta.pointer)
        withExtendedLifetime((input, gradOutput, gamma, mean, variance, gradInput, gradGamma, gradBeta)) {}
    }
}
