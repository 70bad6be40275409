import Foundation
import NFMLayers
import NFMModels
import NFMNN
import NFMOptimizers
import NFMTensor

/// Which Sort-of-CLEVR model: the baseline CNN-MLP or the two-pass NFM model (DESIGN.md §2).
enum ModelKind: String, Codable, CaseIterable, Sendable {
    case baseline
    case nfm
}

/// Train-step and inference timings of one model at one batch size, from one process.
struct ModelResult: Codable, Sendable {
    var model: ModelKind
    var batch: Int
    /// Forward + backward + Adam, ms per step.
    var trainStep: Summary
    /// Eval-mode forward without the tape, ms per batch.
    var inference: Summary
    /// Peak resident set size of the process that ran both, bytes.
    var peakResidentBytes: Int
    /// Convolution and matrix-product FLOPs of one train step, counted analytically.
    var trainFlops: Double
    /// Convolution and matrix-product FLOPs of one inference batch.
    var inferenceFlops: Double
}

/// The full-size reference shapes: widths 48-96-192-384, 4 heads, dk = dv = 16, k = 3.
let referenceWidths = [48, 96, 192, 384]
let referenceConfiguration = NFMConfiguration(heads: 4, keySize: 16, valueSize: 16, topK: 3)

/// Random Sort-of-CLEVR-shaped inputs: images in [0, 1), one-hot questions, answers in 0..<10.
func sortOfClevrBatch(_ batch: Int, using generator: inout SeededGenerator) -> (images: Tensor, questions: Tensor, answers: [Int]) {
    let images = Tensor.randomUniform([batch, 3, 75, 75], using: &generator)
    var questionValues = [Float](repeating: 0, count: batch * 11)
    var answers: [Int] = []
    for row in 0..<batch {
        questionValues[row * 11 + generator.nextIndex(below: 6)] = 1
        questionValues[row * 11 + 6 + generator.nextIndex(below: 2)] = 1
        questionValues[row * 11 + 8 + generator.nextIndex(below: 3)] = 1
        answers.append(generator.nextIndex(below: 10))
    }
    return (images, Tensor(shape: [batch, 11], scalars: questionValues), answers)
}

/// Times the train step and inference of one model at one batch size in this process.
func runModelBenchmark(model kind: ModelKind, batch: Int, warmup: Int, iterations: Int) -> ModelResult {
    var generator = SeededGenerator(seed: 7)
    let model = SortOfClevrModel(
        widths: referenceWidths, passes: 2, nfm: kind == .nfm ? referenceConfiguration : nil, using: &generator)
    // γ starts at 0, which makes a fresh NFM model its baseline; the reference trains from there, and
    // the attention runs (and is differentiated) either way, so the timing does not depend on γ.
    let optimizer = Adam(learningRate: 1e-4)
    let (images, questions, answers) = sortOfClevrBatch(batch, using: &generator)
    var dropoutGenerator = SeededGenerator(seed: 11)

    model.train()
    let train = timeMilliseconds(warmup: warmup, iterations: iterations) {
        let (_, gradients) = valueAndGrad(model: model) { model in
            nllLoss(model(images: images, questions: questions, generator: &dropoutGenerator), targets: answers)
        }
        optimizer.update(model: model, gradients: gradients)
    }
    model.eval()
    let inference = timeMilliseconds(warmup: warmup, iterations: iterations) {
        let output = withoutGradient { model(images: images, questions: questions, generator: &dropoutGenerator) }
        precondition(output.shape == [batch, 10])
    }
    let flops = ModelFlops(model: kind, batch: batch, widths: referenceWidths, configuration: referenceConfiguration)
    return ModelResult(
        model: kind, batch: batch, trainStep: Summary(train, unit: "ms"), inference: Summary(inference, unit: "ms"),
        peakResidentBytes: peakResidentBytes(), trainFlops: flops.train, inferenceFlops: flops.inference)
}

/// Convolution and matrix-product FLOPs of the Sort-of-CLEVR models, counted layer by layer
/// (`FlopCount`; the convolutions that read the images need no data gradient). The fused attention's
/// own products (q·k and the weighted sum of values) are counted apart in `attention`.
struct ModelFlops {
    var work = FlopCount()
    var attention = 0.0
    var train: Double { work.training }
    var inference: Double { work.forward }

    init(model: ModelKind, batch: Int, widths: [Int], configuration: NFMConfiguration) {
        var sizes: [Int] = []
        var size = 75
        for _ in widths {
            size = (size + 2 - 3) / 2 + 1
            sizes.append(size)
        }
        let passes = model == .nfm ? 2 : 1
        let keyChannels = configuration.heads * configuration.keySize
        let valueChannels = configuration.heads * configuration.valueSize
        var entrySizes: [Int] = []
        for pass in 0..<passes {
            var channels = 3
            for (layer, width) in widths.enumerated() {
                let pixels = sizes[layer] * sizes[layer]
                func convolution(_ input: Int, _ output: Int, kernel: Int, needsDataGradient: Bool = true) {
                    work.convolution(input, output, kernel: kernel, outputPixels: pixels, examples: batch, needsDataGradient: needsDataGradient)
                }
                convolution(channels, width, kernel: 3, needsDataGradient: layer > 0)
                channels = width
                guard model == .nfm else { continue }
                convolution(width, keyChannels, kernel: 1)
                convolution(width, valueChannels, kernel: 1)
                entrySizes.append(sizes[layer])
                if pass > 0 {
                    convolution(width, keyChannels, kernel: 1)
                    convolution(valueChannels, width, kernel: 3)
                    convolution(width, width, kernel: 3)
                    let perEntry = 2 * Double(batch) * Double(pixels) * Double(keyChannels + valueChannels)
                    attention += 3 * perEntry * Double(entrySizes.count)  // forward, then two products backward
                }
            }
        }
        work.convolution(widths.last!, 64, kernel: 1, outputPixels: 25, examples: batch)
        work.linear(64 * 25 + 11, 256, examples: batch)
        work.linear(256, 256, examples: batch)
        work.linear(256, 10, examples: batch)
    }
}
