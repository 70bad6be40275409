import NFMKernels

// Matrix products through the backend's GEMM (oneDNN's dnnl_sgemm in production). Transposes are
// passed to GEMM as flags, never materialised.

/// Row-major GEMM on tensors: op(a)·op(b) for stacks of matrices, where `a` is [batch…, m, k]
/// (or [k, m] transposed) and `b` either has the same batch or is a single matrix shared by all.
func batchedProduct(_ a: Tensor, transposeA: Bool, _ b: Tensor, transposeB: Bool, op: String) -> Tensor {
    precondition(a.rank >= 2 && b.rank >= 2, "\(op): shapes \(a.shape) and \(b.shape) must have rank ≥ 2")
    let (rowsA, colsA) = (a.shape[a.rank - 2], a.shape[a.rank - 1])
    let (rowsB, colsB) = (b.shape[b.rank - 2], b.shape[b.rank - 1])
    let (m, k) = transposeA ? (colsA, rowsA) : (rowsA, colsA)
    let (kB, n) = transposeB ? (colsB, rowsB) : (rowsB, colsB)
    precondition(k == kB, "\(op): shapes \(a.shape) and \(b.shape) have inner dimensions \(k) and \(kB)")
    let batchA = Array(a.shape.dropLast(2)), batchB = Array(b.shape.dropLast(2))
    precondition(
        batchB.isEmpty || batchA == batchB,
        "\(op): batch dimensions of \(a.shape) and \(b.shape) differ")
    let batch = batchA.reduce(1, *)
    return Tensor.computed(batchA + [m, n]) { out in
        if batchB.isEmpty && !transposeA && batch > 1 {
            // A shared right matrix: one tall GEMM over all stacked rows.
            Kernels.backend.gemm(
                transposeA: false, transposeB: transposeB, m: batch * m, n: n, k: k,
                a: a.storage, lda: colsA, b: b.storage, ldb: colsB, c: out)
        } else {
            Kernels.backend.batchedGemm(
                count: batch, transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                a: a.storage, lda: colsA, strideA: rowsA * colsA,
                b: b.storage, ldb: colsB, strideB: batchB.isEmpty ? 0 : rowsB * colsB, c: out)
        }
    }
}

/// Matrix product (torch.matmul for rank ≥ 2): [batch…, m, k] · [batch…, k, n] → [batch…, m, n].
/// `b` may also be a single [k, n] matrix shared by every batch element.
public func matmul(_ a: Tensor, _ b: Tensor) -> Tensor {
    let (x, y) = (a.detached(), b.detached())
    let result = batchedProduct(a, transposeA: false, b, transposeB: false, op: "matmul")
    let (needA, needB) = (a.requiresGradient, b.requiresGradient)
    return result.recorded("matmul", inputs: [a, b]) { g in
        let gradA = needA ? batchedProduct(g, transposeA: false, y, transposeB: true, op: "matmul") : nil
        var gradB: Tensor? = nil
        if needB {
            if y.rank == 2 && x.rank > 2 {
                // Shared right matrix: its gradient sums over the batch, i.e. one GEMM over stacked rows.
                let rows = x.reshaped(to: [-1, x.shape[x.rank - 1]]), grads = g.reshaped(to: [-1, g.shape[g.rank - 1]])
                gradB = batchedProduct(rows, transposeA: true, grads, transposeB: false, op: "matmul")
            } else {
                gradB = batchedProduct(x, transposeA: true, g, transposeB: false, op: "matmul")
            }
        }
        return [gradA, gradB]
    }
}

/// Affine map as torch.nn.functional.linear: x […, in] · weightᵀ [in, out] + bias [out] → […, out].
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) -> Tensor {
    precondition(weight.rank == 2, "linear: weight must be [out, in], got \(weight.shape)")
    precondition(
        x.rank >= 1 && x.shape[x.rank - 1] == weight.shape[1],
        "linear: input \(x.shape) and weight \(weight.shape) do not match (last input axis must equal weight's \(weight.shape[1]))")
    if let bias {
        precondition(bias.shape == [weight.shape[0]], "linear: bias \(bias.shape) does not match weight \(weight.shape)")
    }
    let (input, w) = (x.detached(), weight.detached())
    let rows = input.reshaped(to: [-1, weight.shape[1]])
    let product = batchedProduct(rows, transposeA: false, w, transposeB: true, op: "linear")
    if let bias {
        // The bias is added in place: the product is a fresh buffer that nothing else holds.
        Kernels.backend.binary(
            .add, product.storage, shape: product.shape, bias.storage, shape: bias.shape, output: product.storage,
            shape: product.shape)
    }
    let outputShape = Array(x.shape.dropLast()) + [weight.shape[0]]
    let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
    let (needInput, needWeight, hasBias) = (x.requiresGradient, weight.requiresGradient, bias != nil)
    return product.reshaped(to: outputShape).recorded("linear", inputs: inputs) { g in
        let gradRows = g.reshaped(to: [-1, w.shape[0]])
        var grads: [Tensor?] = [
            needInput ? batchedProduct(gradRows, transposeA: false, w, transposeB: false, op: "linear").reshaped(to: input.shape) : nil,
            needWeight ? batchedProduct(gradRows, transposeA: true, rows, transposeB: false, op: "linear") : nil,
        ]
        if hasBias { grads.append(gradRows.sum(alongAxis: 0)) }
        return grads
    }
}
