import NFMKernels

// Reductions over axes: sum, mean, max, argmax, variance. Sums accumulate in Double (in the
// backend's `sum`) so that long reductions (a loss over a batch, a batch-norm statistic) do not
// lose precision.

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
        let result = Tensor.computed(outputShape) {
            Kernels.backend.sum(storage, shape: inputShape, output: $0, reducedShape: keepShape)
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

    /// The same split as the backend's `AxisLayout`.
    func axisLayout(around axis: Int) -> AxisLayout {
        let (outer, extent, inner) = layout(around: axis)
        return AxisLayout(outer: outer, extent: extent, inner: inner)
    }

    /// Maximum along one axis ([outer·inner] values) and the first index of each maximum.
    func maxWithIndices(alongAxis axis: Int) -> (values: TensorBuffer, indices: [Int]) {
        let layout = axisLayout(around: axis)
        precondition(layout.extent > 0, "max: axis \(axis) of shape \(shape) is empty")
        let values = TensorBuffer(uninitializedCount: layout.outer * layout.inner)
        return (values, Kernels.backend.maximum(storage, layout: layout, values: values))
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
        // The gradient of output (o, i) goes to input (o, indices[o·inner + i], i).
        var positions = [Int]()
        positions.reserveCapacity(outer * inner)
        for o in 0..<outer { for i in 0..<inner { positions.append((o * extent + indices[o * inner + i]) * inner + i) } }
        return Tensor(shape: outputShape, storage: values).recorded("max", input: self) { g in
            Tensor.computed(inputShape) { Kernels.backend.scatterAdd(g.storage, indices: positions, blockLength: 1, output: $0) }
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
