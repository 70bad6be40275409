import Foundation
import GenerateKit
import NFMLayers
import NFMModels
import NFMTensor
import XCTest

/// The ELBO's terms on hand-computed values, and the importance-weighted bound's consistency with them.
final class LikelihoodTests: XCTestCase {
    func testKLToStandardNormalOnHandValues() {
        // μ = (1, 0), σ² = (1, 4): ½[(1 + 1 − 1 − 0) + (0 + 4 − 1 − log 4)] = 1.3068528…
        let kl = gaussianKLToStandardNormal(mean: Tensor(shape: [1, 2], scalars: [1, 0]), logVariance: Tensor(shape: [1, 2], scalars: [0, Float(log(4.0))]))
        XCTAssertEqual(kl.shape, [1])
        XCTAssertEqual(kl.item, 1.306_852_8, accuracy: 1e-6)
    }

    func testGeneralGaussianKLOnHandValuesAndAgreesWithTheStandardForm() {
        // KL(N(1, 1) ‖ N(0, 4)) = ½(log 4 + 2/4 − 1) = 0.4431472…
        let kl = gaussianKL(
            mean1: Tensor(shape: [1, 1], scalars: [1]), logVariance1: Tensor(shape: [1, 1], scalars: [0]),
            mean2: Tensor(shape: [1, 1], scalars: [0]), logVariance2: Tensor(shape: [1, 1], scalars: [Float(log(4.0))]))
        XCTAssertEqual(kl.item, 0.443_147_2, accuracy: 1e-6)
        var generator = SeededGenerator(seed: 3)
        let mean = Tensor.randomNormal([4, 5], using: &generator)
        let logVariance = Tensor.randomNormal([4, 5], std: 0.5, using: &generator)
        assertClose(
            gaussianKL(mean1: mean, logVariance1: logVariance, mean2: Tensor(zeros: [4, 5]), logVariance2: Tensor(zeros: [4, 5])),
            gaussianKLToStandardNormal(mean: mean, logVariance: logVariance), "KL to N(0, I) two ways")
    }

    func testBernoulliLogLikelihoodOnHandValues() {
        // log σ(0) + log(1 − σ(2)) + ½ log σ(−1) + ½ log(1 − σ(−1)) = −3.6333369…
        let value = bernoulliLogLikelihood(
            logits: Tensor(shape: [1, 1, 1, 3], scalars: [0, 2, -1]), targets: Tensor(shape: [1, 1, 1, 3], scalars: [1, 0, 0.5]))
        XCTAssertEqual(value.shape, [1])
        XCTAssertEqual(value.item, -3.633_336_9, accuracy: 1e-5)
    }

    func testGaussianLogDensityOnHandValues() {
        // x = (1, 2), μ = (0, 1), σ² = (1, 2): −½[(log 2π + 1) + (log 2π + log 2 + ½)] = −2.9344507…
        let value = gaussianLogDensity(
            Tensor(shape: [1, 2], scalars: [1, 2]), mean: Tensor(shape: [1, 2], scalars: [0, 1]),
            logVariance: Tensor(shape: [1, 2], scalars: [0, Float(log(2.0))]))
        XCTAssertEqual(value.item, -2.934_450_7, accuracy: 1e-5)
        XCTAssertEqual(
            standardNormalLogDensity(Tensor(shape: [1, 2], scalars: [1, 2])).item,
            gaussianLogDensity(Tensor(shape: [1, 2], scalars: [1, 2]), mean: Tensor(zeros: [1, 2]), logVariance: Tensor(zeros: [1, 2])).item,
            accuracy: 1e-6)
    }

    func testDiscretizedLogisticIsANormalisedDistributionOverTheLevels() {
        // The 256 levels' probabilities sum to 1 for any mean and scale, tails included.
        for (mean, scale) in [(Float(0.3), Float(0.1)), (-0.95, 0.02), (0.0, 1.5), (0.999, 0.001)] {
            let levels = Tensor(shape: [256, 1, 1, 1], scalars: (0..<256).map { Float($0) / 255 })
            let logProbabilities = discretizedLogisticLogLikelihood(
                levels, mean: Tensor(repeating: mean, shape: [256, 1, 1, 1]), logScale: Tensor(repeating: log(scale), shape: [256, 1, 1, 1]))
            let total = logProbabilities.scalars.reduce(0.0) { $0 + exp(Double($1)) }
            XCTAssertEqual(total, 1, accuracy: 2e-3, "mean \(mean), scale \(scale)")
        }
    }

    func testLogSumExpIsStableAndExact() {
        let x = Tensor(shape: [2, 3], scalars: [1000, 1000, 1000, -1, 0, 1])
        let value = logSumExp(x, alongAxis: 1).scalars
        XCTAssertEqual(value[0], 1000 + Float(log(3.0)), accuracy: 1e-3)
        XCTAssertEqual(Double(value[1]), log(exp(-1.0) + 1 + exp(1.0)), accuracy: 1e-6)
    }

    func testMonteCarloPriorTermsAverageToMinusKL() {
        // E_q[log p(z) − log q(z | x)] = −KL(q ‖ p): the single-sample ELBO and the analytic-KL ELBO agree on average.
        let mean = Tensor(shape: [1, 3], scalars: [0.5, -1, 0.2])
        let logVariance = Tensor(shape: [1, 3], scalars: [-0.5, 0.3, -1.2])
        var generator = SeededGenerator(seed: 11)
        let draws = 20_000
        let noise = Tensor.randomNormal([draws, 3], using: &generator)
        let z = mean + exp(0.5 * logVariance) * noise
        let terms = standardNormalLogDensity(z) - gaussianLogDensity(z, mean: mean, logVariance: logVariance)
        let average = terms.scalars.reduce(0.0) { $0 + Double($1) } / Double(draws)
        XCTAssertEqual(average, -Double(gaussianKLToStandardNormal(mean: mean, logVariance: logVariance).item), accuracy: 0.03)
    }

    private func tinyVAE(likelihood: PixelLikelihood, channels: Int) -> VariationalAutoencoder {
        var generator = SeededGenerator(seed: 5)
        let decoder = DecoderConfiguration(
            latentSize: 3, imageSize: 8, outputChannels: channels * likelihood.parametersPerChannel, widths: [4, 3],
            nfm: NFMConfiguration(heads: 1, keySize: 2, valueSize: 2, topK: 3))
        let configuration = VAEConfiguration(
            imageChannels: channels, imageSize: 8, latentSize: 3, encoderWidths: [3, 4], encoderHidden: 6, likelihood: likelihood, decoder: decoder)
        let model = VariationalAutoencoder(configuration, using: &generator)
        model.eval()
        return model
    }

    func testImportanceWeightedBoundWithOneSampleIsTheSingleSampleELBO() {
        for (likelihood, channels) in [(PixelLikelihood.bernoulli, 1), (.discretizedLogistic, 3)] {
            let model = tinyVAE(likelihood: likelihood, channels: channels)
            var data = SeededGenerator(seed: 8)
            let images = Tensor.randomUniform([5, channels, 8, 8], using: &data)
            var first = SeededGenerator(seed: 21)
            var second = first
            let bound = model.importanceWeightedBound(images, samples: 1, using: &first)
            let noise = Tensor.randomNormal([5, 3], using: &second)
            let weights = withoutGradient { model.logImportanceWeights(images, noise: noise) }
            assertClose(bound, weights, absolute: 1e-3, relative: 1e-5, "\(likelihood): IWAE with k = 1")
            // The single-sample estimate differs from the analytic-KL ELBO only in the prior terms.
            let terms = withoutGradient { model.evidenceLowerBound(images, noise: noise) }
            XCTAssertEqual(terms.elbo.shape, [5])
            assertClose(terms.elbo, terms.reconstruction - terms.kl, "\(likelihood): ELBO = reconstruction − KL")
        }
    }

    func testImportanceWeightedBoundIsTheLogMeanExpOfItsWeights() {
        let model = tinyVAE(likelihood: .bernoulli, channels: 1)
        var data = SeededGenerator(seed: 9)
        let images = Tensor.randomUniform([2, 1, 8, 8], using: &data)
        let samples = 7
        var first = SeededGenerator(seed: 4)
        var second = first
        let bound = model.importanceWeightedBound(images, samples: samples, chunk: 1_000, using: &first).scalars
        // The same noise: rows k·n + i are draw k of image i.
        let noise = Tensor.randomNormal([samples * 2, 3], using: &second)
        var weights: [[Double]] = [[], []]
        for k in 0..<samples {
            let row = withoutGradient { model.logImportanceWeights(images, noise: noise.sliced(alongAxis: 0, from: 2 * k, to: 2 * k + 2)) }.scalars
            for i in 0..<2 { weights[i].append(Double(row[i])) }
        }
        for i in 0..<2 {
            let maximum = weights[i].max()!
            let logMeanExp = maximum + log(weights[i].reduce(0) { $0 + exp($1 - maximum) } / Double(samples))
            XCTAssertEqual(Double(bound[i]), logMeanExp, accuracy: 1e-3)
            // Jensen: the bound is at least the average of the single-sample ELBOs it was made from.
            XCTAssertGreaterThanOrEqual(Double(bound[i]) + 1e-4, weights[i].reduce(0, +) / Double(samples))
        }
    }
}
