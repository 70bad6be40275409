import NFMKernels

// Convolution and transposed convolution through the backend (oneDNN in production). Forward,
// backward-data and backward-weights are each one kernel call; nothing is materialised in Swift.

/// 2-D convolution as torch.nn.functional.conv2d (groups 1, dilation 1):
/// x [N, Cin, H, W], weight [Cout, Cin, kh, kw], bias [Cout] → [N, Cout, Ho, Wo].
public func conv2d(
    _ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0
) -> Tensor {
    precondition(x.rank == 4 && weight.rank == 4, "conv2d: input \(x.shape) and weight \(weight.shape) must both be rank 4")
    precondition(
        x.shape[1] == weight.shape[1],
        "conv2d: input \(x.shape) has \(x.shape[1]) channels but weight \(weight.shape) expects \(weight.shape[1])")
    if let bias { precondition(bias.shape == [weight.shape[0]], "conv2d: bias \(bias.shape) does not match weight \(weight.shape)") }
    let geometry = Conv2dGeometry(
        batch: x.shape[0], inputChannels: x.shape[1], inputHeight: x.shape[2], inputWidth: x.shape[3],
        outputChannels: weight.shape[0], kernelHeight: weight.shape[2], kernelWidth: weight.shape[3],
        strideHeight: stride, strideWidth: stride, paddingHeight: padding, paddingWidth: padding)
    precondition(
        geometry.outputHeight > 0 && geometry.outputWidth > 0,
        "conv2d: input \(x.shape) is smaller than kernel \(weight.shape) with padding \(padding)")
    return recordedConvolution(
        "conv2d", x, weight: weight, bias: bias,
        outputShape: [geometry.batch, geometry.outputChannels, geometry.outputHeight, geometry.outputWidth],
        kernels: ConvolutionKernels(
            forward: { Kernels.backend.conv2dForward(geometry, input: $0, weight: $1, bias: $2, output: $3) },
            backwardData: { Kernels.backend.conv2dBackwardData(geometry, gradOutput: $0, weight: $1, gradInput: $2) },
            backwardWeights: {
                Kernels.backend.conv2dBackwardWeights(geometry, input: $0, gradOutput: $1, gradWeight: $2, gradBias: $3)
            }))
}

/// 2-D transposed convolution as torch.nn.functional.conv_transpose2d (groups 1, dilation 1):
/// x [N, Cin, H, W], weight [Cin, Cout, kh, kw], bias [Cout] → [N, Cout, (H−1)s − 2p + k + outputPadding, …].
public func convTranspose2d(
    _ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0, outputPadding: Int = 0
) -> Tensor {
    precondition(x.rank == 4 && weight.rank == 4, "convTranspose2d: input \(x.shape) and weight \(weight.shape) must both be rank 4")
    precondition(
        x.shape[1] == weight.shape[0],
        "convTranspose2d: input \(x.shape) has \(x.shape[1]) channels but weight \(weight.shape) expects \(weight.shape[0])")
    precondition(outputPadding < stride, "convTranspose2d: outputPadding \(outputPadding) must be smaller than stride \(stride)")
    if let bias { precondition(bias.shape == [weight.shape[1]], "convTranspose2d: bias \(bias.shape) does not match weight \(weight.shape)") }
    let geometry = ConvTranspose2dGeometry(
        batch: x.shape[0], inputChannels: x.shape[1], inputHeight: x.shape[2], inputWidth: x.shape[3],
        outputChannels: weight.shape[1], kernelHeight: weight.shape[2], kernelWidth: weight.shape[3],
        strideHeight: stride, strideWidth: stride, paddingHeight: padding, paddingWidth: padding,
        outputPaddingHeight: outputPadding, outputPaddingWidth: outputPadding)
    precondition(geometry.outputHeight > 0 && geometry.outputWidth > 0, "convTranspose2d: empty output for input \(x.shape) and weight \(weight.shape)")
    return recordedConvolution(
        "convTranspose2d", x, weight: weight, bias: bias,
        outputShape: [geometry.batch, geometry.outputChannels, geometry.outputHeight, geometry.outputWidth],
        kernels: ConvolutionKernels(
            forward: { Kernels.backend.convTranspose2dForward(geometry, input: $0, weight: $1, bias: $2, output: $3) },
            backwardData: { Kernels.backend.convTranspose2dBackwardData(geometry, gradOutput: $0, weight: $1, gradInput: $2) },
            backwardWeights: {
                Kernels.backend.convTranspose2dBackwardWeights(geometry, input: $0, gradOutput: $1, gradWeight: $2, gradBias: $3)
            }))
}

/// A convolution-like op's three backend kernels, its geometry bound in.
private struct ConvolutionKernels {
    let forward: (_ input: TensorBuffer, _ weight: TensorBuffer, _ bias: TensorBuffer?, _ output: TensorBuffer) -> Void
    let backwardData: (_ gradOutput: TensorBuffer, _ weight: TensorBuffer, _ gradInput: TensorBuffer) -> Void
    let backwardWeights: (
        _ input: TensorBuffer, _ gradOutput: TensorBuffer, _ gradWeight: TensorBuffer, _ gradBias: TensorBuffer?
    ) -> Void
}

/// Runs a convolution-like op forward and records its pullback: ∂input from the backward-data
/// kernel when the input needs it; ∂weight and ∂bias from one backward-weights call.
private func recordedConvolution(
    _ op: String, _ x: Tensor, weight: Tensor, bias: Tensor?, outputShape: [Int], kernels: ConvolutionKernels
) -> Tensor {
    let (input, w) = (x.detached(), weight.detached())
    let result = Tensor.computed(outputShape) { kernels.forward(input.storage, w.storage, bias?.storage, $0) }
    let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
    let (needInput, needWeight, biasShape) = (x.requiresGradient, weight.requiresGradient, bias?.shape)
    return result.recorded(op, inputs: inputs) { g in
        let gradInput = needInput ? Tensor.computed(input.shape) { kernels.backwardData(g.storage, w.storage, $0) } : nil
        let (gradWeight, gradBias) = weightGradients(weightShape: w.shape, biasShape: biasShape) {
            kernels.backwardWeights(input.storage, g.storage, $0, $1)
        }
        var grads: [Tensor?] = [gradInput, needWeight ? gradWeight : nil]
        if biasShape != nil { grads.append(gradBias) }
        return grads
    }
}

/// Runs a backward-weights kernel into fresh gradient buffers: ∂weight of `weightShape`, and ∂bias
/// of `biasShape` when the op has a bias (the kernel gets nil otherwise).
private func weightGradients(
    weightShape: [Int], biasShape: [Int]?,
    _ kernel: (_ gradWeight: TensorBuffer, _ gradBias: TensorBuffer?) -> Void
) -> (weight: Tensor, bias: Tensor?) {
    let biasStorage = biasShape.map { TensorBuffer(uninitializedCount: Tensor.elementCount($0)) }
    let weight = Tensor.computed(weightShape) { gradWeight in kernel(gradWeight, biasStorage) }
    return (weight, biasShape.map { Tensor(shape: $0, storage: biasStorage!) })
}
