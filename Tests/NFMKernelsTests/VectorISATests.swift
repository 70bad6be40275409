// The compiled vector paths (Kernels.vectorISA = .avx2, .avx512) against the portable Swift loops.
// The C kernels do the Swift loops' IEEE operations in the same order, so the tolerance is zero:
// every element must have the same bits (any NaN matches any NaN, since vector code may take a NaN
// from either operand). Lengths straddle the vector widths (8 and 16 lanes) and the 2¹⁵-element
// split over the cores, and the data holds NaN, ±∞ and ±0. A path this CPU cannot run is skipped.

import XCTest

@testable import NFMKernels

final class VectorISATests: XCTestCase {
    /// Counts around the vector widths, odd sizes, and one large enough to be split over two cores at
    /// an odd offset.
    private let lengths = [0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 100, 1021, 70_001]

    /// The compiled paths this CPU runs.
    private var compiledPaths: [VectorISA] { VectorISA.supported.filter { $0 != .portable } }

    // MARK: Choosing a path

    func testNFMISANamesEveryPathAndRefusesOnesTheCPULacks() throws {
        XCTAssertEqual(try VectorISA(choosing: nil), VectorISA.widest)
        XCTAssertEqual(try VectorISA(choosing: "auto"), VectorISA.widest)
        XCTAssertEqual(try VectorISA(choosing: "portable"), .portable)
        XCTAssertThrowsError(try VectorISA(choosing: "sse9")) { error in
            XCTAssertEqual(error as? VectorISAError, .unknown("sse9"))
        }
        for isa in VectorISA.allCases {
            if isa.isSupported {
                XCTAssertEqual(try VectorISA(choosing: isa.rawValue.uppercased()), isa)
            } else {
                // What NFM_ISA=avx512 does on this AVX2 machine: an error that names the choices.
                XCTAssertThrowsError(try VectorISA(choosing: isa.rawValue)) { error in
                    XCTAssertEqual(error as? VectorISAError, .unsupported(isa))
                    XCTAssertTrue("\(error)".contains("does not support"), "\(error)")
                }
            }
        }
        // The compiled paths really hand the primitives a kernel table, and portable does not.
        let saved = Kernels.vectorISA
        defer { Kernels.vectorISA = saved }
        for isa in VectorISA.supported {
            Kernels.vectorISA = isa
            XCTAssertEqual(Kernels.vectorKernels == nil, isa == .portable, "\(isa)")
        }
    }

    // MARK: Elementwise maps

    func testUnaryMapsMatchThePortablePath() throws {
        let operations: [UnaryOperation] = [
            .negate, .abs, .power(2), .relu, .clamp(lower: -0.5, upper: 0.25), .leakyRelu(slope: 0.01),
            .keepMask(probability: 0.3, scale: 1 / 0.7), .exp,
        ]
        for operation in operations {
            for length in lengths {
                let input = testValues(length, seed: 1)
                try assertPathsAgree("unary \(operation) on \(length)") {
                    let output = TensorBuffer(repeating: .nan, count: length)
                    Kernels.oneDNN.unary(operation, buffer(input), output: output)
                    return output.copyToHost()
                }
            }
        }
    }

    func testBinaryMapsMatchThePortablePathInEveryLayout() throws {
        let operations: [BinaryOperation] = [
            .add, .subtract, .multiply, .divide, .reluBackward, .leakyReluBackward(slope: 0.2), .sigmoidBackward,
            .tanhBackward, .keepWhereTrue, .keepWhereFalse, .greater,
        ]
        for operation in operations {
            for length in lengths {
                // (shape of a, shape of b, shape of the output): equal shapes, a scalar on either side,
                // and broadcast rows (a bias over the last axis, a row repeated down the first).
                var layouts: [([Int], [Int], [Int])] = [([length], [length], [length]), ([length], [1], [length]), ([1], [length], [length])]
                if length < 2000 {  // rows of the largest length add only time
                    layouts += [([3, 5, length], [1, 5, 1], [3, 5, length]), ([1, 5, length], [3, 5, length], [3, 5, length])]
                }
                for (shapeA, shapeB, shape) in layouts {
                    let a = testValues(shapeA.reduce(1, *), seed: 2), b = testValues(shapeB.reduce(1, *), seed: 3)
                    try assertPathsAgree("binary \(operation) \(shapeA) \(shapeB)") {
                        let output = TensorBuffer(repeating: .nan, count: shape.reduce(1, *))
                        Kernels.oneDNN.binary(operation, buffer(a), shape: shapeA, buffer(b), shape: shapeB, output: output, shape: shape)
                        return output.copyToHost()
                    }
                }
                // In place, as gradient accumulation runs it: the output is a itself.
                let a = testValues(length, seed: 4), b = testValues(length, seed: 5)
                try assertPathsAgree("binary \(operation) in place on \(length)") {
                    let accumulated = buffer(a)
                    Kernels.oneDNN.binary(operation, accumulated, shape: [length], buffer(b), shape: [length], output: accumulated, shape: [length])
                    return accumulated.copyToHost()
                }
            }
        }
    }

    // MARK: Optimizer steps

    func testSGDStepsMatchThePortablePath() throws {
        let steps = [
            SGDStep(learningRate: 0.1, momentum: 0, gradientScale: 1, weightDecay: 0, nesterov: false, isFirstStep: false),
            SGDStep(learningRate: 0.1, momentum: 0, gradientScale: 1, weightDecay: 0.01, nesterov: false, isFirstStep: false),
            SGDStep(learningRate: 0.05, momentum: 0.9, gradientScale: 0.8, weightDecay: 0, nesterov: false, isFirstStep: true),
            SGDStep(learningRate: 0.05, momentum: 0.9, gradientScale: 0.8, weightDecay: 0.01, nesterov: false, isFirstStep: false),
            SGDStep(learningRate: 0.05, momentum: 0.9, gradientScale: 1, weightDecay: 0.01, nesterov: true, isFirstStep: false),
        ]
        for (index, step) in steps.enumerated() {
            for length in lengths {
                try assertPathsAgree("SGD step \(index) on \(length)") {
                    let (parameter, gradient, momentum) = (buffer(seed: 10, length), buffer(seed: 11, length), buffer(seed: 12, length))
                    for _ in 0..<3 {
                        Kernels.oneDNN.sgdStep(step, parameter: parameter, gradient: gradient, momentumBuffer: step.momentum == 0 ? nil : momentum)
                    }
                    return parameter.copyToHost() + momentum.copyToHost()
                }
            }
        }
    }

    func testAdamStepsMatchThePortablePath() throws {
        func adam(decay: Float = 1, averageWeight: Float = 0.1, weightDecay: Float = 0, decoupled: Bool = false) -> AdamStep {
            AdamStep(
                negativeStepSize: -1e-3 / (1 - 0.9 * 0.9), biasCorrection2Root: (1 - 0.999 * 0.999).squareRoot(), decay: decay,
                averageWeight: averageWeight, squareDecay: 0.999, squareWeight: 0.001, epsilon: 1e-8,
                weightDecay: weightDecay, decoupled: decoupled)
        }
        // Adam, Adam with an L2 term, AdamW, and β₁ < 0.5 (lerp's other formula); each with and without AMSGrad.
        let steps = [adam(), adam(weightDecay: 0.01), adam(decay: 0.999, weightDecay: 0.01, decoupled: true), adam(averageWeight: 0.7)]
        for (index, step) in steps.enumerated() {
            for amsgrad in [false, true] {
                for length in lengths {
                    try assertPathsAgree("Adam step \(index), AMSGrad \(amsgrad), on \(length)") {
                        let (parameter, gradient, average) = (buffer(seed: 20, length), buffer(seed: 21, length), buffer(seed: 22, length))
                        let squares = buffer(testValues(length, seed: 23).map { $0 * $0 }), maximum = buffer(seed: 24, length)
                        for _ in 0..<3 {
                            Kernels.oneDNN.adamStep(
                                step, parameter: parameter, gradient: gradient, average: average, averageOfSquares: squares,
                                maximumAverageOfSquares: amsgrad ? maximum : nil)
                        }
                        return [parameter, average, squares, maximum].flatMap { $0.copyToHost() }
                    }
                }
            }
        }
    }

    func testRMSpropStepsMatchThePortablePath() throws {
        let plain = RMSpropStep(learningRate: 0.01, alpha: 0.95, averageWeight: 0.05, epsilon: 0.01, weightDecay: 0, momentum: 0)
        var decayed = plain
        decayed.weightDecay = 0.01
        var heavy = plain
        (heavy.alpha, heavy.averageWeight) = (0.3, 0.7)  // lerp's other formula
        for (index, step) in [plain, decayed, heavy].enumerated() {
            for (centered, withMomentum) in [(false, false), (true, false), (false, true), (true, true)] {
                var step = step
                step.momentum = withMomentum ? 0.9 : 0
                for length in lengths {
                    try assertPathsAgree("RMSprop step \(index), centered \(centered), momentum \(withMomentum), on \(length)") {
                        let (parameter, gradient) = (buffer(seed: 30, length), buffer(seed: 31, length))
                        let average = buffer(testValues(length, seed: 32).map { $0 * 0.1 })
                        let squares = buffer(testValues(length, seed: 33).map { $0 * $0 + 0.01 })
                        let momentum = buffer(seed: 34, length)
                        for _ in 0..<3 {
                            Kernels.oneDNN.rmspropStep(
                                step, parameter: parameter, gradient: gradient, squareAverage: squares,
                                gradientAverage: centered ? average : nil, momentumBuffer: withMomentum ? momentum : nil)
                        }
                        return [parameter, average, squares, momentum].flatMap { $0.copyToHost() }
                    }
                }
            }
        }
    }

    // MARK: Batch norm

    func testBatchNormMatchesThePortablePath() throws {
        // (N, C, S): BatchNorm1d (S = 1), S around the 8-lane blocks and the 64-value flush of the
        // statistics, and one large enough to spread channels over the cores.
        let geometries = [(2, 3, 1), (1, 1, 7), (3, 5, 37), (4, 2, 8 * 64 + 5), (2, 3, 9 * 8), (8, 16, 300)]
        for (batch, channels, spatial) in geometries {
            let g = BatchNormGeometry(batch: batch, channels: channels, spatial: spatial)
            let count = batch * channels * spatial
            // Not centred at zero, so that the mean and the deviations both matter.
            let input = Buffer(testValues(count, seed: 40, special: false).map { $0 * 3 + 1.5 })
            let gradOutput = Buffer(testValues(count, seed: 41, special: false))
            let gamma = Buffer(testValues(channels, seed: 42, special: false)), beta = Buffer(testValues(channels, seed: 43, special: false))
            try assertPathsAgree("batch norm \(batch)×\(channels)×\(spatial)") {
                let (output, mean, variance) = (Buffer(count: count), Buffer(count: channels), Buffer(count: channels))
                Kernels.oneDNN.batchNormForwardTraining(
                    g, input: input.readOnly, gamma: gamma.readOnly, beta: beta.readOnly, epsilon: 1e-5,
                    output: output.pointer, mean: mean.pointer, variance: variance.pointer)
                let inference = Buffer(count: count)
                Kernels.oneDNN.batchNormForwardInference(
                    g, input: input.readOnly, gamma: gamma.readOnly, beta: beta.readOnly, mean: mean.readOnly,
                    variance: variance.readOnly, epsilon: 1e-5, output: inference.pointer)
                let (gradInput, gradGamma, gradBeta) = (Buffer(count: count), Buffer(count: channels), Buffer(count: channels))
                Kernels.oneDNN.batchNormBackward(
                    g, input: input.readOnly, gradOutput: gradOutput.readOnly, gamma: gamma.readOnly, mean: mean.readOnly,
                    variance: variance.readOnly, epsilon: 1e-5, gradInput: gradInput.pointer, gradGamma: gradGamma.pointer,
                    gradBeta: gradBeta.pointer)
                return [output, mean, variance, inference, gradInput, gradGamma, gradBeta].flatMap(\.values)
            }
        }
    }

    // MARK: NFM attention

    func testNFMAttentionMatchesThePortablePath() throws {
        // Memory entries at the query's size, smaller (several query pixels read one source, so the
        // backward's scatter collides) and larger; pixel counts that fill no whole 8- or 16-lane block
        // (5×7) and many blocks and a tail (19×19); with top-k sparsity (k = 2 < 5 slots) and without.
        let cases: [(height: Int, width: Int, entries: [(Int, Int)], topK: Int)] = [
            (5, 7, [(5, 7), (3, 4), (10, 14), (1, 1)], 2),
            (5, 7, [(5, 7), (3, 4)], 5),
            (19, 19, [(38, 38), (19, 19), (10, 10), (5, 5)], 3),
        ]
        for (height, width, entries, topK) in cases {
            let g = NFMAttentionGeometry(
                batch: 2, heads: 2, keySize: 3, valueSize: 5, height: height, width: width,
                entryHeights: entries.map(\.0), entryWidths: entries.map(\.1), topK: topK, temperature: 1.7)
            let query = testValues(g.queryCount, seed: 50, special: false)
            let keys = (0..<g.entries).map { testValues(g.keyCount($0), seed: 51 + UInt64($0), special: false) }
            let values = (0..<g.entries).map { testValues(g.valueCount($0), seed: 61 + UInt64($0), special: false) }
            let gradOutput = testValues(g.outputCount, seed: 70, special: false)
            try assertPathsAgree("NFM attention \(height)×\(width), entries \(entries), k \(topK)") {
                let (queryBuffer, keyBuffers, valueBuffers) = (buffer(query), keys.map(buffer), values.map(buffer))
                let output = TensorBuffer(repeating: .nan, count: g.outputCount)
                let weights = TensorBuffer(repeating: .nan, count: g.weightCount)
                let caches = Kernels.oneDNN.nfmAttentionForward(
                    g, query: queryBuffer, keys: keyBuffers, values: valueBuffers, output: output, weights: weights)
                let gradQuery = TensorBuffer(repeating: .nan, count: g.queryCount)
                let gradKeys = (0..<g.entries).map { TensorBuffer(repeating: .nan, count: g.keyCount($0)) }
                let gradValues = (0..<g.entries).map { TensorBuffer(repeating: .nan, count: g.valueCount($0)) }
                Kernels.oneDNN.nfmAttentionBackward(
                    g, query: queryBuffer, keys: keyBuffers, values: valueBuffers, weights: weights, caches: caches,
                    gradOutput: buffer(gradOutput), gradQuery: gradQuery, gradKeys: gradKeys, gradValues: gradValues)
                return ([output, weights, gradQuery] + gradKeys + gradValues).flatMap { $0.copyToHost() }
            }
        }
    }

    // MARK: Helpers

    /// Runs `body` on the portable path, then on every compiled path, and asserts that each compiled
    /// path's result has the same bits, element by element.
    private func assertPathsAgree(
        _ what: String, file: StaticString = #filePath, line: UInt = #line, _ body: () -> [Float]
    ) throws {
        try XCTSkipIf(compiledPaths.isEmpty, "this CPU runs no compiled path (no AVX2)")
        let saved = Kernels.vectorISA
        defer { Kernels.vectorISA = saved }
        Kernels.vectorISA = .portable
        let expected = body()
        for isa in compiledPaths {
            Kernels.vectorISA = isa
            let actual = body()
            XCTAssertEqual(actual.count, expected.count, "\(what) on \(isa): lengths differ", file: file, line: line)
            let differing = zip(actual, expected).enumerated().filter { _, pair in
                pair.0.bitPattern != pair.1.bitPattern && !(pair.0.isNaN && pair.1.isNaN)
            }
            if let (index, (got, wanted)) = differing.first {
                XCTFail(
                    "\(what) on \(isa): \(differing.count) elements differ from the portable path; first at \(index): \(got) against \(wanted)",
                    file: file, line: line)
            }
        }
    }

    /// `count` values in [-1, 1) from `seed`; unless `special` is false, a few positions hold NaN, ±∞,
    /// ±0 and a subnormal, where the maps' comparisons and signs are easiest to get wrong.
    private func testValues(_ count: Int, seed: UInt64, special: Bool = true) -> [Float] {
        var random = SplitMix64(seed: seed)
        var values = random.floats(count)
        guard special else { return values }
        let specials: [Float] = [.nan, .infinity, -.infinity, 0, -0.0, .leastNonzeroMagnitude, -1, 1]
        for (index, value) in specials.enumerated() where index * 7 + 3 < count { values[index * 7 + 3] = value }
        return values
    }

    private func buffer(_ values: [Float]) -> TensorBuffer {
        values.withUnsafeBufferPointer { TensorBuffer(copying: $0) }
    }

    private func buffer(seed: UInt64, _ count: Int) -> TensorBuffer { buffer(testValues(count, seed: seed, special: false)) }
}
