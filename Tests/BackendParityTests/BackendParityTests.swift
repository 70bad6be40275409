import Foundation
import GenerateKit
import NFMKernels
import NFMLayers
import NFMModels
import NFMNN
import NFMOptimizers
import NFMTensor
@testable import RLKit
import XCTest

/// Whole models on both backends (DESIGN.md §1: "the plain reference backend can run whole
/// models"): the same seeded model, data and optimizer run once on oneDNN and once on the reference
/// loops, and every loss, every gradient and, at the end, every parameter, buffer and optimizer state
/// must agree within `absoluteTolerance` + `relativeTolerance`·|oneDNN value|.
///
/// Why these tolerances: the two backends differ only in rounding (oneDNN accumulates convolutions
/// and GEMMs in Float32 in its own order, the reference in Double), about 1e-6 relative per kernel;
/// three optimizer steps carry that into the parameters. Adam's first steps move each weight by
/// about lr·sign(g), so a gradient that is zero up to rounding could move a weight by up to 2·lr in
/// opposite directions; lr is 1e-4 here, so parameters get an absolute tolerance of 1e-3.
final class BackendParityTests: XCTestCase {
    /// Absolute part of the tolerance for losses and gradients.
    static let absoluteTolerance: Float = 1e-4
    /// Relative part of the tolerance, for everything.
    static let relativeTolerance: Float = 1e-3
    /// Absolute part of the tolerance for parameters and state after the optimizer steps (see above).
    static let stateTolerance: Float = 1e-3

    /// Runs `body` once with each backend selected, oneDNN first, and restores the previous one.
    func onBothBackends<Result>(_ body: () throws -> Result) rethrows -> (oneDNN: Result, reference: Result) {
        let previous = Kernels.backend
        defer { Kernels.backend = previous }
        Kernels.backend = Kernels.oneDNN
        let fast = try body()
        Kernels.backend = Kernels.reference
        let reference = try body()
        return (fast, reference)
    }

    /// Asserts that two sets of named tensors have the same names and shapes and agree within
    /// `absolute` + relativeTolerance·|expected|; returns the worst ratio of difference to tolerance.
    @discardableResult
    func assertClose(
        _ actual: [String: Tensor], _ expected: [String: Tensor], absolute: Float = absoluteTolerance, _ label: String,
        file: StaticString = #filePath, line: UInt = #line
    ) -> Float {
        XCTAssertEqual(Set(actual.keys), Set(expected.keys), "\(label): names differ", file: file, line: line)
        var worst: Float = 0
        for (name, reference) in expected {
            guard let value = actual[name] else { continue }
            XCTAssertEqual(value.shape, reference.shape, "\(label) \(name)", file: file, line: line)
            guard value.shape == reference.shape else { continue }
            for (a, e) in zip(value.scalars, reference.scalars) {
                let ratio = Swift.abs(a - e) / (absolute + Self.relativeTolerance * Swift.abs(e))
                if !(ratio <= worst) { worst = ratio }
            }
        }
        XCTAssertLessThanOrEqual(worst, 1, "\(label): worst difference / tolerance", file: file, line: line)
        print("\(label): worst difference / tolerance \(worst)")
        return worst
    }

    /// The float entries of a module's state dict (parameters and buffers), by name.
    func floatState(_ module: Module) -> [String: Tensor] {
        var result: [String: Tensor] = [:]
        for (key, value) in module.stateDict().entries {
            if case .float(let tensor) = value { result[key] = tensor }
        }
        return result
    }

    /// The two-pass Sort-of-CLEVR NFM model (small widths), three Adam steps with batch statistics.
    func testSortOfClevrNFMTrainsAlikeOnBothBackends() {
        let runs = onBothBackends { sortOfClevrNFMSteps() }
        assertClose(runs.oneDNN.losses, runs.reference.losses, "Sort-of-CLEVR NFM losses")
        for (step, (fast, reference)) in zip(runs.oneDNN.gradients, runs.reference.gradients).enumerated() {
            assertClose(fast, reference, "Sort-of-CLEVR NFM gradients, step \(step)")
        }
        assertClose(runs.oneDNN.state, runs.reference.state, absolute: Self.stateTolerance, "Sort-of-CLEVR NFM parameters and buffers")
    }

    /// nfm-rl's DQN agent, MinAtar's network and the NFM encoder: three updates each on one replay batch
    /// stream. The update does not hand out its gradients, so they are compared through centered
    /// RMSprop's state, whose gradient average after the first step is (1 − α)·g.
    func testDQNUpdatesAlikeOnBothBackends() throws {
        for encoder in EncoderKind.allCases { try checkDQNUpdates(encoder: encoder) }
    }

    func checkDQNUpdates(encoder: EncoderKind) throws {
        let runs = try onBothBackends { try dqnUpdates(encoder: encoder) }
        assertClose(runs.oneDNN.losses, runs.reference.losses, "DQN (\(encoder)) losses")
        assertClose(
            runs.oneDNN.state, runs.reference.state, absolute: Self.stateTolerance, "DQN (\(encoder)) parameters, buffers and RMSprop state")
    }

    /// The compiled vector paths (NFM_ISA; VectorISA in NFMKernels) on whole models: the Sort-of-CLEVR
    /// NFM model's steps and both DQN encoders' updates must have the same bits on every path this CPU
    /// runs as on the portable Swift loops, so that a seed reproduces a run whichever path ran it.
    /// AVX-512 is checked only on a CPU that has it.
    func testEveryVectorPathTrainsBitIdentically() throws {
        let compiledPaths = VectorISA.supported.filter { $0 != .portable }
        try XCTSkipIf(compiledPaths.isEmpty, "this CPU runs no compiled path (no AVX2)")
        let previous = Kernels.vectorISA
        defer { Kernels.vectorISA = previous }
        func run() throws -> [String: Tensor] {
            let sortOfClevr = sortOfClevrNFMSteps()
            var named = sortOfClevr.losses.mapKeys { "Sort-of-CLEVR loss " + $0 }
            for (step, gradients) in sortOfClevr.gradients.enumerated() {
                named.merge(gradients.mapKeys { "Sort-of-CLEVR step \(step) gradient " + $0 }) { a, _ in a }
            }
            named.merge(sortOfClevr.state.mapKeys { "Sort-of-CLEVR " + $0 }) { a, _ in a }
            for encoder in EncoderKind.allCases {
                let dqn = try dqnUpdates(encoder: encoder)
                named.merge(dqn.losses.merging(dqn.state) { a, _ in a }.mapKeys { "DQN (\(encoder)) " + $0 }) { a, _ in a }
            }
            return named
        }
        Kernels.vectorISA = .portable
        let expected = try run()
        for isa in compiledPaths {
            Kernels.vectorISA = isa
            let actual = try run()
            XCTAssertEqual(Set(actual.keys), Set(expected.keys), "\(isa): names differ")
            for (name, reference) in expected.sorted(by: { $0.key < $1.key }) {
                guard let value = actual[name] else { continue }
                let differing = zip(value.scalars, reference.scalars).filter { a, e in
                    a.bitPattern != e.bitPattern && !(a.isNaN && e.isNaN)
                }
                XCTAssertTrue(differing.isEmpty, "\(isa): \(name) differs from the portable path in \(differing.count) values")
            }
        }
    }

    /// Three Adam steps of the seeded two-pass Sort-of-CLEVR NFM model (small widths): each step's
    /// loss and gradients, and the parameters and buffers at the end.
    func sortOfClevrNFMSteps() -> (losses: [String: Tensor], gradients: [[String: Tensor]], state: [String: Tensor]) {
        var generator = SeededGenerator(seed: 11)
        let model = SortOfClevrModel(
            widths: [4, 6, 6, 8], nfm: NFMConfiguration(heads: 2, keySize: 3, valueSize: 3, topK: 3), headChannels: 4,
            hiddenSize: 16, using: &generator)
        let optimizer = Adam(learningRate: 1e-4)
        let images = Tensor.randomUniform([2, 3, 75, 75], using: &generator)
        let questions = Tensor.randomUniform([2, 11], using: &generator)
        let answers = (0..<2).map { _ in generator.nextIndex(below: 10) }
        model.train()
        var losses: [String: Tensor] = [:], gradients: [[String: Tensor]] = []
        for step in 0..<3 {
            let (loss, stepGradients) = valueAndGrad(model: model) { model in
                nllLoss(model(images: images, questions: questions, generator: &generator), targets: answers)
            }
            optimizer.update(model: model, gradients: stepGradients)
            losses["step \(step)"] = loss
            gradients.append(stepGradients)
        }
        return (losses, gradients, floatState(model))
    }

    /// Three updates of nfm-rl's seeded DQN agent with `encoder` on one replay batch stream: each
    /// update's loss, and the network's parameters and buffers with the RMSprop state at the end.
    func dqnUpdates(encoder: EncoderKind) throws -> (losses: [String: Tensor], state: [String: Tensor]) {
        var configuration = DQNConfiguration(game: "breakout", frames: 100, seed: 3, encoder: encoder)
        configuration.replayCapacity = 64
        configuration.batchSize = 8
        configuration.exploration = EpsilonSchedule(randomFrames: 40, annealFrames: 40)
        let agent = try DQNAgent(configuration: configuration)
        var generator = SeededGenerator(seed: 5)
        // Random frames only (frame ≤ randomFrames): the replay fills, no update runs.
        for frame in 0..<40 { _ = agent.playFrame(frame, generator: &generator) }
        var losses: [String: Tensor] = [:]
        for step in 0..<3 { losses["update \(step)"] = Tensor(Float(agent.update(generator: &generator))) }
        let order = agent.online.namedParameters().map(\.name)
        let optimizerState = agent.optimizer.stateDict(parameterOrder: order)
        return (losses, floatState(agent.online).merging(optimizerState.mapKeys { "optimizer." + $0 }) { a, _ in a })
    }

    /// nfm-generate's GAN step (NFM generator, spectrally normalised discriminator, hinge losses,
    /// Adam with betas (0, 0.9)), three times: one discriminator and one generator update each.
    func testGANStepsAlikeOnBothBackends() {
        let runs = onBothBackends { () -> (losses: [String: Tensor], gradients: [[String: Tensor]], state: [String: Tensor]) in
            var random = SeededGenerator(seed: 7)
            let nfm = NFMConfiguration(heads: 1, keySize: 4, valueSize: 4, topK: 3)
            let generator = ConvolutionalDecoder(
                DecoderConfiguration(latentSize: 6, imageSize: 16, outputChannels: 1, widths: [6, 4, 3], nfm: nfm), using: &random)
            let discriminator = Discriminator(DiscriminatorConfiguration(imageChannels: 1, imageSize: 16, widths: [4, 5, 6]), using: &random)
            let generatorOptimizer = Adam(learningRate: 1e-4, betas: (0, 0.9))
            let discriminatorOptimizer = Adam(learningRate: 1e-4, betas: (0, 0.9))
            let batch = 4
            var losses: [String: Tensor] = [:], gradients: [[String: Tensor]] = []
            generator.train()
            discriminator.train()
            for step in 0..<3 {
                let real = Tensor.randomUniform([batch, 1, 16, 16], lowerBound: -1, upperBound: 1, using: &random)
                let fake = withoutGradient { tanh(generator(Tensor.randomNormal([batch, 6], using: &random))) }
                let (discriminatorLoss, discriminatorGradients) = valueAndGrad(model: discriminator) { model in
                    let scores = model(Tensor.concatenate([real, fake], alongAxis: 0))
                    return discriminatorHingeLoss(
                        realScores: scores.sliced(alongAxis: 0, from: 0, to: batch),
                        fakeScores: scores.sliced(alongAxis: 0, from: batch, to: 2 * batch))
                }
                discriminatorOptimizer.update(model: discriminator, gradients: discriminatorGradients)
                let z = Tensor.randomNormal([batch, 6], using: &random)
                let (generatorLoss, generatorGradients) = valueAndGrad(model: generator) { model in
                    generatorHingeLoss(fakeScores: discriminator(tanh(model(z))))
                }
                generatorOptimizer.update(model: generator, gradients: generatorGradients)
                losses["d step \(step)"] = discriminatorLoss
                losses["g step \(step)"] = generatorLoss
                gradients.append(discriminatorGradients.mapKeys { "discriminator." + $0 }.merging(generatorGradients.mapKeys { "generator." + $0 }) { a, _ in a })
            }
            let state = floatState(discriminator).mapKeys { "discriminator." + $0 }
                .merging(floatState(generator).mapKeys { "generator." + $0 }) { a, _ in a }
            return (losses, gradients, state)
        }
        assertClose(runs.oneDNN.losses, runs.reference.losses, "GAN losses")
        for (step, (fast, reference)) in zip(runs.oneDNN.gradients, runs.reference.gradients).enumerated() {
            assertClose(fast, reference, "GAN gradients, step \(step)")
        }
        assertClose(runs.oneDNN.state, runs.reference.state, absolute: Self.stateTolerance, "GAN parameters and buffers")
    }

    func testTheBackendSettingNamesBothBackends() {
        XCTAssertEqual(Kernels.named(nil).name, "onednn")
        XCTAssertEqual(Kernels.named("onednn").name, "onednn")
        XCTAssertEqual(Kernels.named("Reference").name, "reference")
    }
}

extension Dictionary where Key == String {
    /// The same values under keys rewritten by `transform`.
    fileprivate func mapKeys(_ transform: (String) -> String) -> [String: Value] {
        Dictionary(uniqueKeysWithValues: map { (transform($0.key), $0.value) })
    }
}
