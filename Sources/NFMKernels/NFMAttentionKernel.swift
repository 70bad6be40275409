import CVectorKernels
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
        let buffers = ForwardBuffers(
            query: query, keys: keys, values: values, output: output, weights: weights,
            softmaxWeights: softmaxWeights, thresholdSlots: thresholdSlots, inverseDenominators: inverseDenominators)
        // Scratch per worker: the row maximum and the softmax sum per pixel, then (with top-k) the k+1
        // largest weights of every pixel and their slots, [k+1, H·W] each.
        let scratchCount = (2 + (geometry.isSparse ? 2 * (geometry.topK + 1) : 0)) * geometry.pixels
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
        let buffers = BackwardBuffers(
            query: query, keys: keys, values: values, weights: weights, softmaxWeights: softmaxWeights,
            thresholdSlots: thresholdSlots, inverseDenominators: inverseDenominators, gradOutput: gradOutput,
            gradQuery: gradQuery, gradKeys: gradKeys, gradValues: gradValues)
        // Scratch per worker: ∂L/∂a''_j, later ∂L/∂a_j and ∂L/∂s_j, for every slot and pixel [M+1, H·W];
        // then three per-pixel sums [H·W].
        let scratchCount = (geometry.slots + 3) * geometry.pixels
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

    /// Runs `body` once per (image, head) item, item = n·heads + h, with a scratch buffer of
    /// `scratchCount` floats per chunk of items. Items write disjoint slices of every output (their
    /// own image and their own head's channels), so workers need no synchronisation. Once the call is
    /// big enough to repay the dispatch, `concurrentPerform` hands out chunks of consecutive items;
    /// a few chunks per core, so that a core slowed by another process does not hold up the rest.
    private static func forEachImageAndHead(
        _ g: NFMAttentionGeometry, scratchCount: Int,
        _ body: @Sendable (_ item: Int, _ scratch: UnsafeMutablePointer<Float>) -> Void
    ) {
        let items = g.batch * g.heads
        guard items > 0 else { return }
        let workPerItem = g.pixels * Swift.max(g.entries, 1) * (g.keySize + g.valueSize)
        let cores = ComputeThreads.cores
        let chunks = items * workPerItem >= 1 << 16 && cores > 1 ? Swift.min(4 * cores, items) : 1
        withoutActuallyEscaping(body) { body in
            let run: @Sendable (Int) -> Void = { chunk in
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(scratchCount, 1))
                defer { scratch.deallocate() }
                for item in (items * chunk / chunks)..<(items * (chunk + 1) / chunks) { body(item, scratch) }
            }
            if chunks == 1 {
                run(0)
            } else {
                DispatchQueue.concurrentPerform(iterations: chunks, execute: run)
            }
        }
    }

    // MARK: Forward

    /// One (image n, head h) of the forward: scores, softmax, top-k, weighted sum.
    /// Shapes within the item: scores and weights [M+1, H·W]; query and key planes [dk, ·]; value
    /// and output planes [dv, ·].
    private static func forwardItem(
        _ g: NFMAttentionGeometry, plan: GatherPlan, buffers: ForwardBuffers, item: Int,
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
        // The compiled channel loops of `Kernels.vectorISA` (CVectorKernels), nil on the portable path:
        // the same sums in the same order, a vector of pixels at a time.
        let vector = Kernels.vectorKernels

        // Scores s_j = q·k_j / τ (step 3). Blocks of 8 pixels accumulate over the d_k channels in a
        // register; key j is read at its own resolution through its gather table (step 2's nearest
        // resize), the 8 source offsets loaded once per block.
        let inverseTemperature = 1 / g.temperature
        for j in 0..<entries {
            let scores = softmax + j * pixels
            let entryPixels = plan.entryPixels[j]
            let key = buffers.keys[j] + keyChannel0 * entryPixels
            if let vector {
                vector.channelDotProducts(
                    query, pixels, key, entryPixels, plan.source(j), g.keySize, pixels, inverseTemperature, scores)
                continue
            }
            var p = 0
            if let source = plan.source(j) {
                while p + 8 <= pixels {
                    let block = SourceBlock(source + p)
                    var sum = SIMD8<Float>()
                    for c in 0..<g.keySize { sum += load8(query + c * pixels + p) * block.gather(key + c * entryPixels) }
                    store8(sum * inverseTemperature, scores + p)
                    p += 8
                }
            } else {
                while p + 8 <= pixels {
                    var sum = SIMD8<Float>()
                    for c in 0..<g.keySize { sum += load8(query + c * pixels + p) * load8(key + c * entryPixels + p) }
                    store8(sum * inverseTemperature, scores + p)
                    p += 8
                }
            }
            for p in p..<pixels {
                let s = plan.sourceIndex(j, p)
                var sum: Float = 0
                for c in 0..<g.keySize { sum += query[c * pixels + p] * key[c * entryPixels + s] }
                scores[p] = sum * inverseTemperature
            }
        }

        // Softmax over the M+1 slots per pixel (step 3); the null slot's score is q·0 = 0.
        let nullWeights = softmax + entries * pixels
        rowMaximum.update(repeating: 0, count: pixels)
        for j in 0..<entries {
            let scores = softmax + j * pixels
            for p in 0..<pixels { rowMaximum[p] = Swift.max(rowMaximum[p], scores[p]) }
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
            let topWeights = scratch + 2 * pixels, topSlots = topWeights + kept * pixels
            // The k+1 largest weights of every pixel, kept sorted (level 0 the largest) by inserting one
            // slot at a time through a compare-and-swap network: branch-free, so the pixel loops
            // vectorise. Strictly greater moves up, so among equal weights the lower slot ranks higher,
            // as NFMTensor's topK orders them. Slot numbers ride along as floats (exact below 2²⁴).
            let carryWeights = rowMaximum, carrySlots = rowSum  // free again after the softmax
            for j in 0..<slots {
                carryWeights.update(from: softmax + j * pixels, count: pixels)
                carrySlots.update(repeating: Float(j), count: pixels)
                // Slot j can only land in levels 0…j: the levels below hold nothing yet.
                for level in 0..<Swift.min(j + 1, kept) {
                    let levelWeights = topWeights + level * pixels, levelSlots = topSlots + level * pixels
                    if level == j {
                        levelWeights.update(from: carryWeights, count: pixels)
                        levelSlots.update(from: carrySlots, count: pixels)
                        continue
                    }
                    for p in 0..<pixels {
                        let (incoming, held) = (carryWeights[p], levelWeights[p])
                        let (incomingSlot, heldSlot) = (carrySlots[p], levelSlots[p])
                        let moves = incoming > held
                        levelWeights[p] = moves ? incoming : held
                        carryWeights[p] = moves ? held : incoming
                        levelSlots[p] = moves ? incomingSlot : heldSlot
                        carrySlots[p] = moves ? heldSlot : incomingSlot
                    }
                }
            }
            let shift = topWeights + g.topK * pixels, shiftSlot = topSlots + g.topK * pixels
            for p in 0..<pixels { shift[p] += epsilon }
            let total = rowSum
            total.update(repeating: 0, count: pixels)
            for j in 0..<slots {
                let a = softmax + j * pixels, shifted = weights + j * pixels
                for p in 0..<pixels {
                    shifted[p] = Swift.max(a[p] - shift[p], 0)
                    total[p] += shifted[p]
                }
            }
            for p in 0..<pixels {
                inverseDenominators[p] = 1 / (total[p] + epsilon)
                thresholds[p] = Int32(shiftSlot[p])
            }
            for j in 0..<slots {
                let w = weights + j * pixels
                for p in 0..<pixels { w[p] *= inverseDenominators[p] }
            }
        } else {
            weights.update(from: softmax, count: slots * pixels)
            thresholds.update(repeating: -1, count: pixels)
            inverseDenominators.update(repeating: 1, count: pixels)
        }

        // o = Σ_j a''_j v_j (step 5); the null slot's value is 0 and adds nothing. Entry by entry, so
        // that each block's 8 source offsets are loaded once for all d_v channels.
        let output = buffers.output + valueChannel0 * pixels
        output.update(repeating: 0, count: g.valueSize * pixels)
        for j in 0..<entries {
            let w = weights + j * pixels
            let entryPixels = plan.entryPixels[j]
            let value = buffers.values[j] + valueChannel0 * entryPixels
            if let vector {
                vector.channelMultiplyAdd(w, value, entryPixels, plan.source(j), g.valueSize, pixels, output, pixels)
                continue
            }
            var p = 0
            if let source = plan.source(j) {
                while p + 8 <= pixels {
                    let block = SourceBlock(source + p)
                    let weight = load8(w + p)
                    for c in 0..<g.valueSize {
                        let out = output + c * pixels + p
                        store8(load8(out) + weight * block.gather(value + c * entryPixels), out)
                    }
                    p += 8
                }
            } else {
                while p + 8 <= pixels {
                    let weight = load8(w + p)
                    for c in 0..<g.valueSize {
                        let out = output + c * pixels + p
                        store8(load8(out) + weight * load8(value + c * entryPixels + p), out)
                    }
                    p += 8
                }
            }
            for p in p..<pixels {
                let s = plan.sourceIndex(j, p)
                for c in 0..<g.valueSize { output[c * pixels + p] += w[p] * value[c * entryPixels + s] }
            }
        }
    }

    // MARK: Backward

    /// One (image n, head h) of the backward. With G_j = ∂L/∂a''_j = Σ_c g_c v_{j,c}:
    ///   ∂v_{j,c} = a''_j g_c;
    ///   top-k: ∂a'_j = (G_j − Σ_i a''_i G_i) / D, ∂a_j = [a''_j > 0] ∂a'_j, and since δ = a_t + 1e-7
    ///     for the threshold slot t, ∂a_t −= Σ_{i: a''_i > 0} ∂a'_i;
    ///   softmax: ∂s_j = a_j (∂a_j − Σ_i a_i ∂a_i);
    ///   scores: ∂q_c = Σ_j ∂s_j k_{j,c} / τ, ∂k_{j,c} = ∂s_j q_c / τ.
    /// Shapes within the item: the scratch holds ∂a''_j, then ∂a_j, then ∂s_j / τ, as [M+1, H·W],
    /// and three per-pixel sums [H·W].
    private static func backwardItem(
        _ g: NFMAttentionGeometry, plan: GatherPlan, buffers: BackwardBuffers, item: Int,
        scratch: UnsafeMutablePointer<Float>
    ) {
        let (n, h) = item.quotientAndRemainder(dividingBy: g.heads)
        let pixels = g.pixels, entries = g.entries, slots = g.slots
        let keyChannel0 = n * g.heads * g.keySize + h * g.keySize
        let valueChannel0 = n * g.heads * g.valueSize + h * g.valueSize
        let query = buffers.query + keyChannel0 * pixels
        let gradQuery = buffers.gradQuery + keyChannel0 * pixels
        let gradOutput = buffers.gradOutput + valueChannel0 * pixels
        let softmax = buffers.softmaxWeights + item * slots * pixels
        let weights = buffers.weights + item * slots * pixels
        let thresholds = buffers.thresholdSlots + item * pixels
        let inverseDenominators = buffers.inverseDenominators + item * pixels
        let gradients = scratch  // [M+1, H·W]: ∂L/∂a''_j, then ∂L/∂a_j, then ∂L/∂s_j / τ
        let vector = Kernels.vectorKernels  // as in forwardItem

        // ∂L/∂a''_j and ∂L/∂v_j, one value channel at a time, pixels innermost. An entry read at
        // the query's own size maps pixel to pixel and is written directly; a resized one is zeroed
        // and scatter-added through its gather table.
        for j in 0..<entries {
            let gradWeights = gradients + j * pixels
            let w = weights + j * pixels
            let entryPixels = plan.entryPixels[j]
            let value = buffers.values[j] + valueChannel0 * entryPixels
            let gradValue = buffers.gradValues[j] + valueChannel0 * entryPixels
            if let vector {
                vector.channelDotProducts(gradOutput, pixels, value, entryPixels, plan.source(j), g.valueSize, pixels, 1, gradWeights)
                writeEntryGradient(
                    vector, weight: w, upstream: gradOutput, channels: g.valueSize, pixels: pixels, source: plan.source(j),
                    entryGradient: gradValue, entryPixels: entryPixels)
                continue
            }
            var p = 0
            if let source = plan.source(j) {
                gradValue.update(repeating: 0, count: g.valueSize * entryPixels)
                while p + 8 <= pixels {
                    let block = SourceBlock(source + p)
                    let weight = load8(w + p)
                    var sum = SIMD8<Float>()
                    for c in 0..<g.valueSize {
                        let upstream = load8(gradOutput + c * pixels + p)
                        sum += upstream * block.gather(value + c * entryPixels)
                        block.scatterAdd(weight * upstream, into: gradValue + c * entryPixels)
                    }
                    store8(sum, gradWeights + p)
                    p += 8
                }
            } else {
                while p + 8 <= pixels {
                    let weight = load8(w + p)
                    var sum = SIMD8<Float>()
                    for c in 0..<g.valueSize {
                        let upstream = load8(gradOutput + c * pixels + p)
                        sum += upstream * load8(value + c * entryPixels + p)
                        store8(weight * upstream, gradValue + c * entryPixels + p)
                    }
                    store8(sum, gradWeights + p)
                    p += 8
                }
            }
            // The tail: a same-size entry's gradient is written here for the first time, not added to.
            let accumulates = plan.source(j) != nil
            for p in p..<pixels {
                let s = plan.sourceIndex(j, p)
                var sum: Float = 0
                for c in 0..<g.valueSize {
                    let upstream = gradOutput[c * pixels + p]
                    sum += upstream * value[c * entryPixels + s]
                    let target = gradValue + c * entryPixels + s
                    target.pointee = accumulates ? target.pointee + w[p] * upstream : w[p] * upstream
                }
                gradWeights[p] = sum
            }
        }
        (gradients + entries * pixels).update(repeating: 0, count: pixels)  // the null value is the constant 0

        // Back through top-k, then softmax, slot by slot with pixels innermost (so the loops
        // vectorise); leaves ∂L/∂s_j / τ in place of ∂L/∂a''_j.
        let inverseTemperature = 1 / g.temperature
        let sum = scratch + slots * pixels, survivors = sum + pixels, dot = survivors + pixels
        if g.isSparse {
            // ∂a'_j = (G_j − Σ_i a''_i G_i) / D where a''_j > 0 (the clamp's mask: a''_j > 0 exactly
            // where a_j − δ > 0, as D is positive), else 0.
            sum.update(repeating: 0, count: pixels)
            for j in 0..<entries {
                let w = weights + j * pixels, gradWeights = gradients + j * pixels
                for p in 0..<pixels { sum[p] += w[p] * gradWeights[p] }
            }
            survivors.update(repeating: 0, count: pixels)
            for j in 0..<slots {
                let w = weights + j * pixels, gradWeights = gradients + j * pixels
                for p in 0..<pixels {
                    let shifted = w[p] > 0 ? (gradWeights[p] - sum[p]) * inverseDenominators[p] : 0
                    gradWeights[p] = shifted
                    survivors[p] += shifted
                }
            }
            // δ = a_t + 1e-7 for the threshold slot t, and every survivor subtracted δ.
            for p in 0..<pixels { gradients[Int(thresholds[p]) * pixels + p] -= survivors[p] }
        }
        // Softmax: ∂s_j = a_j (∂a_j − Σ_i a_i ∂a_i).
        dot.update(repeating: 0, count: pixels)
        for j in 0..<slots {
            let a = softmax + j * pixels, gradWeights = gradients + j * pixels
            for p in 0..<pixels { dot[p] += a[p] * gradWeights[p] }
        }
        for j in 0..<entries {
            let a = softmax + j * pixels, gradWeights = gradients + j * pixels
            for p in 0..<pixels { gradWeights[p] = a[p] * (gradWeights[p] - dot[p]) * inverseTemperature }
        }

        // ∂q and ∂k_j from ∂s_j / τ, entry by entry in blocks of 8 pixels, so that each block's source
        // offsets are loaded once for all d_k channels.
        gradQuery.update(repeating: 0, count: g.keySize * pixels)
        for j in 0..<entries {
            let gradScores = gradients + j * pixels
            let entryPixels = plan.entryPixels[j]
            let key = buffers.keys[j] + keyChannel0 * entryPixels
            let gradKey = buffers.gradKeys[j] + keyChannel0 * entryPixels
            if let vector {
                vector.channelMultiplyAdd(gradScores, key, entryPixels, plan.source(j), g.keySize, pixels, gradQuery, pixels)
                writeEntryGradient(
                    vector, weight: gradScores, upstream: query, channels: g.keySize, pixels: pixels, source: plan.source(j),
                    entryGradient: gradKey, entryPixels: entryPixels)
                continue
            }
            var p = 0
            if let source = plan.source(j) {
                gradKey.update(repeating: 0, count: g.keySize * entryPixels)
                while p + 8 <= pixels {
                    let block = SourceBlock(source + p)
                    let gradScore = load8(gradScores + p)
                    for c in 0..<g.keySize {
                        let gradQ = gradQuery + c * pixels + p
                        store8(load8(gradQ) + gradScore * block.gather(key + c * entryPixels), gradQ)
                        block.scatterAdd(gradScore * load8(query + c * pixels + p), into: gradKey + c * entryPixels)
                    }
                    p += 8
                }
            } else {
                while p + 8 <= pixels {
                    let gradScore = load8(gradScores + p)
                    for c in 0..<g.keySize {
                        let gradQ = gradQuery + c * pixels + p
                        store8(load8(gradQ) + gradScore * load8(key + c * entryPixels + p), gradQ)
                        store8(gradScore * load8(query + c * pixels + p), gradKey + c * entryPixels + p)
                    }
                    p += 8
                }
            }
            let accumulates = plan.source(j) != nil  // as in the value tail above
            for p in p..<pixels {
                let s = plan.sourceIndex(j, p)
                for c in 0..<g.keySize {
                    gradQuery[c * pixels + p] += gradScores[p] * key[c * entryPixels + s]
                    let target = gradKey + c * entryPixels + s
                    let product = gradScores[p] * query[c * pixels + p]
                    target.pointee = accumulates ? target.pointee + product : product
                }
            }
        }
    }
}

// MARK: Helpers

extension NFMAttentionKernel {
    /// The compiled path's gradient of one entry's planes [channels, H_j·W_j] of a head, from a
    /// per-pixel weight [H·W] and an upstream plane per channel [channels, H·W]: entryGradient[c][s]
    /// = Σ over the pixels p that read source s of weight[p]·upstream[c][p], in pixel order (zeroed
    /// first) for a resized entry; weight[p]·upstream[c][p] written directly for a same-size one.
    @inline(__always)
    fileprivate static func writeEntryGradient(
        _ vector: NFMVectorKernels, weight: UnsafePointer<Float>, upstream: UnsafePointer<Float>, channels: Int, pixels: Int,
        source: UnsafePointer<Int32>?, entryGradient: UnsafeMutablePointer<Float>, entryPixels: Int
    ) {
        if let source {
            entryGradient.update(repeating: 0, count: channels * entryPixels)
            vector.channelScatterMultiplyAdd(weight, upstream, pixels, source, channels, pixels, entryGradient, entryPixels)
        } else {
            vector.channelMultiply(weight, upstream, pixels, channels, pixels, entryGradient, entryPixels)
        }
    }
}

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

    /// The source pixel that query pixel p reads in entry j (for the loops' scalar tails).
    @inline(__always)
    func sourceIndex(_ j: Int, _ p: Int) -> Int {
        isIdentity[j] ? p : Int(table.pointer[j * pixels + p])
    }
}

/// The source offsets of 8 consecutive query pixels in one entry, held in registers while a block
/// runs over its channels.
private struct SourceBlock {
    let s0: Int, s1: Int, s2: Int, s3: Int, s4: Int, s5: Int, s6: Int, s7: Int

    @inline(__always)
    init(_ source: UnsafePointer<Int32>) {
        (s0, s1, s2, s3) = (Int(source[0]), Int(source[1]), Int(source[2]), Int(source[3]))
        (s4, s5, s6, s7) = (Int(source[4]), Int(source[5]), Int(source[6]), Int(source[7]))
    }

    /// The 8 source values of a channel plane: the nearest-resized values, read in place.
    @inline(__always)
    func gather(_ plane: UnsafePointer<Float>) -> SIMD8<Float> {
        SIMD8(plane[s0], plane[s1], plane[s2], plane[s3], plane[s4], plane[s5], plane[s6], plane[s7])
    }

    /// Adds lane i of `values` to plane[s_i], in lane order: an upsampled entry maps several pixels
    /// of a block to one source, and each of their terms must land (the backward of gather).
    @inline(__always)
    func scatterAdd(_ values: SIMD8<Float>, into plane: UnsafeMutablePointer<Float>) {
        plane[s0] += values[0]
        plane[s1] += values[1]
        plane[s2] += values[2]
        plane[s3] += values[3]
        plane[s4] += values[4]
        plane[s5] += values[5]
        plane[s6] += values[6]
        plane[s7] += values[7]
    }
}

/// 8 consecutive floats, unaligned.
@inline(__always)
private func load8(_ pointer: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(pointer).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always)
private func load8(_ pointer: UnsafeMutablePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(pointer).loadUnaligned(as: SIMD8<Float>.self)
}

/// Stores 8 consecutive floats, unaligned.
@inline(__always)
private func store8(_ values: SIMD8<Float>, _ pointer: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(pointer).storeBytes(of: values, as: SIMD8<Float>.self)
}

/// Owns the gather tables' memory for the duration of one kernel call.
private final class TableOwner: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Int32>
    init(count: Int) { pointer = .allocate(capacity: Swift.max(count, 1)) }
    deinit { pointer.deallocate() }
}

/// The buffers of one forward call, shared by the workers. `@unchecked Sendable` because it holds raw
/// pointers: the inputs are only read, and each (image, head) item writes only its own slices of the
/// outputs (its image, its head's channels), so concurrent workers never touch the same element.
private struct ForwardBuffers: @unchecked Sendable {
    let query: UnsafePointer<Float>
    let keys: [UnsafePointer<Float>]
    let values: [UnsafePointer<Float>]
    let output: UnsafeMutablePointer<Float>
    let weights: UnsafeMutablePointer<Float>
    let softmaxWeights: UnsafeMutablePointer<Float>
    let thresholdSlots: UnsafeMutablePointer<Int32>
    let inverseDenominators: UnsafeMutablePointer<Float>
}

/// The buffers of one backward call, shared by the workers; `@unchecked Sendable` for the reason
/// given on `ForwardBuffers` (an item's gradient slices belong to its image and head alone).
private struct BackwardBuffers: @unchecked Sendable {
    let query: UnsafePointer<Float>
    let keys: [UnsafePointer<Float>]
    let values: [UnsafePointer<Float>]
    let weights: UnsafePointer<Float>
    let softmaxWeights: UnsafePointer<Float>
    let thresholdSlots: UnsafePointer<Int32>
    let inverseDenominators: UnsafePointer<Float>
    let gradOutput: UnsafePointer<Float>
    let gradQuery: UnsafeMutablePointer<Float>
    let gradKeys: [UnsafeMutablePointer<Float>]
    let gradValues: [UnsafeMutablePointer<Float>]
}
