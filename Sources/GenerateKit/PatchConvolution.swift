import NFMTensor

/// A stride-1 convolution computed as explicit patches and one matrix product: the k² shifted
/// views of the zero-padded input become the rows [N·H·W, C·k²] (columns ordered c, then kernel
/// row, then column, the order of the weight's flattening), and `linear` with the weight as a
/// [Cout, C·k²] matrix gives exactly torch's conv2d(x, weight, bias, padding).
///
/// Used for the first layer of the networks that read images, which has one or three input
/// channels: there oneDNN 2.6's convolution weight gradient took about 500 ms for a batch of 64
/// 28×28 images with one input channel, against 5 ms for its forward pass (measured; a 1×1
/// convolution over the patches was as slow), while here the weight gradient is one well-shaped
/// matrix product. Composed from differentiable ops, so its gradients come from theirs.
public func conv2dByPatches(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, padding: Int = 0) -> Tensor {
    precondition(x.rank == 4 && weight.rank == 4, "conv2dByPatches: input \(x.shape) and weight \(weight.shape) must both be rank 4")
    precondition(x.shape[1] == weight.shape[1], "conv2dByPatches: input \(x.shape) does not fit weight \(weight.shape)")
    let (batch, channels, height, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (outputs, kernelHeight, kernelWidth) = (weight.shape[0], weight.shape[2], weight.shape[3])
    let outputHeight = height + 2 * padding - kernelHeight + 1
    let outputWidth = width + 2 * padding - kernelWidth + 1
    precondition(outputHeight > 0 && outputWidth > 0, "conv2dByPatches: input \(x.shape) is smaller than kernel \(weight.shape)")
    let source = padding > 0 ? x.padded([(0, 0), (0, 0), (padding, padding), (padding, padding)]) : x
    var shifted: [Tensor] = []
    for row in 0..<kernelHeight {
        for column in 0..<kernelWidth {
            shifted.append(
                source.sliced(alongAxis: 2, from: row, to: row + outputHeight).sliced(alongAxis: 3, from: column, to: column + outputWidth))
        }
    }
    let columns = channels * kernelHeight * kernelWidth
    // [N, C, Ho, Wo, k²] → [N, Ho, Wo, C, k²] → one row of C·k² values per output pixel.
    let rows = Tensor.stack(shifted, alongAxis: 4).permuted([0, 2, 3, 1, 4]).reshaped(to: [batch * outputHeight * outputWidth, columns])
    let product = linear(rows, weight: weight.reshaped(to: [outputs, columns]), bias: bias)
    return product.reshaped(to: [batch, outputHeight, outputWidth, outputs]).permuted([0, 3, 1, 2])
}
