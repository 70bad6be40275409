// oneDNN (and the Swift max-pooling path) against the reference loops for pooling and batch norm.

import XCTest

@testable import NFMKernels

final class PoolingTests: XCTestCase {
    let fast: any ComputeBackend = Kernels.oneDNN
    let reference: any ComputeBackend = Kernels.reference

    static let geometries: [Pool2dGeometry] = [
        // 3×3 stride 2 with padding 1 on an odd, non-square input.
        Pool2dGeometry(
            batch: 2, channels: 3, inputHeight: 7, inputWidth: 6, kernelHeight: 3, kernelWidth: 3,
            strideHeight: 2, strideWidth: 2, paddingHeight: 1, paddingWidth: 1),
        // The common 2×2 stride 2, batch 1, odd input (last row dropped by the floor).
        Pool2dGeometry(
            batch: 1, channels: 5, inputHeight: 9, inputWidth: 8, kernelHeight: 2, kernelWidth: 2,
            strideHeight: 2, strideWidth: 2),
        // Overlapping windows (stride 1), so backward adds several gradients into one input.
        Pool2dGeometry(
            batch: 2, channels: 7, inputHeight: 5, inputWidth: 5, kernelHeight: 3, kernelWidth: 3,
            strideHeight: 1, strideWidth: 1, paddingHeight: 1, paddingWidth: 1),
        // Non-square kernel, stride and padding.
        Pool2dGeometry(
            batch: 1, channels: 3, inputHeight: 5, inputWidth: 9, kernelHeight: 3, kernelWidth: 2,
            strideHeight: 2, strideWidth: 1, paddingHeight: 1, paddingWidth: 0),
        // Large enough for the max-pooling path to split planes across threads.
        Pool2dGeometry(
            batch: 4, channels: 16, inputHeight: 40, inputWidth: 38, kernelHeight: 3, kernelWidth: 3,
            strideHeight: 2, strideWidth: 2, paddingHeight: 1, paddingWidth: 1),
    ]

    static let kinds: [PoolKind] = [
        .max, .average(countIncludePadding: true), .average(countIncludePadding: false),
    ]

    func testForwardAndBackwardMatchReference() {
        var random = SplitMix64(seed: 10)
        for g in Self.geometries {
            let inputCount = g.batch * g.channels * g.inputHeight * g.inputWidth
            let outputCount = g.batch * g.channels * g.outputHeight * g.outputWidth
            for kind in Self.kinds {
                // Ternary values make many exact ties, which the max must break the same way.
                let input = Buffer(kind == .max ? random.ternary(inputCount) : random.floats(inputCount))
                let fastOutput = Buffer(count: outputCount)
                let referenceOutput = Buffer(count: outputCount)
                let fastIndices = IndexBuffer(count: outputCount)
                let referenceIndices = IndexBuffer(count: outputCount)
                fast.pool2dForward(
                    g, kind: kind, input: input.readOnly, output: fastOutput.pointer, indices: fastIndices.pointer)
                reference.pool2dForward(
                    g, kind: kind, input: input.readOnly, output: referenceOutput.pointer,
                    indices: referenceIndices.pointer)
                assertClose(fastOutput.values, referenceOutput.values, "pool2dForward \(kind) \(g)")
                if kind == .max { XCTAssertEqual(fastIndices.values, referenceIndices.values, "indices \(g)") }

                let gradOutput = Buffer(random.floats(outputCount))
                let fastGradInput = Buffer(count: inputCount)
                let referenceGradInput = Buffer(count: inputCount)
                fast.pool2dBackward(
                    g, kind: kind, gradOutput: gradOutput.readOnly, indices: referenceIndices.pointer,
                    gradInput: fastGradInput.pointer)
                reference.pool2dBackward(
                    g, kind: kind, gradOutput: gradOutput.readOnly, indices: referenceIndices.pointer,
                    gradInput: referenceGradInput.pointer)
                assertClose(fastGradInput.values, referenceGradInput.values, "pool2dBackward \(kind) \(g)")
            }
        }
    }

    /// Hand-worked 2×4 input, 2×2 windows: ties go to the first in row-major order, NaN wins, and
    /// the indices are flat positions in the plane (PyTorch's convention).
    func testMaxPoolingIndicesByHand() {
        let g = Pool2dGeometry(
            batch: 1, channels: 1, inputHeight: 2, inputWidth: 6, kernelHeight: 2, kernelWidth: 2,
            strideHeight: 2, strideWidth: 2)
        let input = Buffer([
            3, 1, 2, 2, 0, .nan,
            3, 0, 2, 1, 7, 9,
        ])
        for backend in [fast, reference] {
            let output = Buffer(count: 3)
            let indices = IndexBuffer(count: 3)
            backend.pool2dForward(g, kind: .max, input: input.readOnly, output: output.pointer, indices: indices.pointer)
            XCTAssertEqual(indices.values, [0, 2, 5], "\(type(of: backend))")
            XCTAssertEqual(Array(output.values[0..<2]), [3, 2])
            XCTAssertTrue(output.values[2].isNaN)
        }
    }

    /// Average pooling's two padding modes differ only at the border: a corner 3×3 window with
    /// padding 1 covers 4 real inputs, divided by 9 or by 4.
    func testAveragePoolingPaddingModesByHand() {
        let g = Pool2dGeometry(
            batch: 1, channels: 1, inputHeight: 2, inputWidth: 2, kernelHeight: 3, kernelWidth: 3,
            strideHeight: 1, strideWidth: 1, paddingHeight: 1, paddingWidth: 1)
        let input = Buffer([1, 2, 3, 6])  // every window is a corner window covering all four
        for backend in [fast, reference] {
            let included = Buffer(count: 4)
            let excluded = Buffer(count: 4)
            backend.pool2dForward(
                g, kind: .average(countIncludePadding: true), input: input.readOnly, output: included.pointer,
                indices: nil)
            backend.pool2dForward(
                g, kind: .average(countIncludePadding: false), input: input.readOnly, output: excluded.pointer,
                indices: nil)
            assertClose(included.values, [Float](repeating: 12.0 / 9, count: 4), "include padding")
            assertClose(excluded.values, [Float](repeating: 3, count: 4), "exclude padding")
        }
    }
}

final class BatchNormTests: XCTestCase {
    let fast: any ComputeBackend = Kernels.oneDNN
    let reference: any ComputeBackend = Kernels.reference

    /// 2-D batch norm, BatchNorm1d (S = 1), and batch 1.
    static let geometries: [BatchNormGeometry] = [
        BatchNormGeometry(batch: 4, channels: 3, spatial: 10),
        BatchNormGeometry(batch: 5, channels: 7, spatial: 1),
        BatchNormGeometry(batch: 1, channels: 5, spatial: 13),
        BatchNormGeometry(batch: 8, channels: 16, spatial: 49),
    ]

    func testTrainingForwardAndBackwardMatchReference() {
        var random = SplitMix64(seed: 20)
        let epsilon: Float = 1e-5
        for g in Self.geometries {
            let count = g.batch * g.channels * g.spatial
            // An offset and scale per tensor, so that the mean is not already zero.
            let input = Buffer(random.floats(count).map { 3 * $0 + 0.5 })
            let gamma = Buffer(random.floats(g.channels).map { $0 + 1.5 })
            let beta = Buffer(random.floats(g.channels))
            let gradOutput = Buffer(random.floats(count))

            var results: [[[Float]]] = []
            for backend in [fast, reference] {
                let output = Buffer(count: count)
                let mean = Buffer(count: g.channels)
                let variance = Buffer(count: g.channels)
                backend.batchNormForwardTraining(
                    g, input: input.readOnly, gamma: gamma.readOnly, beta: beta.readOnly, epsilon: epsilon,
                    output: output.pointer, mean: mean.pointer, variance: variance.pointer)
                let gradInput = Buffer(count: count)
                let gradGamma = Buffer(count: g.channels)
                let gradBeta = Buffer(count: g.channels)
                backend.batchNormBackward(
                    g, input: input.readOnly, gradOutput: gradOutput.readOnly, gamma: gamma.readOnly,
                    mean: mean.readOnly, variance: variance.readOnly, epsilon: epsilon,
                    gradInput: gradInput.pointer, gradGamma: gradGamma.pointer, gradBeta: gradBeta.pointer)
                results.append([
                    output.values, mean.values, variance.values, gradInput.values, gradGamma.values, gradBeta.values,
                ])
            }
            let names = ["output", "mean", "variance", "gradInput", "gradGamma", "gradBeta"]
            for (index, name) in names.enumerated() {
                assertClose(results[0][index], results[1][index], "batch norm \(name) \(g)")
            }
        }
    }

    /// Batch statistics of sparse post-ReLU channels (about 5% non-zero, as after Conv → ReLU in the
    /// NFM trunk) must be as exact as Float allows: oneDNN 2.6's own training statistics had variance
    /// errors near 1e-5 relative here, which the NFM attention amplified (NFMLayersTests'
    /// ModelParityTests). The second geometry is large enough to split channels across threads.
    func testTrainingStatisticsAreAccurateOnSparseChannels() {
        var random = SplitMix64(seed: 22)
        for g in [BatchNormGeometry(batch: 3, channels: 6, spatial: 38 * 38), BatchNormGeometry(batch: 8, channels: 16, spatial: 19 * 19)] {
            let count = g.batch * g.channels * g.spatial
            let values = random.floats(count).map { Swift.max(0, $0 - 0.9) * 3 }
            let input = Buffer(values)
            let gamma = Buffer([Float](repeating: 1, count: g.channels))
            let beta = Buffer([Float](repeating: 0, count: g.channels))
            let output = Buffer(count: count), mean = Buffer(count: g.channels), variance = Buffer(count: g.channels)
            fast.batchNormForwardTraining(
                g, input: input.readOnly, gamma: gamma.readOnly, beta: beta.readOnly, epsilon: 1e-5,
                output: output.pointer, mean: mean.pointer, variance: variance.pointer)
            for c in 0..<g.channels {
                let channel = (0..<g.batch).flatMap { n in (0..<g.spatial).map { Double(values[(n * g.channels + c) * g.spatial + $0]) } }
                let exactMean = channel.reduce(0, +) / Double(channel.count)
                let exactVariance = channel.map { ($0 - exactMean) * ($0 - exactMean) }.reduce(0, +) / Double(channel.count)
                XCTAssertEqual(Double(mean.values[c]), exactMean, accuracy: 1e-6 * exactMean, "mean of channel \(c), \(g)")
                XCTAssertEqual(Double(variance.values[c]), exactVariance, accuracy: 1e-6 * exactVariance, "variance of channel \(c), \(g)")
            }
        }
    }

    func testInferenceMatchesReference() {
        var random = SplitMix64(seed: 21)
        let epsilon: Float = 1e-3
        for g in Self.geometries {
            let count = g.batch * g.channels * g.spatial
            let input = Buffer(random.floats(count))
            let gamma = Buffer(random.floats(g.channels))
            let beta = Buffer(random.floats(g.channels))
            let mean = Buffer(random.floats(g.channels).map { $0 * 0.5 })
            let variance = Buffer(random.floats(g.channels).map { $0 + 1.1 })  // positive
            var outputs: [[Float]] = []
            for backend in [fast, reference] {
                let output = Buffer(count: count)
                backend.batchNormForwardInference(
                    g, input: input.readOnly, gamma: gamma.readOnly, beta: beta.readOnly, mean: mean.readOnly,
                    variance: variance.readOnly, epsilon: epsilon, output: output.pointer)
                outputs.append(output.values)
            }
            assertClose(outputs[0], outputs[1], "batchNormForwardInference \(g)")
        }
    }
}

final class GemmTests: XCTestCase {
    let fast: any ComputeBackend = Kernels.oneDNN
    let reference: any ComputeBackend = Kernels.reference

    /// Every transpose combination, leading dimensions wider than the rows, and both beta = 0
    /// (C is overwritten, even if it holds NaN) and beta ≠ 0 (C is read).
    func testGemmMatchesReference() {
        var random = SplitMix64(seed: 30)
        let (m, n, k) = (5, 7, 3)
        for transposeA in [false, true] {
            for transposeB in [false, true] {
                for beta: Float in [0, 0.5] {
                    // Stored shapes: A is m×k (k×m when transposed), B is k×n (n×k); each row padded by 2.
                    let (rowsA, columnsA) = transposeA ? (k, m) : (m, k)
                    let (rowsB, columnsB) = transposeB ? (n, k) : (k, n)
                    let (lda, ldb, ldc) = (columnsA + 2, columnsB + 3, n + 1)
                    let a = Buffer(random.floats(rowsA * lda))
                    let b = Buffer(random.floats(rowsB * ldb))
                    var initialC = random.floats(m * ldc)
                    if beta == 0 { initialC[0] = .nan }
                    let fastC = Buffer(initialC)
                    let referenceC = Buffer(initialC)
                    for (backend, c) in [(fast, fastC), (reference, referenceC)] {
                        backend.gemm(
                            transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                            alpha: 1.5, a: a.readOnly, lda: lda, b: b.readOnly, ldb: ldb,
                            beta: beta, c: c.pointer, ldc: ldc)
                    }
                    // Padding columns of C are not part of the result and must be left alone.
                    XCTAssertEqual(fastC.values[n], initialC[n])
                    assertClose(
                        fastC.values.enumerated().filter { $0.offset % ldc < n }.map(\.element),
                        referenceC.values.enumerated().filter { $0.offset % ldc < n }.map(\.element),
                        "gemm transposeA \(transposeA) transposeB \(transposeB) beta \(beta)")
                }
            }
        }
    }

    /// The reference gemm itself, on a 2×2 product worked by hand.
    func testReferenceGemmByHand() {
        let a = Buffer([1, 2, 3, 4])  // [[1, 2], [3, 4]]
        let b = Buffer([5, 6, 7, 8])  // [[5, 6], [7, 8]]
        let c = Buffer([1, 1, 1, 1])
        reference.gemm(
            transposeA: false, transposeB: true, m: 2, n: 2, k: 2, alpha: 1, a: a.readOnly, lda: 2,
            b: b.readOnly, ldb: 2, beta: 2, c: c.pointer, ldc: 2)
        // A·Bᵀ = [[1·5 + 2·6, 1·7 + 2·8], [3·5 + 4·6, 3·7 + 4·8]] = [[17, 23], [39, 53]], plus 2·1.
        XCTAssertEqual(c.values, [19, 25, 41, 55])
    }

    /// Every transpose combination with padded rows and gaps between matrices, beta 0 and 1, a
    /// stride of 0 (one B shared by the whole batch), and a repeated call (cached primitive).
    func testBatchedGemmMatchesReference() {
        var random = SplitMix64(seed: 31)
        let (count, m, n, k) = (4, 6, 5, 7)
        var cases: [(transposeA: Bool, transposeB: Bool, beta: Float, sharedB: Bool)] = []
        for transposeA in [false, true] {
            for transposeB in [false, true] {
                for beta: Float in [0, 1] { cases.append((transposeA, transposeB, beta, false)) }
            }
        }
        cases.append((false, true, 0, true))
        cases.append((true, false, 1, true))
        for (transposeA, transposeB, beta, sharedB) in cases {
            let (rowsA, columnsA) = transposeA ? (k, m) : (m, k)
            let (rowsB, columnsB) = transposeB ? (n, k) : (k, n)
            let (lda, ldb, ldc) = (columnsA + 1, columnsB, n + 2)
            // Gaps between the matrices, so that the strides are really used.
            let (strideA, strideB, strideC) = (rowsA * lda + 3, sharedB ? 0 : rowsB * ldb + 5, m * ldc + 1)
            let a = Buffer(random.floats(count * strideA))
            let b = Buffer(random.floats(sharedB ? rowsB * ldb : count * strideB))
            let initialC = random.floats(count * strideC)
            let fastC = Buffer(initialC)
            let referenceC = Buffer(initialC)
            for (backend, c, repetitions) in [(fast, fastC, 2), (reference, referenceC, 1)] {
                for _ in 0..<repetitions {
                    c.pointer.update(from: initialC, count: initialC.count)
                    backend.batchedGemm(
                        count: count, transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                        alpha: 0.75, a: a.readOnly, lda: lda, strideA: strideA, b: b.readOnly, ldb: ldb,
                        strideB: strideB, beta: beta, c: c.pointer, ldc: ldc, strideC: strideC)
                }
            }
            // Gaps and row padding in C are untouched by both, so compare everything.
            assertClose(
                fastC.values, referenceC.values,
                "batchedGemm transposeA \(transposeA) transposeB \(transposeB) beta \(beta) sharedB \(sharedB)")
        }
    }
}

final class PrimitiveCacheTests: XCTestCase {
    /// A repeated shape reuses its cached primitive; a new shape adds one.
    func testRepeatedShapesReuseCachedPrimitives() {
        let backend = OneDNNBackend()  // a fresh cache, whatever other tests did
        var random = SplitMix64(seed: 40)
        let g = Conv2dGeometry(
            batch: 2, inputChannels: 3, inputHeight: 6, inputWidth: 6, outputChannels: 4,
            kernelHeight: 3, kernelWidth: 3, paddingHeight: 1, paddingWidth: 1)
        let input = Buffer(random.floats(2 * 3 * 6 * 6))
        let weight = Buffer(random.floats(4 * 3 * 3 * 3))
        let output = Buffer(count: 2 * 4 * 6 * 6)
        let gradInput = Buffer(count: input.count)
        XCTAssertEqual(backend.cachedPrimitiveCount, 0)

        backend.conv2dForward(g, input: input.readOnly, weight: weight.readOnly, bias: nil, output: output.pointer)
        XCTAssertEqual(backend.cachedPrimitiveCount, 1)
        let firstOutput = output.values
        backend.conv2dForward(g, input: input.readOnly, weight: weight.readOnly, bias: nil, output: output.pointer)
        XCTAssertEqual(backend.cachedPrimitiveCount, 1, "same shape must reuse the primitive")
        XCTAssertEqual(output.values, firstOutput)

        // Backward data reuses the cached forward descriptor as its hint: one more entry, then none.
        backend.conv2dBackwardData(g, gradOutput: output.readOnly, weight: weight.readOnly, gradInput: gradInput.pointer)
        XCTAssertEqual(backend.cachedPrimitiveCount, 2)
        backend.conv2dBackwardData(g, gradOutput: output.readOnly, weight: weight.readOnly, gradInput: gradInput.pointer)
        XCTAssertEqual(backend.cachedPrimitiveCount, 2)

        // New buffers with the same shape: same primitive, pointed at the new memory.
        let otherInput = Buffer(random.floats(input.count))
        let otherOutput = Buffer(count: output.count)
        backend.conv2dForward(
            g, input: otherInput.readOnly, weight: weight.readOnly, bias: nil, output: otherOutput.pointer)
        XCTAssertEqual(backend.cachedPrimitiveCount, 2)
        let expected = Buffer(count: output.count)
        Kernels.reference.conv2dForward(
            g, input: otherInput.readOnly, weight: weight.readOnly, bias: nil, output: expected.pointer)
        assertClose(otherOutput.values, expected.values, "forward on new buffers")

        var larger = g
        larger.batch = 3
        let largerInput = Buffer(random.floats(3 * 3 * 6 * 6))
        let largerOutput = Buffer(count: 3 * 4 * 6 * 6)
        backend.conv2dForward(
            larger, input: largerInput.readOnly, weight: weight.readOnly, bias: nil, output: largerOutput.pointer)
        XCTAssertEqual(backend.cachedPrimitiveCount, 3, "a new shape gets its own primitive")
    }

    /// Concurrent callers are serialised by the backend's lock and all get right answers.
    func testConcurrentCallsAgree() {
        var random = SplitMix64(seed: 41)
        let g = Conv2dGeometry(
            batch: 2, inputChannels: 5, inputHeight: 9, inputWidth: 7, outputChannels: 3,
            kernelHeight: 3, kernelWidth: 3, strideHeight: 2, strideWidth: 2, paddingHeight: 1, paddingWidth: 1)
        let input = random.floats(2 * 5 * 9 * 7)
        let weight = random.floats(3 * 5 * 3 * 3)
        let outputCount = 2 * 3 * g.outputHeight * g.outputWidth
        let expected = Buffer(count: outputCount)
        let inputBuffer = Buffer(input)
        let weightBuffer = Buffer(weight)
        Kernels.reference.conv2dForward(
            g, input: inputBuffer.readOnly, weight: weightBuffer.readOnly, bias: nil, output: expected.pointer)
        let expectedValues = expected.values
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            let input = Buffer(input)
            let weight = Buffer(weight)
            let output = Buffer(count: outputCount)
            Kernels.oneDNN.conv2dForward(
                g, input: input.readOnly, weight: weight.readOnly, bias: nil, output: output.pointer)
            assertClose(output.values, expectedValues, "concurrent conv2dForward")
        }
    }
}
