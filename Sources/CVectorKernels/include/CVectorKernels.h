// The hot loops of NFMKernels' Swift kernels, compiled once per instruction set (AVX2, AVX-512) and
// chosen at run time (issue 13, item 4). Swift builds its own code for baseline x86-64 (SSE, 4
// lanes); these C copies of the same loops use the vector width of the CPU they run on.
//
// Contract: every kernel does the same IEEE operations in the same order as the Swift loop it
// replaces (the portable path: PortablePrimitives.swift, OptimizerSteps.swift,
// BatchNormalization.swift, BatchNormStatistics.swift), with no fused multiply-add, so its results
// are bit-identical to the portable path's. Sums keep the Swift loops' eight-lane layout for the
// same reason. Float32, dense buffers; `count` elements; an output may be one of the inputs
// (in-place accumulation) but never overlaps it partially.
//
// Only NFMKernels imports this module: raw pointers stay below the backend boundary.
#ifndef NFM_C_VECTOR_KERNELS_H
#define NFM_C_VECTOR_KERNELS_H

#include <stdbool.h>
#include <stdint.h>

// Pointers are non-null unless marked `_Nullable` (so Swift sees plain, non-optional pointers).
#pragma clang assume_nonnull begin

/// The instruction sets with compiled kernels.
typedef enum NFMVectorInstructionSet {
    NFMVectorInstructionSetAVX2 = 1,
    /// AVX-512 Foundation.
    NFMVectorInstructionSetAVX512 = 2,
} NFMVectorInstructionSet;

/// One-operand maps; each mirrors `UnaryOperation.apply` of ElementwiseOperations.swift.
typedef enum NFMUnaryKernel {
    NFMUnaryKernelNegate,
    NFMUnaryKernelAbs,
    /// x·x (`power(2)`).
    NFMUnaryKernelSquare,
    NFMUnaryKernelRelu,
    /// parameter0 = lower, parameter1 = upper.
    NFMUnaryKernelClamp,
    /// parameter0 = slope.
    NFMUnaryKernelLeakyRelu,
    /// parameter0 = probability, parameter1 = scale.
    NFMUnaryKernelKeepMask,
} NFMUnaryKernel;

/// Two-operand maps; each mirrors `BinaryOperation.apply` (a is the incoming gradient for the pullbacks).
typedef enum NFMBinaryKernel {
    NFMBinaryKernelAdd,
    NFMBinaryKernelSubtract,
    NFMBinaryKernelMultiply,
    NFMBinaryKernelDivide,
    NFMBinaryKernelReluBackward,
    /// parameter = slope.
    NFMBinaryKernelLeakyReluBackward,
    NFMBinaryKernelSigmoidBackward,
    NFMBinaryKernelTanhBackward,
    NFMBinaryKernelKeepWhereTrue,
    NFMBinaryKernelKeepWhereFalse,
} NFMBinaryKernel;

/// The scalars of one SGD step, as `SGDStep` in OptimizerSteps.swift.
typedef struct NFMSGDScalars {
    float learningRate, momentum, gradientScale, weightDecay;
    bool nesterov, isFirstStep;
} NFMSGDScalars;

/// The scalars of one Adam / AdamW step, as `AdamStep`.
typedef struct NFMAdamScalars {
    float negativeStepSize, biasCorrection2Root, decay, averageWeight, squareDecay, squareWeight, epsilon, weightDecay;
    bool decoupled;
} NFMAdamScalars;

/// The scalars of one RMSprop step, as `RMSpropStep`.
typedef struct NFMRMSpropScalars {
    float learningRate, alpha, averageWeight, epsilon, weightDecay, momentum;
} NFMRMSpropScalars;

/// BatchNormStatistics' `BlockedSum`: 8 Float lanes that move into a Double total every 8 vectors.
typedef struct NFMBlockedSum {
    double total;
    float lanes[8];
    long pending;
} NFMBlockedSum;

/// The kernels of one instruction set.
typedef struct NFMVectorKernels {
    /// output[i] = op(input[i]).
    void (*unary)(NFMUnaryKernel op, float parameter0, float parameter1, const float *input, float *output, long count);
    /// output[i] = op(a[i·strideA], b[i·strideB]); each stride is 0 (a scalar) or 1, not both 0.
    void (*binary)(
        NFMBinaryKernel op, float parameter, const float *a, long strideA, const float *b, long strideB, float *output,
        long count);
    /// torch.optim.SGD on one parameter; `momentumBuffer` may be NULL.
    void (*sgdStep)(const NFMSGDScalars *step, float *parameter, const float *gradient, float *_Nullable momentumBuffer, long count);
    /// torch.optim.Adam / AdamW; `maximumAverageOfSquares` may be NULL (no AMSGrad).
    void (*adamStep)(
        const NFMAdamScalars *step, float *parameter, const float *gradient, float *average, float *averageOfSquares,
        float *_Nullable maximumAverageOfSquares, long count);
    /// torch.optim.RMSprop; `gradientAverage` (centered) and `momentumBuffer` may be NULL.
    void (*rmspropStep)(
        const NFMRMSpropScalars *step, float *parameter, const float *gradient, float *squareAverage,
        float *_Nullable gradientAverage, float *_Nullable momentumBuffer, long count);
    /// output[i] = input[i]·scale + shift (batch norm's normalisation of one channel run).
    void (*scaleShift)(const float *input, float *output, long count, float scale, float shift);
    /// Σ gradient[i] and Σ gradient[i]·(input[i] − center) of one run, as BatchNormalization.backward's sums.
    void (*gradientSums)(
        const float *gradient, const float *input, long count, float center, float *sumOfGradients,
        float *sumOfProducts);
    /// gradInput[i] = scale·(gradient[i] − meanGradient − (input[i] − center)·normalisedScale).
    void (*batchNormInputGradient)(
        const float *gradient, const float *input, float *gradInput, long count, float scale, float meanGradient,
        float center, float normalisedScale);
    /// Adds values[i] (or, if `squaresAbout`, (values[i] − center)²) to `sum`, as BlockedSum.add.
    void (*blockedSumAdd)(NFMBlockedSum *sum, const float *values, long count, bool squaresAbout, float center);

    // The NFM attention's loops over a head's channels (NFMAttentionKernel.swift). Planes of one
    // channel are `…Stride` floats apart; p runs over the query's `count` pixels; `source`, when
    // given, is an entry's nearest-resize table (pixel p reads source[p] of that entry), else p.

    /// output[p] = (Σ_c a[c·aStride + p] · b[c·bStride + source(p)]) · scale, summed over c in order.
    void (*channelDotProducts)(
        const float *a, long aStride, const float *b, long bStride, const int32_t *_Nullable source, long channels,
        long count, float scale, float *output);
    /// output[c·outputStride + p] += weight[p] · values[c·valueStride + source(p)].
    void (*channelMultiplyAdd)(
        const float *weight, const float *values, long valueStride, const int32_t *_Nullable source, long channels,
        long count, float *output, long outputStride);
    /// output[c·outputStride + source[p]] += weight[p] · values[c·valueStride + p], p in order (the
    /// adjoint of the gather: several pixels may add into one source).
    void (*channelScatterMultiplyAdd)(
        const float *weight, const float *values, long valueStride, const int32_t *source, long channels, long count,
        float *output, long outputStride);
    /// output[c·outputStride + p] = weight[p] · values[c·valueStride + p].
    void (*channelMultiply)(
        const float *weight, const float *values, long valueStride, long channels, long count, float *output,
        long outputStride);
} NFMVectorKernels;

/// Whether this CPU (and the operating system, which must save the wider registers) runs `set`.
bool nfm_cpu_supports(NFMVectorInstructionSet set);

/// The kernels of `set`. Call them only when `nfm_cpu_supports(set)` is true: on another CPU they
/// stop with an illegal instruction.
const NFMVectorKernels *_Nullable nfm_vector_kernels(NFMVectorInstructionSet set);

#pragma clang assume_nonnull end

#endif
