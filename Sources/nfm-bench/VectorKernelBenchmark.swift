import NFMKernels
import NFMTensor

/// One call of one of the Swift kernels that have compiled vector paths (NFM_ISA), at a shape from
/// the models: what `NFM_ISA=portable` against `auto` changes.
struct VectorKernelResult: Codable, Sendable {
    /// What was called, with its shape.
    var kernel: String
    /// Elements the call runs over.
    var elements: Int
    /// ms per call.
    var milliseconds: Summary
}

/// Times each kernel: the elementwise passes and batch norm on conv1b's output at batch 64
/// (64×48×38×38, the NFM model's largest activation), Adam on the NFM model's 6,898,530 parameters,
/// and centered RMSprop on 2¹⁷ parameters (about the size of MinAtar's DQN network).
func runVectorKernelBenchmarks(warmup: Int, iterations: Int) -> [VectorKernelResult] {
    var generator = SeededGenerator(seed: 13)
    func random(_ count: Int) -> TensorBuffer {
        TensorBuffer(count: count) { values in
            for i in values.indices { values[i] = generator.nextUniform() * 2 - 1 }
        }
    }
    let backend = Kernels.oneDNN
    var results: [VectorKernelResult] = []
    func time(_ kernel: String, elements: Int, _ body: () -> Void) {
        let times = timeMilliseconds(warmup: warmup, iterations: iterations, body)
        results.append(VectorKernelResult(kernel: kernel, elements: elements, milliseconds: Summary(times, unit: "ms")))
    }

    let activation = BatchNormGeometry(batch: 64, channels: 48, spatial: 38 * 38)
    let count = activation.batch * activation.channels * activation.spatial
    let (x, y, output) = (random(count), random(count), random(count))
    time("add in place 64×48×38²", elements: count) {
        backend.binary(.add, x, shape: [count], y, shape: [count], output: x, shape: [count])
    }
    time("ReLU 64×48×38²", elements: count) { backend.unary(.relu, y, output: output) }
    time("ReLU backward 64×48×38²", elements: count) {
        backend.binary(.reluBackward, x, shape: [count], y, shape: [count], output: output, shape: [count])
    }
    let (gamma, beta, mean, variance) = (random(48), random(48), random(48), random(48))
    let (gradGamma, gradBeta) = (random(48), random(48))
    time("batch norm train 64×48×38²", elements: count) {
        backend.batchNormForwardTraining(
            activation, input: x, gamma: gamma, beta: beta, epsilon: 1e-5, output: output, mean: mean, variance: variance)
    }
    time("batch norm backward 64×48×38²", elements: count) {
        backend.batchNormBackward(
            activation, input: x, gradOutput: y, gamma: gamma, mean: mean, variance: variance, epsilon: 1e-5,
            gradInput: output, gradGamma: gradGamma, gradBeta: gradBeta)
    }

    let parameters = 6_898_530
    let (theta, gradient, average) = (random(parameters), random(parameters), random(parameters))
    let squares = TensorBuffer(repeating: 0.01, count: parameters)
    let adam = AdamStep(
        negativeStepSize: -1e-4, biasCorrection2Root: 0.04, decay: 1, averageWeight: 0.1, squareDecay: 0.999,
        squareWeight: 0.001, epsilon: 1e-8, weightDecay: 0, decoupled: false)
    time("Adam step 6.9M parameters", elements: parameters) {
        backend.adamStep(
            adam, parameter: theta, gradient: gradient, average: average, averageOfSquares: squares,
            maximumAverageOfSquares: nil)
    }
    let dqnParameters = 1 << 17
    let (dqnTheta, dqnGradient) = (random(dqnParameters), random(dqnParameters))
    let (dqnSquares, dqnAverage) = (TensorBuffer(repeating: 0.01, count: dqnParameters), TensorBuffer(repeating: 0, count: dqnParameters))
    let rmsprop = RMSpropStep(learningRate: 2.5e-4, alpha: 0.95, averageWeight: 0.05, epsilon: 0.01, weightDecay: 0, momentum: 0)
    time("centered RMSprop 131k parameters", elements: dqnParameters) {
        backend.rmspropStep(
            rmsprop, parameter: dqnTheta, gradient: dqnGradient, squareAverage: dqnSquares, gradientAverage: dqnAverage,
            momentumBuffer: nil)
    }
    return results
}
