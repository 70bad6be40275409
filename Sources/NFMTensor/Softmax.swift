import Foundation

// Softmax, log-softmax, top-k and one-hot.

/// softmax along `axis` (numerically stable: the maximum is subtracted first).
public func softmax(_ x: Tensor, alongAxis axis: Int = -1) -> Tensor {
    let axis = Tensor.normalize(axis: axis, rank: x.rank, op: "softmax")
    let lines = AxisLines(x, axis: axis)
    let result = Tensor.build(x.shape) { out in
        let input = x.storage.pointer
        lines.forEach { base, inner in
            let largest = lines.maximum(input, base)
            var total: Float = 0
            for k in 0..<lines.extent {
                let e = Foundation.exp(input[base + k * inner] - largest)
                out[base + k * inner] = e
                total += e
            }
            for k in 0..<lines.extent { out[base + k * inner] /= total }
        }
    }
    let saved = result.detached()
    return result.recorded("softmax", input: x) { g in
        // ∂x = y ⊙ (g − Σ g⊙y)
        Tensor.build(saved.shape) { out in
            let y = saved.storage.pointer, gp = g.storage.pointer
            lines.forEach { base, inner in
                var dot: Float = 0
                for k in 0..<lines.extent { dot += gp[base + k * inner] * y[base + k * inner] }
                for k in 0..<lines.extent { out[base + k * inner] = y[base + k * inner] * (gp[base + k * inner] - dot) }
            }
        }
    }
}

/// log(softmax) along `axis`, computed as x − max − log Σ exp(x − max).
public func logSoftmax(_ x: Tensor, alongAxis axis: Int = -1) -> Tensor {
    let axis = Tensor.normalize(axis: axis, rank: x.rank, op: "logSoftmax")
    let lines = AxisLines(x, axis: axis)
    let result = Tensor.build(x.shape) { out in
        let input = x.storage.pointer
        lines.forEach { base, inner in
            let largest = lines.maximum(input, base)
            var total: Float = 0
            for k in 0..<lines.extent { total += Foundation.exp(input[base + k * inner] - largest) }
            let logTotal = largest + Foundation.log(total)
            for k in 0..<lines.extent { out[base + k * inner] = input[base + k * inner] - logTotal }
        }
    }
    let saved = result.detached()
    return result.recorded("logSoftmax", input: x) { g in
        // ∂x = g − softmax · Σ g
        Tensor.build(saved.shape) { out in
            let y = saved.storage.pointer, gp = g.storage.pointer
            lines.forEach { base, inner in
                var total: Float = 0
                for k in 0..<lines.extent { total += gp[base + k * inner] }
                for k in 0..<lines.extent { out[base + k * inner] = gp[base + k * inner] - Foundation.exp(y[base + k * inner]) * total }
            }
        }
    }
}

/// The lines of a tensor along one axis, seen as [outer, extent, inner]: line (o, i) starts at
/// o·extent·inner + i and its k-th element is `inner`·k further on.
private struct AxisLines {
    let outer: Int, extent: Int, inner: Int

    init(_ x: Tensor, axis: Int) { (outer, extent, inner) = x.layout(around: axis) }

    /// Calls `body` with each line's start and stride.
    @inline(__always)
    func forEach(_ body: (_ base: Int, _ stride: Int) -> Void) {
        for o in 0..<outer {
            for i in 0..<inner { body(o * extent * inner + i, inner) }
        }
    }

    /// The largest value of the line starting at `base`.
    @inline(__always)
    func maximum(_ values: UnsafePointer<Float>, _ base: Int) -> Float {
        var largest = -Float.infinity
        for k in 0..<extent { largest = max(largest, values[base + k * inner]) }
        return largest
    }
}

/// The `k` largest values along `axis`, in descending order, and their indices (torch.topk with
/// sorted = true). Values are differentiable; the gradient scatters back to the chosen positions.
/// Among equal values the lower index comes first.
public func topK(_ x: Tensor, k: Int, alongAxis axis: Int = -1) -> (values: Tensor, indices: Tensor) {
    let axis = Tensor.normalize(axis: axis, rank: x.rank, op: "topK")
    let (outer, extent, inner) = x.layout(around: axis)
    precondition(k >= 0 && k <= extent, "topK: k = \(k) exceeds extent \(extent) of axis \(axis) in shape \(x.shape)")
    var outputShape = x.shape
    outputShape[axis] = k
    var chosen = [Int](repeating: 0, count: outer * k * inner)
    let input = x.storage.pointer
    var order = [Int](repeating: 0, count: extent)
    for o in 0..<outer {
        for i in 0..<inner {
            let base = o * extent * inner + i
            for e in 0..<extent { order[e] = e }
            order.sort { a, b in
                let (va, vb) = (input[base + a * inner], input[base + b * inner])
                return va > vb || (va == vb && a < b)
            }
            for r in 0..<k { chosen[(o * k + r) * inner + i] = order[r] }
        }
    }
    let values = Tensor.build(outputShape) { out in
        for o in 0..<outer { for r in 0..<k { for i in 0..<inner {
            out[(o * k + r) * inner + i] = input[(o * extent + chosen[(o * k + r) * inner + i]) * inner + i]
        } } }
    }
    let inputShape = x.shape
    let recorded = values.recorded("topK", input: x) { g in
        Tensor.build(inputShape) { out in
            out.initialize(repeating: 0)
            for o in 0..<outer { for r in 0..<k { for i in 0..<inner {
                out[(o * extent + chosen[(o * k + r) * inner + i]) * inner + i] += g.storage.pointer[(o * k + r) * inner + i]
            } } }
        }
    }
    return (recorded, Tensor(shape: outputShape, scalars: chosen.map(Float.init)))
}

/// One-hot rows: [count] class indices → [count, depth] with a 1 at each index (torch.nn.functional.one_hot).
public func oneHot(_ indices: [Int], depth: Int) -> Tensor {
    Tensor.build([indices.count, depth]) { out in
        out.initialize(repeating: 0)
        for (row, index) in indices.enumerated() {
            precondition(index >= 0 && index < depth, "oneHot: index \(index) out of range for depth \(depth)")
            out[row * depth + index] = 1
        }
    }
}
