import Foundation
import GenerateKit
import NFMLayers
import NFMModels
import NFMNN
import NFMTensor
import XCTest

/// The generator / decoder wiring, the capacity matching and the losses.
final class ModelTests: XCTestCase {
    func testParameterCountFormulaMatchesTheModules() {
        let nfm = NFMConfiguration(heads: 2, keySize: 3, valueSize: 5, topK: 3)
        for configuration in [
            DecoderConfiguration(latentSize: 7, imageSize: 28, outputChannels: 1, widths: [6, 5], nfm: nfm),
            DecoderConfiguration(latentSize: 7, imageSize: 28, outputChannels: 1, widths: [6, 5], nfm: nil),
            DecoderConfiguration(latentSize: 4, imageSize: 32, outputChannels: 6, widths: [5, 4, 3], nfm: nfm),
        ] {
            var generator = SeededGenerator(seed: 1)
            let decoder = ConvolutionalDecoder(configuration, using: &generator)
            XCTAssertEqual(decoder.parameterCount, configuration.parameterCount, "\(configuration)")
            // Trained: all but what only a read uses at the first pass's slots, which only write.
            let idle = decoder.nfm?.readParameterCount(slots: 0..<configuration.stageWidths.count) ?? 0
            XCTAssertEqual(decoder.parameterCount - idle, configuration.trainedParameterCount, "\(configuration)")
            XCTAssertEqual(configuration.nfm == nil, idle == 0)
        }
    }

    /// The baseline matches NFM's trained parameters: the first pass's query layers, out blocks and
    /// gates never get a gradient, so they add no capacity. Runs from before `capacityMatching`
    /// (nil in their config.json) matched the total, and still rebuild that baseline.
    func testDefaultBaselinesAreCapacityMatchedWithinTwoPercent() {
        for model in ModelKind.allCases {
            for dataset in DatasetName.allCases {
                for preset in Preset.allCases {
                    var configuration = ExperimentConfiguration.defaults(model: model, dataset: dataset, preset: preset)
                    XCTAssertEqual(configuration.capacityMatching, .trained)
                    let trained = configuration.nfmDecoder.trainedParameterCount
                    XCTAssertLessThan(configuration.nfmDecoder.trainedParameterCount, configuration.nfmDecoder.parameterCount)
                    let matched = configuration.baselineDecoder.parameterCount
                    XCTAssertLessThan(abs(Double(matched - trained)) / Double(trained), 0.02, "\(model) \(dataset) \(preset): NFM trained \(trained), baseline \(matched)")
                    configuration.capacityMatching = nil
                    let nfm = configuration.nfmDecoder.parameterCount
                    let baseline = configuration.baselineDecoder.parameterCount
                    XCTAssertNil(configuration.baselineDecoder.nfm)
                    XCTAssertLessThan(abs(Double(baseline - nfm)) / Double(nfm), 0.02, "\(model) \(dataset) \(preset): NFM \(nfm), baseline \(baseline)")
                    XCTAssertNil(configuration.problem())
                }
            }
        }
    }

    func testFreshNFMDecoderComputesItsSecondPassAlone() throws {
        // γ = 0 at initialisation, so the two-pass NFM decoder equals a one-pass decoder holding pass 2's weights.
        let nfmConfiguration = DecoderConfiguration(
            latentSize: 5, imageSize: 16, outputChannels: 2, widths: [6, 4, 3], nfm: NFMConfiguration(heads: 1, keySize: 4, valueSize: 4, topK: 3))
        var plainConfiguration = nfmConfiguration
        plainConfiguration.nfm = nil
        var generator = SeededGenerator(seed: 2)
        let withNFM = ConvolutionalDecoder(nfmConfiguration, using: &generator)
        let plain = ConvolutionalDecoder(plainConfiguration, using: &generator)
        var state = StateDict()
        state.merge(withNFM.passes[1].stateDict(), prefix: "passes.0.")
        state.merge(withNFM.head.stateDict(), prefix: "head.")
        state.merge(withNFM.output.stateDict(), prefix: "output.")
        try plain.load(stateDict: state)
        let z = Tensor.randomNormal([3, 5], using: &generator)
        XCTAssertEqual(withNFM(z).scalars, plain(z).scalars)

        // Pass 2 reads every stage of pass 1 and its own stages so far.
        let nfm = try XCTUnwrap(withNFM.nfm)
        XCTAssertEqual(nfm.slotCount, 4)
        XCTAssertNil(nfm.lastAttention[0])
        XCTAssertEqual(nfm.lastAttention[2]?.slots, [0, 1, 2])
        XCTAssertEqual(nfm.lastAttention[3]?.slots, [0, 1, 2, 3])
        XCTAssertEqual(withNFM(z).shape, [3, 2, 16, 16])
    }

    func testNFMDecoderGetsGradientsThroughTheGates() {
        var generator = SeededGenerator(seed: 3)
        let decoder = ConvolutionalDecoder(
            DecoderConfiguration(latentSize: 4, imageSize: 8, outputChannels: 1, widths: [4, 3, 2], nfm: NFMConfiguration(heads: 1, keySize: 2, valueSize: 2, topK: 3)),
            using: &generator)
        let z = Tensor.randomNormal([4, 4], using: &generator)
        let target = Tensor.randomNormal([4, 1, 8, 8], using: &generator)
        let (_, gradients) = valueAndGrad(model: decoder) { model in mseLoss(model(z), target) }
        // The reading slots' gates get a gradient; with γ = 0, nothing flows yet into pass 1 or the out blocks.
        for slot in 2..<4 { XCTAssertNotNil(gradients["nfm.gammas.\(slot)"], "gamma \(slot)") }
        XCTAssertNotNil(gradients["passes.1.project.weight"])
        XCTAssertNil(gradients["nfm.query_layers.0.weight"], "pass-1 slots never read")
    }

    func testDiscriminatorShapesAndHingeLossesOnHandValues() {
        var generator = SeededGenerator(seed: 4)
        let discriminator = Discriminator(DiscriminatorConfiguration(imageChannels: 3, imageSize: 12, widths: [4, 5, 6]), using: &generator)
        XCTAssertEqual(discriminator(Tensor.randomNormal([3, 3, 12, 12], using: &generator)).shape, [3])
        XCTAssertEqual(discriminator.stateDict().keys.prefix(4), ["conv0.bias", "conv0.weight_orig", "conv0.weight_u", "conv0.weight_v"])
        XCTAssertEqual(discriminator.convolutions.count, 5)
        // D: mean(relu(1 − [2, 0.5])) + mean(relu(1 + [−2, 0])) = 0.25 + 0.5; G: −mean([−2, 0]) = 1.
        let loss = discriminatorHingeLoss(realScores: Tensor([2, 0.5]), fakeScores: Tensor([-2, 0]))
        XCTAssertEqual(loss.item, 0.75, accuracy: 1e-7)
        XCTAssertEqual(generatorHingeLoss(fakeScores: Tensor([-2, 0])).item, 1, accuracy: 1e-7)
    }

    func testPowerIterationConvergesToUnitSpectralNorm() {
        var generator = SeededGenerator(seed: 6)
        let layer = SpectralNormLinear(9, 5, using: &generator)
        let x = Tensor.randomNormal([2, 9], using: &generator)
        for _ in 0..<60 { _ = layer(x) }
        // The largest singular value of W/σ, estimated independently by many power steps from scratch, is 1.
        var u = Tensor(ones: [5]), v = Tensor(ones: [9])
        let normalized = layer.normalizedWeight
        for _ in 0..<200 { (u, v) = SpectralNormalization.powerIteration(weight: normalized, u: u, v: v) }
        XCTAssertEqual(SpectralNormalization.sigma(weight: normalized, u: u, v: v), 1, accuracy: 1e-4)
    }
}
