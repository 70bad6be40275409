// Reductions over axes: sum, mean, max, argmax, variance. Sums accumulate in Double so that long
// reductions (a loss over a batch, a batch-norm statistic) do not lose precision.

extension Tensor {
    /// Resolves and de-duplicates reduction axes; `nil` means every axis.
    func reductionAxes(_ axes: [Int]?, op: String) -> [Int] {
        guard let axes else { return Array(0..<rank) }
        return Array(Set(axes.map { Tensor.normalize(axis: $0, rank: rank, op: op) })).sorted()
    }

    /// Sum over `axes` (all axes if nil), keeping reduced axes as extent 1 if `keepDims`.
    public func sum(alongAxes axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        let reduced = reductionAxes(axes, op: "sum")
        var keepShape = shape
        for axis in reduced { keepShape[axis] = 1 }
        let outputShape = keepDims ? keepShape : shape.enumerated().filter { !reduced.contains($0.offset) }.map(\.element)
        let inputShape = shape
        var accumulator = [Double](repeating: 0, count: Tensor.elementCount(keepShape))
        let outStrides = Tensor.broadcastStrides(of: keepShape, to: shape)
        let inner = shape.last ?? 1
        let step = outStrides.last ?? 0
        accumulator.withUnsafeMutableBufferPointer { acc in
            let input = storage.pointer
            forEachRow(shape: shape, stridesA: outStrides) { row, offset, _, _ in
                let source = input + row * inner
                if step == 0 {
                    var total = 0.0
                    for j in 0..<inner { total += Double(source[j]) }
                    acc[offset] += total
                } else {
                    for j in 0..<inner { acc[offset + j * step] += Double(source[j]) }
                }
            }
        }
        let result = Tensor.build(outputShape) { out in
            for i in 0..<out.count { out[i] = Float(accumulator[i]) }
        }
        return result.recorded("sum", input: self) { g in
            g.reshaped(to: keepShape).expanded(to: inputShape)
        }
    }

    /// Sum along one axis.
    public func sum(alongAxis axis: Int, keepDims: Bool = false) -> Tensor { sum(alongAxes: [axis], keepDims: keepDims) }

    /// Mean over `axes` (all axes if nil).
    public func mean(alongAxes axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        let count = reductionAxes(axes, op: "mean").reduce(1) { $0 * shape[$1] }
        return sum(alongAxes: axes, keepDims: keepDims) * (1 / Float(Swift.max(count, 1)))
    }

    /// Mean along one axis.
    public func mean(alongAxis axis: Int, keepDims: Bool = false) -> Tensor { mean(alongAxes: [axis], keepDims: keepDims) }

    /// Variance over `axes` with Bessel's `correction` (torch.var: 1 by default, 0 for the biased estimate).
    public func variance(alongAxes axes: [Int]? = nil, correction: Int = 1, keepDims: Bool = false) -> Tensor {
        let count = reductionAxes(axes, op: "variance").reduce(1) { $0 * shape[$1] }
        let centered = self - mean(alongAxes: axes, keepDims: true)
        return (centered * centered).sum(alongAxes: axes, keepDims: keepDims) * (1 / Float(Swift.max(count - correction, 1)))
    }

    /// Splits the shape around `axis` into (outer, extent, inner) for single-axis kernels.
    func layout(around axis: Int) -> (outer: Int, extent: Int, inner: Int) {
        (shape[..<axis].reduce(1, *), shape[axis], shape[(axis + 1)...].reduce(1, *))
    }

    /// Maximum and its first index along one axis.
    func maxWithIndices(alongAxis axis: Int) -> (values: [Float], indices: [Int]) {
        let (outer, extent, inner) = layout(around: axis)
        precondition(extent > 0, "max: axis \(axis) of shape \(shape) is empty")
        var values = [Float](repeating: -.infinity, count: outer * inner)
        var indices = [Int](repeating: 0, count: outer * inner)
        let input = storage.pointer
        for o in 0..<outer {
            for i in 0..<inner {
                var best = input[o * extent * inner + i], bestIndex = 0
                for k in 1..<extent {
                    let v = input[(o * extent + k) * inner + i]
                    // NaN wins, as in PyTorch, so that a NaN is never hidden by max.
                    if v > best || (v.isNaN && !best.isNaN) { best = v; bestIndex = k }
                }
                values[o * inner + i] = best
                indices[o * inner + i] = bestIndex
            }
        }
        return (values, indices)
    }

    /// Maximum along `axis`; the gradient goes to the first maximal element (torch.max(dim)).
    public func max(alongAxis axis: Int, keepDims: Bool = false) -> Tensor {
        let axis = Tensor.normalize(axis: axis, rank: rank, op: "max")
        let (values, indices) = maxWithIndices(alongAxis: axis)
        var keepShape = shape
        keepShape[axis] = 1
        let outputShape = keepDims ? keepShape : shape.enumerated().filter { $0.offset != axis }.map(\.element)
        let inputShape = shape
        let (outer, extent, inner) = layout(around: axis)
        return Tensor(shape: outputShape, scalars: values).recorded("max", input: self) { g in
            Tensor.build(inputShape) { out in
                out.initialize(repeating: 0)
                let gp = g.storage.pointer
                for o in 0..<outer {
                    for i in 0..<inner { out[(o * extent + indices[o * inner + i]) * inner + i] = gp[o * inner + i] }
                }
            }
        }
    }

    /// Maximum over all elements.
    public func max() -> Tensor { reshaped(to: [scalarCount]).max(alongAxis: 0) }

    /// Indices of the first maximum along `axis`, as a Float tensor of integral values (not differentiable).
    public func argmax(alongAxis axis: Int, keepDims: Bool = false) -> Tensor {
        let axis = Tensor.normalize(axis: axis, rank: rank, op: "argmax")
        var outputShape = shape
        if keepDims { outputShape[axis] = 1 } else { outputShape.remove(at: axis) }
        return Tensor(shape: outputShape, scalars: maxWithIndices(alongAxis: axis).indices.map(Float.init))
    }
}
