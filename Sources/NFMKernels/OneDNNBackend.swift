// The production backend: oneDNN 2.6 through its C API. This file is the only place that calls
// oneDNN (DESIGN.md §1): oneDNN 3.x renamed the operation-descriptor calls (`*_desc_init` became
// `*_primitive_desc_create`), so a port touches this file alone.
//
// How a call runs: the geometry and op kind form a `PrimitiveKey`; the first call with a key builds
// the primitive descriptor and the primitive and caches them with one memory object per argument;
// every call then points those memory objects at the caller's buffers (`dnnl_memory_set_data_handle`)
// and executes. Scratch space is user-managed (one buffer shared by all primitives, which run one at
// a time): oneDNN 2.x's default "library" scratchpad is thread-local storage of the thread that
// *created* the primitive, so running a cached primitive from another thread would read a null
// scratchpad. All user memory is described with plain tags (nchw, oihw, iohw, x), which are exactly
// the dense row-major layouts the protocol promises, so no reorders are needed.

import CDNNL
import Foundation

/// oneDNN 2.6 on the CPU: one engine and one stream for the process, primitives cached per shape.
///
/// Thread safety: the cache and the memory objects are guarded by one lock that is held while a
/// primitive runs, so concurrent calls are serialised. That costs nothing in practice, because each
/// call already spreads over every core through oneDNN's OpenMP threads.
public final class OneDNNBackend: ComputeBackend, @unchecked Sendable {
    /// "onednn".
    public var name: String { "onednn" }
    private let engine: dnnl_engine_t
    private let stream: dnnl_stream_t
    private let lock = NSLock()
    /// Guarded by `lock`.
    private var cache: [PrimitiveKey: CachedPrimitive] = [:]
    /// Scratch space for whichever primitive is running, grown to the largest need seen so far.
    /// Guarded by `lock`.
    private var scratchpad: UnsafeMutableRawPointer?
    private var scratchpadCapacity = 0
    /// Whether (de)convolutions run in layouts of oneDNN's choosing (see `init(choosingLayouts:)`).
    public let choosesLayouts: Bool
    /// Whether the buffer forms of the (de)convolutions keep their operands in the chosen layouts.
    public let keepsLayouts: Bool
    /// Layout-choosing (de)convolutions with their reorders. Guarded by `lock`.
    private var reorderedCache: [PrimitiveKey: ReorderedPrimitive] = [:]
    /// Blocked copies of the running (de)convolution's operands. Guarded by `lock`.
    private var workspaceBuffer: UnsafeMutableRawPointer?
    private var workspaceCapacity = 0

    /// Creates the CPU engine and its stream. Prefer the shared `Kernels.oneDNN`: each instance has
    /// its own primitive cache.
    ///
    /// With `choosingLayouts` (the default), (de)convolutions are created with `format_tag_any` and
    /// run on blocked copies of their operands (nChw8c and blocked weights on AVX2), reordered from
    /// and to the caller's plain buffers at each call. On plain NCHW, oneDNN 2.6 can only use its
    /// im2col + GEMM convolution (`gemm:jit`); the blocked layouts unlock the direct JIT kernels,
    /// which are faster even with the reorders (measured in nfm-bench; see BENCHMARKS.md).
    ///
    /// With `keepingLayouts` (the default, when layouts are chosen), the buffer forms of the
    /// (de)convolutions leave each output in its blocked layout and read an input that is already in
    /// the layout they need as it is (TensorLayout): the plain layout is written only when something
    /// else reads the buffer. `Kernels.oneDNN` turns this off under `NFM_ONEDNN_KEEP_LAYOUTS=0` (to
    /// measure it).
    public init(choosingLayouts: Bool = true, keepingLayouts: Bool = true) {
        choosesLayouts = choosingLayouts
        keepsLayouts = choosingLayouts && keepingLayouts
        var engine: dnnl_engine_t?
        check(dnnl_engine_create(&engine, dnnl_cpu, 0), "dnnl_engine_create", "CPU engine 0")
        var stream: dnnl_stream_t?
        check(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags.rawValue), "dnnl_stream_create", "CPU")
        guard let engine, let stream else { preconditionFailure("oneDNN returned no CPU engine or stream") }
        self.engine = engine
        self.stream = stream
    }

    deinit {
        cache.removeAll()  // primitives and memory objects go before the engine they were made on
        reorderedCache.removeAll()
        scratchpad?.deallocate()
        workspaceBuffer?.deallocate()
        dnnl_stream_destroy(stream)
        dnnl_engine_destroy(engine)
    }

    /// How many primitives are cached (tests check that a repeated shape does not add one).
    var cachedPrimitiveCount: Int { lock.withLock { cache.count + reorderedCache.count } }

    /// oneDNN's name for the implementation chosen for each cached primitive, e.g. "gemm:jit"
    /// (for diagnosing performance).
    var cachedImplementationNames: [String: String] {
        lock.withLock {
            Dictionary(
                uniqueKeysWithValues: cache.map { key, cached in ("\(key)", cached.implementationName) }
                    + reorderedCache.map { key, cached in ("\(key)", cached.core.implementationName) })
        }
    }

    // MARK: Matrix products

    /// C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C through `dnnl_sgemm`, which is row-major
    /// (unlike Fortran BLAS), so the protocol's arguments pass straight through.
    public func gemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
        alpha: Float, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        if k == 0 {
            // An empty product: C = beta · C. Handled here rather than trusting every BLAS with k = 0.
            for row in 0..<m {
                for column in 0..<n { c[row * ldc + column] = beta == 0 ? 0 : beta * c[row * ldc + column] }
            }
            return
        }
        let status = ComputeThreads.withThreads(forWork: 2 * m * n * k) {
            dnnl_sgemm(
                transposeA ? transposed : notTransposed, transposeB ? transposed : notTransposed,
                Int64(m), Int64(n), Int64(k), alpha, a, Int64(lda), b, Int64(ldb), beta, c, Int64(ldc))
        }
        check(
            status, "dnnl_sgemm",
            "transposeA \(transposeA) transposeB \(transposeB) m \(m) n \(n) k \(k) lda \(lda) ldb \(ldb) ldc \(ldc)")
    }

    /// `count` independent gemms as one oneDNN matmul primitive with a batch dimension (cached per
    /// shape, strides, alpha and beta). A stride of 0 for A or B shares one matrix across the batch.
    ///
    /// Why not a loop of `dnnl_sgemm`: each call opens its own OpenMP parallel region, and measured
    /// here 64 products of 64×32·32×1296 took 516 ms as a loop with the machine shared with other
    /// work, against 16 ms as one primitive (10 ms for either on one thread). For tiny products
    /// the primitive is as fast as the loop on one thread.
    public func batchedGemm(
        count: Int, transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
        alpha: Float, a: UnsafePointer<Float>, lda: Int, strideA: Int,
        b: UnsafePointer<Float>, ldb: Int, strideB: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, strideC: Int
    ) {
        if count == 0 || m == 0 || n == 0 { return }
        if count > 1 && k > 0 {
            let product = BatchedProduct(
                count: count, transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                alpha: alpha, lda: lda, strideA: strideA, ldb: ldb, strideB: strideB,
                beta: beta, ldc: ldc, strideC: strideC)
            run(
                .batchedMatmul(product),
                [Argument(DNNL_ARG_SRC, a), Argument(DNNL_ARG_WEIGHTS, b), Argument(DNNL_ARG_DST, c)])
            return
        }
        // One product, or empty products (k = 0, C = beta · C): plain gemm.
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
    public func conv2dForward(
        _ g: Conv2dGeometry, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>
    ) {
        if g.isEmpty {
            return Kernels.reference.conv2dForward(g, input: input, weight: weight, bias: bias, output: output)
        }
        var arguments = [
            Argument(DNNL_ARG_SRC, input), Argument(DNNL_ARG_WEIGHTS, weight), Argument(DNNL_ARG_DST, output),
        ]
        if let bias { arguments.append(Argument(DNNL_ARG_BIAS, bias)) }
        run(.convolutionForward(g, withBias: bias != nil), arguments)
    }

    /// gradOutput [N, Cout, Ho, Wo], weight [Cout, Cin, kh, kw] → gradInput [N, Cin, H, W].
    public func conv2dBackwardData(
        _ g: Conv2dGeometry, gradOutput: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        gradInput: UnsafeMutablePointer<Float>
    ) {
        if g.isEmpty {
            return Kernels.reference.conv2dBackwardData(g, gradOutput: gradOutput, weight: weight, gradInput: gradInput)
        }
        run(
            .convolutionBackwardData(g),
            [
                Argument(DNNL_ARG_DIFF_DST, gradOutput), Argument(DNNL_ARG_WEIGHTS, weight),
                Argument(DNNL_ARG_DIFF_SRC, gradInput),
            ])
    }

    /// input [N, Cin, H, W], gradOutput [N, Cout, Ho, Wo] → gradWeight [Cout, Cin, kh, kw], gradBias [Cout]?.
    public func conv2dBackwardWeights(
        _ g: Conv2dGeometry, input: UnsafePointer<Float>, gradOutput: UnsafePointer<Float>,
        gradWeight: UnsafeMutablePointer<Float>, gradBias: UnsafeMutablePointer<Float>?
    ) {
        if g.isEmpty {
            return Kernels.reference.conv2dBackwardWeights(
                g, input: input, gradOutput: gradOutput, gradWeight: gradWeight, gradBias: gradBias)
        }
        var arguments = [
            Argument(DNNL_ARG_SRC, input), Argument(DNNL_ARG_DIFF_DST, gradOutput),
            Argument(DNNL_ARG_DIFF_WEIGHTS, gradWeight),
        ]
        if let gradBias { arguments.append(Argument(DNNL_ARG_DIFF_BIAS, gradBias)) }
        run(.convolutionBackwardWeights(g, withBias: gradBias != nil), arguments)
    }

    // MARK: Convolutions on buffers, keeping the blocked layouts

    /// input [N, Cin, H, W], weight [Cout, Cin, kh, kw], bias [Cout]? → output [N, Cout, Ho, Wo].
    public func conv2dForward(_ g: Conv2dGeometry, input: TensorBuffer, weight: TensorBuffer, bias: TensorBuffer?, output: TensorBuffer) {
        convolution(
            .convolutionForward(g, withBias: bias != nil), empty: g.isEmpty,
            [(DNNL_ARG_SRC, input), (DNNL_ARG_WEIGHTS, weight), (DNNL_ARG_DST, output), (DNNL_ARG_BIAS, bias)]
        ) { conv2dForward(g, input: input.pointer, weight: weight.pointer, bias: bias?.pointer, output: output.pointer) }
    }

    /// gradOutput [N, Cout, Ho, Wo], weight [Cout, Cin, kh, kw] → gradInput [N, Cin, H, W].
    public func conv2dBackwardData(_ g: Conv2dGeometry, gradOutput: TensorBuffer, weight: TensorBuffer, gradInput: TensorBuffer) {
        convolution(
            .convolutionBackwardData(g), empty: g.isEmpty,
            [(DNNL_ARG_DIFF_DST, gradOutput), (DNNL_ARG_WEIGHTS, weight), (DNNL_ARG_DIFF_SRC, gradInput)]
        ) { conv2dBackwardData(g, gradOutput: gradOutput.pointer, weight: weight.pointer, gradInput: gradInput.pointer) }
    }

    /// input [N, Cin, H, W], gradOutput [N, Cout, Ho, Wo] → gradWeight [Cout, Cin, kh, kw], gradBias [Cout]?.
    public func conv2dBackwardWeights(
        _ g: Conv2dGeometry, input: TensorBuffer, gradOutput: TensorBuffer, gradWeight: TensorBuffer, gradBias: TensorBuffer?
    ) {
        convolution(
            .convolutionBackwardWeights(g, withBias: gradBias != nil), empty: g.isEmpty,
            [(DNNL_ARG_SRC, input), (DNNL_ARG_DIFF_DST, gradOutput), (DNNL_ARG_DIFF_WEIGHTS, gradWeight), (DNNL_ARG_DIFF_BIAS, gradBias)]
        ) {
            conv2dBackwardWeights(
                g, input: input.pointer, gradOutput: gradOutput.pointer, gradWeight: gradWeight.pointer, gradBias: gradBias?.pointer)
        }
    }

    /// input [N, Cin, H, W], weight [Cin, Cout, kh, kw], bias [Cout]? → output [N, Cout, Ho, Wo].
    public func convTranspose2dForward(
        _ g: ConvTranspose2dGeometry, input: TensorBuffer, weight: TensorBuffer, bias: TensorBuffer?, output: TensorBuffer
    ) {
        convolution(
            .deconvolutionForward(g, withBias: bias != nil), empty: g.isEmpty,
            [(DNNL_ARG_SRC, input), (DNNL_ARG_WEIGHTS, weight), (DNNL_ARG_DST, output), (DNNL_ARG_BIAS, bias)]
        ) { convTranspose2dForward(g, input: input.pointer, weight: weight.pointer, bias: bias?.pointer, output: output.pointer) }
    }

    /// gradOutput [N, Cout, Ho, Wo], weight [Cin, Cout, kh, kw] → gradInput [N, Cin, H, W].
    public func convTranspose2dBackwardData(
        _ g: ConvTranspose2dGeometry, gradOutput: TensorBuffer, weight: TensorBuffer, gradInput: TensorBuffer
    ) {
        convolution(
            .deconvolutionBackwardData(g), empty: g.isEmpty,
            [(DNNL_ARG_DIFF_DST, gradOutput), (DNNL_ARG_WEIGHTS, weight), (DNNL_ARG_DIFF_SRC, gradInput)]
        ) { convTranspose2dBackwardData(g, gradOutput: gradOutput.pointer, weight: weight.pointer, gradInput: gradInput.pointer) }
    }

    /// input [N, Cin, H, W], gradOutput [N, Cout, Ho, Wo] → gradWeight [Cin, Cout, kh, kw], gradBias [Cout]?.
    public func convTranspose2dBackwardWeights(
        _ g: ConvTranspose2dGeometry, input: TensorBuffer, gradOutput: TensorBuffer, gradWeight: TensorBuffer,
        gradBias: TensorBuffer?
    ) {
        convolution(
            .deconvolutionBackwardWeights(g, withBias: gradBias != nil), empty: g.isEmpty,
            [(DNNL_ARG_SRC, input), (DNNL_ARG_DIFF_DST, gradOutput), (DNNL_ARG_DIFF_WEIGHTS, gradWeight), (DNNL_ARG_DIFF_BIAS, gradBias)]
        ) {
            convTranspose2dBackwardWeights(
                g, input: input.pointer, gradOutput: gradOutput.pointer, gradWeight: gradWeight.pointer, gradBias: gradBias?.pointer)
        }
    }

    /// The buffer form of a (de)convolution: through `runKeepingLayouts` when this backend keeps
    /// layouts, else (or for an empty geometry) `plain`, the raw form on the buffers' plain memory.
    private func convolution(
        _ key: PrimitiveKey, empty: Bool, _ operands: [(slot: Int32, buffer: TensorBuffer?)], plain: () -> Void
    ) {
        let present = operands.compactMap { operand in operand.buffer.map { (slot: operand.slot, buffer: $0) } }
        guard keepsLayouts, !empty else {
            plain()
            return withExtendedLifetime(present) {}
        }
        runKeepingLayouts(key, present)
    }

    // MARK: Transposed convolution (oneDNN "deconvolution")

    /// input [N, Cin, H, W], weight [Cin, Cout, kh, kw], bias [Cout]? → output [N, Cout, Ho, Wo].
    public func convTranspose2dForward(
        _ g: ConvTranspose2dGeometry, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>
    ) {
        if g.isEmpty {
            return Kernels.reference.convTranspose2dForward(g, input: input, weight: weight, bias: bias, output: output)
        }
        var arguments = [
            Argument(DNNL_ARG_SRC, input), Argument(DNNL_ARG_WEIGHTS, weight), Argument(DNNL_ARG_DST, output),
        ]
        if let bias { arguments.append(Argument(DNNL_ARG_BIAS, bias)) }
        run(.deconvolutionForward(g, withBias: bias != nil), arguments)
    }

    /// gradOutput [N, Cout, Ho, Wo], weight [Cin, Cout, kh, kw] → gradInput [N, Cin, H, W].
    public func convTranspose2dBackwardData(
        _ g: ConvTranspose2dGeometry, gradOutput: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        gradInput: UnsafeMutablePointer<Float>
    ) {
        if g.isEmpty {
            return Kernels.reference.convTranspose2dBackwardData(
                g, gradOutput: gradOutput, weight: weight, gradInput: gradInput)
        }
        run(
            .deconvolutionBackwardData(g),
            [
                Argument(DNNL_ARG_DIFF_DST, gradOutput), Argument(DNNL_ARG_WEIGHTS, weight),
                Argument(DNNL_ARG_DIFF_SRC, gradInput),
            ])
    }

    /// input [N, Cin, H, W], gradOutput [N, Cout, Ho, Wo] → gradWeight [Cin, Cout, kh, kw], gradBias [Cout]?.
    public func convTranspose2dBackwardWeights(
        _ g: ConvTranspose2dGeometry, input: UnsafePointer<Float>, gradOutput: UnsafePointer<Float>,
        gradWeight: UnsafeMutablePointer<Float>, gradBias: UnsafeMutablePointer<Float>?
    ) {
        if g.isEmpty {
            return Kernels.reference.convTranspose2dBackwardWeights(
                g, input: input, gradOutput: gradOutput, gradWeight: gradWeight, gradBias: gradBias)
        }
        var arguments = [
            Argument(DNNL_ARG_SRC, input), Argument(DNNL_ARG_DIFF_DST, gradOutput),
            Argument(DNNL_ARG_DIFF_WEIGHTS, gradWeight),
        ]
        if let gradBias { arguments.append(Argument(DNNL_ARG_DIFF_BIAS, gradBias)) }
        run(.deconvolutionBackwardWeights(g, withBias: gradBias != nil), arguments)
    }

    // MARK: Pooling

    /// input [N, C, H, W] → output [N, C, Ho, Wo] (+ indices [N, C, Ho, Wo] for `.max`).
    ///
    /// Pooling does not go through oneDNN: see Pooling.swift for why (PyTorch-style max indices, and
    /// oneDNN's slow plain-layout average pooling). Both kinds are Swift loops parallel over planes.
    public func pool2dForward(
        _ g: Pool2dGeometry, kind: PoolKind, input: UnsafePointer<Float>,
        output: UnsafeMutablePointer<Float>, indices: PoolIndices?
    ) {
        g.checkPadding("pool2dForward")
        switch kind {
        case .max:
            guard let indices else { preconditionFailure("pool2dForward: .max needs indices, \(g)") }
            Pooling.maxForward(g, input: input, output: output, indices: indices)
        case .average(let countIncludePadding):
            Pooling.averageForward(g, countIncludePadding: countIncludePadding, input: input, output: output)
        }
    }

    /// gradOutput [N, C, Ho, Wo] (+ indices for `.max`) → gradInput [N, C, H, W].
    public func pool2dBackward(
        _ g: Pool2dGeometry, kind: PoolKind, gradOutput: UnsafePointer<Float>,
        indices: UnsafePointer<Int32>?, gradInput: UnsafeMutablePointer<Float>
    ) {
        g.checkPadding("pool2dBackward")
        switch kind {
        case .max:
            guard let indices else { preconditionFailure("pool2dBackward: .max needs indices, \(g)") }
            Pooling.maxBackward(g, gradOutput: gradOutput, indices: indices, gradInput: gradInput)
        case .average(let countIncludePadding):
            Pooling.averageBackward(
                g, countIncludePadding: countIncludePadding, gradOutput: gradOutput, gradInput: gradInput)
        }
    }

    // MARK: Batch normalisation

    // Batch norm does not go through oneDNN: for plain NCHW data oneDNN 2.6 has only its slow
    // reference implementation (see BatchNormalization.swift for the measurement).

    /// input [N, C, S], gamma, beta [C] → output [N, C, S], batch mean and biased variance [C].
    public func batchNormForwardTraining(
        _ g: BatchNormGeometry, input: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
        beta: UnsafePointer<Float>, epsilon: Float, output: UnsafeMutablePointer<Float>,
        mean: UnsafeMutablePointer<Float>, variance: UnsafeMutablePointer<Float>
    ) {
        if g.isEmpty {
            return Kernels.reference.batchNormForwardTraining(
                g, input: input, gamma: gamma, beta: beta, epsilon: epsilon, output: output,
                mean: mean, variance: variance)
        }
        // Statistics from BatchNormStatistics (accurate to Float rounding; oneDNN's own were off by
        // ~1e-5 relative on sparse post-ReLU channels), then the normalisation with them.
        BatchNormStatistics.compute(g, input: input, mean: mean, variance: variance)
        BatchNormalization.forwardInference(
            g, input: input, gamma: gamma, beta: beta, mean: mean, variance: variance, epsilon: epsilon,
            output: output)
    }

    /// input [N, C, S], gamma, beta, mean, variance [C] → output [N, C, S], with the given statistics.
    public func batchNormForwardInference(
        _ g: BatchNormGeometry, input: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
        beta: UnsafePointer<Float>, mean: UnsafePointer<Float>, variance: UnsafePointer<Float>,
        epsilon: Float, output: UnsafeMutablePointer<Float>
    ) {
        if g.isEmpty { return }
        BatchNormalization.forwardInference(
            g, input: input, gamma: gamma, beta: beta, mean: mean, variance: variance, epsilon: epsilon,
            output: output)
    }

    /// input, gradOutput [N, C, S], gamma, mean, variance [C] → gradInput [N, C, S], gradGamma, gradBeta [C].
    public func batchNormBackward(
        _ g: BatchNormGeometry, input: UnsafePointer<Float>, gradOutput: UnsafePointer<Float>,
        gamma: UnsafePointer<Float>, mean: UnsafePointer<Float>, variance: UnsafePointer<Float>,
        epsilon: Float, gradInput: UnsafeMutablePointer<Float>,
        gradGamma: UnsafeMutablePointer<Float>, gradBeta: UnsafeMutablePointer<Float>
    ) {
        if g.isEmpty {
            return Kernels.reference.batchNormBackward(
                g, input: input, gradOutput: gradOutput, gamma: gamma, mean: mean, variance: variance,
                epsilon: epsilon, gradInput: gradInput, gradGamma: gradGamma, gradBeta: gradBeta)
        }
        BatchNormalization.backward(
            g, input: input, gradOutput: gradOutput, gamma: gamma, mean: mean, variance: variance, epsilon: epsilon,
            gradInput: gradInput, gradGamma: gradGamma, gradBeta: gradBeta)
    }

    // MARK: Batch norm on buffers, in the blocked layout where the input is

    /// The block size and layout when `input` (and every other [N, C, S] operand in `others`) has its
    /// values only in one dense channel-blocked layout of this backend, of the geometry's N and C.
    private func channelBlockedLayout(_ g: BatchNormGeometry, _ input: TensorBuffer, _ others: TensorBuffer...) -> (
        block: Int, layout: any TensorLayout, copies: [TensorBuffer.LayoutCopy]
    )? {
        guard keepsLayouts, !g.isEmpty, let copy = input.denseLayoutCopy, let layout = copy.layout as? OneDNNLayout,
            let block = layout.channelBlock, layout.descriptor.dims.0 == Int64(g.batch), layout.descriptor.dims.1 == Int64(g.channels)
        else { return nil }
        var copies = [copy]
        for other in others {
            guard let otherCopy = other.denseLayoutCopy, otherCopy.layout.isSame(as: layout) else { return nil }
            copies.append(otherCopy)
        }
        return (block, layout, copies)
    }

    /// Training-mode batch norm: input/output [N, C, S]; gamma, beta, mean, variance (biased) [C].
    public func batchNormForwardTraining(
        _ g: BatchNormGeometry, input: TensorBuffer, gamma: TensorBuffer, beta: TensorBuffer, epsilon: Float,
        output: TensorBuffer, mean: TensorBuffer, variance: TensorBuffer
    ) {
        defer { withExtendedLifetime((input, gamma, beta, output, mean, variance)) {} }
        guard let (block, layout, copies) = channelBlockedLayout(g, input), output !== input else {
            return batchNormForwardTraining(
                g, input: input.pointer, gamma: gamma.pointer, beta: beta.pointer, epsilon: epsilon, output: output.pointer,
                mean: mean.pointer, variance: variance.pointer)
        }
        let operands = BlockedBatchNormalization.Operands(
            block: block, input: copies[0].floats, output: output.replaceValues(inLayout: layout).assumingMemoryBound(to: Float.self),
            gamma: gamma.pointer, beta: beta.pointer, mean: mean.pointer, variance: variance.pointer)
        BlockedBatchNormalization.forwardTraining(g, operands, epsilon: epsilon)
    }

    /// Eval-mode batch norm with the given (running) statistics: input/output [N, C, S]; the rest [C].
    public func batchNormForwardInference(
        _ g: BatchNormGeometry, input: TensorBuffer, gamma: TensorBuffer, beta: TensorBuffer, mean: TensorBuffer,
        variance: TensorBuffer, epsilon: Float, output: TensorBuffer
    ) {
        defer { withExtendedLifetime((input, gamma, beta, mean, variance, output)) {} }
        guard let (block, layout, copies) = channelBlockedLayout(g, input), output !== input else {
            return batchNormForwardInference(
                g, input: input.pointer, gamma: gamma.pointer, beta: beta.pointer, mean: mean.pointer,
                variance: variance.pointer, epsilon: epsilon, output: output.pointer)
        }
        let operands = BlockedBatchNormalization.Operands(
            block: block, input: copies[0].floats, output: output.replaceValues(inLayout: layout).assumingMemoryBound(to: Float.self),
            gamma: gamma.pointer, beta: beta.pointer, mean: mean.pointer, variance: variance.pointer)
        BlockedBatchNormalization.forwardInference(g, operands, epsilon: epsilon)
    }

    /// Backward of training-mode batch norm: gradInput [N, C, S], gradGamma and gradBeta [C].
    public func batchNormBackward(
        _ g: BatchNormGeometry, input: TensorBuffer, gradOutput: TensorBuffer, gamma: TensorBuffer, mean: TensorBuffer,
        variance: TensorBuffer, epsilon: Float, gradInput: TensorBuffer, gradGamma: TensorBuffer, gradBeta: TensorBuffer
    ) {
        defer { withExtendedLifetime((input, gradOutput, gamma, mean, variance, gradInput, gradGamma, gradBeta)) {} }
        guard let (block, layout, copies) = channelBlockedLayout(g, input, gradOutput), gradInput !== input, gradInput !== gradOutput
        else {
            return batchNormBackward(
                g, input: input.pointer, gradOutput: gradOutput.pointer, gamma: gamma.pointer, mean: mean.pointer,
                variance: variance.pointer, epsilon: epsilon, gradInput: gradInput.pointer, gradGamma: gradGamma.pointer,
                gradBeta: gradBeta.pointer)
        }
        let operands = BlockedBatchNormalization.Operands(
            block: block, input: copies[0].floats, gradOutput: copies[1].floats,
            output: gradInput.replaceValues(inLayout: layout).assumingMemoryBound(to: Float.self), gamma: gamma.pointer,
            mean: mean.pointer, variance: variance.pointer, gradGamma: gradGamma.pointer, gradBeta: gradBeta.pointer)
        BlockedBatchNormalization.backward(g, operands, epsilon: epsilon)
    }

    // MARK: - Running cached primitives

    /// Finds (or builds) the primitive for `key`, points its memory objects at the buffers and runs it.
    private func run(_ key: PrimitiveKey, _ arguments: [Argument]) {
        if choosesLayouts && key.hasLayoutChoice {
            return lock.withLock { ComputeThreads.withThreads(forWork: key.work) { runReordered(key, arguments) } }
        }
        lock.withLock { ComputeThreads.withThreads(forWork: key.work) {
            let cached = cachedPrimitive(key)
            var arguments = arguments
            if cached.scratchpadSize > 0 {
                arguments.append(Argument(DNNL_ARG_SCRATCHPAD, scratchpad(atLeast: cached.scratchpadSize)))
            }
            cached.execute(arguments, engine: engine, stream: stream, key: key)
        } }
    }

    /// The shared scratch buffer, at least `size` bytes. Call with `lock` held.
    private func scratchpad(atLeast size: Int) -> UnsafeMutableRawPointer {
        if let scratchpad, scratchpadCapacity >= size { return scratchpad }
        scratchpad?.deallocate()
        // 64-byte alignment: a cache line and an AVX-512 vector, as oneDNN's own allocations.
        let grown = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
        scratchpad = grown
        scratchpadCapacity = size
        return grown
    }

    /// Runs a (de)convolution on buffers in the layouts oneDNN chose for it: each output gets its
    /// values in its chosen layout (no reorder back; the plain layout is written if and when something
    /// else reads it), an input already in its chosen layout is read as it is, and any other input is
    /// reordered from its plain memory as in `runReordered`.
    private func runKeepingLayouts(_ key: PrimitiveKey, _ operands: [(slot: Int32, buffer: TensorBuffer)]) {
        // Built (on first use) with the threads it runs with: oneDNN sizes a primitive's work split
        // for the thread count at creation.
        let layouts = lock.withLock { ComputeThreads.withThreads(forWork: key.work) { reorderedPrimitive(key).layouts } }
        // Buffers are resolved before the lock is taken again: a plain read may run a reorder (writePlain).
        var arguments: [Argument] = []
        for (slot, buffer) in operands {
            guard let layout = layouts.first(where: { $0.slot == slot }) else {
                arguments.append(Argument(slot, buffer.pointer))
                continue
            }
            if layout.isOutput {
                arguments.append(Argument(slot, buffer.replaceValues(inLayout: layout), inChosenLayout: true))
            } else if !layout.isOutput, let copy = buffer.layoutCopy, copy.layout.isSame(as: layout) {
                arguments.append(Argument(slot, copy.memory, inChosenLayout: true))
            } else {
                arguments.append(Argument(slot, buffer.pointer))
            }
        }
        lock.withLock { ComputeThreads.withThreads(forWork: key.work) { runReordered(key, arguments) } }
        withExtendedLifetime(operands) {}
    }

    /// Writes `source`, in `layout`, to `destination` in the plain layout (TensorLayout).
    fileprivate func writePlain(_ layout: OneDNNLayout, from source: UnsafeRawPointer, to destination: UnsafeMutablePointer<Float>) {
        lock.withLock { ComputeThreads.withThreads(forWork: layout.byteCount) {
            let reorder = layout.toPlain ?? {
                let made = makeReorder(from: &layout.descriptor, to: &layout.plain, layout.key)
                layout.toPlain = made
                return made
            }()
            let scratch = reorder.scratchpadSize > 0 ? scratchpad(atLeast: reorder.scratchpadSize) : nil
            reorder.execute(
                reorderArguments(reorder, from: UnsafeMutableRawPointer(mutating: source), to: UnsafeMutableRawPointer(destination), scratch: scratch),
                engine: engine, stream: stream, key: layout.key)
        } }
    }

    /// Runs a (de)convolution whose layouts oneDNN chose: reorders each plain input it reads into the
    /// workspace, runs the primitive on the workspace copies, and reorders its outputs back into the
    /// caller's plain buffers. Operands whose chosen layout is the plain one are passed through.
    /// Call with `lock` held.
    private func runReordered(_ key: PrimitiveKey, _ arguments: [Argument]) {
        let reordered = reorderedPrimitive(key)
        let scratch = reordered.scratchpadSize > 0 ? scratchpad(atLeast: reordered.scratchpadSize) : nil
        // The operands that need a blocked copy this time, packed into the workspace: those already in
        // their chosen layout take no room, so the workspace (kept at its largest size) stays small
        // when buffers keep their layouts.
        var placed: [(argument: Argument, operand: ReorderedPrimitive.Operand, offset: Int)] = []
        var size = 0
        for argument in arguments where !argument.inChosenLayout {
            guard let operand = reordered.operands.first(where: { $0.slot == argument.slot }) else { continue }
            placed.append((argument, operand, size))
            size += operand.byteCount
        }
        let workspace = size > 0 ? self.workspace(atLeast: size) : nil
        var coreArguments: [Argument] = []
        var outputs: [(operand: ReorderedPrimitive.Operand, user: UnsafeMutableRawPointer, blocked: UnsafeMutableRawPointer)] = []
        for argument in arguments {
            guard let (_, operand, offset) = placed.first(where: { $0.argument.slot == argument.slot }), let workspace else {
                coreArguments.append(argument)
                continue
            }
            let blocked = workspace + offset
            if operand.isOutput {
                outputs.append((operand, argument.pointer, blocked))
            } else {
                operand.reorder.execute(
                    reorderArguments(operand.reorder, from: argument.pointer, to: blocked, scratch: scratch),
                    engine: engine, stream: stream, key: key)
            }
            coreArguments.append(Argument(argument.slot, blocked))
        }
        if let scratch, reordered.core.scratchpadSize > 0 {
            coreArguments.append(Argument(DNNL_ARG_SCRATCHPAD, scratch))
        }
        reordered.core.execute(coreArguments, engine: engine, stream: stream, key: key)
        for (operand, user, blocked) in outputs {
            operand.reorder.execute(
                reorderArguments(operand.reorder, from: blocked, to: user, scratch: scratch), engine: engine, stream: stream, key: key)
        }
    }

    private func reorderArguments(
        _ reorder: CachedPrimitive, from source: UnsafeMutableRawPointer, to destination: UnsafeMutableRawPointer,
        scratch: UnsafeMutableRawPointer?
    ) -> [Argument] {
        var arguments = [Argument(DNNL_ARG_FROM, source), Argument(DNNL_ARG_TO, destination)]
        if let scratch, reorder.scratchpadSize > 0 { arguments.append(Argument(DNNL_ARG_SCRATCHPAD, scratch)) }
        return arguments
    }

    /// The shared buffer that holds blocked copies of a (de)convolution's operands while it runs,
    /// at least `size` bytes. Call with `lock` held.
    private func workspace(atLeast size: Int) -> UnsafeMutableRawPointer {
        if let workspaceBuffer, workspaceCapacity >= size { return workspaceBuffer }
        workspaceBuffer?.deallocate()
        let grown = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
        workspaceBuffer = grown
        workspaceCapacity = size
        return grown
    }

    /// The forward primitive descriptor that a backward primitive takes as its hint: from the
    /// layout-choosing cache when layouts are chosen, so that both sides agree on them.
    private func hintPrimitive(_ key: PrimitiveKey) -> CachedPrimitive {
        choosesLayouts && key.hasLayoutChoice ? reorderedPrimitive(key).core : cachedPrimitive(key)
    }

    /// The layout-choosing primitive for `key` with its reorders, built on first use. Call with `lock` held.
    private func reorderedPrimitive(_ key: PrimitiveKey) -> ReorderedPrimitive {
        if let cached = reorderedCache[key] { return cached }
        let core = CachedPrimitive(descriptor: makePrimitiveDescriptor(key), key: key)
        var operands: [ReorderedPrimitive.Operand] = []
        var layouts: [OneDNNLayout] = []
        var scratchpadSize = core.scratchpadSize
        for (slot, plain, isOutput) in key.layoutOperands {
            guard let chosen = dnnl_primitive_desc_query_md(core.descriptor, dnnl_query_exec_arg_md, slot),
                chosen.pointee.ndims > 0
            else { preconditionFailure("oneDNN primitive takes no argument \(slot): \(key)") }
            var plainDescriptor = plain
            if dnnl_memory_desc_equal(chosen, &plainDescriptor) != 0 { continue }
            let reorder = isOutput
                ? makeReorder(from: chosen, to: &plainDescriptor, key)
                : makeReorder(from: &plainDescriptor, to: chosen, key)
            scratchpadSize = max(scratchpadSize, reorder.scratchpadSize)
            operands.append(.init(slot: slot, isOutput: isOutput, reorder: reorder, byteCount: (dnnl_memory_desc_get_size(chosen) + 63) / 64 * 64))
            layouts.append(
                OneDNNLayout(
                    slot: slot, descriptor: chosen.pointee, plain: plain, isOutput: isOutput, toPlain: isOutput ? reorder : nil, key: key,
                    backend: self))
        }
        let reordered = ReorderedPrimitive(
            core: core, operands: operands, layouts: layouts, scratchpadSize: scratchpadSize)
        reorderedCache[key] = reordered
        return reordered
    }

    /// A reorder primitive between two layouts of the same tensor, with a user-managed scratchpad.
    private func makeReorder(
        from source: UnsafePointer<dnnl_memory_desc_t>, to destination: UnsafePointer<dnnl_memory_desc_t>,
        _ key: PrimitiveKey
    ) -> CachedPrimitive {
        var createdAttributes: dnnl_primitive_attr_t?
        check(dnnl_primitive_attr_create(&createdAttributes), "dnnl_primitive_attr_create", key)
        guard let attributes = createdAttributes else { preconditionFailure("no primitive attributes for \(key)") }
        defer { dnnl_primitive_attr_destroy(attributes) }
        check(
            dnnl_primitive_attr_set_scratchpad_mode(attributes, dnnl_scratchpad_mode_user),
            "dnnl_primitive_attr_set_scratchpad_mode", key)
        var descriptor: dnnl_primitive_desc_t?
        check(
            dnnl_reorder_primitive_desc_create(&descriptor, source, engine, destination, engine, attributes),
            "dnnl_reorder_primitive_desc_create", key)
        guard let descriptor else { preconditionFailure("dnnl_reorder_primitive_desc_create returned nothing for \(key)") }
        return CachedPrimitive(descriptor: descriptor, key: key)
    }

    /// The cached primitive for `key`, built on first use. Call with `lock` held.
    private func cachedPrimitive(_ key: PrimitiveKey) -> CachedPrimitive {
        if let cached = cache[key] { return cached }
        let cached = CachedPrimitive(descriptor: makePrimitiveDescriptor(key), key: key)
        cache[key] = cached
        return cached
    }

    /// Builds the oneDNN operation descriptor for `key` and the primitive descriptor from it.
    /// Backward primitives take the matching forward primitive descriptor as a hint (oneDNN needs it
    /// to pick a compatible implementation), which is itself cached. Call with `lock` held.
    private func makePrimitiveDescriptor(_ key: PrimitiveKey) -> dnnl_primitive_desc_t {
        switch key {
        case .convolutionForward(let g, let withBias):
            var shapes = ConvolutionShapes(g, chooseLayouts: choosesLayouts)
            var bias = withBias ? shapes.bias : dnnl_memory_desc_t()  // a zero descriptor means "no bias"
            var descriptor = dnnl_convolution_desc_t()
            check(
                dnnl_convolution_forward_desc_init(
                    &descriptor, dnnl_forward_training, dnnl_convolution_direct,
                    &shapes.source, &shapes.weights, &bias, &shapes.destination,
                    shapes.strides, shapes.padding, shapes.padding),
                "dnnl_convolution_forward_desc_init", key)
            return primitiveDescriptor(&descriptor, hint: nil, key)

        case .convolutionBackwardData(let g):
            var shapes = ConvolutionShapes(g, chooseLayouts: choosesLayouts)
            var descriptor = dnnl_convolution_desc_t()
            check(
                dnnl_convolution_backward_data_desc_init(
                    &descriptor, dnnl_convolution_direct, &shapes.source, &shapes.weights, &shapes.destination,
                    shapes.strides, shapes.padding, shapes.padding),
                "dnnl_convolution_backward_data_desc_init", key)
            let hint = hintPrimitive(.convolutionForward(g, withBias: false))
            return primitiveDescriptor(&descriptor, hint: hint.descriptor, key)

        case .convolutionBackwardWeights(let g, let withBias):
            var shapes = ConvolutionShapes(g, chooseLayouts: choosesLayouts)
            var bias = withBias ? shapes.bias : dnnl_memory_desc_t()
            var descriptor = dnnl_convolution_desc_t()
            check(
                dnnl_convolution_backward_weights_desc_init(
                    &descriptor, dnnl_convolution_direct, &shapes.source, &shapes.weights, &bias,
                    &shapes.destination, shapes.strides, shapes.padding, shapes.padding),
                "dnnl_convolution_backward_weights_desc_init", key)
            let hint = hintPrimitive(.convolutionForward(g, withBias: withBias))
            return primitiveDescriptor(&descriptor, hint: hint.descriptor, key)

        case .deconvolutionForward(let g, let withBias):
            var shapes = DeconvolutionShapes(g, chooseLayouts: choosesLayouts)
            var bias = withBias ? shapes.bias : dnnl_memory_desc_t()
            var descriptor = dnnl_deconvolution_desc_t()
            check(
                dnnl_deconvolution_forward_desc_init(
                    &descriptor, dnnl_forward_training, dnnl_deconvolution_direct,
                    &shapes.source, &shapes.weights, &bias, &shapes.destination,
                    shapes.strides, shapes.paddingBefore, shapes.paddingAfter),
                "dnnl_deconvolution_forward_desc_init", key)
            return primitiveDescriptor(&descriptor, hint: nil, key)

        case .deconvolutionBackwardData(let g):
            var shapes = DeconvolutionShapes(g, chooseLayouts: choosesLayouts)
            var descriptor = dnnl_deconvolution_desc_t()
            check(
                dnnl_deconvolution_backward_data_desc_init(
                    &descriptor, dnnl_deconvolution_direct, &shapes.source, &shapes.weights, &shapes.destination,
                    shapes.strides, shapes.paddingBefore, shapes.paddingAfter),
                "dnnl_deconvolution_backward_data_desc_init", key)
            let hint = hintPrimitive(.deconvolutionForward(g, withBias: false))
            return primitiveDescriptor(&descriptor, hint: hint.descriptor, key)

        case .deconvolutionBackwardWeights(let g, let withBias):
            var shapes = DeconvolutionShapes(g, chooseLayouts: choosesLayouts)
            var bias = withBias ? shapes.bias : dnnl_memory_desc_t()
            var descriptor = dnnl_deconvolution_desc_t()
            check(
                dnnl_deconvolution_backward_weights_desc_init(
                    &descriptor, dnnl_deconvolution_direct, &shapes.source, &shapes.weights, &bias,
                    &shapes.destination, shapes.strides, shapes.paddingBefore, shapes.paddingAfter),
                "dnnl_deconvolution_backward_weights_desc_init", key)
            let hint = hintPrimitive(.deconvolutionForward(g, withBias: withBias))
            return primitiveDescriptor(&descriptor, hint: hint.descriptor, key)

        case .batchedMatmul(let product):
            var (a, b, c) = product.memoryDescriptors
            var descriptor = dnnl_matmul_desc_t()
            check(dnnl_matmul_desc_init(&descriptor, &a, &b, nil, &c), "dnnl_matmul_desc_init", key)
            return primitiveDescriptor(&descriptor, hint: nil, key) { attributes in
                // C = alpha · A·B (output scale) + beta · C (sum post-op, which reads C first).
                if product.alpha != 1 {
                    var alpha = product.alpha
                    check(
                        dnnl_primitive_attr_set_output_scales(attributes, 1, 0, &alpha),
                        "dnnl_primitive_attr_set_output_scales", key)
                }
                if product.beta != 0 {
                    var postOperations: dnnl_post_ops_t?
                    check(dnnl_post_ops_create(&postOperations), "dnnl_post_ops_create", key)
                    defer { dnnl_post_ops_destroy(postOperations) }
                    check(dnnl_post_ops_append_sum(postOperations, product.beta), "dnnl_post_ops_append_sum", key)
                    check(
                        dnnl_primitive_attr_set_post_ops(attributes, postOperations),
                        "dnnl_primitive_attr_set_post_ops", key)
                }
            }

        }
    }

    /// Turns an operation descriptor (`operation` points at one of oneDNN's `dnnl_*_desc_t` structs)
    /// into a primitive descriptor; oneDNN picks its first (fastest) implementation that accepts the
    /// plain layouts. Every primitive gets a user-managed scratchpad; `configure` may add attributes.
    private func primitiveDescriptor(
        _ operation: UnsafeRawPointer, hint: dnnl_primitive_desc_t?, _ key: PrimitiveKey,
        configure: (dnnl_primitive_attr_t) -> Void = { _ in }
    ) -> dnnl_primitive_desc_t {
        var createdAttributes: dnnl_primitive_attr_t?
        check(dnnl_primitive_attr_create(&createdAttributes), "dnnl_primitive_attr_create", key)
        guard let attributes = createdAttributes else { preconditionFailure("no primitive attributes for \(key)") }
        defer { dnnl_primitive_attr_destroy(attributes) }
        configure(attributes)
        check(
            dnnl_primitive_attr_set_scratchpad_mode(attributes, dnnl_scratchpad_mode_user),
            "dnnl_primitive_attr_set_scratchpad_mode", key)
        var descriptor: dnnl_primitive_desc_t?
        check(
            dnnl_primitive_desc_create(&descriptor, operation, attributes, engine, hint), "dnnl_primitive_desc_create",
            key)
        guard let descriptor else { preconditionFailure("dnnl_primitive_desc_create returned nothing for \(key)") }
        return descriptor
    }
}

// MARK: - Cache entries

/// What identifies a primitive: the op kind and everything baked into its descriptor.
enum PrimitiveKey: Hashable, CustomStringConvertible {
    case convolutionForward(Conv2dGeometry, withBias: Bool)
    case convolutionBackwardData(Conv2dGeometry)
    case convolutionBackwardWeights(Conv2dGeometry, withBias: Bool)
    case deconvolutionForward(ConvTranspose2dGeometry, withBias: Bool)
    case deconvolutionBackwardData(ConvTranspose2dGeometry)
    case deconvolutionBackwardWeights(ConvTranspose2dGeometry, withBias: Bool)
    case batchedMatmul(BatchedProduct)

    var description: String {
        switch self {
        case .convolutionForward(let g, let withBias): "convolution forward (bias \(withBias)) \(g)"
        case .convolutionBackwardData(let g): "convolution backward data \(g)"
        case .convolutionBackwardWeights(let g, let withBias): "convolution backward weights (bias \(withBias)) \(g)"
        case .deconvolutionForward(let g, let withBias): "deconvolution forward (bias \(withBias)) \(g)"
        case .deconvolutionBackwardData(let g): "deconvolution backward data \(g)"
        case .deconvolutionBackwardWeights(let g, let withBias): "deconvolution backward weights (bias \(withBias)) \(g)"
        case .batchedMatmul(let product): "batched matmul \(product)"
        }
    }
}

extension PrimitiveKey {
    /// (De)convolutions can run in layouts of oneDNN's choosing; the other primitives take plain buffers.
    var hasLayoutChoice: Bool {
        switch self {
        case .convolutionForward, .convolutionBackwardData, .convolutionBackwardWeights,
            .deconvolutionForward, .deconvolutionBackwardData, .deconvolutionBackwardWeights:
            true
        default: false
        }
    }

    /// The operands whose layout oneDNN may choose: the slot, the caller's plain descriptor, and
    /// whether the primitive writes it. Biases are always plain.
    var layoutOperands: [(slot: Int32, plain: dnnl_memory_desc_t, isOutput: Bool)] {
        typealias Operands = [(slot: Int32, plain: dnnl_memory_desc_t, isOutput: Bool)]
        func forward(_ source: dnnl_memory_desc_t, _ weights: dnnl_memory_desc_t, _ destination: dnnl_memory_desc_t)
            -> Operands
        {
            [(DNNL_ARG_SRC, source, false), (DNNL_ARG_WEIGHTS, weights, false), (DNNL_ARG_DST, destination, true)]
        }
        func backwardData(_ source: dnnl_memory_desc_t, _ weights: dnnl_memory_desc_t, _ destination: dnnl_memory_desc_t)
            -> Operands
        {
            [(DNNL_ARG_DIFF_DST, destination, false), (DNNL_ARG_WEIGHTS, weights, false), (DNNL_ARG_DIFF_SRC, source, true)]
        }
        func backwardWeights(
            _ source: dnnl_memory_desc_t, _ weights: dnnl_memory_desc_t, _ destination: dnnl_memory_desc_t
        ) -> Operands {
            [(DNNL_ARG_SRC, source, false), (DNNL_ARG_DIFF_DST, destination, false), (DNNL_ARG_DIFF_WEIGHTS, weights, true)]
        }
        switch self {
        case .convolutionForward(let g, _):
            let shapes = ConvolutionShapes(g)
            return forward(shapes.source, shapes.weights, shapes.destination)
        case .convolutionBackwardData(let g):
            let shapes = ConvolutionShapes(g)
            return backwardData(shapes.source, shapes.weights, shapes.destination)
        case .convolutionBackwardWeights(let g, _):
            let shapes = ConvolutionShapes(g)
            return backwardWeights(shapes.source, shapes.weights, shapes.destination)
        case .deconvolutionForward(let g, _):
            let shapes = DeconvolutionShapes(g)
            return forward(shapes.source, shapes.weights, shapes.destination)
        case .deconvolutionBackwardData(let g):
            let shapes = DeconvolutionShapes(g)
            return backwardData(shapes.source, shapes.weights, shapes.destination)
        case .deconvolutionBackwardWeights(let g, _):
            let shapes = DeconvolutionShapes(g)
            return backwardWeights(shapes.source, shapes.weights, shapes.destination)
        default:
            return []
        }
    }
}

extension PrimitiveKey {
    /// Floating-point operations (or, for batch norm, elements touched) of one run: what decides
    /// whether the primitive is worth running on several threads.
    var work: Int {
        switch self {
        case .convolutionForward(let g, _), .convolutionBackwardData(let g), .convolutionBackwardWeights(let g, _):
            2 * g.batch * g.outputChannels * g.outputHeight * g.outputWidth * g.inputChannels * g.kernelHeight
                * g.kernelWidth
        case .deconvolutionForward(let g, _), .deconvolutionBackwardData(let g), .deconvolutionBackwardWeights(let g, _):
            2 * g.batch * g.outputChannels * g.inputHeight * g.inputWidth * g.inputChannels * g.kernelHeight
                * g.kernelWidth
        case .batchedMatmul(let product):
            2 * product.count * product.m * product.n * product.k
        }
    }
}

/// A (de)convolution primitive in layouts of oneDNN's choosing, with a reorder for each operand whose
/// chosen layout differs from the caller's plain one. Not thread-safe: used only with the lock held.
private final class ReorderedPrimitive {
    /// An operand that runs on a blocked copy in the workspace (unless the caller's buffer already holds it).
    struct Operand {
        let slot: Int32
        /// Outputs are reordered back after the run; inputs before it.
        let isOutput: Bool
        let reorder: CachedPrimitive
        /// Bytes of its blocked copy, rounded up to 64 (so that every copy in the workspace is aligned).
        let byteCount: Int
    }
    let core: CachedPrimitive
    let operands: [Operand]
    /// The chosen layout of each operand in `operands`, for buffers that keep their values in it.
    let layouts: [OneDNNLayout]
    /// The largest scratchpad the core or a reorder needs.
    let scratchpadSize: Int

    init(core: CachedPrimitive, operands: [Operand], layouts: [OneDNNLayout], scratchpadSize: Int) {
        self.core = core
        self.operands = operands
        self.layouts = layouts
        self.scratchpadSize = scratchpadSize
    }
}

/// The layout oneDNN chose for one operand of a (de)convolution, in which a buffer can keep its values
/// (TensorLayout): blocked, such as nChw8c. Its conversion to the plain layout runs through the
/// backend that made it, under its lock.
fileprivate final class OneDNNLayout: TensorLayout, @unchecked Sendable {
    let slot: Int32
    /// The chosen layout and the plain one of the same tensor (`var`: oneDNN's C API takes pointers).
    var descriptor: dnnl_memory_desc_t
    var plain: dnnl_memory_desc_t
    let isOutput: Bool
    let byteCount: Int
    let isDense: Bool
    /// The reorder to the plain layout, made on first use. Guarded by the backend's lock.
    var toPlain: CachedPrimitive?
    /// The primitive it belongs to (for error messages).
    let key: PrimitiveKey
    // The backends live as long as the process (Kernels.oneDNN); a test's own instance is kept alive
    // by the buffers that still hold its layouts.
    let backend: OneDNNBackend

    init(
        slot: Int32, descriptor: dnnl_memory_desc_t, plain: dnnl_memory_desc_t, isOutput: Bool, toPlain: CachedPrimitive?,
        key: PrimitiveKey, backend: OneDNNBackend
    ) {
        self.slot = slot
        self.descriptor = descriptor
        self.plain = plain
        self.isOutput = isOutput
        self.toPlain = toPlain
        self.key = key
        self.backend = backend
        var chosen = descriptor, plainCopy = plain
        byteCount = dnnl_memory_desc_get_size(&chosen)
        isDense = byteCount == dnnl_memory_desc_get_size(&plainCopy)
        channelBlock = isDense ? Self.channelBlock(of: &chosen) : nil
    }

    private static func channelBlock(of descriptor: inout dnnl_memory_desc_t) -> Int? {
        guard descriptor.ndims == 4 else { return nil }
        let dimensions = [descriptor.dims.0, descriptor.dims.1, descriptor.dims.2, descriptor.dims.3]
        for (block, tag) in [(8, dnnl_nChw8c), (16, dnnl_nChw16c)] where dimensions[1] % Int64(block) == 0 {
            var blocked = dnnl_memory_desc_t()
            guard dnnl_memory_desc_init_by_tag(&blocked, 4, dimensions, dnnl_f32, tag) == dnnl_success else { continue }
            if dnnl_memory_desc_equal(&blocked, &descriptor) != 0 { return block }
        }
        return nil
    }

    /// 8 for nChw8c, 16 for nChw16c (of dense 4-D tensors), else nil.
    let channelBlock: Int?

    func isSame(as other: any TensorLayout) -> Bool {
        guard let other = other as? OneDNNLayout else { return false }
        if other === self { return true }
        return dnnl_memory_desc_equal(&descriptor, &other.descriptor) != 0
    }

    func writePlain(from source: UnsafeRawPointer, to destination: UnsafeMutablePointer<Float>) {
        backend.writePlain(self, from: source, to: destination)
    }
}

/// One buffer passed to a primitive: the DNNL_ARG_* slot and the caller's pointer.
private struct Argument {
    let slot: Int32
    let pointer: UnsafeMutableRawPointer
    /// Whether `pointer` already holds the operand in the layout the primitive chose (no reorder).
    var inChosenLayout = false

    init(_ slot: Int32, _ pointer: UnsafeMutableRawPointer, inChosenLayout: Bool) {
        self.slot = slot
        self.pointer = pointer
        self.inChosenLayout = inChosenLayout
    }

    init(_ slot: Int32, _ pointer: UnsafePointer<Float>) {
        self.slot = slot
        // oneDNN takes `void *` for every buffer, read-only ones included; it never writes to inputs.
        self.pointer = UnsafeMutableRawPointer(mutating: pointer)
    }

    init(_ slot: Int32, _ pointer: UnsafeMutablePointer<Float>) {
        self.slot = slot
        self.pointer = UnsafeMutableRawPointer(pointer)
    }

    init(_ slot: Int32, _ pointer: UnsafeMutableRawPointer) {
        self.slot = slot
        self.pointer = pointer
    }
}

/// A primitive descriptor, its primitive, and one memory object per argument slot (made on first
/// use from the descriptor's own memory descriptor, then re-pointed at each call's buffers).
/// Not thread-safe: used only with the backend's lock held.
private final class CachedPrimitive {
    let descriptor: dnnl_primitive_desc_t
    let primitive: dnnl_primitive_t
    /// Bytes of scratch space the primitive needs at each run (0 for none).
    let scratchpadSize: Int
    private var memories: [(slot: Int32, memory: dnnl_memory_t)] = []
    private var executeArguments: [dnnl_exec_arg_t] = []

    init(descriptor: dnnl_primitive_desc_t, key: PrimitiveKey) {
        var primitive: dnnl_primitive_t?
        check(dnnl_primitive_create(&primitive, descriptor), "dnnl_primitive_create", key)
        guard let primitive else { preconditionFailure("dnnl_primitive_create returned nothing for \(key)") }
        self.descriptor = descriptor
        self.primitive = primitive
        scratchpadSize = dnnl_primitive_desc_query_md(descriptor, dnnl_query_scratchpad_md, 0)
            .map { dnnl_memory_desc_get_size($0) } ?? 0
    }

    deinit {
        for (_, memory) in memories { dnnl_memory_destroy(memory) }
        dnnl_primitive_destroy(primitive)
        dnnl_primitive_desc_destroy(descriptor)
    }

    /// oneDNN's implementation name, e.g. "gemm:jit" or "jit:avx512_core".
    var implementationName: String {
        var name: UnsafePointer<CChar>?
        guard dnnl_primitive_desc_query(descriptor, dnnl_query_impl_info_str, 0, &name) == dnnl_success,
            let name
        else { return "unknown" }
        return String(cString: name)
    }

    /// Points the memory objects at `arguments` and runs the primitive to completion.
    func execute(_ arguments: [Argument], engine: dnnl_engine_t, stream: dnnl_stream_t, key: PrimitiveKey) {
        executeArguments.removeAll(keepingCapacity: true)
        for argument in arguments {
            let memory = memory(for: argument.slot, engine: engine, key: key)
            check(dnnl_memory_set_data_handle(memory, argument.pointer), "dnnl_memory_set_data_handle", key)
            executeArguments.append(dnnl_exec_arg_t(arg: argument.slot, memory: memory))
        }
        check(
            dnnl_primitive_execute(primitive, stream, Int32(executeArguments.count), executeArguments),
            "dnnl_primitive_execute", key)
        check(dnnl_stream_wait(stream), "dnnl_stream_wait", key)
    }

    private func memory(for slot: Int32, engine: dnnl_engine_t, key: PrimitiveKey) -> dnnl_memory_t {
        if let existing = memories.first(where: { $0.slot == slot }) { return existing.memory }
        // The primitive's own descriptor for this slot; a zero descriptor (ndims 0) means the
        // primitive takes no such argument, which is a bug in the caller's argument list.
        guard let memoryDescriptor = dnnl_primitive_desc_query_md(descriptor, dnnl_query_exec_arg_md, slot),
            memoryDescriptor.pointee.ndims > 0
        else { preconditionFailure("oneDNN primitive takes no argument \(slot): \(key)") }
        var memory: dnnl_memory_t?
        // No buffer yet: `dnnl_memory_set_data_handle` supplies one at each call.
        check(dnnl_memory_create(&memory, memoryDescriptor, engine, nil), "dnnl_memory_create", key)
        guard let memory else { preconditionFailure("dnnl_memory_create returned nothing for \(key)") }
        memories.append((slot, memory))
        return memory
    }
}

// MARK: - Memory descriptors for each op (plain layouts only)

/// Row-major f32 memory descriptor with a plain format tag.
private func plainMemoryDescriptor(_ dimensions: [Int], _ tag: dnnl_format_tag_t) -> dnnl_memory_desc_t {
    var descriptor = dnnl_memory_desc_t()
    let dimensions64 = dimensions.map(Int64.init)
    check(
        dnnl_memory_desc_init_by_tag(&descriptor, Int32(dimensions.count), dimensions64, dnnl_f32, tag),
        "dnnl_memory_desc_init_by_tag", "dimensions \(dimensions)")
    return descriptor
}

/// Convolution: src [N, Cin, H, W] nchw, weights [Cout, Cin, kh, kw] oihw, dst [N, Cout, Ho, Wo] nchw.
private struct ConvolutionShapes {
    var source, weights, bias, destination: dnnl_memory_desc_t
    let strides: [Int64]
    /// Used for both sides: oneDNN only checks (H − k + before + after) / s + 1 == Ho with integer
    /// division, so PyTorch's floor rule is met by symmetric padding even when the last rows of
    /// padding are never reached.
    let padding: [Int64]

    /// With `chooseLayouts`, source, weights and destination say `format_tag_any`, so that oneDNN
    /// picks its blocked layouts (and its direct JIT kernels); the bias stays plain.
    init(_ g: Conv2dGeometry, chooseLayouts: Bool = false) {
        source = plainMemoryDescriptor(
            [g.batch, g.inputChannels, g.inputHeight, g.inputWidth], chooseLayouts ? dnnl_format_tag_any : dnnl_nchw)
        weights = plainMemoryDescriptor(
            [g.outputChannels, g.inputChannels, g.kernelHeight, g.kernelWidth],
            chooseLayouts ? dnnl_format_tag_any : dnnl_oihw)
        bias = plainMemoryDescriptor([g.outputChannels], dnnl_x)
        destination = plainMemoryDescriptor(
            [g.batch, g.outputChannels, g.outputHeight, g.outputWidth], chooseLayouts ? dnnl_format_tag_any : dnnl_nchw)
        strides = [Int64(g.strideHeight), Int64(g.strideWidth)]
        padding = [Int64(g.paddingHeight), Int64(g.paddingWidth)]
    }
}

/// Deconvolution: src [N, Cin, H, W] nchw, dst [N, Cout, Ho, Wo] nchw. oneDNN's deconvolution weights
/// are logically (OC, IC, kh, kw); PyTorch stores [Cin, Cout, kh, kw], i.e. IC outermost, which is
/// the tag iohw, so oneDNN reads the PyTorch buffer as it is.
private struct DeconvolutionShapes {
    var source, weights, bias, destination: dnnl_memory_desc_t
    let strides: [Int64]
    let paddingBefore: [Int64]
    /// oneDNN checks (Ho − k + before + after) / s + 1 == H. With Ho = (H − 1)s − 2p + k + op, the
    /// natural value is p − op; when that is negative, 0 passes the same check (op < s), and the
    /// padding after the last row never changes a result, only the consistency check.
    let paddingAfter: [Int64]

    /// With `chooseLayouts`, source, weights and destination say `format_tag_any` (see ConvolutionShapes).
    init(_ g: ConvTranspose2dGeometry, chooseLayouts: Bool = false) {
        source = plainMemoryDescriptor(
            [g.batch, g.inputChannels, g.inputHeight, g.inputWidth], chooseLayouts ? dnnl_format_tag_any : dnnl_nchw)
        weights = plainMemoryDescriptor(
            [g.outputChannels, g.inputChannels, g.kernelHeight, g.kernelWidth],
            chooseLayouts ? dnnl_format_tag_any : dnnl_iohw)
        bias = plainMemoryDescriptor([g.outputChannels], dnnl_x)
        destination = plainMemoryDescriptor(
            [g.batch, g.outputChannels, g.outputHeight, g.outputWidth], chooseLayouts ? dnnl_format_tag_any : dnnl_nchw)
        strides = [Int64(g.strideHeight), Int64(g.strideWidth)]
        paddingBefore = [Int64(g.paddingHeight), Int64(g.paddingWidth)]
        paddingAfter = [
            Int64(max(0, g.paddingHeight - g.outputPaddingHeight)),
            Int64(max(0, g.paddingWidth - g.outputPaddingWidth)),
        ]
    }
}

/// A batched gemm's shape, strides and scalars: everything baked into its matmul primitive.
struct BatchedProduct: Hashable {
    var count: Int
    var transposeA, transposeB: Bool
    var m, n, k: Int
    var alpha: Float
    var lda, strideA, ldb, strideB: Int
    var beta: Float
    var ldc, strideC: Int

    /// op(A) [count, m, k], op(B) [count, k, n], C [count, m, n], described by strides so that the
    /// caller's buffers are read in place: a transposed operand just swaps its two inner strides.
    /// A batch stride of 0 becomes a batch dimension of 1, which oneDNN broadcasts.
    var memoryDescriptors: (a: dnnl_memory_desc_t, b: dnnl_memory_desc_t, c: dnnl_memory_desc_t) {
        let a = stridedMemoryDescriptor(
            [strideA == 0 ? 1 : count, m, k],
            [strideA == 0 ? m * k : strideA, transposeA ? 1 : lda, transposeA ? lda : 1])
        let b = stridedMemoryDescriptor(
            [strideB == 0 ? 1 : count, k, n],
            [strideB == 0 ? k * n : strideB, transposeB ? 1 : ldb, transposeB ? ldb : 1])
        let c = stridedMemoryDescriptor([count, m, n], [strideC, ldc, 1])
        return (a, b, c)
    }
}

/// f32 memory descriptor with explicit strides (in elements).
private func stridedMemoryDescriptor(_ dimensions: [Int], _ strides: [Int]) -> dnnl_memory_desc_t {
    var descriptor = dnnl_memory_desc_t()
    check(
        dnnl_memory_desc_init_by_strides(
            &descriptor, Int32(dimensions.count), dimensions.map(Int64.init), dnnl_f32, strides.map(Int64.init)),
        "dnnl_memory_desc_init_by_strides", "dimensions \(dimensions) strides \(strides)")
    return descriptor
}

/// Batch norm data [N, C, S] described as nchw with H = S, W = 1 (oneDNN normalises over N, H, W).
private let transposed = CChar(UInt8(ascii: "T"))
private let notTransposed = CChar(UInt8(ascii: "N"))

// MARK: - Status checks

/// Stops on a failed oneDNN call: every failure here is a programming error (a shape the caller
/// should not have produced, or a bug in this file), never bad user input.
private func check(_ status: dnnl_status_t, _ function: String, _ context: @autoclosure () -> String) {
    guard status != dnnl_success else { return }
    preconditionFailure("oneDNN \(function) failed with \(statusName(status)) for \(context())")
}

private func check(_ status: dnnl_status_t, _ function: String, _ key: PrimitiveKey) {
    check(status, function, key.description)
}

private func statusName(_ status: dnnl_status_t) -> String {
    switch status {
    case dnnl_out_of_memory: "dnnl_out_of_memory"
    case dnnl_invalid_arguments: "dnnl_invalid_arguments"
    case dnnl_unimplemented: "dnnl_unimplemented"
    case dnnl_iterator_ends: "dnnl_iterator_ends"
    case dnnl_runtime_error: "dnnl_runtime_error"
    case dnnl_not_required: "dnnl_not_required"
    default: "status \(status.rawValue)"
    }
}

// MARK: - Empty shapes

// oneDNN's handling of zero-sized dimensions varies by primitive; an empty batch (or no channels)
// goes through the reference loops instead, which produce the right zeros trivially.
extension Conv2dGeometry {
    var isEmpty: Bool { batch == 0 || inputChannels == 0 || outputChannels == 0 }
}

extension ConvTranspose2dGeometry {
    var isEmpty: Bool { batch == 0 || inputChannels == 0 || outputChannels == 0 }
}

extension BatchNormGeometry {
    var isEmpty: Bool { batch == 0 || channels == 0 || spatial == 0 }
}
