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
}
