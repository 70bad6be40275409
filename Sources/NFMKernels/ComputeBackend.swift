// The backend boundary (DESIGN.md §1): every op in NFMTensor reaches the hardware through this one
// narrow protocol. The oneDNN backend is the production path; the reference backend is plain Swift
// loops, used by tests to check the fast path and to run whole models (Tests/NFMLayersTests/
// BackendParityTests.swift). A later CUDA backend would be a third conformance, loaded with dlopen,
// without touching the ops.
//
// Tensor memory is a `TensorBuffer`, a handle that the backend owns; nothing above this module
// reaches its elements except through the buffer's named host-copy helpers. The ops of NFMTensor
// are written in the primitives below, about twenty, in the spirit of tinygrad's small op set:
//   elementwise   fill, unary, binary, ternary (broadcasting; the fused pullbacks are operations too)
//   movement      copy (strided: permute, expand, concatenate, slice, pad), gather, scatterAdd
//                 (indexing, torch.gather, nearest resize, max and top-k pullbacks)
//   reductions    sum, maximum (with argmax), softmax and log-softmax with their backward,
//                 sumOfSquares, allFinite
//   network       gemm, batchedGemm, conv2d and convTranspose2d (forward, data, weights), pool2d,
//                 batch norm (training, inference, backward), the fused NFM attention and its backward
//   optimizers    sgdStep, adamStep, rmspropStep (one fused pass each, torch.optim semantics)
// The elementwise primitives, the movement, reductions, the NFM attention and the optimizer steps
// have one portable implementation in Swift loops (PortablePrimitives.swift), which both CPU
// backends share; gemm, convolution, pooling and batch norm differ (oneDNN, or textbook loops).
//
// Conventions for every function below:
// - All buffers are Float32, dense, row-major (C order). Activations are NCHW, conv weights
//   [out, in, kh, kw] (PyTorch), conv-transpose weights [in, out, kh, kw] (PyTorch).
// - Output buffers are overwritten, never accumulated into, unless `beta` says otherwise (gemm).
// - Pointers never alias unless stated.

/// Geometry of a 2-D convolution (groups = 1, dilation = 1, symmetric padding), as torch.nn.Conv2d.
public struct Conv2dGeometry: Hashable, Sendable {
    /// Number of images (N).
    public var batch: Int
    /// Channels of the input (Cin).
    public var inputChannels: Int
    /// Input height (H).
    public var inputHeight: Int
    /// Input width (W).
    public var inputWidth: Int
    /// Channels of the output (Cout).
    public var outputChannels: Int
    /// Kernel height (kh).
    public var kernelHeight: Int
    /// Kernel width (kw).
    public var kernelWidth: Int
    /// Vertical stride.
    public var strideHeight: Int
    /// Horizontal stride.
    public var strideWidth: Int
    /// Zero padding added above and below.
    public var paddingHeight: Int
    /// Zero padding added left and right.
    public var paddingWidth: Int

    /// Memberwise initialiser; stride defaults to 1 and padding to 0 where a default is given.
    public init(
        batch: Int, inputChannels: Int, inputHeight: Int, inputWidth: Int,
        outputChannels: Int, kernelHeight: Int, kernelWidth: Int,
        strideHeight: Int = 1, strideWidth: Int = 1, paddingHeight: Int = 0, paddingWidth: Int = 0
    ) {
        self.batch = batch
        self.inputChannels = inputChannels
        self.inputHeight = inputHeight
        self.inputWidth = inputWidth
        self.outputChannels = outputChannels
        self.kernelHeight = kernelHeight
        self.kernelWidth = kernelWidth
        self.strideHeight = strideHeight
        self.strideWidth = strideWidth
        self.paddingHeight = paddingHeight
        self.paddingWidth = paddingWidth
    }

    /// floor((H + 2p - k) / s) + 1, as PyTorch.
    public var outputHeight: Int { (inputHeight + 2 * paddingHeight - kernelHeight) / strideHeight + 1 }
    /// floor((W + 2p - k) / s) + 1, as PyTorch.
    public var outputWidth: Int { (inputWidth + 2 * paddingWidth - kernelWidth) / strideWidth + 1 }
}

/// Geometry of a 2-D transposed convolution, as torch.nn.ConvTranspose2d (groups = 1, dilation = 1).
/// Output size: (H - 1)·s − 2p + k + outputPadding.
public struct ConvTranspose2dGeometry: Hashable, Sendable {
    /// Number of images (N).
    public var batch: Int
    /// Channels of the input (Cin).
    public var inputChannels: Int
    /// Input height (H).
    public var inputHeight: Int
    /// Input width (W).
    public var inputWidth: Int
    /// Channels of the output (Cout).
    public var outputChannels: Int
    /// Kernel height (kh).
    public var kernelHeight: Int
    /// Kernel width (kw).
    public var kernelWidth: Int
    /// Vertical stride.
    public var strideHeight: Int
    /// Horizontal stride.
    public var strideWidth: Int
    /// Zero padding added above and below.
    public var paddingHeight: Int
    /// Zero padding added left and right.
    public var paddingWidth: Int
    /// Extra rows at the bottom of the output (torch `output_padding`): a strided convolution maps
    /// several input sizes to one output size, and this picks which one the transpose produces.
    public var outputPaddingHeight: Int
    /// Extra columns added at the right of the output (torch `output_padding`).
    public var outputPaddingWidth: Int

    /// Memberwise initialiser; stride defaults to 1 and padding to 0 where a default is given.
    public init(
        batch: Int, inputChannels: Int, inputHeight: Int, inputWidth: Int,
        outputChannels: Int, kernelHeight: Int, kernelWidth: Int,
        strideHeight: Int = 1, strideWidth: Int = 1, paddingHeight: Int = 0, paddingWidth: Int = 0,
        outputPaddingHeight: Int = 0, outputPaddingWidth: Int = 0
    ) {
        self.batch = batch
        self.inputChannels = inputChannels
        self.inputHeight = inputHeight
        self.inputWidth = inputWidth
        self.outputChannels = outputChannels
        self.kernelHeight = kernelHeight
        self.kernelWidth = kernelWidth
        self.strideHeight = strideHeight
        self.strideWidth = strideWidth
        self.paddingHeight = paddingHeight
        self.paddingWidth = paddingWidth
        self.outputPaddingHeight = outputPaddingHeight
        self.outputPaddingWidth = outputPaddingWidth
    }

    /// (H - 1)·s − 2p + k + outputPadding, as PyTorch.
    public var outputHeight: Int {
        (inputHeight - 1) * strideHeight - 2 * paddingHeight + kernelHeight + outputPaddingHeight
    }
    /// (W - 1)·s − 2p + k + outputPadding, as PyTorch.
    public var outputWidth: Int {
        (inputWidth - 1) * strideWidth - 2 * paddingWidth + kernelWidth + outputPaddingWidth
    }
}

/// Which pooling: max, or average as torch's AvgPool2d with `count_include_pad` true (the default) or false.
public enum PoolKind: Hashable, Sendable {
    /// Maximum over the window; the argmax positions are saved for backward.
    case max
    /// Mean over the window. With `countIncludePadding`, padded zeros count in the divisor.
    case average(countIncludePadding: Bool)
}

/// Geometry of 2-D pooling (ceil_mode = false), as torch.nn.MaxPool2d / AvgPool2d.
public struct Pool2dGeometry: Hashable, Sendable {
    /// Number of images (N).
    public var batch: Int
    /// Channels (C); pooling acts on each channel separately.
    public var channels: Int
    /// Input height (H).
    public var inputHeight: Int
    /// Input width (W).
    public var inputWidth: Int
    /// Kernel height (kh).
    public var kernelHeight: Int
    /// Kernel width (kw).
    public var kernelWidth: Int
    /// Vertical stride.
    public var strideHeight: Int
    /// Horizontal stride.
    public var strideWidth: Int
    /// Zero padding added above and below.
    public var paddingHeight: Int
    /// Zero padding added left and right.
    public var paddingWidth: Int

    /// Memberwise initialiser; stride defaults to 1 and padding to 0 where a default is given.
    public init(
        batch: Int, channels: Int, inputHeight: Int, inputWidth: Int,
        kernelHeight: Int, kernelWidth: Int, strideHeight: Int, strideWidth: Int,
        paddingHeight: Int = 0, paddingWidth: Int = 0
    ) {
        self.batch = batch
        self.channels = channels
        self.inputHeight = inputHeight
        self.inputWidth = inputWidth
        self.kernelHeight = kernelHeight
        self.kernelWidth = kernelWidth
        self.strideHeight = strideHeight
        self.strideWidth = strideWidth
        self.paddingHeight = paddingHeight
        self.paddingWidth = paddingWidth
    }

    /// floor((H + 2p - k) / s) + 1 (ceil_mode = false), as PyTorch.
    public var outputHeight: Int { (inputHeight + 2 * paddingHeight - kernelHeight) / strideHeight + 1 }
    /// floor((W + 2p - k) / s) + 1 (ceil_mode = false), as PyTorch.
    public var outputWidth: Int { (inputWidth + 2 * paddingWidth - kernelWidth) / strideWidth + 1 }
}

/// Max-pooling forward saves, per output element, the flat index (h·W + w) of the chosen input
/// element within its (n, c) plane; backward scatters through it. Same meaning as PyTorch's indices.
public typealias PoolIndices = UnsafeMutablePointer<Int32>

/// Shape of a batch-norm call: `batch` × `channels` × `spatial` (H·W for 2-D, 1 for BatchNorm1d).
public struct BatchNormGeometry: Hashable, Sendable {
    /// Number of images (N).
    public var batch: Int
    /// Channels (C); statistics are per channel.
    public var channels: Int
    /// Elements per channel per image (S = H·W, or 1 for BatchNorm1d).
    public var spatial: Int
    /// Memberwise initialiser.
    public init(batch: Int, channels: Int, spatial: Int) {
        self.batch = batch
        self.channels = channels
        self.spatial = spatial
    }
}

/// The kernels that ops call. Implementations must be safe to call from any thread.
///
/// The convolution, GEMM, pooling and batch-norm requirements take the buffers' raw memory (tests
/// call them on plain arrays); ops call them through the `TensorBuffer` overloads in
/// TensorBufferKernels.swift. The other primitives take `TensorBuffer` handles directly.
public protocol ComputeBackend: Sendable {
    /// A short name for logs and run headers ("onednn", "reference").
    var name: String { get }

    // MARK: Elementwise (shapes row-major; broadcasting by NumPy rules, trailing axes aligned)

    /// output[i] = value for every element.
    func fill(_ output: TensorBuffer, with value: Float)
    /// output[i] = operation(input[i]); `output` has input's count.
    func unary(_ operation: UnaryOperation, _ input: TensorBuffer, output: TensorBuffer)
    /// output = operation(a, b), a [shapeA] and b [shapeB] broadcast to output [shape]. `output`
    /// may be `a` itself when shapeA equals shape (in-place accumulation).
    func binary(
        _ operation: BinaryOperation, _ a: TensorBuffer, shape shapeA: [Int], _ b: TensorBuffer, shape shapeB: [Int],
        output: TensorBuffer, shape: [Int])
    /// output = operation(a, b, c), all three broadcast to output [shape].
    func ternary(
        _ operation: TernaryOperation, _ a: TensorBuffer, shape shapeA: [Int], _ b: TensorBuffer, shape shapeB: [Int],
        _ c: TensorBuffer, shape shapeC: [Int], output: TensorBuffer, shape: [Int])

    // MARK: Data movement

    /// Copies a strided region [extents]: destination[destinationOffset + Σ iₐ·destinationStrides[a]]
    /// = source[sourceOffset + Σ iₐ·sourceStrides[a]] for every index i of `extents`. Elements of
    /// `destination` outside the region are left as they are.
    func copy(
        extents: [Int], from source: TensorBuffer, offset sourceOffset: Int, strides sourceStrides: [Int],
        to destination: TensorBuffer, offset destinationOffset: Int, strides destinationStrides: [Int])
    /// Gathers blocks: output[i·block ..< (i+1)·block] = source[indices[i]·block ..< …]; output
    /// [indices.count·block].
    func gather(_ source: TensorBuffer, indices: [Int], blockLength: Int, output: TensorBuffer)
    /// The adjoint of `gather`: output is zeroed, then output[indices[i]·block + j] += source[i·block + j]
    /// (repeated indices accumulate).
    func scatterAdd(_ source: TensorBuffer, indices: [Int], blockLength: Int, output: TensorBuffer)

    // MARK: Reductions

    /// Sums input [shape] down to output [reducedShape] (same rank, 1 on the summed axes),
    /// accumulating in Double.
    func sum(_ input: TensorBuffer, shape: [Int], output: TensorBuffer, reducedShape: [Int])
    /// Maximum along the middle axis of input [outer, extent, inner] → values [outer, inner]; returns
    /// the first index of each maximum (NaN wins, as in PyTorch).
    func maximum(_ input: TensorBuffer, layout: AxisLayout, values: TensorBuffer) -> [Int]
    /// Softmax (or, if `logarithmic`, log-softmax) along the middle axis of [outer, extent, inner],
    /// numerically stable (the maximum is subtracted first).
    func softmax(_ input: TensorBuffer, layout: AxisLayout, logarithmic: Bool, output: TensorBuffer)
    /// Given the softmax (or log-softmax) output y and ∂L/∂y: ∂x = y ⊙ (g − Σ g⊙y), or for the
    /// log-softmax ∂x = g − eʸ · Σ g.
    func softmaxBackward(
        gradOutput: TensorBuffer, output: TensorBuffer, layout: AxisLayout, logarithmic: Bool, gradInput: TensorBuffer)
    /// Σ x² over every element, in Double (gradient clipping).
    func sumOfSquares(_ input: TensorBuffer) -> Double
    /// True if no element is NaN or ±Inf.
    func allFinite(_ input: TensorBuffer) -> Bool

    // MARK: The fused NFM attention (NFMAttentionKernel.swift has the layouts)

    /// Forward: query, keys[j], values[j] → output and weights; returns the backward caches.
    func nfmAttentionForward(
        _ geometry: NFMAttentionGeometry, query: TensorBuffer, keys: [TensorBuffer], values: [TensorBuffer],
        output: TensorBuffer, weights: TensorBuffer) -> NFMAttentionCaches
    /// Backward: writes gradQuery, gradKeys[j], gradValues[j] (all overwritten).
    func nfmAttentionBackward(
        _ geometry: NFMAttentionGeometry, query: TensorBuffer, keys: [TensorBuffer], values: [TensorBuffer],
        weights: TensorBuffer, caches: NFMAttentionCaches, gradOutput: TensorBuffer,
        gradQuery: TensorBuffer, gradKeys: [TensorBuffer], gradValues: [TensorBuffer])

    // MARK: Optimizer steps (in place on the parameter and its state; one fused pass each)

    /// torch.optim.SGD's step on one parameter; `momentumBuffer` is nil without momentum.
    func sgdStep(_ step: SGDStep, parameter: TensorBuffer, gradient: TensorBuffer, momentumBuffer: TensorBuffer?)
    /// torch.optim.Adam / AdamW's step on one parameter; `maximumAverageOfSquares` only with AMSGrad.
    func adamStep(
        _ step: AdamStep, parameter: TensorBuffer, gradient: TensorBuffer, average: TensorBuffer,
        averageOfSquares: TensorBuffer, maximumAverageOfSquares: TensorBuffer?)
    /// torch.optim.RMSprop's step (plain or centered, with or without momentum) on one parameter.
    func rmspropStep(
        _ step: RMSpropStep, parameter: TensorBuffer, gradient: TensorBuffer, squareAverage: TensorBuffer,
        gradientAverage: TensorBuffer?, momentumBuffer: TensorBuffer?)

    // MARK: Matrix products, convolution, pooling, batch norm (raw memory; see above)

    /// Row-major SGEMM: C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C.
    /// `op(X)` is X or Xᵀ; lda/ldb/ldc are row strides of A, B, C as stored.
    func gemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
        alpha: Float, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int)

    /// `count` independent gemms; matrix i starts at a + i·strideA (likewise b, c).
    func batchedGemm(
        count: Int, transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
        alpha: Float, a: UnsafePointer<Float>, lda: Int, strideA: Int,
        b: UnsafePointer<Float>, ldb: Int, strideB: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, strideC: Int)

    /// input [N, Cin, H, W], weight [Cout, Cin, kh, kw], bias [Cout] or nil → output [N, Cout, Ho, Wo].
    func conv2dForward(
        _ g: Conv2dGeometry, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>)
    /// gradOutput [N, Cout, Ho, Wo], weight [Cout, Cin, kh, kw] → gradInput [N, Cin, H, W].
    func conv2dBackwardData(
        _ g: Conv2dGeometry, gradOutput: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        gradInput: UnsafeMutablePointer<Float>)
    /// input [N, Cin, H, W], gradOutput [N, Cout, Ho, Wo] → gradWeight [Cout, Cin, kh, kw], gradBias [Cout] (if non-nil).
    func conv2dBackwardWeights(
        _ g: Conv2dGeometry, input: UnsafePointer<Float>, gradOutput: UnsafePointer<Float>,
        gradWeight: UnsafeMutablePointer<Float>, gradBias: UnsafeMutablePointer<Float>?)

    /// input [N, Cin, H, W], weight [Cin, Cout, kh, kw], bias [Cout] or nil → output [N, Cout, Ho, Wo].
    func convTranspose2dForward(
        _ g: ConvTranspose2dGeometry, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>)
    /// gradOutput [N, Cout, Ho, Wo], weight [Cin, Cout, kh, kw] → gradInput [N, Cin, H, W].
    func convTranspose2dBackwardData(
        _ g: ConvTranspose2dGeometry, gradOutput: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        gradInput: UnsafeMutablePointer<Float>)
    /// input [N, Cin, H, W], gradOutput [N, Cout, Ho, Wo] → gradWeight [Cin, Cout, kh, kw], gradBias [Cout] (if non-nil).
    func convTranspose2dBackwardWeights(
        _ g: ConvTranspose2dGeometry, input: UnsafePointer<Float>, gradOutput: UnsafePointer<Float>,
        gradWeight: UnsafeMutablePointer<Float>, gradBias: UnsafeMutablePointer<Float>?)

    // The six (de)convolutions again, on buffers: what the ops of NFMTensor call. The defaults
    // (TensorBufferKernels.swift) pass each buffer's plain memory to the requirements above; the
    // oneDNN backend instead keeps its operands in its blocked layout from one call to the next
    // (TensorLayout), so that a convolution → ReLU → convolution chain converts no activation.
    func conv2dForward(_ g: Conv2dGeometry, input: TensorBuffer, weight: TensorBuffer, bias: TensorBuffer?, output: TensorBuffer)
    func conv2dBackwardData(_ g: Conv2dGeometry, gradOutput: TensorBuffer, weight: TensorBuffer, gradInput: TensorBuffer)
    func conv2dBackwardWeights(
        _ g: Conv2dGeometry, input: TensorBuffer, gradOutput: TensorBuffer, gradWeight: TensorBuffer, gradBias: TensorBuffer?)
    func convTranspose2dForward(
        _ g: ConvTranspose2dGeometry, input: TensorBuffer, weight: TensorBuffer, bias: TensorBuffer?, output: TensorBuffer)
    func convTranspose2dBackwardData(_ g: ConvTranspose2dGeometry, gradOutput: TensorBuffer, weight: TensorBuffer, gradInput: TensorBuffer)
    func convTranspose2dBackwardWeights(
        _ g: ConvTranspose2dGeometry, input: TensorBuffer, gradOutput: TensorBuffer, gradWeight: TensorBuffer,
        gradBias: TensorBuffer?)

    // Batch norm on buffers, for the same reason: the oneDNN backend normalises activations that
    // are still in its blocked layout where they are.
    func batchNormForwardTraining(
        _ g: BatchNormGeometry, input: TensorBuffer, gamma: TensorBuffer, beta: TensorBuffer, epsilon: Float,
        output: TensorBuffer, mean: TensorBuffer, variance: TensorBuffer)
    func batchNormForwardInference(
        _ g: BatchNormGeometry, input: TensorBuffer, gamma: TensorBuffer, beta: TensorBuffer, mean: TensorBuffer,
        variance: TensorBuffer, epsilon: Float, output: TensorBuffer)
    func batchNormBackward(
        _ g: BatchNormGeometry, input: TensorBuffer, gradOutput: TensorBuffer, gamma: TensorBuffer, mean: TensorBuffer,
        variance: TensorBuffer, epsilon: Float, gradInput: TensorBuffer, gradGamma: TensorBuffer, gradBeta: TensorBuffer)

    /// input [N, C, H, W] → output [N, C, Ho, Wo]. For `.max`, `indices` (N·C·Ho·Wo) must be non-nil
    /// and receives the argmax positions; for averages it is ignored.
    func pool2dForward(
        _ g: Pool2dGeometry, kind: PoolKind, input: UnsafePointer<Float>,
        output: UnsafeMutablePointer<Float>, indices: PoolIndices?)
    /// gradOutput [N, C, Ho, Wo] → gradInput [N, C, H, W] (overwritten).
    func pool2dBackward(
        _ g: Pool2dGeometry, kind: PoolKind, gradOutput: UnsafePointer<Float>,
        indices: UnsafePointer<Int32>?, gradInput: UnsafeMutablePointer<Float>)

    /// Training-mode batch norm with batch statistics. input/output [N, C, S]; gamma, beta [C].
    /// Writes the batch mean and the *biased* batch variance (divide by N·S) to mean/variance [C].
    func batchNormForwardTraining(
        _ g: BatchNormGeometry, input: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
        beta: UnsafePointer<Float>, epsilon: Float, output: UnsafeMutablePointer<Float>,
        mean: UnsafeMutablePointer<Float>, variance: UnsafeMutablePointer<Float>)
    /// Eval-mode batch norm with given statistics (running mean and variance).
    func batchNormForwardInference(
        _ g: BatchNormGeometry, input: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
        beta: UnsafePointer<Float>, mean: UnsafePointer<Float>, variance: UnsafePointer<Float>,
        epsilon: Float, output: UnsafeMutablePointer<Float>)
    /// Backward of training-mode batch norm (statistics depend on the input), given the mean and
    /// biased variance that the forward saved. Writes gradInput [N, C, S], gradGamma, gradBeta [C].
    func batchNormBackward(
        _ g: BatchNormGeometry, input: UnsafePointer<Float>, gradOutput: UnsafePointer<Float>,
        gamma: UnsafePointer<Float>, mean: UnsafePointer<Float>, variance: UnsafePointer<Float>,
        epsilon: Float, gradInput: UnsafeMutablePointer<Float>,
        gradGamma: UnsafeMutablePointer<Float>, gradBeta: UnsafeMutablePointer<Float>)
}
