import NFMKernels

// Pooling through the backend, and nearest-neighbour resizing (the NFM memory resize, DESIGN.md §2).

/// Max pooling as torch.nn.functional.max_pool2d (ceil_mode false); stride defaults to the kernel size.
public func maxPool2d(_ x: Tensor, kernelSize: Int, stride: Int? = nil, padding: Int = 0) -> Tensor {
    pool2d(x, kind: .max, kernelSize: kernelSize, stride: stride ?? kernelSize, padding: padding, op: "maxPool2d")
}

/// Average pooling as torch.nn.functional.avg_pool2d (ceil_mode false); stride defaults to the kernel size.
public func avgPool2d(
    _ x: Tensor, kernelSize: Int, stride: Int? = nil, padding: Int = 0, countIncludePadding: Bool = true
) -> Tensor {
    pool2d(
        x, kind: .average(countIncludePadding: countIncludePadding), kernelSize: kernelSize,
        stride: stride ?? kernelSize, padding: padding, op: "avgPool2d")
}

private func pool2d(_ x: Tensor, kind: PoolKind, kernelSize: Int, stride: Int, padding: Int, op: String) -> Tensor {
    precondition(x.rank == 4, "\(op): input must be [N, C, H, W], got \(x.shape)")
    precondition(padding * 2 <= kernelSize, "\(op): padding \(padding) must be at most half of kernel size \(kernelSize)")
    let geometry = Pool2dGeometry(
        batch: x.shape[0], channels: x.shape[1], inputHeight: x.shape[2], inputWidth: x.shape[3],
        kernelHeight: kernelSize, kernelWidth: kernelSize, strideHeight: stride, strideWidth: stride,
        paddingHeight: padding, paddingWidth: padding)
    precondition(geometry.outputHeight > 0 && geometry.outputWidth > 0, "\(op): input \(x.shape) is smaller than kernel \(kernelSize)")
    let outputShape = [geometry.batch, geometry.channels, geometry.outputHeight, geometry.outputWidth]
    var indices: PoolSavedIndices?
    let result = Tensor.computed(outputShape) {
        indices = Kernels.backend.pool2dForward(geometry, kind: kind, input: x.storage, output: $0)
    }
    let inputShape = x.shape
    return result.recorded(op, input: x) { [indices] g in
        Tensor.computed(inputShape) {
            Kernels.backend.pool2dBackward(geometry, kind: kind, gradOutput: g.storage, indices: indices, gradInput: $0)
        }
    }
}

/// The source index PyTorch's `nearest` mode reads for output index `i`: floor(i · in/out), with the
/// scale computed in Float32 as PyTorch's CPU kernel does, so that indices agree exactly.
@inline(__always) func nearestSourceIndex(_ i: Int, input: Int, output: Int) -> Int {
    Swift.min(Int(Float(i) * (Float(input) / Float(output))), input - 1)
}

/// Nearest-neighbour resize of [N, C, H, W] to [N, C, height, width], as
/// torch.nn.functional.interpolate(mode="nearest"). The gradient sums over the pixels that read each source.
public func resizeNearest(_ x: Tensor, height: Int, width: Int) -> Tensor {
    precondition(x.rank == 4, "resizeNearest: input must be [N, C, H, W], got \(x.shape)")
    precondition(height > 0 && width > 0, "resizeNearest: target size \(height)×\(width) must be positive")
    let (planes, inputHeight, inputWidth) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
    if inputHeight == height && inputWidth == width { return x }
    let rowSource = (0..<height).map { nearestSourceIndex($0, input: inputHeight, output: height) }
    let columnSource = (0..<width).map { nearestSourceIndex($0, input: inputWidth, output: width) }
    let inputShape = x.shape
    // The input element that each output pixel reads: a gather forward, a scatter-add backward.
    var sources = [Int]()
    sources.reserveCapacity(planes * height * width)
    for p in 0..<planes {
        for r in rowSource {
            for c in columnSource { sources.append((p * inputHeight + r) * inputWidth + c) }
        }
    }
    let result = Tensor.computed([x.shape[0], x.shape[1], height, width]) {
        Kernels.backend.gather(x.storage, indices: sources, blockLength: 1, output: $0)
    }
    return result.recorded("resizeNearest", input: x) { g in
        Tensor.computed(inputShape) { Kernels.backend.scatterAdd(g.storage, indices: sources, blockLength: 1, output: $0) }
    }
}
