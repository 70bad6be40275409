// Checks of the reference loops that do not depend on oneDNN: values worked by hand, adjoint
// (dot-product) identities between each forward and its backward, and finite differences.

import XCTest

@testable import NFMKernels

final class ReferenceBackendTests: XCTestCase {
    let reference = Kernels.reference

    /// 1×1×3×3 input 1…9, one 2×2 kernel [[1, 2], [3, 4]], bias 0.5, stride 1, no padding.
    func testConvolutionByHand() {
        let g = Conv2dGeometry(
            batch: 1, inputChannels: 1, inputHeight: 3, inputWidth: 3, outputChannels: 1,
            kernelHeight: 2, kernelWidth: 2)
        let input = Buffer([1, 2, 3, 4, 5, 6, 7, 8, 9])
        let weight = Buffer([1, 2, 3, 4])
        let bias = Buffer([0.5])
        let output = Buffer(count: 4)
        reference.conv2dForward(g, input: input.readOnly, weight: weight.readOnly, bias: bias.readOnly, output: output.pointer)
        // Top-left: 1·1 + 2·2 + 4·3 + 5·4 = 37; then 47, 67, 77; each + 0.5.
        XCTAssertEqual(output.values, [37.5, 47.5, 67.5, 77.5])
    }

    /// A 3×3 box filter with stride 2 and padding 1 on 1…9: each output sums the in-bounds 2×2 corner.
    func testConvolutionWithStrideAndPaddingByHand() {
        let g = Conv2dGeometry(
            batch: 1, inputChannels: 1, inputHeight: 3, inputWidth: 3, outputChannels: 1,
            kernelHeight: 3, kernelWidth: 3, strideHeight: 2, strideWidth: 2, paddingHeight: 1, paddingWidth: 1)
        let input = Buffer([1, 2, 3, 4, 5, 6, 7, 8, 9])
        let weight = Buffer([Float](repeating: 1, count: 9))
        let output = Buffer(count: 4)
        reference.conv2dForward(g, input: input.readOnly, weight: weight.readOnly, bias: nil, output: output.pointer)
        // 1 + 2 + 4 + 5, 2 + 3 + 5 + 6, 4 + 5 + 7 + 8, 5 + 6 + 8 + 9
        XCTAssertEqual(output.values, [12, 16, 24, 28])
    }

    /// Channel indexing: 2 input channels [2, 3] on 1×1 pixels, weight [out, in] = [[1, 10], [100, 1000]].
    func testConvolutionChannelsByHand() {
        let g = Conv2dGeometry(
            batch: 1, inputChannels: 2, inputHeight: 1, inputWidth: 1, outputChannels: 2,
            kernelHeight: 1, kernelWidth: 1)
        let input = Buffer([2, 3])
        let weight = Buffer([1, 10, 100, 1000])
        let output = Buffer(count: 2)
        reference.conv2dForward(g, input: input.readOnly, weight: weight.readOnly, bias: nil, output: output.pointer)
        XCTAssertEqual(output.values, [32, 3200])  // 2·1 + 3·10, 2·100 + 3·1000
    }

    /// Stride-2 transposed convolution with a 2×2 kernel of ones copies each input into a 2×2 block.
    func testTransposedConvolutionByHand() {
        let g = ConvTranspose2dGeometry(
            batch: 1, inputChannels: 1, inputHeight: 2, inputWidth: 2, outputChannels: 1,
            kernelHeight: 2, kernelWidth: 2, strideHeight: 2, strideWidth: 2)
        let input = Buffer([1, 2, 3, 4])
        let weight = Buffer([1, 1, 1, 1])
        let output = Buffer(count: 16)
        reference.convTranspose2dForward(g, input: input.readOnly, weight: weight.readOnly, bias: nil, output: output.pointer)
        XCTAssertEqual(output.values, [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4])
    }

    /// ⟨conv(x, w), y⟩ = ⟨x, backwardData(y, w)⟩ = ⟨w, backwardWeights(x, y)⟩: the backward loops are
    /// the adjoints of the forward, whatever the stride and padding.
    func testConvolutionAdjointIdentities() {
        var random = SplitMix64(seed: 50)
        for g in ConvolutionTests.convolutions {
            let x = Buffer(random.floats(g.batch * g.inputChannels * g.inputHeight * g.inputWidth))
            let w = Buffer(random.floats(g.outputChannels * g.inputChannels * g.kernelHeight * g.kernelWidth))
            let y = Buffer(random.floats(g.batch * g.outputChannels * g.outputHeight * g.outputWidth))
            let forward = Buffer(count: y.count)
            let gradInput = Buffer(count: x.count)
            let gradWeight = Buffer(count: w.count)
            let gradBias = Buffer(count: g.outputChannels)
            reference.conv2dForward(g, input: x.readOnly, weight: w.readOnly, bias: nil, output: forward.pointer)
            reference.conv2dBackwardData(g, gradOutput: y.readOnly, weight: w.readOnly, gradInput: gradInput.pointer)
            reference.conv2dBackwardWeights(
                g, input: x.readOnly, gradOutput: y.readOnly, gradWeight: gradWeight.pointer, gradBias: gradBias.pointer)
            let value = dot(forward.values, y.values)
            XCTAssertEqual(dot(x.values, gradInput.values), value, accuracy: 1e-4 * max(1, abs(value)), "\(g)")
            XCTAssertEqual(dot(w.values, gradWeight.values), value, accuracy: 1e-4 * max(1, abs(value)), "\(g)")
            // The bias gradient is the per-channel sum of y.
            let planeSize = g.outputHeight * g.outputWidth
            for channel in 0..<g.outputChannels {
                var sum: Float = 0
                for n in 0..<g.batch {
                    let start = (n * g.outputChannels + channel) * planeSize
                    sum += y.values[start..<start + planeSize].reduce(0, +)
                }
                XCTAssertEqual(gradBias.values[channel], sum, accuracy: 1e-4)
            }
        }
    }

    /// Same identities for the transposed convolution, plus: its forward is exactly the backward
    /// data of the convolution it transposes (same weight buffer, channels swapped).
    func testTransposedConvolutionAdjointIdentities() {
        var random = SplitMix64(seed: 51)
        for g in ConvolutionTests.transposedConvolutions {
            let x = Buffer(random.floats(g.batch * g.inputChannels * g.inputHeight * g.inputWidth))
            let w = Buffer(random.floats(g.inputChannels * g.outputChannels * g.kernelHeight * g.kernelWidth))
            let y = Buffer(random.floats(g.batch * g.outputChannels * g.outputHeight * g.outputWidth))
            let forward = Buffer(count: y.count)
            let gradInput = Buffer(count: x.count)
            let gradWeight = Buffer(count: w.count)
            reference.convTranspose2dForward(g, input: x.readOnly, weight: w.readOnly, bias: nil, output: forward.pointer)
            reference.convTranspose2dBackwardData(
                g, gradOutput: y.readOnly, weight: w.readOnly, gradInput: gradInput.pointer)
            reference.convTranspose2dBackwardWeights(
                g, input: x.readOnly, gradOutput: y.readOnly, gradWeight: gradWeight.pointer, gradBias: nil)
            let value = dot(forward.values, y.values)
            XCTAssertEqual(dot(x.values, gradInput.values), value, accuracy: 1e-4 * max(1, abs(value)), "\(g)")
            XCTAssertEqual(dot(w.values, gradWeight.values), value, accuracy: 1e-4 * max(1, abs(value)), "\(g)")

            // The convolution from the transposed output back to its input: Cin and Cout swap roles,
            // and its weight [out, in] = [g.inputChannels, g.outputChannels] is the same buffer.
            let convolution = Conv2dGeometry(
                batch: g.batch, inputChannels: g.outputChannels, inputHeight: g.outputHeight,
                inputWidth: g.outputWidth, outputChannels: g.inputChannels,
                kernelHeight: g.kernelHeight, kernelWidth: g.kernelWidth,
                strideHeight: g.strideHeight, strideWidth: g.strideWidth,
                paddingHeight: g.paddingHeight, paddingWidth: g.paddingWidth)
            XCTAssertEqual(convolution.outputHeight, g.inputHeight)
            XCTAssertEqual(convolution.outputWidth, g.inputWidth)
            let viaConvolution = Buffer(count: y.count)
            reference.conv2dBackwardData(
                convolution, gradOutput: x.readOnly, weight: w.readOnly, gradInput: viaConvolution.pointer)
            assertClose(viaConvolution.values, forward.values, "transpose = convolution backward data \(g)")
        }
    }

    /// Average pooling's backward is the adjoint of its forward.
    func testAveragePoolingAdjointIdentity() {
        var random = SplitMix64(seed: 52)
        for g in PoolingTests.geometries.prefix(4) {
            for include in [true, false] {
                let kind = PoolKind.average(countIncludePadding: include)
                let x = Buffer(random.floats(g.batch * g.channels * g.inputHeight * g.inputWidth))
                let y = Buffer(random.floats(g.batch * g.channels * g.outputHeight * g.outputWidth))
                let forward = Buffer(count: y.count)
                let gradInput = Buffer(count: x.count)
                reference.pool2dForward(g, kind: kind, input: x.readOnly, output: forward.pointer, indices: nil)
                reference.pool2dBackward(g, kind: kind, gradOutput: y.readOnly, indices: nil, gradInput: gradInput.pointer)
                let value = dot(forward.values, y.values)
                XCTAssertEqual(dot(x.values, gradInput.values), value, accuracy: 1e-4 * max(1, abs(value)), "\(g)")
            }
        }
    }

    /// Batch-norm backward against central finite differences of L = Σ output · r.
    func testBatchNormBackwardAgainstFiniteDifferences() {
        var random = SplitMix64(seed: 53)
        let g = BatchNormGeometry(batch: 3, channels: 2, spatial: 4)
        let count = g.batch * g.channels * g.spatial
        let epsilon: Float = 1e-5
        let input = random.floats(count).map { 2 * $0 }
        let gamma = random.floats(g.channels).map { $0 + 1.5 }
        let beta = random.floats(g.channels)
        let r = random.floats(count)

        func loss(_ input: [Float], _ gamma: [Float], _ beta: [Float]) -> Double {
            let output = Buffer(count: count)
            let mean = Buffer(count: g.channels)
            let variance = Buffer(count: g.channels)
            let (inputBuffer, gammaBuffer, betaBuffer) = (Buffer(input), Buffer(gamma), Buffer(beta))
            reference.batchNormForwardTraining(
                g, input: inputBuffer.readOnly, gamma: gammaBuffer.readOnly, beta: betaBuffer.readOnly,
                epsilon: epsilon, output: output.pointer, mean: mean.pointer, variance: variance.pointer)
            return dot(output.values, r)
        }
        /// (L(v + h) − L(v − h)) / 2h, where `lossWith(δ)` is the loss with one value moved by δ.
        func centralDifference(_ lossWith: (Float) -> Double) -> Double {
            let step: Float = 1e-2
            return (lossWith(step) - lossWith(-step)) / Double(2 * step)
        }
        func moved(_ values: [Float], _ index: Int, by delta: Float) -> [Float] {
            var copy = values
            copy[index] += delta
            return copy
        }

        let output = Buffer(count: count)
        let mean = Buffer(count: g.channels)
        let variance = Buffer(count: g.channels)
        let (inputBuffer, gammaBuffer, betaBuffer, gradOutput) = (Buffer(input), Buffer(gamma), Buffer(beta), Buffer(r))
        reference.batchNormForwardTraining(
            g, input: inputBuffer.readOnly, gamma: gammaBuffer.readOnly, beta: betaBuffer.readOnly, epsilon: epsilon,
            output: output.pointer, mean: mean.pointer, variance: variance.pointer)
        let gradInput = Buffer(count: count)
        let gradGamma = Buffer(count: g.channels)
        let gradBeta = Buffer(count: g.channels)
        reference.batchNormBackward(
            g, input: inputBuffer.readOnly, gradOutput: gradOutput.readOnly, gamma: gammaBuffer.readOnly,
            mean: mean.readOnly, variance: variance.readOnly, epsilon: epsilon, gradInput: gradInput.pointer,
            gradGamma: gradGamma.pointer, gradBeta: gradBeta.pointer)

        for index in 0..<count {
            let expected = centralDifference { loss(moved(input, index, by: $0), gamma, beta) }
            XCTAssertEqual(Double(gradInput.values[index]), expected, accuracy: 2e-3)
        }
        for channel in 0..<g.channels {
            let expectedGamma = centralDifference { loss(input, moved(gamma, channel, by: $0), beta) }
            let expectedBeta = centralDifference { loss(input, gamma, moved(beta, channel, by: $0)) }
            XCTAssertEqual(Double(gradGamma.values[channel]), expectedGamma, accuracy: 2e-3)
            XCTAssertEqual(Double(gradBeta.values[channel]), expectedBeta, accuracy: 2e-3)
        }
        // And the statistics by their definition: the biased variance divides by N·S.
        for channel in 0..<g.channels {
            let values = (0..<g.batch).flatMap { n in
                (0..<g.spatial).map { s in Double(input[(n * g.channels + channel) * g.spatial + s]) }
            }
            let expectedMean = values.reduce(0, +) / Double(values.count)
            let expectedVariance = values.map { ($0 - expectedMean) * ($0 - expectedMean) }.reduce(0, +)
                / Double(values.count)
            XCTAssertEqual(Double(mean.values[channel]), expectedMean, accuracy: 1e-6)
            XCTAssertEqual(Double(variance.values[channel]), expectedVariance, accuracy: 1e-5)
        }
    }
}
