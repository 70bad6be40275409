import Foundation
import NFMKernels
import XCTest

@testable import NFMTensor

/// One scenario of Fixtures/attention.json (written by scripts/reference/make_attention_fixtures.py):
/// 2 passes over 4 layers of different sizes; each slot writes a key and a value, then reads the memory.
private struct AttentionScenario {
    struct Read {
        let query: Tensor
        let seed: Tensor
        let output: Tensor
        let weights: Tensor
    }

    let name: String
    let heads: Int
    let keySize: Int
    let valueSize: Int
    let topK: Int
    let temperature: Float?
    let keys: [Tensor]
    let values: [Tensor]
    let reads: [Read]
    let queryGradients: [Tensor]
    let keyGradients: [Tensor]
    let valueGradients: [Tensor]

    static let all: [AttentionScenario] = {
        let url = Bundle.module.url(forResource: "attention", withExtension: "json", subdirectory: "Fixtures")!
        let root = try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        return (root["scenarios"] as! [[String: Any]]).map(AttentionScenario.init)
    }()

    init(_ json: [String: Any]) {
        func tensor(_ value: Any?) -> Tensor {
            let dict = value as! [String: Any]
            return Tensor(shape: dict["shape"] as! [Int], scalars: (dict["data"] as! [NSNumber]).map { $0.floatValue })
        }
        func tensors(_ value: Any?) -> [Tensor] { (value as! [Any]).map(tensor) }
        name = json["name"] as! String
        heads = json["heads"] as! Int
        keySize = json["keySize"] as! Int
        valueSize = json["valueSize"] as! Int
        topK = json["topK"] as! Int
        temperature = (json["temperature"] as? NSNumber)?.floatValue
        keys = tensors(json["keys"])
        values = tensors(json["values"])
        reads = (json["reads"] as! [[String: Any]]).map {
            Read(query: tensor($0["query"]), seed: tensor($0["seed"]), output: tensor($0["output"]), weights: tensor($0["weights"]))
        }
        let gradients = json["gradients"] as! [String: Any]
        queryGradients = tensors(gradients["queries"])
        keyGradients = tensors(gradients["keys"])
        valueGradients = tensors(gradients["values"])
    }
}

/// DESIGN.md §2 steps 2–5 composed from existing differentiable ops (resize, multiply, sum, stack,
/// softmax, topK, relu, divide): an independent Swift reference for shapes too big for fixtures.
/// Returns the output [N, heads·dv, H, W] and the weights [N, heads, M+1, H, W].
private func composedAttention(
    query: Tensor, keys: [Tensor], values: [Tensor], heads: Int, keySize: Int, valueSize: Int, topK k: Int,
    temperature: Float
) -> (output: Tensor, weights: Tensor) {
    let (batch, height, width) = (query.shape[0], query.shape[2], query.shape[3])
    let q = query.reshaped(to: [batch, heads, keySize, height * width])
    var scores = keys.map { key in
        (q * resizeNearest(key, height: height, width: width).reshaped(to: [batch, heads, keySize, height * width]))
            .sum(alongAxes: [2]) / temperature
    }
    scores.append(Tensor(zeros: [batch, heads, height * width]))  // the null slot: q·0
    var weights = softmax(Tensor.stack(scores, alongAxis: 2), alongAxis: 2)  // [N, heads, M+1, H·W]
    let slots = keys.count + 1
    if slots > k + 1 {
        let shift = topK(weights, k: k + 1, alongAxis: 2).values.sliced(alongAxis: 2, from: k, to: k + 1, step: 1) + 1e-7
        let shifted = relu(weights - shift)
        weights = shifted / (shifted.sum(alongAxes: [2], keepDims: true) + 1e-7)
    }
    var output = Tensor(zeros: [batch, heads, valueSize, height * width])
    for (j, value) in values.enumerated() {
        let v = resizeNearest(value, height: height, width: width).reshaped(to: [batch, heads, valueSize, height * width])
        output = output + weights.sliced(alongAxis: 2, from: j, to: j + 1, step: 1) * v
    }
    return (
        output.reshaped(to: [batch, heads * valueSize, height, width]),
        weights.reshaped(to: [batch, heads, slots, height, width])
    )
}

/// CPU time of the whole process (all threads), in milliseconds: on a shared machine it varies less
/// than the wall clock.
private func processorMilliseconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
    return Double(time.tv_sec) * 1e3 + Double(time.tv_nsec) / 1e6
}

final class NFMAttentionTests: XCTestCase {
    /// Forward output, weights and the gradients of every query, key and value against PyTorch,
    /// over 2 passes × 4 layers with a growing memory, for several heads, k and τ.
    func testTwoPassesOfFourLayersMatchPyTorch() {
        let scenarios = AttentionScenario.all
        XCTAssertEqual(scenarios.count, 5)
        for scenario in scenarios {
            let keys = scenario.keys.map { $0.requiringGradient() }
            let values = scenario.values.map { $0.requiringGradient() }
            let queries = scenario.reads.map { $0.query.requiringGradient() }
            var loss = Tensor(0)
            for (r, read) in scenario.reads.enumerated() {
                let (output, weights) = nfmAttention(
                    query: queries[r], keys: Array(keys[...r]), values: Array(values[...r]), heads: scenario.heads,
                    keySize: scenario.keySize, valueSize: scenario.valueSize, topK: scenario.topK,
                    temperature: scenario.temperature)
                assertClose(output, read.output, "\(scenario.name) read \(r) output")
                assertClose(weights, read.weights, "\(scenario.name) read \(r) weights")
                XCTAssertFalse(weights.requiresGradient, "the weights are for inspection and record no gradient")
                loss = loss + (output * read.seed).sum()
            }
            let grads = gradients(of: loss, withRespectTo: queries + keys + values)
            let expected = scenario.queryGradients + scenario.keyGradients + scenario.valueGradients
            let labels = queries.indices.map { "query \($0)" } + keys.indices.map { "key \($0)" } + values.indices.map { "value \($0)" }
            for (label, (gradient, reference)) in zip(labels, zip(grads, expected)) {
                guard let gradient else {
                    XCTFail("\(scenario.name): no gradient for \(label)")
                    continue
                }
                assertClose(gradient, reference, "\(scenario.name) ∂\(label)")
            }
        }
    }

    /// The scenarios cover both sides of the top-k threshold and k larger than the memory.
    func testFixturesCoverDenseAndSparseReads() {
        var sparse = 0, dense = 0
        for scenario in AttentionScenario.all {
            for r in scenario.reads.indices {
                if r + 2 > scenario.topK + 1 { sparse += 1 } else { dense += 1 }
            }
        }
        XCTAssertGreaterThan(sparse, 10)
        XCTAssertGreaterThan(dense, 10)
        XCTAssertEqual(Set(AttentionScenario.all.map(\.topK)), [1, 2, 3, 5, 12])
        XCTAssertEqual(Set(AttentionScenario.all.map(\.heads)), [1, 2, 4])
    }

    /// On shapes big enough to split over the cores: the fused op equals the same attention composed
    /// from existing ops, forward and backward.
    func testMatchesComposedOpsOnAParallelShape() {
        var generator = SeededGenerator(seed: 7)
        let (batch, heads, keySize, valueSize, size) = (2, 4, 4, 3, 16)
        let entrySizes = [(16, 16), (8, 8), (5, 5), (19, 19), (16, 16), (3, 7)]
        let query = Tensor.randomNormal([batch, heads * keySize, size, size], using: &generator)
        let keys = entrySizes.map { Tensor.randomNormal([batch, heads * keySize, $0.0, $0.1], using: &generator) }
        let values = entrySizes.map { Tensor.randomNormal([batch, heads * valueSize, $0.0, $0.1], using: &generator) }
        let seed = Tensor.randomNormal([batch, heads * valueSize, size, size], using: &generator)
        for k in [1, 3, 6] {
            func run(_ attention: ([Tensor]) -> (output: Tensor, weights: Tensor)) -> (Tensor, Tensor, [Tensor]) {
                let inputs = ([query] + keys + values).map { $0.requiringGradient() }
                let (output, weights) = attention(inputs)
                let grads = gradients(of: (output * seed).sum(), withRespectTo: inputs).map { $0! }
                return (output, weights, grads)
            }
            let m = keys.count
            let fused = run {
                nfmAttention(
                    query: $0[0], keys: Array($0[1...m]), values: Array($0[(m + 1)...]), heads: heads,
                    keySize: keySize, valueSize: valueSize, topK: k)
            }
            let composed = run {
                composedAttention(
                    query: $0[0], keys: Array($0[1...m]), values: Array($0[(m + 1)...]), heads: heads,
                    keySize: keySize, valueSize: valueSize, topK: k, temperature: 2)
            }
            assertClose(fused.0, composed.0, "k \(k) output")
            assertClose(fused.1, composed.1, "k \(k) weights")
            for (i, (a, b)) in zip(fused.2, composed.2).enumerated() { assertClose(a, b, "k \(k) ∂input\(i)") }
        }
    }

    /// Each pixel and head: with top-k, at most k weights are non-zero and they sum to
    /// Σa' / (Σa' + 1e-7), which is 1 up to 1e-7 / Σa' (so ≈ 1 unless the k largest weights tie with
    /// the (k+1)-th); without top-k (M+1 ≤ k+1) all M+1 softmax weights are positive and sum to 1.
    func testWeightsSumToOneAndKeepAtMostK() {
        var generator = SeededGenerator(seed: 11)
        let (batch, heads, keySize, valueSize, size) = (3, 4, 3, 2, 6)
        for entries in [1, 2, 3, 4, 6, 9] {
            let keys = (0..<entries).map { j in Tensor.randomNormal([batch, heads * keySize, 2 + j, 3 + j % 4], std: 2, using: &generator) }
            let values = keys.map { Tensor.randomNormal([batch, heads * valueSize, $0.shape[2], $0.shape[3]], using: &generator) }
            let query = Tensor.randomNormal([batch, heads * keySize, size, size], std: 2, using: &generator)
            for k in [1, 2, 3, 5] {
                let weights = nfmAttention(
                    query: query, keys: keys, values: values, heads: heads, keySize: keySize, valueSize: valueSize, topK: k
                ).weights.scalars
                let (slots, pixels) = (entries + 1, size * size)
                let sparse = slots > k + 1
                for item in 0..<(batch * heads) {
                    for p in 0..<pixels {
                        let pixel = (0..<slots).map { weights[(item * slots + $0) * pixels + p] }
                        let total = pixel.reduce(0, +)
                        XCTAssertTrue(pixel.allSatisfy { $0 >= 0 }, "weights are never negative")
                        if sparse {
                            XCTAssertLessThanOrEqual(pixel.filter { $0 > 0 }.count, k, "M \(entries) k \(k): more than k slots kept")
                            XCTAssertEqual(total, 1, accuracy: 1e-3, "M \(entries) k \(k): sparse weights sum to \(total)")
                            XCTAssertLessThanOrEqual(total, 1 + 1e-6, "Σa'/(Σa' + 1e-7) is at most 1")
                        } else {
                            XCTAssertEqual(pixel.filter { $0 > 0 }.count, slots, "M \(entries) k \(k): dense reads keep every slot")
                            XCTAssertEqual(total, 1, accuracy: 1e-5, "M \(entries) k \(k): softmax weights sum to \(total)")
                        }
                    }
                }
            }
        }
    }

    /// When the k largest weights tie with the (k+1)-th (here: all keys 0, so a uniform softmax),
    /// the shift δ exceeds every weight: all weights are suppressed, and the output is 0.
    func testAllSlotsTiedSuppressesEverything() {
        let keys = [Tensor(zeros: [1, 2, 3, 3]), Tensor(zeros: [1, 2, 2, 2]), Tensor(zeros: [1, 2, 4, 4])]
        let values = keys.map { Tensor(ones: [1, 2, $0.shape[2], $0.shape[3]]) }
        let query = Tensor(ones: [1, 2, 3, 3])
        let (output, weights) = nfmAttention(query: query, keys: keys, values: values, heads: 1, keySize: 2, valueSize: 2, topK: 1)
        XCTAssertEqual(weights.scalars, [Float](repeating: 0, count: 4 * 9))
        XCTAssertEqual(output.scalars, [Float](repeating: 0, count: 2 * 9))
    }

    /// With exactly k+1 slots (M = k), top-k does not apply: the reference's `time_step <= top_k`
    /// branch (DESIGN.md §2 step 4), so all k+1 weights stay non-zero.
    func testExactlyKPlusOneSlotsAreLeftUnchanged() {
        var generator = SeededGenerator(seed: 3)
        let keys = (0..<3).map { _ in Tensor.randomNormal([1, 2, 3, 3], using: &generator) }
        let values = (0..<3).map { _ in Tensor.randomNormal([1, 1, 3, 3], using: &generator) }
        let query = Tensor.randomNormal([1, 2, 3, 3], using: &generator)
        let weights = nfmAttention(query: query, keys: keys, values: values, heads: 1, keySize: 2, valueSize: 1, topK: 3).weights
        XCTAssertTrue(weights.scalars.allSatisfy { $0 > 0 })
    }

    /// An empty memory reads only the null slot: output 0, weight 1 on the null slot, no gradient to the query.
    func testEmptyMemoryReadsTheNullSlot() {
        let query = Tensor(ones: [2, 4, 3, 2]).requiringGradient()
        let (output, weights) = nfmAttention(query: query, keys: [], values: [], heads: 2, keySize: 2, valueSize: 3)
        XCTAssertEqual(output.shape, [2, 6, 3, 2])
        XCTAssertEqual(output.scalars, [Float](repeating: 0, count: 72))
        XCTAssertEqual(weights.shape, [2, 2, 1, 3, 2])
        XCTAssertEqual(weights.scalars, [Float](repeating: 1, count: 24))
        XCTAssertEqual(gradients(of: output.sum(), withRespectTo: [query])[0]?.scalars, [Float](repeating: 0, count: 48))
    }

    /// The kernel's copy of PyTorch's nearest index rule agrees with `resizeNearest`'s.
    func testKernelNearestIndexAgreesWithResizeNearest() {
        for input in 1...40 {
            for output in 1...40 {
                for i in 0..<output {
                    XCTAssertEqual(
                        NFMAttentionKernel.nearestSourceIndex(i, input: input, output: output),
                        nearestSourceIndex(i, input: input, output: output))
                }
            }
        }
    }

    /// Forward + backward time at the Sort-of-CLEVR shape (DESIGN.md §2): N 64, 4 heads, d_k = d_v = 16,
    /// reads at 38, 19, 10, 5 of a memory of 8 entries (38, 19, 10, 5, 38, 19, 10, 5). Not a timed
    /// assertion: it prints, and runs only when NFM_ATTENTION_BENCHMARK is set (use a release build:
    /// `NFM_ATTENTION_BENCHMARK=1 swift test -c release -Xswiftc -enable-testing --filter testBenchmark`).
    func testBenchmarkSortOfCLEVRShape() throws {
        guard let setting = ProcessInfo.processInfo.environment["NFM_ATTENTION_BENCHMARK"] else {
            throw XCTSkip("set NFM_ATTENTION_BENCHMARK=1 to run")
        }
        let repeats = Int(setting) ?? 5
        var generator = SeededGenerator(seed: 1)
        let (batch, heads, keySize, valueSize) = (64, 4, 16, 16)
        let sizes = [38, 19, 10, 5]
        let memorySizes = sizes + sizes
        let keys = memorySizes.map { Tensor.randomNormal([batch, heads * keySize, $0, $0], using: &generator).requiringGradient() }
        let values = memorySizes.map { Tensor.randomNormal([batch, heads * valueSize, $0, $0], using: &generator).requiringGradient() }
        // Pass 2 of the model: layer l writes entry 4 + l, then reads entries 0…4+l. "all 8" reads every
        // entry at every layer (an upper bound); "as in the model" reads the growing memory.
        for (label, memoryAt) in [("all 8 entries", { (_: Int) in 8 }), ("as in the model (5, 6, 7, 8 entries)", { (l: Int) in 5 + l })] {
            var forwardTimes = [[Double]](repeating: [], count: sizes.count)
            var backwardTimes = [[Double]](repeating: [], count: sizes.count)
            var processorTimes = [[Double]](repeating: [], count: sizes.count)
            for _ in 0..<repeats {
                for (l, size) in sizes.enumerated() {
                    let query = Tensor.randomNormal([batch, heads * keySize, size, size], using: &generator).requiringGradient()
                    let seed = Tensor(ones: [batch, heads * valueSize, size, size])
                    let m = memoryAt(l)
                    let processorStart = processorMilliseconds()
                    let start = DispatchTime.now().uptimeNanoseconds
                    let output = nfmAttention(
                        query: query, keys: Array(keys[..<m]), values: Array(values[..<m]), heads: heads,
                        keySize: keySize, valueSize: valueSize, topK: 3
                    ).output
                    let middle = DispatchTime.now().uptimeNanoseconds
                    _ = gradients(of: output, withRespectTo: [query] + keys[..<m] + values[..<m], seed: seed)
                    let end = DispatchTime.now().uptimeNanoseconds
                    processorTimes[l].append(processorMilliseconds() - processorStart)
                    forwardTimes[l].append(Double(middle - start) / 1e6)
                    backwardTimes[l].append(Double(end - middle) / 1e6)
                }
            }
            func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }
            print("nfmAttention benchmark, \(label), median of \(repeats) (ms):")
            for (l, size) in sizes.enumerated() {
                print(
                    String(
                        format: "  %2d×%-2d  forward %7.2f  backward %7.2f  (CPU time of all threads, both: %7.2f)", size, size,
                        median(forwardTimes[l]), median(backwardTimes[l]), median(processorTimes[l])))
            }
            let total = sizes.indices.map { median(forwardTimes[$0]) + median(backwardTimes[$0]) }.reduce(0, +)
            let processorTotal = sizes.indices.map { median(processorTimes[$0]) }.reduce(0, +)
            print(String(format: "  all four reads, forward + backward: %.2f ms wall, %.2f ms CPU", total, processorTotal))
        }
    }
}
