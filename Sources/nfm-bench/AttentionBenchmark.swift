import NFMKernels
import NFMTensor

/// The fused NFM attention kernel alone, forward and backward, summed over the four reads of one
/// NFM model step (pass 2 reads at 38², 19², 10² and 5² over 5, 6, 7 and 8 memory entries).
struct AttentionResult: Codable, Sendable {
    var batch: Int
    /// ms for the four forward reads.
    var forward: Summary
    /// ms for the four backward reads.
    var backward: Summary
}

/// Buffers for one attention read, filled with random values.
private final class AttentionBuffers {
    let geometry: NFMAttentionGeometry
    let query, output, weights, softmax, inverseDenominators, gradOutput, gradQuery: UnsafeMutablePointer<Float>
    let thresholds: UnsafeMutablePointer<Int32>
    let keys, values, gradKeys, gradValues: [UnsafeMutablePointer<Float>]

    init(_ geometry: NFMAttentionGeometry, using generator: inout SeededGenerator) {
        self.geometry = geometry
        func random(_ count: Int) -> UnsafeMutablePointer<Float> {
            let pointer = UnsafeMutablePointer<Float>.allocate(capacity: count)
            for i in 0..<count { pointer[i] = generator.nextUniform() * 2 - 1 }
            return pointer
        }
        query = random(geometry.queryCount)
        keys = (0..<geometry.entries).map { random(geometry.keyCount($0)) }
        values = (0..<geometry.entries).map { random(geometry.valueCount($0)) }
        gradOutput = random(geometry.outputCount)
        output = .allocate(capacity: geometry.outputCount)
        weights = .allocate(capacity: geometry.weightCount)
        softmax = .allocate(capacity: geometry.weightCount)
        inverseDenominators = .allocate(capacity: geometry.pixelCacheCount)
        thresholds = .allocate(capacity: geometry.pixelCacheCount)
        gradQuery = .allocate(capacity: geometry.queryCount)
        gradKeys = (0..<geometry.entries).map { .allocate(capacity: geometry.keyCount($0)) }
        gradValues = (0..<geometry.entries).map { .allocate(capacity: geometry.valueCount($0)) }
    }

    deinit {
        for pointer in [query, output, weights, softmax, inverseDenominators, gradOutput, gradQuery] + keys + values
            + gradKeys + gradValues
        {
            pointer.deallocate()
        }
        thresholds.deallocate()
    }

    func forward() {
        NFMAttentionKernel.forward(
            geometry, query: query, keys: keys.map { UnsafePointer($0) }, values: values.map { UnsafePointer($0) },
            output: output, weights: weights, softmaxWeights: softmax, thresholdSlots: thresholds,
            inverseDenominators: inverseDenominators)
    }

    func backward() {
        NFMAttentionKernel.backward(
            geometry, query: query, keys: keys.map { UnsafePointer($0) }, values: values.map { UnsafePointer($0) },
            weights: weights, softmaxWeights: softmax, thresholdSlots: thresholds,
            inverseDenominators: inverseDenominators, gradOutput: gradOutput, gradQuery: gradQuery,
            gradKeys: gradKeys, gradValues: gradValues)
    }
}

/// Times the four attention reads of an NFM step at `batch`.
func runAttentionBenchmark(batch: Int, warmup: Int, iterations: Int) -> AttentionResult {
    var generator = SeededGenerator(seed: 3)
    let sizes = [38, 19, 10, 5]
    let reads = sizes.indices.map { layer in
        let entries = sizes + sizes[...layer]
        let geometry = NFMAttentionGeometry(
            batch: batch, heads: referenceConfiguration.heads, keySize: referenceConfiguration.keySize,
            valueSize: referenceConfiguration.valueSize, height: sizes[layer], width: sizes[layer],
            entryHeights: entries, entryWidths: entries, topK: referenceConfiguration.topK,
            temperature: Float(referenceConfiguration.keySize).squareRoot())
        return AttentionBuffers(geometry, using: &generator)
    }
    let forward = timeMilliseconds(warmup: warmup, iterations: iterations) { for read in reads { read.forward() } }
    let backward = timeMilliseconds(warmup: warmup, iterations: iterations) { for read in reads { read.backward() } }
    return AttentionResult(batch: batch, forward: Summary(forward, unit: "ms"), backward: Summary(backward, unit: "ms"))
}
