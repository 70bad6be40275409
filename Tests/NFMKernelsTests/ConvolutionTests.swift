// oneDNN convolution and transposed convolution against the reference loops, on odd shapes.

import XCTest

@testable import NFMKernels

final class ConvolutionTests: XCTestCase {
    let fast: any ComputeBackend = Kernels.oneDNN
    let reference: any ComputeBackend = Kernels.reference

    /// Odd channel counts, batch 1, non-square inputs and kernels, 1×1 / 3×3 / 4×4, stride 2 with
    /// padding 1 (including even inputs, where the last padding row is never reached).
    static let convolutions: [Conv2dGeometry] = [
        Conv2dGeometry(
            batch: 2, inputChannels: 3, inputHeight: 7, inputWidth: 5, outputChannels: 5,
            kernelHeight: 3, kernelWidth: 3, strideHeight: 2, strideWidth: 2, paddingHeight: 1, paddingWidth: 1),
        Conv2dGeometry(
            batch: 1, inputChannels: 7, inputHeight: 6, inputWidth: 9, outputChannels: 3,
            kernelHeight: 1, kernelWidth: 1),
        Conv2dGeometry(
            batch: 3, inputChannels: 5, inputHeight: 8, inputWidth: 6, outputChannels: 7,
            kernelHeight: 4, kernelWidth: 4, strideHeight: 2, strideWidth: 2, paddingHeight: 1, paddingWidth: 1),
        Conv2dGeometry(
            batch: 2, inputChannels: 6, inputHeight: 12, inputWidth: 12, outputChannels: 5,
            kernelHeight: 3, kernelWidth: 3, strideHeight: 2, strideWidth: 2, paddingHeight: 1, paddingWidth: 1),
        Conv2dGeometry(
            batch: 1, inputChannels: 3, inputHeight: 9, inputWidth: 7, outputChannels: 5,
            kernelHeight: 3, kernelWidth: 2, strideHeight: 2, strideWidth: 1, paddingHeight: 1, paddingWidth: 0),
        Conv2dGeometry(
            batch: 2, inputChannels: 16, inputHeight: 9, inputWidth: 10, outputChannels: 24,
            kernelHeight: 3, kernelWidth: 3, paddingHeight: 1, paddingWidth: 1),
    ]

    /// Stride 2 with output padding 1 (also with padding 0, where p − op < 0), 1×1, 4×4, non-square.
    static let transposedConvolutions: [ConvTranspose2dGeometry] = [
        ConvTranspose2dGeometry(
            batch: 2, inputChannels: 3, inputHeight: 4, inputWidth: 5, outputChannels: 5,
            kernelHeight: 3, kernelWidth: 3, strideHeight: 2, strideWidth: 2, paddingHeight: 1, paddingWidth: 1,
            outputPaddingHeight: 1, outputPaddingWidth: 1),
        ConvTranspose2dGeometry(
            batch: 1, inputChannels: 5, inputHeight: 3, inputWidth: 3, outputChannels: 7,
            kernelHeight: 4, kernelWidth: 4, strideHeight: 2, strideWidth: 2, paddingHeight: 1, paddingWidth: 1),
        ConvTranspose2dGeometry(
            batch: 2, inputChannels: 7, inputHeight: 5, inputWidth: 4, outputChannels: 3,
            kernelHeight: 1, kernelWidth: 1),
        ConvTranspose2dGeometry(
            batch: 1, inputChannels: 4, inputHeight: 3, inputWidth: 5, outputChannels: 3,
            kernelHeight: 3, kernelWidth: 3, strideHeight: 2, strideWidth: 2,
            outputPaddingHeight: 1, outputPaddingWidth: 1),
        ConvTranspose2dGeometry(
            batch: 2, inputChannels: 3, inputHeight: 4, inputWidth: 6, outputChannels: 5,
            kernelHeight: 3, kernelWidth: 2, strideHeight: 2, strideWidth: 1, paddingHeight: 1, paddingWidth: 0,
            outputPaddingHeight: 1, outputPaddingWidth: 0),
    ]

    func testConvolutionForwardMatchesReference() {
        var random = SplitMix64(seed: 1)
        for g in Self.convolutions {
            let input = Buffer(random.floats(g.batch * g.inputChannels * g.inputHeight * g.inputWidth))
            let weight = Buffer(random.floats(g.outputChannels * g.inputChannels * g.kernelHeight * g.kernelWidth))
            let bias = Buffer(random.floats(g.outputChannels))
            let outputCount = g.batch * g.outputChannels * g.outputHeight * g.outputWidth
            for withBias in [false, true] {
                let fastOutput = Buffer(count: outputCount)
                let referenceOutput = Buffer(count: outputCount)
                let biasPointer = withBias ? bias.readOnly : nil
                fast.conv2dForward(
                    g, input: input.readOnly, weight: weight.readOnly, bias: biasPointer, output: fastOutput.pointer)
                reference.conv2dForward(
                    g, input: input.readOnly, weight: weight.readOnly, bias: biasPointer,
                    output: referenceOutput.pointer)
                assertClose(fastOutput.values, referenceOutput.values, "conv2dForward bias \(withBias) \(g)")
            }
        }
    }

    func testConvolutionBackwardDataMatchesReference() {
        var random = SplitMix64(seed: 2)
        for g in Self.convolutions {
            let gradOutput = Buffer(random.floats(g.batch * g.outputChannels * g.outputHeight * g.outputWidth))
            let weight = Buffer(random.floats(g.outputChannels * g.inputChannels * g.kernelHeight * g.kernelWidth))
            let inputCount = g.batch * g.inputChannels * g.inputHeight * g.inputWidth
            let fastGradInput = Buffer(count: inputCount)
            let referenceGradInput = Buffer(count: inputCount)
            fast.conv2dBackwardData(
                g, gradOutput: gradOutput.readOnly, weight: weight.readOnly, gradInput: fastGradInput.pointer)
            reference.conv2dBackwardData(
                g, gradOutput: gradOutput.readOnly, weight: weight.readOnly, gradInput: referenceGradInput.pointer)
            assertClose(fastGradInput.values, referenceGradInput.values, "conv2dBackwardData \(g)")
        }
    }

    func testConvolutionBackwardWeightsMatchesReference() {
        var random = SplitMix64(seed: 3)
        for g in Self.convolutions {
            let input = Buffer(random.floats(g.batch * g.inputChannels * g.inputHeight * g.inputWidth))
            let gradOutput = Buffer(random.floats(g.batch * g.outputChannels * g.outputHeight * g.outputWidth))
            let weightCount = g.outputChannels * g.inputChannels * g.kernelHeight * g.kernelWidth
            for withBias in [false, true] {
                let fastGradWeight = Buffer(count: weightCount)
                let referenceGradWeight = Buffer(count: weightCount)
                let fastGradBias = Buffer(count: g.outputChannels)
                let referenceGradBias = Buffer(count: g.outputChannels)
                fast.conv2dBackwardWeights(
                    g, input: input.readOnly, gradOutput: gradOutput.readOnly, gradWeight: fastGradWeight.pointer,
                    gradBias: withBias ? fastGradBias.pointer : nil)
                reference.conv2dBackwardWeights(
                    g, input: input.readOnly, gradOutput: gradOutput.readOnly,
                    gradWeight: referenceGradWeight.pointer, gradBias: withBias ? referenceGradBias.pointer : nil)
                assertClose(fastGradWeight.values, referenceGradWeight.values, "conv2dBackwardWeights \(g)")
                if withBias {
                    assertClose(fastGradBias.values, referenceGradBias.values, "conv2dBackwardWeights bias \(g)")
                }
            }
        }
    }

    func testTransposedConvolutionForwardMatchesReference() {
        var random = SplitMix64(seed: 4)
        for g in Self.transposedConvolutions {
            let input = Buffer(random.floats(g.batch * g.inputChannels * g.inputHeight * g.inputWidth))
            let weight = Buffer(random.floats(g.inputChannels * g.outputChannels * g.kernelHeight * g.kernelWidth))
            let bias = Buffer(random.floats(g.outputChannels))
            let outputCount = g.batch * g.outputChannels * g.outputHeight * g.outputWidth
            for withBias in [false, true] {
                let fastOutput = Buffer(count: outputCount)
                let referenceOutput = Buffer(count: outputCount)
                let biasPointer = withBias ? bias.readOnly : nil
                fast.convTranspose2dForward(
                    g, input: input.readOnly, weight: weight.readOnly, bias: biasPointer, output: fastOutput.pointer)
                reference.convTranspose2dForward(
                    g, input: input.readOnly, weight: weight.readOnly, bias: biasPointer,
                    output: referenceOutput.pointer)
                assertClose(fastOutput.values, referenceOutput.values, "convTranspose2dForward bias \(withBias) \(g)")
            }
        }
    }

    func testTransposedConvolutionBackwardDataMatchesReference() {
        var random = SplitMix64(seed: 5)
        for g in Self.transposedConvolutions {
            let gradOutput = Buffer(random.floats(g.batch * g.outputChannels * g.outputHeight * g.outputWidth))
            let weight = Buffer(random.floats(g.inputChannels * g.outputChannels * g.kernelHeight * g.kernelWidth))
            let inputCount = g.batch * g.inputChannels * g.inputHeight * g.inputWidth
            let fastGradInput = Buffer(count: inputCount)
            let referenceGradInput = Buffer(count: inputCount)
            fast.convTranspose2dBackwardData(
                g, gradOutput: gradOutput.readOnly, weight: weight.readOnly, gradInput: fastGradInput.pointer)
            reference.convTranspose2dBackwardData(
                g, gradOutput: gradOutput.readOnly, weight: weight.readOnly, gradInput: referenceGradInput.pointer)
            assertClose(fastGradInput.values, referenceGradInput.values, "convTranspose2dBackwardData \(g)")
        }
    }

    func testTransposedConvolutionBackwardWeightsMatchesReference() {
        var random = SplitMix64(seed: 6)
        for g in Self.transposedConvolutions {
            let input = Buffer(random.floats(g.batch * g.inputChannels * g.inputHeight * g.inputWidth))
            let gradOutput = Buffer(random.floats(g.batch * g.outputChannels * g.outputHeight * g.outputWidth))
            let weightCount = g.inputChannels * g.outputChannels * g.kernelHeight * g.kernelWidth
            for withBias in [false, true] {
                let fastGradWeight = Buffer(count: weightCount)
                let referenceGradWeight = Buffer(count: weightCount)
                let fastGradBias = Buffer(count: g.outputChannels)
                let referenceGradBias = Buffer(count: g.outputChannels)
                fast.convTranspose2dBackwardWeights(
                    g, input: input.readOnly, gradOutput: gradOutput.readOnly, gradWeight: fastGradWeight.pointer,
                    gradBias: withBias ? fastGradBias.pointer : nil)
                reference.convTranspose2dBackwardWeights(
                    g, input: input.readOnly, gradOutput: gradOutput.readOnly,
                    gradWeight: referenceGradWeight.pointer, gradBias: withBias ? referenceGradBias.pointer : nil)
                assertClose(fastGradWeight.values, referenceGradWeight.values, "convTranspose2dBackwardWeights \(g)")
                if withBias {
                    assertClose(
                        fastGradBias.values, referenceGradBias.values, "convTranspose2dBackwardWeights bias \(g)")
                }
            }
        }
    }

    /// An empty batch goes through the reference loops: no output, and zero weight gradients.
    func testEmptyBatch() {
        let g = Conv2dGeometry(
            batch: 0, inputChannels: 3, inputHeight: 5, inputWidth: 5, outputChannels: 2,
            kernelHeight: 3, kernelWidth: 3)
        let input = Buffer([])
        let gradOutput = Buffer([])
        let gradWeight = Buffer(count: 2 * 3 * 3 * 3)
        let gradBias = Buffer(count: 2)
        fast.conv2dBackwardWeights(
            g, input: input.readOnly, gradOutput: gradOutput.readOnly, gradWeight: gradWeight.pointer,
            gradBias: gradBias.pointer)
        XCTAssertEqual(gradWeight.values, [Float](repeating: 0, count: 54))
        XCTAssertEqual(gradBias.values, [0, 0])
    }
}
