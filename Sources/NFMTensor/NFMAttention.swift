import NFMKernels

/// The NFM attention core (Lamb et al. 2021; DESIGN.md §2 steps 2–5) as one differentiable op:
/// every memory entry is resized to the query's H×W by nearest interpolation, a null slot (key 0,
/// value 0) is appended, scores q·k_j / τ are normalised by a softmax over the M+1 slots, top-k
/// sparsity keeps the k largest weights shifted and renormalised (Ke et al. 2018), and the output
/// is Σ_j a''_j v_j per head, heads concatenated.
///
/// One fused primitive of the backend (`nfmAttentionForward` / `nfmAttentionBackward`, which run
/// `NFMAttentionKernel` on the CPU) does all of it, forward and backward, reading every
/// entry at its own resolution: no resized copy of a key or value is ever made. The result records
/// one tape node; its pullback returns the gradients of `query` and of every key and value.
///
/// - Parameters:
///   - query: [N, heads·keySize, H, W].
///   - keys: M entries, key j [N, heads·keySize, H_j, W_j], each at any resolution.
///   - values: M entries, value j [N, heads·valueSize, H_j, W_j], at the resolution of key j.
///   - heads: the number of attention heads.
///   - keySize: d_k, key and query channels per head.
///   - valueSize: d_v, value channels per head.
///   - topK: k. Defaults to 3: the reference asks for 5, but a bug overrides it, so the reference
///     model always ran with 3 (DESIGN.md §2). Top-k applies only when there are more than k+1
///     slots (M+1 > k+1), as in the reference; otherwise the softmax weights are used unchanged.
///   - temperature: τ; `nil` means d_k^0.5, the reference's `concentration` of 0.5.
/// - Returns: `output` [N, heads·valueSize, H, W], and `weights` [N, heads, M+1, H, W], the final
///   weights a'' of each slot (memory order, the null slot last), so a program can draw which slots
///   a layer reads. `weights` is a constant: it records no gradient (it is for inspection).
public func nfmAttention(
    query: Tensor, keys: [Tensor], values: [Tensor], heads: Int, keySize: Int, valueSize: Int,
    topK: Int = 3, temperature: Float? = nil
) -> (output: Tensor, weights: Tensor) {
    precondition(query.rank == 4, "nfmAttention: query must be [N, heads·keySize, H, W], got \(query.shape)")
    precondition(heads > 0 && keySize > 0 && valueSize > 0, "nfmAttention: heads \(heads), keySize \(keySize), valueSize \(valueSize) must be positive")
    precondition(
        query.shape[1] == heads * keySize,
        "nfmAttention: query has \(query.shape[1]) channels, expected heads·keySize = \(heads * keySize)")
    precondition(keys.count == values.count, "nfmAttention: \(keys.count) keys but \(values.count) values")
    precondition(topK >= 1, "nfmAttention: topK must be at least 1, got \(topK)")
    let (batch, height, width) = (query.shape[0], query.shape[2], query.shape[3])
    precondition(batch > 0 && height > 0 && width > 0, "nfmAttention: query \(query.shape) is empty")
    for (j, (key, value)) in zip(keys, values).enumerated() {
        precondition(
            key.rank == 4 && key.shape[0] == batch && key.shape[1] == heads * keySize,
            "nfmAttention: key \(j) has shape \(key.shape), expected [\(batch), \(heads * keySize), H, W]")
        precondition(
            value.shape == [batch, heads * valueSize, key.shape[2], key.shape[3]],
            "nfmAttention: value \(j) has shape \(value.shape), expected [\(batch), \(heads * valueSize), \(key.shape[2]), \(key.shape[3])] to match key \(j) \(key.shape)")
    }
    let tau = temperature ?? Float(keySize).squareRoot()
    precondition(tau > 0, "nfmAttention: temperature must be positive, got \(tau)")
    let geometry = NFMAttentionGeometry(
        batch: batch, heads: heads, keySize: keySize, valueSize: valueSize, height: height, width: width,
        entryHeights: keys.map { $0.shape[2] }, entryWidths: keys.map { $0.shape[3] }, topK: topK, temperature: tau)

    // The backend returns the backward caches (NFMAttentionKernel.swift names them) as an opaque
    // value; the pullback holds them, and the inputs' values (detached: it needs their buffers,
    // not their tape nodes).
    let (savedQuery, savedKeys, savedValues) = (query.detached(), keys.map { $0.detached() }, values.map { $0.detached() })
    let weights = TensorBuffer(uninitializedCount: geometry.weightCount)
    var caches: NFMAttentionCaches?
    let output = Tensor.computed([batch, heads * valueSize, height, width]) {
        caches = Kernels.backend.nfmAttentionForward(
            geometry, query: savedQuery.storage, keys: savedKeys.map(\.storage), values: savedValues.map(\.storage),
            output: $0, weights: weights)
    }
    let weightTensor = Tensor(shape: [batch, heads, geometry.slots, height, width], storage: weights)
    let recorded = output.recorded("nfmAttention", inputs: [query] + keys + values) { [caches] gradOutput in
        let gradQuery = TensorBuffer(uninitializedCount: geometry.queryCount)
        let gradKeys = (0..<geometry.entries).map { TensorBuffer(uninitializedCount: geometry.keyCount($0)) }
        let gradValues = (0..<geometry.entries).map { TensorBuffer(uninitializedCount: geometry.valueCount($0)) }
        Kernels.backend.nfmAttentionBackward(
            geometry, query: savedQuery.storage, keys: savedKeys.map(\.storage), values: savedValues.map(\.storage),
            weights: weights, caches: caches!, gradOutput: gradOutput.storage, gradQuery: gradQuery, gradKeys: gradKeys,
            gradValues: gradValues)
        return [Tensor(shape: savedQuery.shape, storage: gradQuery)]
            + zip(savedKeys, gradKeys).map { Tensor(shape: $0.shape, storage: $1) }
            + zip(savedValues, gradValues).map { Tensor(shape: $0.shape, storage: $1) }
    }
    return (recorded, weightTensor)
}
