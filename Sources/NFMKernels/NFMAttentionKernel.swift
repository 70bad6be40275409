import Foundation

// The NFM attention core as one fused kernel, forward and backward (DESIGN.md §1, §2 steps 2–5).
//
// Measured in PyTorch, about 65% of the reference NFM training step is the bookkeeping around this
// attention: resized copies of every key and value, concatenation, a null slot, tiny matmuls. Here
// each memory entry is read at its own resolution through a nearest-neighbour index table, so no
// resized copy is ever made, and scores, softmax, top-k and the weighted sum run in one pass over
// each (image, head). The backward scatters through the same index tables back to each entry's
// own resolution.
//
// The contract uses raw pointers and a small geometry value, independent of Tensor, so that a later
// CUDA backend can implement the same two functions. Conventions as in ComputeBackend.swift: Float32,
// dense, row-major (NCHW); output buffers are overwritten; pointers never alias.
//
// Layouts (n image, h head, c channel within a head, j slot, p = y·W + x pixel of the query):
//   query        [N, heads·dk, H, W]        channel h·dk + c
//   key j        [N, heads·dk, H_j, W_j]    one per memory entry, any resolution
//   value j      [N, heads·dv, H_j, W_j]
//   output       [N, heads·dv, H, W]
//   weights      [N, heads, M+1, H, W]      final weights a'' (slot M is the null slot); chosen over
//                                           [N, heads, H, W, M+1] so that each slot's weights form a
//                                           contiguous H×W image (the loops run pixels innermost, and
//                                           a program can draw a slot's map without a transpose)
// Backward caches, written by forward and read by backward:
//   softmaxWeights       [N, heads, M+1, H, W]  a, the softmax before top-k
//   thresholdSlots       [N, heads, H, W]       Int32: the slot holding the (k+1)-th largest weight,
//                                               whose value (+1e-7) is the top-k shift δ; −1 when
//                                               top-k does not apply
//   inverseDenominators  [N, heads, H, W]       1 / (Σ_j a'_j + 1e-7); 1 when top-k does not apply

/// Shape and hyperparameters of one NFM attention read (DESIGN.md §2 steps 2–5): a query at
/// `height`×`width`, and a memory of `entries` keys and values, entry j at its own
/// `entryHeights[j]`×`entryWidths[j]`.
public struct NFMAttentionGeometry: Hashable, Sendable {
    /// N, the number of images.
    public var batch: Int
    /// The number of attention heads.
    public var heads: Int
    /// d_k, the key and query channels per head.
    public var keySize: Int
    /// d_v, the value channels per head.
    public var valueSize: Int
    /// H, the height of the query and the output.
    public var height: Int
    /// W, the width of the query and the output.
    public var width: Int
    /// H_j of each memory entry, in memory order.
    public var entryHeights: [Int]
    /// W_j of each memory entry, in memory order.
    public var entryWidths: [Int]
    /// k of the top-k sparsity: how many slots keep a non-zero weight once it applies.
    public var topK: Int
    /// τ: scores are q·k / τ.
    public var temperature: Float

    /// Creates the geometry of one attention read.
    public init(
        batch: Int, heads: Int, keySize: Int, valueSize: Int, height: Int, width: Int,
        entryHeights: [Int], entryWidths: [Int], topK: Int, temperature: Float
    ) {
        precondition(
            entryHeights.count == entryWidths.count,
            "NFMAttentionGeometry: \(entryHeights.count) entry heights but \(entryWidths.count) entry widths")
        self.batch = batch
        self.heads = heads
        self.keySize = keySize
        self.valueSize = valueSize
        self.height = height
        self.width = width
        self.entryHeights = entryHeights
        self.entryWidths = entryWidths
        self.topK = topK
        self.temperature = temperature
    }

    /// M, the number of memory entries (the null slot not counted).
    public var entries: Int { entryHeights.count }
    /// M + 1: the memory entries and the null slot.
    public var slots: Int { entries + 1 }
    /// H·W, the pixels of the query.
    public var pixels: Int { height * width }

    /// Whether top-k sparsity applies: only when there are more than k + 1 slots. DESIGN.md §2 step 4
    /// says both "if M+1 > k" and "if there are at most k+1 entries (M+1 ≤ k+1), a is left unchanged,
    /// as in the reference"; the two disagree only at M+1 = k+1. We follow the reference (Lamb et
    /// al.'s `Sparse_attention`, adapted from Ke et al. 2018): it stores k+1 as its `top_k` and
    /// returns the weights unchanged when `time_step <= top_k`. So with exactly k+1 slots all k+1
    /// weights stay non-zero.
    public var isSparse: Bool { slots > topK + 1 }

    /// Element counts of the buffers, for callers that allocate them.
    public var queryCount: Int { batch * heads * keySize * pixels }
    /// Elements of the output, [N, heads·dv, H, W].
    public var outputCount: Int { batch * heads * valueSize * pixels }
    /// Elements of the weights and of the softmax cache, [N, heads, M+1, H, W].
    public var weightCount: Int { batch * heads * slots * pixels }
    /// Elements of the per-pixel caches, [N, heads, H, W].
    public var pixelCacheCount: Int { batch * heads * pixels }
    /// Elements of key j, [N, heads·dk, H_j, W_j].
    public func keyCount(_ j: Int) -> Int { batch * heads * keySize * entryHeights[j] * entryWidths[j] }
    /// Elements of value j, [N, heads·dv, H_j, W_j].
    public func valueCount(_ j: Int) -> Int { batch * heads * valueSize * entryHeights[j] * entryWidths[j] }
}

/// The fused NFM attention: forward and backward over raw buffers (layouts at the top of this file).
public enum NFMAttentionKernel {
    /// The additive constant of the top-k shift and of the renormalisation (the reference's
    /// `eps = 10e-8`, which is 1e-7).
    public static let epsilon: Float = 1e-7

    /// The source index PyTorch's `F.interpolate(mode="nearest")` reads for output index `i`:
    /// min(floor(i · (in/out)), in − 1), with the scale computed in Float32 as PyTorch's CPU kernel
    /// does, so that indices agree exactly. The same rule as NFMTensor's `resizeNearest`.
    @inline(__always)
    public static func nearestSourceIndex(_ i: Int, input: Int, output: Int) -> Int {
        Swift.min(Int(Float(i) * (Float(input) / Float(output))), input - 1)
    }

    /// Forward (DESIGN.md §2 steps 2–5). Shapes:
    ///   query [N, heads·dk, H, W]; keys[j] [N, heads·dk, H_j, W_j]; values[j] [N, heads·dv, H_j, W_j]
    ///   → output [N, heads·dv, H, W], weights [N, heads, M+1, H, W] (a'', null slot last),
    ///   and the backward caches softmaxWeights [N, heads, M+1, H, W], thresholdSlots and
    ///   inverseDenominators [N, heads, H, W].
    public static func forward(
        _ geometry: NFMAttentionGeometry,
        query: UnsafePointer<Float>, keys: [UnsafePointer<Float>], values: [UnsafePointer<Float>],
        output: UnsafeMutablePointer<Float>, weights: UnsafeMutablePointer<Float>,
        softmaxWeights: UnsafeMutablePointer<Float>, thresholdSlots: UnsafeMutablePointer<Int32>,
        inverseDenominators: UnsafeMutablePointer<Float>
    ) {
        validate(geometry, keys: keys.count, values: values.count)
        let plan = GatherPlan(geometry)
        let buffers = SharedBuffers(
            query: UnsafeMutablePointer(mutating: query), keys: keys.map { UnsafeMutablePointer(mutating: $0) },
            values: values.map { UnsafeMutablePointer(mutating: $0) }, output: output, weights: weights,
            softmaxWeights: softmaxWeights, thresholdSlots: thresholdSlots, inverseDenominators: inverseDenominators,
            gradOutput: nil, gradQuery: nil, gradKeys: [], gradValues: [])
        // Scratch per worker: the row maximum and the softmax sum per pixel, then the M+1 weights of one
        // pixel, then the top k+1 of them (values and slots; k+1 < M+1 whenever top-k applies).
        let scratchCount = 2 * geometry.pixels + 3 * geometry.slots
        forEachImageAndHead(geometry, scratchCount: scratchCount) { item, scratch in
            forwardItem(geometry, plan: plan, buffers: buffers, item: item, scratch: scratch)
        }
    }

    /// Backward: given gradOutput [N, heads·dv, H, W] and what forward read and saved, writes
    /// gradQuery [N, heads·dk, H, W], gradKeys[j] [N, heads·dk, H_j, W_j] and gradValues[j]
    /// [N, heads·dv, H_j, W_j] (all overwritten). The gradient reaches each entry at its own
    /// resolution by scatter-adding through the nearest-resize indices.
    public static func backward(
        _ geometry: NFMAttentionGeometry,
        query: UnsafePointer<Float>, keys: [UnsafePointer<Float>], values: [UnsafePointer<Float>],
        weights: UnsafePointer<Float>, softmaxWeights: UnsafePointer<Float>,
        thresholdSlots: UnsafePointer<Int32>, inverseDenominators: UnsafePointer<Float>,
        gradOutput: UnsafePointer<Float>,
        gradQuery: UnsafeMutablePointer<Float>, gradKeys: [UnsafeMutablePointer<Float>],
        gradValues: [UnsafeMutablePointer<Float>]
    ) {
        validate(geometry, keys: keys.count, values: values.count)
        precondition(
            gradKeys.count == geometry.entries && gradValues.count == geometry.entries,
            "NFMAttentionKernel.backward: \(gradKeys.count) key and \(gradValues.count) value gradients for \(geometry.entries) entries")
        let plan = GatherPlan(geometry)
        let buffers = SharedBuffers(
            query: UnsafeMutablePointer(mutating: query), keys: keys.map { UnsafeMutablePointer(mutating: $0) },
            values: values.map { UnsafeMutablePointer(mutating: $0) }, output: nil,
            weights: UnsafeMutablePointer(mutating: weights),
            softmaxWeights: UnsafeMutablePointer(mutating: softmaxWeights),
            thresholdSlots: UnsafeMutablePointer(mutating: thresholdSlots),
            inverseDenominators: UnsafeMutablePointer(mutating: inverseDenominators),
            gradOutput: UnsafeMutablePointer(mutating: gradOutput), gradQuery: gradQuery,
            gradKeys: gradKeys, gradValues: gradValues)
        // Scratch per worker: ∂L/∂a''_j, later ∂L/∂s_j, for every slot and pixel; then the M+1 values
        // of one pixel.
        let scratchCount = geometry.slots * geometry.pixels + geometry.slots
        forEachImageAndHead(geometry, scratchCount: scratchCount) { item, scratch in
            backwardItem(geometry, plan: plan, buffers: buffers, item: item, scratch: scratch)
        }
    }

    // MARK: Work split

    private static func validate(_ g: NFMAttentionGeometry, keys: Int, values: Int) {
        precondition(
            g.batch >= 0 && g.heads > 0 && g.keySize > 0 && g.valueSize > 0 && g.height > 0 && g.width > 0,
            "NFMAttentionKernel: invalid geometry \(g)")
        precondition(g.topK >= 1, "NFMAttentionKernel: topK must be at least 1, got \(g.topK)")
        precondition(g.temperature > 0, "NFMAttentionKernel: temperature must be positive, got \(g.temperature)")
        precondition(
            keys == g.entries && values == g.entries,
            "NFMAttentionKernel: \(keys) keys and \(values) values for \(g.entries) entries")
        precondition(
            zip(g.entryHeights, g.entryWidths).allSatisfy { $0 > 0 && $1 > 0 },
            "NFMAttentionKernel: entry sizes must be positive, got \(g.entryHeights)×\(g.entryWidths)")
    }

    /// Runs `body` once per (image, head) item, item = n·heads + h, with a per-worker scratch buffer
    /// of `scratchCount` floats. Items write disjoint slices of every output (their own image and
    /// their own head's channels), so workers need no synchronisation. Splits over the cores with
    /// `concurrentPerform` once the call is big enough to repay the dispatch.
    private static func forEachImageAndHead(
        _ g: NFMAttentionGeometry, scratchCount: Int,
        _ body: @Sendable (_ item: Int, _ scratch: UnsafeMutablePointer<Float>) -> Void
    ) {
        let items = g.batch * g.heads
        guard items > 0 else { return }
        let workPerItem = g.pixels * Swift.max(g.entries, 1) * (g.keySize + g.valueSize)
        let workers = items * workPerItem >= 1 << 16 ? Swift.min(ProcessInfo.processInfo.activeProcessorCount, items) : 1
        withoutActuallyEscaping(body) { body in
            let run: @Sendable (Int) -> Void = { worker in
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(scratchCount, 1))
                defer { scratch.deallocate() }
                // Contiguous ranges of items, so each worker streams through its own images.
                for item in (items * worker / workers)..<(items * (worker + 1) / workers) { body(item, scratch) }
            }
            if workers == 1 {
                run(0)
            } else {
                DispatchQueue.concurrentPerform(iterations: workers, execute: run)
            }
        }
    }

    // MARK: Forward

    /// One (image n, head h) of the forward: scores, softmax, top-k, weighted sum.
    /// Shapes within the item: scores and weights [M+1, H·W]; query and key planes [dk, ·]; value
    /// and output planes [dv, ·].
    private static func forwardItem(
        _ g: NFMAttentionGeometry, plan: GatherPlan, buffers: SharedBuffers, item: Int,
        scratch: UnsafeMutablePointer<Float>
    ) {
        let (n, h) = item.quotientAndRemainder(dividingBy: g.heads)
        let pixels = g.pixels, entries = g.entries, slots = g.slots
        let keyChannel0 = n * g.heads * g.keySize + h * g.keySize
        let valueChannel0 = n * g.heads * g.valueSize + h * g.valueSize
        let query = buffers.query + keyChannel0 * pixels
        let softmax = buffers.softmaxWeights + item * slots * pixels
        let weights = buffers.weights + item * slots * pixels
        let thresholds = buffers.thresholdSlots + item * pixels
        let inverseDenominators = buffers.inverseDenominators + item * pixels
        let rowMaximum = scratch, rowSum = scratch + pixels
        let pixelWeights = scratch + 2 * pixels, topWeights = pixelWeights + slots

        // Scores s_j = q·k_j (step 3), accumulated channel by channel with pixels innermost; key j is
        // read at its own resolution through its gather table (step 2's nearest resize).
        for j in 0..<entries {
            let scores = softmax + j * pixels
            scores.update(repeating: 0, count: pixels)
            let entryPixels = plan.entryPixels[j]
            let key = buffers.keys[j] + keyChannel0 * entryPixels
            if let source = plan.source(j) {
                for c in 0..<g.keySize {
                    let q = query + c * pixels, k = key + c * entryPixels
                    for p in 0..<pixels { scores[p] += q[p] * k[Int(source[p])] }
                }
            } else {
                for c in 0..<g.keySize {
                    let q = query + c * pixels, k = key + c * entryPixels
                    for p in 0..<pixels { scores[p] += q[p] * k[p] }
                }
            }
        }

        // Softmax over the M+1 slots per pixel (step 3); the null slot's score is q·0 = 0.
        let inverseTemperature = 1 / g.temperature
        let nullWeights = softmax + entries * pixels
        rowMaximum.update(repeating: 0, count: pixels)
        for j in 0..<entries {
            let scores = softmax + j * pixels
            for p in 0..<pixels {
                scores[p] *= inverseTemperature
                rowMaximum[p] = Swift.max(rowMaximum[p], scores[p])
            }
        }
        for p in 0..<pixels {
            nullWeights[p] = Foundation.exp(-rowMaximum[p])
            rowSum[p] = nullWeights[p]
        }
        for j in 0..<entries {
            let scores = softmax + j * pixels
            for p in 0..<pixels {
                let e = Foundation.exp(scores[p] - rowMaximum[p])
                scores[p] = e
                rowSum[p] += e
            }
        }
        for p in 0..<pixels { rowSum[p] = 1 / rowSum[p] }
        for j in 0..<slots {
            let a = softmax + j * pixels
            for p in 0..<pixels { a[p] *= rowSum[p] }
        }

        // Top-k (step 4; Ke et al. 2018): δ = (k+1)-th largest weight + 1e-7, a' = max(a − δ, 0),
        // a'' = a' / (Σ a' + 1e-7). Without it (at most k+1 slots) a'' = a.
        if g.isSparse {
            let kept = g.topK + 1
            for p in 0..<pixels {
                for j in 0..<slots { pixelWeights[j] = softmax[j * pixels + p] }
                let threshold = slotOfRank(kept, of: pixelWeights, count: slots, scratch: topWeights)
                let shift = pixelWeights[threshold] + epsilon
                var total: Float = 0
                for j in 0..<slots {
                    let shifted = Swift.max(pixelWeights[j] - shift, 0)
                    pixelWeights[j] = shifted
                    total += shifted
                }
                let inverse = 1 / (total + epsilon)
                for j in 0..<slots { weights[j * pixels + p] = pixelWeights[j] * inverse }
                thresholds[p] = Int32(threshold)
                inverseDenominators[p] = inverse
            }
        } else {
            weights.update(from: softmax, count: slots * pixels)
            thresholds.update(repeating: -1, count: pixels)
            inverseDenominators.update(repeating: 1, count: pixels)
        }

        // o = Σ_j a''_j v_j (step 5); the null slot's value is 0 and adds nothing.
        for c in 0..<g.valueSize {
            let out = buffers.output! + (valueChannel0 + c) * pixels
            out.update(repeating: 0, count: pixels)
            for j in 0..<entries {
                let w = weights + j * pixels
                let entryPixels = plan.entryPixels[j]
                let v = buffers.values[j] + (valueChannel0 + c) * entryPixels
                if let source = plan.source(j) {
                    for p in 0..<pixels { out[p] += w[p] * v[Int(source[p])] }
                } else {
                    for p in 0..<pixels { out[p] += w[p] * v[p] }
                }
            }
        }
    }

    /// The slot holding the `rank`-th largest of `values[0..<count]` (rank 1 is the largest). Ties
    /// go to the lower slot, as NFMTensor's `topK` orders them. Insertion into a sorted list of
    /// `rank` entries: O(count · rank), and count is the number of memory slots, small.
    /// `scratch` holds 2·rank floats (values, then slots as floats: exact below 2²⁴).
    @inline(__always)
    private static func slotOfRank(
        _ rank: Int, of values: UnsafeMutablePointer<Float>, count: Int, scratch: UnsafeMutablePointer<Float>
    ) -> Int {
        let topValues = scratch, topSlots = scratch + rank
        var filled = 0
        for j in 0..<count {
            let value = values[j]
            // Strictly greater moves ahead, so among equal values the earlier slot ranks higher.
            var position = filled
            while position > 0 && value > topValues[position - 1] { position -= 1 }
            guard position < rank else { continue }
            var move = Swift.min(filled, rank - 1)
            while move > position {
                topValues[move] = topValues[move - 1]
                topSlots[move] = topSlots[move - 1]
                move -= 1
            }
            topValues[position] = value
            topSlots[position] = Float(j)
            filled = Swift.min(filled + 1, rank)
        }
        return Int(topSlots[rank - 1])
    }

    // MARK: Backward

    /// One (image n, head h) of the backward. With G_j = ∂L/∂a''_j = Σ_c g_c v_{j,c}:
    ///   ∂v_{j,c} = a''_j g_c;
    ///   top-k: ∂a'_j = (G_j − Σ_i a''_i G_i) / D, ∂a_j = [a''_j > 0] ∂a'_j, and since δ = a_t + 1e-7
    ///     for the threshold slot t, ∂a_t −= Σ_{i: a''_i > 0} ∂a'_i;
    ///   softmax: ∂s_j = a_j (∂a_j − Σ_i a_i ∂a_i);
    ///   scores: ∂q_c = Σ_j ∂s_j k_{j,c} / τ, ∂k_{j,c} = ∂s_j q_c / τ.
    /// Shapes within the item: the scratch holds ∂a''_j, then ∂s_j, as [M+1, H·W].
    private static func backwardItem(
        _ g: NFMAttentionGeometry, plan: GatherPlan, buffers: SharedBuffers, item: Int,
        scratch: UnsafeMutablePointer<Float>
    ) {
        let (n, h) = item.quotientAndRemainder(dividingBy: g.heads)
        let pixels = g.pixels, entries = g.entries, slots = g.slots
        let keyChannel0 = n * g.heads * g.keySize + h * g.keySize
        let valueChannel0 = n * g.heads * g.valueSize + h * g.valueSize
        let query = buffers.query + keyChannel0 * pixels
        let gradQuery = buffers.gradQuery! + keyChannel0 * pixels
        let gradOutput = buffers.gradOutput! + valueChannel0 * pixels
        let softmax = buffers.softmaxWeights + item * slots * pixels
        let weights = buffers.weights + item * slots * pixels
        let thresholds = buffers.thresholdSlots + item * pixels
        let inverseDenominators = buffers.inverseDenominators + item * pixels
        let gradients = scratch  // [M+1, H·W]: ∂L/∂a''_j, then ∂L/∂s_j / τ
        let pixelGradients = scratch + slots * pixels

        // ∂L/∂a''_j and ∂L/∂v_j, one value channel at a time, pixels innermost. An entry read at
        // the query's own size maps pixel to pixel and is written directly; a resized one is zeroed
        // and scatter-added through its gather table.
        for j in 0..<entries {
            let gradWeights = gradients + j * pixels
            gradWeights.update(repeating: 0, count: pixels)
            let w = weights + j * pixels
            let entryPixels = plan.entryPixels[j]
            for c in 0..<g.valueSize {
                let upstream = gradOutput + c * pixels
                let v = buffers.values[j] + (valueChannel0 + c) * entryPixels
                let gradValue = buffers.gradValues[j] + (valueChannel0 + c) * entryPixels
                if let source = plan.source(j) {
                    gradValue.update(repeating: 0, count: entryPixels)
                    for p in 0..<pixels {
                        let s = Int(source[p])
                        gradWeights[p] += upstream[p] * v[s]
                        gradValue[s] += w[p] * upstream[p]
                    }
                } else {
                    for p in 0..<pixels {
                        gradWeights[p] += upstream[p] * v[p]
                        gradValue[p] = w[p] * upstream[p]
                    }
                }
            }
        }
        (gradients + entries * pixels).update(repeating: 0, count: pixels)  // the null value is the constant 0

        // Per pixel: back through top-k, then softmax; leaves ∂L/∂s_j / τ in place of ∂L/∂a''_j.
        let inverseTemperature = 1 / g.temperature
        let sparse = g.isSparse
        for p in 0..<pixels {
            for j in 0..<slots { pixelGradients[j] = gradients[j * pixels + p] }
            if sparse {
                var weighted: Float = 0
                for j in 0..<slots { weighted += weights[j * pixels + p] * pixelGradients[j] }
                let inverse = inverseDenominators[p]
                var survivors: Float = 0
                for j in 0..<slots {
                    // a''_j > 0 exactly where a_j − δ > 0 (D is positive), so this is the clamp's mask.
                    if weights[j * pixels + p] > 0 {
                        let shifted = (pixelGradients[j] - weighted) * inverse
                        pixelGradients[j] = shifted
                        survivors += shifted
                    } else {
                        pixelGradients[j] = 0
                    }
                }
                // δ depends on the threshold slot's weight, and every survivor subtracted δ.
                pixelGradients[Int(thresholds[p])] -= survivors
            }
            var dot: Float = 0
            for j in 0..<slots { dot += softmax[j * pixels + p] * pixelGradients[j] }
            for j in 0..<entries {
                gradients[j * pixels + p] = softmax[j * pixels + p] * (pixelGradients[j] - dot) * inverseTemperature
            }
        }

        // ∂q and ∂k_j from ∂s_j / τ, one key channel at a time, pixels innermost.
        gradQuery.update(repeating: 0, count: g.keySize * pixels)
        for j in 0..<entries {
            let gradScores = gradients + j * pixels
            let entryPixels = plan.entryPixels[j]
            for c in 0..<g.keySize {
                let q = query + c * pixels, gradQ = gradQuery + c * pixels
                let k = buffers.keys[j] + (keyChannel0 + c) * entryPixels
                let gradKey = buffers.gradKeys[j] + (keyChannel0 + c) * entryPixels
                if let source = plan.source(j) {
                    gradKey.update(repeating: 0, count: entryPixels)
                    for p in 0..<pixels {
                        let s = Int(source[p])
                        gradQ[p] += gradScores[p] * k[s]
                        gradKey[s] += gradScores[p] * q[p]
                    }
                } else {
                    for p in 0..<pixels {
                        gradQ[p] += gradScores[p] * k[p]
                        gradKey[p] = gradScores[p] * q[p]
                    }
                }
            }
        }
    }
}

// MARK: Helpers

/// For each memory entry, the flat source pixel (row · W_j + column) that each query pixel reads under
/// the nearest resize, or nothing when the entry already has the query's size (then pixel p reads p,
/// and the loops run contiguously).
private struct GatherPlan: @unchecked Sendable {
    /// H_j · W_j of each entry.
    let entryPixels: [Int]
    /// H·W of the query: the length of each table row.
    private let pixels: Int
    /// Whether entry j has the query's size.
    private let isIdentity: [Bool]
    /// [M, H·W] source offsets; the rows of same-size entries are unused. Read-only once built.
    private let table: TableOwner

    init(_ g: NFMAttentionGeometry) {
        pixels = g.pixels
        entryPixels = zip(g.entryHeights, g.entryWidths).map { $0 * $1 }
        isIdentity = zip(g.entryHeights, g.entryWidths).map { $0 == g.height && $1 == g.width }
        table = TableOwner(count: g.entries * g.pixels)
        for j in 0..<g.entries where !isIdentity[j] {
            let (entryHeight, entryWidth) = (g.entryHeights[j], g.entryWidths[j])
            let columns = (0..<g.width).map {
                NFMAttentionKernel.nearestSourceIndex($0, input: entryWidth, output: g.width)
            }
            let row = table.pointer + j * pixels
            for y in 0..<g.height {
                let sourceRow = NFMAttentionKernel.nearestSourceIndex(y, input: entryHeight, output: g.height)
                for x in 0..<g.width { row[y * g.width + x] = Int32(sourceRow * entryWidth + columns[x]) }
            }
        }
    }

    /// Entry j's gather table [H·W], or nil when it maps pixel p to p.
    @inline(__always)
    func source(_ j: Int) -> UnsafePointer<Int32>? {
        isIdentity[j] ? nil : UnsafePointer(table.pointer + j * pixels)
    }
}

/// Owns the gather tables' memory for the duration of one kernel call.
private final class TableOwner: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Int32>
    init(count: Int) { pointer = .allocate(capacity: Swift.max(count, 1)) }
    deinit { pointer.deallocate() }
}

/// The buffers of one kernel call, shared by the workers. `@unchecked Sendable` because it holds raw
/// pointers: the inputs are only read, and each (image, head) item writes only its own slices of the
/// outputs (its image, its head's channels), so concurrent workers never touch the same element.
private struct SharedBuffers: @unchecked Sendable {
    let query: UnsafeMutablePointer<Float>
    let keys: [UnsafeMutablePointer<Float>]
    let values: [UnsafeMutablePointer<Float>]
    let output: UnsafeMutablePointer<Float>?
    let weights: UnsafeMutablePointer<Float>
    let softmaxWeights: UnsafeMutablePointer<Float>
    let thresholdSlots: UnsafeMutablePointer<Int32>
    let inverseDenominators: UnsafeMutablePointer<Float>
    let gradOutput: UnsafeMutablePointer<Float>?
    let gradQuery: UnsafeMutablePointer<Float>?
    let gradKeys: [UnsafeMutablePointer<Float>]
    let gradValues: [UnsafeMutablePointer<Float>]
}
