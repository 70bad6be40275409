import NFMKernels

// Shape ops: reshape, permute/transpose, squeeze/unsqueeze, expand, concatenate, stack, slice,
// index-select, gather, pad. Each pullback is the adjoint data movement. All of them are the
// backend's strided `copy`, or its `gather` with `scatterAdd` as the pullback.

extension Tensor {
    /// The same elements in a new shape; one extent may be −1 (inferred).
    public func reshaped(to newShape: [Int]) -> Tensor {
        var resolved = newShape
        if let inferred = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != inferred }.reduce(1) { $0 * $1.element }
            precondition(known > 0 && scalarCount % known == 0, "reshape: cannot reshape \(shape) to \(newShape)")
            resolved[inferred] = scalarCount / known
        }
        precondition(
            Tensor.elementCount(resolved) == scalarCount && resolved.allSatisfy { $0 >= 0 },
            "reshape: cannot reshape \(shape) to \(newShape)")
        if resolved == shape { return self }
        let inputShape = shape
        return Tensor(shape: resolved, storage: storage).recorded("reshape", input: self) { g in
            g.reshaped(to: inputShape)
        }
    }

    /// Flattens all axes from `startAxis` on into one (torch.flatten).
    public func flattened(fromAxis startAxis: Int = 1) -> Tensor {
        let start = Tensor.normalize(axis: startAxis, rank: rank, op: "flatten")
        return reshaped(to: Array(shape[..<start]) + [shape[start...].reduce(1, *)])
    }

    /// Reorders axes: result axis i is input axis `axes[i]` (torch.permute).
    public func permuted(_ axes: [Int]) -> Tensor {
        precondition(axes.count == rank && Set(axes) == Set(0..<rank), "permute: \(axes) is not a permutation of the axes of \(shape)")
        if axes == Array(0..<rank) { return self }
        let inputStrides = Tensor.strides(of: shape)
        let outputShape = axes.map { shape[$0] }
        let readStrides = axes.map { inputStrides[$0] }
        let result = Tensor.computed(outputShape) { out in
            Kernels.backend.copy(
                extents: outputShape, from: storage, offset: 0, strides: readStrides,
                to: out, offset: 0, strides: Tensor.strides(of: outputShape))
        }
        var inverse = [Int](repeating: 0, count: rank)
        for (i, axis) in axes.enumerated() { inverse[axis] = i }
        return result.recorded("permute", input: self) { g in g.permuted(inverse) }
    }

    /// Swaps two axes (torch.transpose).
    public func transposed(_ first: Int = -2, _ second: Int = -1) -> Tensor {
        var axes = Array(0..<rank)
        axes.swapAt(Tensor.normalize(axis: first, rank: rank, op: "transpose"), Tensor.normalize(axis: second, rank: rank, op: "transpose"))
        return permuted(axes)
    }

    /// Removes `axis`, which must have extent 1 (all extent-1 axes if nil).
    public func squeezed(axis: Int? = nil) -> Tensor {
        guard let axis else { return reshaped(to: shape.filter { $0 != 1 }) }
        let resolved = Tensor.normalize(axis: axis, rank: rank, op: "squeeze")
        precondition(shape[resolved] == 1, "squeeze: axis \(axis) of shape \(shape) has extent \(shape[resolved]), not 1")
        var newShape = shape
        newShape.remove(at: resolved)
        return reshaped(to: newShape)
    }

    /// Inserts an axis of extent 1 at `axis` (negative counts from the end of the result).
    public func unsqueezed(axis: Int) -> Tensor {
        let resolved = Tensor.normalize(axis: axis, rank: rank + 1, op: "unsqueeze")
        var newShape = shape
        newShape.insert(1, at: resolved)
        return reshaped(to: newShape)
    }

    /// Broadcasts to `target` shape by repeating extent-1 axes (torch.expand, materialised).
    public func expanded(to target: [Int]) -> Tensor {
        if target == shape { return self }
        let broadcast = Tensor.broadcastShape(shape, target, op: "expand")
        precondition(broadcast == target, "expand: shape \(shape) cannot expand to \(target)")
        let inputShape = shape
        let readStrides = broadcastStrides(of: shape, to: target)
        let result = Tensor.computed(target) { out in
            Kernels.backend.copy(
                extents: target, from: storage, offset: 0, strides: readStrides, to: out, offset: 0,
                strides: Tensor.strides(of: target))
        }
        return result.recorded("expand", input: self) { g in g.summed(toShape: inputShape) }
    }

    /// Joins tensors along `axis`; all other extents must agree (torch.cat).
    public static func concatenate(_ tensors: [Tensor], alongAxis axis: Int = 0) -> Tensor {
        precondition(!tensors.isEmpty, "concatenate: no tensors")
        let first = tensors[0]
        let axis = normalize(axis: axis, rank: first.rank, op: "concatenate")
        for t in tensors {
            precondition(
                t.rank == first.rank && (0..<t.rank).allSatisfy { $0 == axis || t.shape[$0] == first.shape[$0] },
                "concatenate: shapes \(first.shape) and \(t.shape) differ outside axis \(axis)")
        }
        let extents = tensors.map { $0.shape[axis] }
        var outputShape = first.shape
        outputShape[axis] = extents.reduce(0, +)
        let outer = first.shape[..<axis].reduce(1, *)
        let inner = first.shape[(axis + 1)...].reduce(1, *)
        let total = outputShape[axis]
        let result = Tensor.computed(outputShape) { out in
            // Each input is [outer, extent·inner] rows, written at column start·inner of the output's
            // [outer, total·inner] rows: one contiguous chunk per outer index.
            var start = 0
            for (t, extent) in zip(tensors, extents) {
                let chunk = extent * inner
                Kernels.backend.copy(
                    extents: [outer, chunk], from: t.storage, offset: 0, strides: [chunk, 1],
                    to: out, offset: start * inner, strides: [total * inner, 1])
                start += extent
            }
        }
        return result.recorded("concatenate", inputs: tensors) { g in
            var start = 0
            return extents.map { extent in
                defer { start += extent }
                return g.sliced(alongAxis: axis, from: start, to: start + extent)
            }
        }
    }

    /// Stacks equally shaped tensors along a new axis (torch.stack).
    public static func stack(_ tensors: [Tensor], alongAxis axis: Int = 0) -> Tensor {
        precondition(!tensors.isEmpty, "stack: no tensors")
        for t in tensors { precondition(t.shape == tensors[0].shape, "stack: shapes \(tensors[0].shape) and \(t.shape) differ") }
        return concatenate(tensors.map { $0.unsqueezed(axis: axis) }, alongAxis: axis)
    }

    /// Elements `start, start + step, …` (< end) along `axis`, as Python's `x[..., start:end:step]`.
    public func sliced(alongAxis axis: Int, from start: Int, to end: Int, step: Int = 1) -> Tensor {
        let axis = Tensor.normalize(axis: axis, rank: rank, op: "slice")
        precondition(step > 0, "slice: step must be positive, got \(step)")
        precondition(
            0 <= start && start <= end && end <= shape[axis],
            "slice: range \(start)..<\(end) out of bounds for axis \(axis) of shape \(shape)")
        let (outer, extent, inner) = layout(around: axis)
        let count = (end - start + step - 1) / step
        var outputShape = shape
        outputShape[axis] = count
        let inputShape = shape
        // The slice as a strided view [outer, count, inner] of the input, and its dense layout.
        let region = [outer, count, inner]
        let (viewOffset, viewStrides) = (start * inner, [extent * inner, step * inner, 1])
        let denseStrides = Tensor.strides(of: region)
        let result = Tensor.computed(outputShape) { out in
            Kernels.backend.copy(
                extents: region, from: storage, offset: viewOffset, strides: viewStrides, to: out, offset: 0, strides: denseStrides)
        }
        return result.recorded("slice", input: self) { g in
            Tensor.computed(inputShape) { out in
                Kernels.backend.fill(out, with: 0)
                Kernels.backend.copy(
                    extents: region, from: g.storage, offset: 0, strides: denseStrides, to: out, offset: viewOffset,
                    strides: viewStrides)
            }
        }
    }

    /// Picks `indices` along `axis` (torch.index_select); repeated indices accumulate gradient.
    public func indexSelect(alongAxis axis: Int, indices: [Int]) -> Tensor {
        let axis = Tensor.normalize(axis: axis, rank: rank, op: "indexSelect")
        let (outer, extent, inner) = layout(around: axis)
        for i in indices { precondition(i >= 0 && i < extent, "indexSelect: index \(i) out of range for axis \(axis) of shape \(shape)") }
        var outputShape = shape
        outputShape[axis] = indices.count
        let inputShape = shape
        // Blocks of `inner` elements: output block (o, k) is input block (o, indices[k]).
        let blocks = (0..<outer).flatMap { o in indices.map { o * extent + $0 } }
        let result = Tensor.computed(outputShape) { out in
            Kernels.backend.gather(storage, indices: blocks, blockLength: inner, output: out)
        }
        return result.recorded("indexSelect", input: self) { g in
            Tensor.computed(inputShape) { Kernels.backend.scatterAdd(g.storage, indices: blocks, blockLength: inner, output: $0) }
        }
    }

    /// torch.gather: out[i][j][k] = self[i][index[i][j][k]][k] for `axis` 1, likewise for any axis.
    /// `indices` holds integral values and has the output's shape; it matches `self` on every other axis.
    public func gathering(alongAxis axis: Int, indices: Tensor) -> Tensor {
        let axis = Tensor.normalize(axis: axis, rank: rank, op: "gather")
        precondition(
            indices.rank == rank && (0..<rank).allSatisfy { $0 == axis || indices.shape[$0] == shape[$0] },
            "gather: index shape \(indices.shape) does not match input shape \(shape) outside axis \(axis)")
        let (outer, extent, inner) = layout(around: axis)
        let count = indices.shape[axis]
        let positions: [Int] = indices.scalars.map { value in
            let i = Int(value)
            precondition(Float(i) == value && i >= 0 && i < extent, "gather: index \(value) out of range for axis \(axis) of shape \(shape)")
            return i
        }
        let inputShape = shape
        // The input element that output element (o, k, j) reads.
        var sources = [Int]()
        sources.reserveCapacity(positions.count)
        for o in 0..<outer { for k in 0..<count { for j in 0..<inner {
            sources.append((o * extent + positions[(o * count + k) * inner + j]) * inner + j)
        } } }
        let result = Tensor.computed(indices.shape) { Kernels.backend.gather(storage, indices: sources, blockLength: 1, output: $0) }
        return result.recorded("gather", input: self) { g in
            Tensor.computed(inputShape) { Kernels.backend.scatterAdd(g.storage, indices: sources, blockLength: 1, output: $0) }
        }
    }

    /// Constant padding: `padding[i]` = (before, after) for axis i, counted from the first axis;
    /// missing trailing entries mean no padding (unlike torch.nn.functional.pad, which counts from the last).
    public func padded(_ padding: [(before: Int, after: Int)], value: Float = 0) -> Tensor {
        precondition(padding.count <= rank, "pad: \(padding.count) pad pairs for shape \(shape)")
        let pads = padding + Array(repeating: (before: 0, after: 0), count: rank - padding.count)
        precondition(pads.allSatisfy { $0.before >= 0 && $0.after >= 0 }, "pad: negative padding \(pads) for shape \(shape)")
        let outputShape = zip(shape, pads).map { $0 + $1.before + $1.after }
        let outputStrides = Tensor.strides(of: outputShape)
        let origin = zip(pads, outputStrides).reduce(0) { $0 + $1.0.before * $1.1 }
        let inputShape = shape
        let inputStrides = Tensor.strides(of: inputShape)
        let result = Tensor.computed(outputShape) { out in
            Kernels.backend.fill(out, with: value)
            Kernels.backend.copy(
                extents: inputShape, from: storage, offset: 0, strides: inputStrides, to: out, offset: origin, strides: outputStrides)
        }
        return result.recorded("pad", input: self) { g in
            Tensor.computed(inputShape) { out in
                Kernels.backend.copy(
                    extents: inputShape, from: g.storage, offset: origin, strides: outputStrides, to: out, offset: 0,
                    strides: inputStrides)
            }
        }
    }
}
