import Foundation
import NFMKernels

// Softmax, log-softmax, top-k and one-hot.

/// softmax along `axis` (numerically stable: the maximum is subtracted first).
public func softmax(_ x: Tensor, alongAxis axis: Int = -1) -> Tensor {
    normalizedExponential(x, alongAxis: axis, logarithmic: false, op: "softmax")
}

/// log(softmax) along `axis`, computed as x − max − log Σ exp(x − max).
public func logSoftmax(_ x: Tensor, alongAxis axis: Int = -1) -> Tensor {
    normalizedExponential(x, alongAxis: axis, logarithmic: true, op: "logSoftmax")
}

/// Softmax or log-softmax, forward and pullback: ∂x = y ⊙ (g − Σ g⊙y) for the softmax,
/// ∂x = g − softmax · Σ g for the log-softmax (the backend's `softmaxBackward`).
private func normalizedExponential(_ x: Tensor, alongAxis axis: Int, logarithmic: Bool, op: String) -> Tensor {
    let layout = x.axisLayout(around: Tensor.normalize(axis: axis, rank: x.rank, op: op))
    let result = Tensor.computed(x.shape) { Kernels.backend.softmax(x.storage, layout: layout, logarithmic: logarithmic, output: $0) }
    let saved = result.detached()
    return result.recorded(op, input: x) { g in
        Tensor.computed(saved.shape) {
            Kernels.backend.softmaxBackward(
                gradOutput: g.storage, output: saved.storage, layout: layout, logarithmic: logarithmic, gradInput: $0)
        }
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
    // The sort runs on the host, on a copy: top-k is not on any training path (the NFM attention's
    // top-k is inside its fused kernel), and a sort is no primitive of the backend.
    let input = x.scalars
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
    // Output element (o, r, i) reads input element (o, chosen, i).
    var sources = [Int]()
    sources.reserveCapacity(chosen.count)
    for o in 0..<outer { for r in 0..<k { for i in 0..<inner { sources.append((o * extent + chosen[(o * k + r) * inner + i]) * inner + i) } } }
    let values = Tensor.computed(outputShape) { Kernels.backend.gather(x.storage, indices: sources, blockLength: 1, output: $0) }
    let inputShape = x.shape
    let recorded = values.recorded("topK", input: x) { g in
        Tensor.computed(inputShape) { Kernels.backend.scatterAdd(g.storage, indices: sources, blockLength: 1, output: $0) }
    }
    return (recorded, Tensor(shape: outputShape, scalars: chosen.map(Float.init)))
}

/// One-hot rows: [count] class indices → [count, depth] with a 1 at each index (torch.nn.functional.one_hot).
public func oneHot(_ indices: [Int], depth: Int) -> Tensor {
    Tensor(shape: [indices.count, depth]) { out in
        out.initialize(repeating: 0)
        for (row, index) in indices.enumerated() {
            precondition(index >= 0 && index < depth, "oneHot: index \(index) out of range for depth \(depth)")
            out[row * depth + index] = 1
        }
    }
}
