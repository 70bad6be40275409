// Buffers that keep their values in a backend's layout (TensorLayout, issue 13): the plain memory is
// written from the copy exactly when something reads it, elementwise operations run on dense copies
// and give the plain-layout result, and oneDNN's convolutions that keep their blocked layouts give
// bit for bit what they give when every operand goes back to plain between calls.

import XCTest

@testable import NFMKernels

/// A stand-in layout: the elements in reverse order (dense), counting its conversions to plain.
final class ReversedLayout: TensorLayout, @unchecked Sendable {
    let count: Int
    private(set) var conversions = 0
    init(count: Int) { self.count = count }
    var byteCount: Int { count * MemoryLayout<Float>.stride }
    var isDense: Bool { true }
    var channelBlock: Int? { nil }
    func isSame(as other: any TensorLayout) -> Bool { (other as? ReversedLayout)?.count == count }
    func writePlain(from source: UnsafeRawPointer, to destination: UnsafeMutablePointer<Float>) {
        conversions += 1
        let values = source.assumingMemoryBound(to: Float.self)
        for i in 0..<count { destination[i] = values[count - 1 - i] }
    }
}

/// A buffer whose values `plain` live only in a reversed copy.
private func reversedBuffer(_ plain: [Float], layout: ReversedLayout) -> TensorBuffer {
    let buffer = TensorBuffer(uninitializedCount: plain.count)
    let memory = buffer.replaceValues(inLayout: layout).assumingMemoryBound(to: Float.self)
    for i in plain.indices { memory[i] = plain[plain.count - 1 - i] }
    return buffer
}

final class LayoutCopyTests: XCTestCase {
    func testThePlainMemoryIsWrittenFromTheCopyOnFirstUseOnly() {
        let layout = ReversedLayout(count: 5)
        let buffer = reversedBuffer([1, 2, 3, 4, 5], layout: layout)
        XCTAssertNotNil(buffer.denseLayoutCopy)
        XCTAssertEqual(layout.conversions, 0)
        XCTAssertEqual(buffer.copyToHost(), [1, 2, 3, 4, 5])
        XCTAssertEqual(layout.conversions, 1)
        // The plain memory may have been written since: the copy is gone, and no further conversion runs.
        XCTAssertNil(buffer.layoutCopy)
        buffer.pointer[0] = 10
        XCTAssertEqual(buffer.copyToHost(), [10, 2, 3, 4, 5])
        XCTAssertEqual(layout.conversions, 1)
    }

    func testElementwiseOperationsRunOnDenseCopiesAndKeepThem() {
        let backend = Kernels.reference
        let layout = ReversedLayout(count: 4)
        let a = reversedBuffer([1, -2, 3, -4], layout: layout)
        let b = reversedBuffer([0.5, 0.25, -1, 2], layout: layout)
        let relu = TensorBuffer(uninitializedCount: 4)
        backend.unary(.relu, a, output: relu)
        XCTAssertNotNil(relu.denseLayoutCopy, "the result stays in the operand's layout")
        let product = TensorBuffer(uninitializedCount: 4)
        backend.binary(.multiply, a, shape: [2, 2], b, shape: [2, 2], output: product, shape: [2, 2])
        let scaled = TensorBuffer(uninitializedCount: 4)
        backend.binary(.multiply, TensorBuffer(repeating: 3, count: 1), shape: [], b, shape: [2, 2], output: scaled, shape: [2, 2])
        XCTAssertNotNil(scaled.denseLayoutCopy)
        // Gradient accumulation writes into its first operand, in place, in the layout.
        backend.binary(.add, product, shape: [2, 2], b, shape: [2, 2], output: product, shape: [2, 2])
        XCTAssertNotNil(product.denseLayoutCopy)
        XCTAssertEqual(layout.conversions, 0)
        XCTAssertEqual(relu.copyToHost(), [1, 0, 3, 0])
        XCTAssertEqual(product.copyToHost(), [1, -0.25, -4, -6])
        XCTAssertEqual(scaled.copyToHost(), [1.5, 0.75, -3, 6])
        // A plain operand of the same shape: both go through the plain layout.
        let mixed = TensorBuffer(uninitializedCount: 4)
        backend.binary(.add, a, shape: [2, 2], TensorBuffer(repeating: 1, count: 4), shape: [2, 2], output: mixed, shape: [2, 2])
        XCTAssertNil(mixed.layoutCopy)
        XCTAssertEqual(mixed.copyToHost(), [2, -1, 4, -3])
    }

    /// conv → ReLU → conv and back (16 channels: nChw8c holds them without padding, so the ReLU and the
    /// gradient sums stay blocked), then the same with a 3-channel input and 5 output channels (padded
    /// blocks: converted to plain where needed). Each against a backend that converts every operand.
    func testConvolutionsThatKeepBlockedLayoutsMatchThePlainRoundTrip() throws {
        let keeping = OneDNNBackend(keepingLayouts: true), converting = OneDNNBackend(keepingLayouts: false)
        XCTAssertTrue(keeping.keepsLayouts)
        for (inputChannels, channels) in [(16, 16), (3, 5)] {
            let first = Conv2dGeometry(
                batch: 3, inputChannels: inputChannels, inputHeight: 7, inputWidth: 6, outputChannels: channels, kernelHeight: 3,
                kernelWidth: 3, paddingHeight: 1, paddingWidth: 1)
            let second = Conv2dGeometry(
                batch: 3, inputChannels: channels, inputHeight: 7, inputWidth: 6, outputChannels: channels, kernelHeight: 3,
                kernelWidth: 3)
            var random = SplitMix64(seed: UInt64(inputChannels))
            let x = random.floats(3 * inputChannels * 7 * 6), w1 = random.floats(channels * inputChannels * 9)
            let w2 = random.floats(channels * channels * 9), bias = random.floats(channels)
            let upstream = random.floats(3 * channels * 5 * 4)

            func run(_ backend: OneDNNBackend) -> (layoutKept: Bool, results: [[Float]]) {
                func buffer(_ values: [Float]) -> TensorBuffer { values.withUnsafeBufferPointer { TensorBuffer(copying: $0) } }
                let input = buffer(x), weight1 = buffer(w1), weight2 = buffer(w2), b = buffer(bias)
                let hidden = TensorBuffer(uninitializedCount: 3 * channels * 7 * 6)
                backend.conv2dForward(first, input: input, weight: weight1, bias: b, output: hidden)
                let activated = TensorBuffer(uninitializedCount: hidden.count)
                backend.unary(.relu, hidden, output: activated)
                let output = TensorBuffer(uninitializedCount: 3 * channels * 5 * 4)
                backend.conv2dForward(second, input: activated, weight: weight2, bias: nil, output: output)
                let layoutKept = output.layoutCopy != nil && activated.layoutCopy != nil
                // Backward: the data gradient through ReLU, accumulated twice, then both weight gradients.
                let gradOutput = buffer(upstream)
                let gradActivated = TensorBuffer(uninitializedCount: activated.count)
                backend.conv2dBackwardData(second, gradOutput: gradOutput, weight: weight2, gradInput: gradActivated)
                let gradHidden = TensorBuffer(uninitializedCount: hidden.count)
                backend.binary(.reluBackward, gradActivated, shape: [hidden.count], hidden, shape: [hidden.count], output: gradHidden, shape: [hidden.count])
                backend.binary(.add, gradHidden, shape: [hidden.count], gradHidden.copy(), shape: [hidden.count], output: gradHidden, shape: [hidden.count])
                let gradInput = TensorBuffer(uninitializedCount: input.count)
                backend.conv2dBackwardData(first, gradOutput: gradHidden, weight: weight1, gradInput: gradInput)
                let gradWeight1 = TensorBuffer(uninitializedCount: weight1.count), gradBias = TensorBuffer(uninitializedCount: channels)
                backend.conv2dBackwardWeights(first, input: input, gradOutput: gradHidden, gradWeight: gradWeight1, gradBias: gradBias)
                let gradWeight2 = TensorBuffer(uninitializedCount: weight2.count)
                backend.conv2dBackwardWeights(second, input: activated, gradOutput: gradOutput, gradWeight: gradWeight2, gradBias: nil)
                return (
                    layoutKept,
                    [hidden, activated, output, gradActivated, gradHidden, gradInput, gradWeight1, gradBias, gradWeight2].map { $0.copyToHost() }
                )
            }
            let kept = run(keeping), converted = run(converting)
            if channels == 16 { XCTAssertTrue(kept.layoutKept, "16 channels stay in nChw8c between the convolutions") }
            XCTAssertFalse(converted.layoutKept)
            for (index, (a, b)) in zip(kept.results, converted.results).enumerated() {
                XCTAssertEqual(a, b, "channels \(inputChannels)→\(channels), result \(index)")
            }
        }
    }

    /// The blocked kernels against the plain ones on the same values, for 8- and 16-channel blocks
    /// (nChw8c on AVX2, nChw16c on AVX-512): the same formulas, sums in another order.
    func testBlockedBatchNormMatchesThePlainKernels() {
        let (batch, channels, spatial) = (3, 32, 35)
        let g = BatchNormGeometry(batch: batch, channels: channels, spatial: spatial)
        var random = SplitMix64(seed: 7)
        // Post-ReLU-like values with a large offset in some channels (where E[x²] − mean² would fail).
        let x = (0..<(batch * channels * spatial)).map { i -> Float in
            let value = random.nextFloat()
            return (i / spatial) % channels % 3 == 0 ? 100 + value : max(value, 0)
        }
        let dy = random.floats(x.count), gamma = random.floats(channels), beta = random.floats(channels)
        let epsilon: Float = 1e-5
        var mean = [Float](repeating: 0, count: channels), variance = mean
        var y = [Float](repeating: 0, count: x.count), dx = y, gradGamma = mean, gradBeta = mean
        BatchNormStatistics.compute(g, input: x, mean: &mean, variance: &variance)
        BatchNormalization.forwardInference(g, input: x, gamma: gamma, beta: beta, mean: mean, variance: variance, epsilon: epsilon, output: &y)
        BatchNormalization.backward(
            g, input: x, gradOutput: dy, gamma: gamma, mean: mean, variance: variance, epsilon: epsilon, gradInput: &dx,
            gradGamma: &gradGamma, gradBeta: &gradBeta)

        for block in [8, 16] {
            // [N][C][S] ↔ [N][C/b][S][b]
            func blockedIndex(_ i: Int) -> Int {
                let (n, c, s) = (i / (channels * spatial), i / spatial % channels, i % spatial)
                return ((n * (channels / block) + c / block) * spatial + s) * block + c % block
            }
            func toBlocked(_ plain: [Float]) -> [Float] {
                var result = plain
                for i in plain.indices { result[blockedIndex(i)] = plain[i] }
                return result
            }
            func toPlain(_ blocked: [Float]) -> [Float] { blocked.indices.map { blocked[blockedIndex($0)] } }
            let blockedX = Buffer(toBlocked(x)), blockedDy = Buffer(toBlocked(dy)), gammas = Buffer(gamma), betas = Buffer(beta)
            let means = Buffer(count: channels), variances = Buffer(count: channels)
            let outputs = Buffer(count: x.count), gradInputs = Buffer(count: x.count)
            let gradGammas = Buffer(count: channels), gradBetas = Buffer(count: channels)
            var operands = BlockedBatchNormalization.Operands(
                block: block, input: blockedX.pointer, output: outputs.pointer, gamma: gammas.pointer, beta: betas.pointer,
                mean: means.pointer, variance: variances.pointer)
            BlockedBatchNormalization.forwardTraining(g, operands, epsilon: epsilon)
            operands.gradOutput = UnsafePointer(blockedDy.pointer)
            operands.output = gradInputs.pointer
            operands.gradGamma = gradGammas.pointer
            operands.gradBeta = gradBetas.pointer
            BlockedBatchNormalization.backward(g, operands, epsilon: epsilon)
            let blockedMean = means.values, blockedVariance = variances.values, blockedY = outputs.values
            let blockedDx = gradInputs.values, blockedGradGamma = gradGammas.values, blockedGradBeta = gradBetas.values
            func assertClose(_ a: [Float], _ b: [Float], _ what: String, tolerance: Float = 2e-5) {
                for (index, (u, v)) in zip(a, b).enumerated() where abs(u - v) > tolerance * max(1, abs(v)) {
                    return XCTFail("block \(block), \(what)[\(index)]: \(u) against \(v)")
                }
            }
            assertClose(blockedMean, mean, "mean")
            assertClose(blockedVariance, variance, "variance")
            assertClose(toPlain(blockedY), y, "output")
            assertClose(blockedGradBeta, gradBeta, "gradBeta")
            assertClose(blockedGradGamma, gradGamma, "gradGamma")
            assertClose(toPlain(blockedDx), dx, "gradInput")
        }
    }

    /// conv → ReLU → batch norm → conv keeps nChw8c throughout on the oneDNN backend, and agrees with
    /// the plain round trip to Float rounding (batch norm's sums run in another order).
    func testBatchNormBetweenConvolutionsStaysBlocked() {
        let keeping = OneDNNBackend(keepingLayouts: true), converting = OneDNNBackend(keepingLayouts: false)
        let conv = Conv2dGeometry(
            batch: 4, inputChannels: 16, inputHeight: 6, inputWidth: 5, outputChannels: 16, kernelHeight: 3, kernelWidth: 3,
            paddingHeight: 1, paddingWidth: 1)
        let norm = BatchNormGeometry(batch: 4, channels: 16, spatial: 30)
        var random = SplitMix64(seed: 11)
        let x = random.floats(4 * 16 * 30), w = random.floats(16 * 16 * 9), upstream = random.floats(4 * 16 * 30)
        let gamma = random.floats(16), beta = random.floats(16)
        func run(_ backend: OneDNNBackend) -> (kept: Bool, results: [[Float]]) {
            func buffer(_ values: [Float]) -> TensorBuffer { values.withUnsafeBufferPointer { TensorBuffer(copying: $0) } }
            let input = buffer(x), weight = buffer(w), gammas = buffer(gamma), betas = buffer(beta)
            let hidden = TensorBuffer(uninitializedCount: x.count), activated = TensorBuffer(uninitializedCount: x.count)
            backend.conv2dForward(conv, input: input, weight: weight, bias: nil, output: hidden)
            backend.unary(.relu, hidden, output: activated)
            let normalised = TensorBuffer(uninitializedCount: x.count)
            let mean = TensorBuffer(uninitializedCount: 16), variance = TensorBuffer(uninitializedCount: 16)
            backend.batchNormForwardTraining(
                norm, input: activated, gamma: gammas, beta: betas, epsilon: 1e-5, output: normalised, mean: mean, variance: variance)
            let inference = TensorBuffer(uninitializedCount: x.count)
            backend.batchNormForwardInference(
                norm, input: activated, gamma: gammas, beta: betas, mean: mean, variance: variance, epsilon: 1e-5, output: inference)
            let output = TensorBuffer(uninitializedCount: x.count)
            backend.conv2dForward(conv, input: normalised, weight: weight, bias: nil, output: output)
            let gradNormalised = TensorBuffer(uninitializedCount: x.count)
            backend.conv2dBackwardData(conv, gradOutput: buffer(upstream), weight: weight, gradInput: gradNormalised)
            let gradActivated = TensorBuffer(uninitializedCount: x.count)
            let gradGamma = TensorBuffer(uninitializedCount: 16), gradBeta = TensorBuffer(uninitializedCount: 16)
            backend.batchNormBackward(
                norm, input: activated, gradOutput: gradNormalised, gamma: gammas, mean: mean, variance: variance, epsilon: 1e-5,
                gradInput: gradActivated, gradGamma: gradGamma, gradBeta: gradBeta)
            let kept = [normalised, inference, gradActivated].allSatisfy { $0.denseLayoutCopy != nil }
            return (kept, [normalised, inference, output, mean, variance, gradActivated, gradGamma, gradBeta].map { $0.copyToHost() })
        }
        let kept = run(keeping), converted = run(converting)
        XCTAssertTrue(kept.kept)
        XCTAssertFalse(converted.kept)
        for (index, (a, b)) in zip(kept.results, converted.results).enumerated() {
            for (u, v) in zip(a, b) where abs(u - v) > 1e-4 * max(1, abs(v)) {
                XCTFail("result \(index): \(u) against \(v)")
                break
            }
        }
    }
}
