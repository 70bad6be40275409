import Foundation
import NFMData
import NFMLog
import NFMNN
import NFMOptimizers
import NFMTensor
import NFMTraining

/// What a finished run measured; written to the run's `results.json` and printed.
public struct ExperimentResult: Codable, Sendable {
    /// The configuration that produced it.
    public var configuration: ExperimentConfiguration
    /// Parameters of the generator (GAN) or decoder (VAE) trained.
    public var decoderParameters: Int
    /// Parameters of that network that get gradients (all but the first NFM pass's idle query
    /// layers, out blocks and gates).
    public var decoderTrainedParameters: Int
    /// Parameters of the NFM variant of that network.
    public var nfmDecoderParameters: Int
    /// Trained parameters of the NFM variant.
    public var nfmDecoderTrainedParameters: Int
    /// Parameters of its capacity-matched baseline.
    public var baselineDecoderParameters: Int
    /// Parameters of the discriminator (GAN) or encoder (VAE).
    public var otherParameters: Int
    /// Steps completed.
    public var steps: Int
    /// Training steps run in this invocation (fewer than `steps` after a resume).
    public var sessionSteps: Int
    /// Seconds spent in training steps in this invocation (not evaluation or pictures).
    public var trainingSeconds: Double
    /// Median seconds per training step in this invocation.
    public var medianStepSeconds: Double
    /// Seconds for the final evaluation (FD, and the ELBO and IWAE bound for the VAE).
    public var evaluationSeconds: Double
    /// FD, its floor and the class balance of the final evaluation's samples.
    public var scores: SampleScores
    /// The feature classifier's test accuracy.
    public var classifierAccuracy: Double
    /// What that accuracy measures.
    public var classifierAccuracyMeaning: String
    /// The feature classifier's weights.
    public var classifierCheckpoint: String
    /// Test-set ELBO in nats per image (VAE).
    public var testELBO: Double?
    /// Its reconstruction term E_q[log p(x | z)] (VAE).
    public var testReconstruction: Double?
    /// Its KL term (VAE).
    public var testKL: Double?
    /// The importance-weighted bound on log p(x) in nats per image (VAE).
    public var testIWAE: Double?
    /// Test images the bound is averaged over.
    public var iwaeImages: Int?
    /// Importance samples per image.
    public var iwaeSamples: Int?
    /// The run directory.
    public var runDirectory: String
    /// The folder holding the pictures.
    public var samplesDirectory: String
}

extension ExperimentResult {
    /// The scores and parameter counts a comparison over seeds summarises (`final_metrics.json`):
    /// `eval/fd` and its floor, `eval/class_kl` for class-labelled data, for the VAE `eval/elbo`,
    /// `eval/iwae`, `eval/reconstruction` and `eval/kl`, and the trained network's
    /// `parameters/total` and `parameters/trained`.
    public var finalMetrics: [String: Double] {
        var values = scores.metrics.merging(
            ["parameters/total": Double(decoderParameters), "parameters/trained": Double(decoderTrainedParameters)]) { first, _ in first }
        values["eval/elbo"] = testELBO
        values["eval/iwae"] = testIWAE
        values["eval/reconstruction"] = testReconstruction
        values["eval/kl"] = testKL
        return values
    }
}

/// Trains one GAN or VAE through the shared `Trainer` (checkpoints, resume, NaN stop, Ctrl-C,
/// metrics), writes its pictures, and scores it by the Fréchet distance in the feature classifier's
/// penultimate layer (and the VAE also by its test ELBO and importance-weighted bound).
///
/// Seeding block: every random stream derives from `configuration.seed` here and nowhere else —
/// model initialisation, the trainer's noise (checkpointed), the data order, the fixed noise of the
/// pictures and the evaluation noise.
public final class Experiment {
    /// The run's settings.
    public let configuration: ExperimentConfiguration
    /// The images.
    public let data: ImageData
    /// The run directory (config, metrics, checkpoints, results).
    public let run: RunDirectory
    /// The pictures' folder, `samples/<model>-<dataset>-<run>/`.
    public let pictures: Pictures
    /// Where the feature classifier is cached.
    public let classifierDirectory: String
    let log: (String) -> Void

    // The seeding block.
    private var initialisationStream: SeededGenerator { SeededGenerator(seed: configuration.seed).split(stream: 1) }
    private var fixedNoiseStream: SeededGenerator { SeededGenerator(seed: configuration.seed).split(stream: 2) }
    private var evaluationStream: SeededGenerator { Experiment.evaluationStream(seed: configuration.seed) }
    private var dataSeed: UInt64 { configuration.seed }
    private var trainerSeed: UInt64 { configuration.seed }

    /// The noise of the final evaluation's samples, shared with `CheckpointSampler.evaluate`.
    static func evaluationStream(seed: UInt64) -> SeededGenerator { SeededGenerator(seed: seed).split(stream: 3) }

    /// An experiment on `data` in `run`, with pictures under `samplesRoot` and the feature classifier
    /// cached in `classifierDirectory` (default `runs/feature-classifier-<dataset>`).
    public init(
        configuration: ExperimentConfiguration, data: ImageData, run: RunDirectory, samplesRoot: String = "samples",
        classifierDirectory: String? = nil, log: @escaping (String) -> Void
    ) {
        precondition(data.name == configuration.dataset, "Experiment: data \(data.name) is not the configured \(configuration.dataset)")
        self.configuration = configuration
        self.data = data
        self.run = run
        self.pictures = Pictures(directory: Experiment.samplesDirectory(root: samplesRoot, configuration: configuration, runName: run.name))
        self.classifierDirectory = classifierDirectory ?? FeatureClassifier.defaultDirectory(for: configuration.dataset)
        self.log = log
    }

    /// Trains and caches the feature classifier of `configuration`'s data set in `classifierDirectory`
    /// (default `runs/feature-classifier-<dataset>`) if it is not cached yet, so that runs started
    /// side by side (a sweep over seeds) find it ready instead of each training it.
    public static func prepareFeatureClassifier(
        configuration: ExperimentConfiguration, data: ImageData, classifierDirectory: String?, log: (String) -> Void
    ) throws {
        _ = try QualityReference(
            data: data, directory: classifierDirectory ?? FeatureClassifier.defaultDirectory(for: configuration.dataset),
            samples: configuration.fdSamples, classifierSteps: configuration.classifierSteps, log: log)
    }

    /// `root/<model>-<dataset>-<run name>` (the prefix is not repeated when the run name starts with it).
    public static func samplesDirectory(root: String, configuration: ExperimentConfiguration, runName: String) -> String {
        let prefix = "\(configuration.model.rawValue)-\(configuration.dataset.rawValue)-"
        return root + "/" + (runName.hasPrefix(prefix) ? runName : prefix + runName)
    }

    /// Trains from scratch, or from the checkpoint in `resumeFrom`, to `configuration.steps`; then
    /// evaluates. Returns nil if interrupted with Ctrl-C (a checkpoint has been written).
    public func train(resumeFrom: String? = nil) throws -> ExperimentResult? {
        // A fresh run records its settings first; a resumed one once its checkpoints and metrics
        // were checked (makeTrainer), so that a resume that fails leaves the run as it was.
        if resumeFrom == nil { try run.writeConfig(configuration) }
        let nfmCount = configuration.nfmDecoder.parameterCount
        let nfmTrained = configuration.nfmDecoder.trainedParameterCount
        let baselineCount = configuration.baselineDecoder.parameterCount
        let network = configuration.model == .gan ? "generator" : "decoder"
        let matched = configuration.capacityMatching == .trained ? nfmTrained : nfmCount
        log("\(network) parameters: NFM \(grouped(nfmCount)) (\(grouped(nfmTrained)) trained) · capacity-matched baseline \(grouped(baselineCount)) "
            + "(\(String(format: "%+.1f", 100 * Double(baselineCount - matched) / Double(matched)))% of NFM's "
            + "\(configuration.capacityMatching == .trained ? "trained" : "total"), widths "
            + "\(configuration.baselineDecoder.widths) vs \(configuration.decoderWidths) in two passes); training the \(configuration.variantName) model")
        // Classifier and real statistics first, so that a problem shows before training starts.
        let quality = try QualityReference(
            data: data, directory: classifierDirectory, samples: configuration.fdSamples, classifierSteps: configuration.classifierSteps, log: log)
        switch configuration.model {
        case .gan: return try trainGAN(resumeFrom: resumeFrom, quality: quality, counts: (nfmCount, baselineCount))
        case .vae: return try trainVAE(resumeFrom: resumeFrom, quality: quality, counts: (nfmCount, baselineCount))
        }
    }

    // MARK: GAN

    private func trainGAN(resumeFrom: String?, quality: QualityReference, counts: (nfm: Int, baseline: Int)) throws -> ExperimentResult? {
        var initialisation = initialisationStream
        let generator = ConvolutionalDecoder(configuration.decoder, using: &initialisation)
        let discriminator = Discriminator(configuration.discriminator, using: &initialisation)
        log("discriminator parameters: \(grouped(discriminator.parameterCount)) (spectral norm, hinge loss, n_dis \(configuration.discriminatorSteps))")
        let betas = (configuration.beta1, configuration.beta2)
        let generatorOptimizer = Adam(learningRate: configuration.learningRate, betas: betas)
        let discriminatorOptimizer = Adam(learningRate: configuration.learningRate, betas: betas)
        let trainer = try makeTrainer(
            modules: [("generator", generator), ("discriminator", discriminator)],
            optimizers: [("generator_optimizer", generatorOptimizer, generator), ("discriminator_optimizer", discriminatorOptimizer, discriminator)],
            resumeFrom: resumeFrom)
        let loader = DataLoader(dataset: data.train, batchSize: Swift.min(configuration.batchSize, data.train.count), seed: dataSeed)
        let batch = loader.batchSize
        let latent = configuration.latentSize
        let nDis = configuration.discriminatorSteps
        var fixedNoise = fixedNoiseStream
        let gridNoise = Tensor.randomNormal([64, latent], using: &fixedNoise)
        let stripNoise = gridNoise.sliced(alongAxis: 0, from: 0, to: 10)

        func generate(_ z: Tensor) -> Tensor {
            generator.eval()
            defer { generator.train() }
            return withoutGradient { (tanh(generator(z)) + 1) * 0.5 }
        }

        var stepSeconds: [Double] = []
        let trainStep: (Int, inout SeededGenerator) throws -> [String: Double] = { step, random in
            let started = Date()
            generator.train()
            discriminator.train()
            var discriminatorLoss = 0.0, realScore = 0.0, fakeScore = 0.0
            // The generator does not change during the n_dis discriminator updates, so their fakes
            // come from one forward pass (one larger batch runs faster than n_dis small ones).
            let fakes = withoutGradient { tanh(generator(Tensor.randomNormal([nDis * batch, latent], using: &random))) }
            for inner in 0..<nDis {
                let real = loader.batch(step: step * nDis + inner) * 2 - 1
                let fake = fakes.sliced(alongAxis: 0, from: inner * batch, to: (inner + 1) * batch)
                let both = Tensor.concatenate([real, fake], alongAxis: 0)
                var scores = Tensor(zeros: [2 * batch])
                let (loss, gradients) = valueAndGrad(model: discriminator) { model in
                    scores = model(both)
                    return discriminatorHingeLoss(
                        realScores: scores.sliced(alongAxis: 0, from: 0, to: batch),
                        fakeScores: scores.sliced(alongAxis: 0, from: batch, to: 2 * batch))
                }
                discriminatorOptimizer.update(model: discriminator, gradients: gradients)
                discriminatorLoss += Double(loss.item) / Double(nDis)
                let values = scores.scalars
                realScore += Double(values[0..<batch].reduce(0, +)) / Double(batch * nDis)
                fakeScore += Double(values[batch...].reduce(0, +)) / Double(batch * nDis)
            }
            let z = Tensor.randomNormal([batch, latent], using: &random)
            let (generatorLoss, gradients) = valueAndGrad(model: generator) { model in
                generatorHingeLoss(fakeScores: discriminator(tanh(model(z))))
            }
            generatorOptimizer.update(model: generator, gradients: gradients)
            stepSeconds.append(Date().timeIntervalSince(started))
            return [
                "train/d_loss": discriminatorLoss, "train/g_loss": Double(generatorLoss.item),
                "train/score_real": realScore, "train/score_fake": fakeScore,
            ]
        }

        var finalMetrics: [String: Double]? = nil
        var scores: SampleScores? = nil
        var evaluationSeconds = 0.0
        let evaluate: (Int) throws -> [String: Double] = { step in
            try self.pictures.writeProgressStrip(generate(stripNoise), step: step)
            try self.pictures.writeGrid(generate(gridNoise), columns: 8, name: String(format: "grid-step-%09d.png", step))
            guard step == self.configuration.steps else { return [:] }
            let started = Date()
            try self.pictures.writeGrid(generate(gridNoise), columns: 8, name: "samples.png")
            var random = self.evaluationStream
            scores = quality.measure { count in
                generate(Tensor.randomNormal([count, latent], using: &random))
            }
            evaluationSeconds = Date().timeIntervalSince(started)
            finalMetrics = scores!.metrics.merging(["eval/classifier_accuracy": quality.record.testAccuracy]) { first, _ in first }
            return finalMetrics!
        }
        guard try runTrainer(trainer, step: trainStep, evaluate: evaluate) else { return nil }
        if finalMetrics == nil { finalMetrics = try evaluate(configuration.steps) }
        let result = try finish(
            scores: scores!, stepSeconds: stepSeconds, evaluationSeconds: evaluationSeconds, quality: quality,
            decoderParameters: generator.parameterCount, otherParameters: discriminator.parameterCount, counts: counts, steps: trainer.step)
        try writeResult(result)
        return result
    }

    // MARK: VAE

    private func trainVAE(resumeFrom: String?, quality: QualityReference, counts: (nfm: Int, baseline: Int)) throws -> ExperimentResult? {
        var initialisation = initialisationStream
        let model = VariationalAutoencoder(configuration.variationalAutoencoder, using: &initialisation)
        log("encoder parameters: \(grouped(model.encoder.parameterCount)); likelihood \(configuration.likelihood.rawValue)")
        let optimizer = Adam(learningRate: configuration.learningRate, betas: (configuration.beta1, configuration.beta2))
        let trainer = try makeTrainer(modules: [("model", model)], optimizers: [("optimizer", optimizer, model)], resumeFrom: resumeFrom)
        let loader = DataLoader(dataset: data.train, batchSize: Swift.min(configuration.batchSize, data.train.count), seed: dataSeed)
        let latent = configuration.latentSize
        var fixedNoise = fixedNoiseStream
        let gridNoise = Tensor.randomNormal([64, latent], using: &fixedNoise)
        let stripNoise = gridNoise.sliced(alongAxis: 0, from: 0, to: 10)
        let shown = Swift.min(32, data.test.count)
        let reconstructionInputs = data.test.images(first: shown)
        let pairs = Swift.min(8, data.test.count / 2)
        let interpolationStarts = data.test.images(indices: Array(0..<pairs))
        let interpolationEnds = data.test.images(indices: Array(pairs..<(2 * pairs)))

        func decodeMean(_ z: Tensor) -> Tensor {
            model.eval()
            defer { model.train() }
            return withoutGradient { model.meanImage(decoded: model.decoder(z)) }
        }
        func posteriorMean(_ images: Tensor) -> Tensor {
            model.eval()
            defer { model.train() }
            return withoutGradient { model.encoder(images).mean }
        }

        var stepSeconds: [Double] = []
        let trainStep: (Int, inout SeededGenerator) throws -> [String: Double] = { step, random in
            let started = Date()
            model.train()
            let images = loader.batch(step: step)
            let noise = Tensor.randomNormal([images.shape[0], latent], using: &random)
            var reconstruction = 0.0, kl = 0.0
            let (loss, gradients) = valueAndGrad(model: model) { model in
                let terms = model.evidenceLowerBound(images, noise: noise)
                reconstruction = Double(terms.reconstruction.detached().mean().item)
                kl = Double(terms.kl.detached().mean().item)
                return -terms.elbo.mean()
            }
            optimizer.update(model: model, gradients: gradients)
            stepSeconds.append(Date().timeIntervalSince(started))
            return ["train/loss": Double(loss.item), "train/elbo": -Double(loss.item), "train/reconstruction": reconstruction, "train/kl": kl]
        }

        var finalMetrics: [String: Double]? = nil
        var scores: SampleScores? = nil
        var evaluationSeconds = 0.0
        let evaluate: (Int) throws -> [String: Double] = { step in
            try self.pictures.writeProgressStrip(decodeMean(stripNoise), step: step)
            try self.pictures.writeGrid(decodeMean(gridNoise), columns: 8, name: String(format: "grid-step-%09d.png", step))
            let reconstructions = decodeMean(posteriorMean(reconstructionInputs))
            try self.pictures.writeGrid(
                Pictures.inputsAboveOutputs(inputs: reconstructionInputs, outputs: reconstructions, columns: 8), columns: 8,
                name: String(format: "reconstructions-step-%09d.png", step))
            guard step == self.configuration.steps else { return [:] }
            let started = Date()
            try self.pictures.writeGrid(decodeMean(gridNoise), columns: 8, name: "samples.png")
            try self.pictures.writeGrid(
                Pictures.inputsAboveOutputs(inputs: reconstructionInputs, outputs: reconstructions, columns: 8), columns: 8,
                name: "reconstructions.png")
            if pairs > 0 {
                let path = Pictures.interpolate(from: posteriorMean(interpolationStarts), to: posteriorMean(interpolationEnds), steps: 10)
                try self.pictures.writeGrid(decodeMean(path), columns: 10, name: "interpolations.png")
            }
            var random = self.evaluationStream
            scores = quality.measure { count in decodeMean(Tensor.randomNormal([count, latent], using: &random)) }
            let bounds = self.testBounds(model, using: &random)
            evaluationSeconds = Date().timeIntervalSince(started)
            finalMetrics = scores!.metrics.merging([
                "eval/classifier_accuracy": quality.record.testAccuracy, "eval/elbo": bounds.elbo, "eval/reconstruction": bounds.reconstruction, "eval/kl": bounds.kl, "eval/iwae": bounds.iwae,
            ]) { first, _ in first }
            return finalMetrics!
        }
        guard try runTrainer(trainer, step: trainStep, evaluate: evaluate) else { return nil }
        if finalMetrics == nil { finalMetrics = try evaluate(configuration.steps) }
        var result = try finish(
            scores: scores!, stepSeconds: stepSeconds, evaluationSeconds: evaluationSeconds, quality: quality,
            decoderParameters: model.decoder.parameterCount, otherParameters: model.encoder.parameterCount, counts: counts, steps: trainer.step)
        result.testELBO = finalMetrics!["eval/elbo"]
        result.testReconstruction = finalMetrics!["eval/reconstruction"]
        result.testKL = finalMetrics!["eval/kl"]
        result.testIWAE = finalMetrics!["eval/iwae"]
        result.iwaeImages = Swift.min(configuration.iwaeImages, data.test.count)
        result.iwaeSamples = configuration.iwaeSamples
        try writeResult(result)
        return result
    }

    /// The test-set ELBO (one draw per image, all test images) and the importance-weighted bound
    /// on the first `iwaeImages` test images, in nats per image, in eval mode.
    func testBounds(_ model: VariationalAutoencoder, using random: inout SeededGenerator) -> (elbo: Double, reconstruction: Double, kl: Double, iwae: Double) {
        model.eval()
        defer { model.train() }
        var elbo = 0.0, reconstruction = 0.0, kl = 0.0
        var start = 0
        while start < data.test.count {
            let end = Swift.min(data.test.count, start + 500)
            let images = data.test.images(indices: Array(start..<end))
            let noise = Tensor.randomNormal([end - start, configuration.latentSize], using: &random)
            let terms = withoutGradient { model.evidenceLowerBound(images, noise: noise) }
            elbo += Double(terms.elbo.sum().item)
            reconstruction += Double(terms.reconstruction.sum().item)
            kl += Double(terms.kl.sum().item)
            start = end
        }
        let count = Double(data.test.count)
        let iwaeCount = Swift.min(configuration.iwaeImages, data.test.count)
        var iwae = Double.nan
        if iwaeCount > 0 {
            let bound = model.importanceWeightedBound(data.test.images(first: iwaeCount), samples: configuration.iwaeSamples, using: &random)
            iwae = Double(bound.sum().item) / Double(iwaeCount)
        }
        return (elbo / count, reconstruction / count, kl / count, iwae)
    }

    // MARK: Shared

    private func makeTrainer(
        modules: [(name: String, module: Module)], optimizers: [(name: String, optimizer: any Optimizer, module: Module)],
        resumeFrom: String?
    ) throws -> Trainer {
        let schedule = TrainingConfiguration(
            steps: configuration.steps, evaluationInterval: configuration.sampleEvery, checkpointInterval: configuration.checkpointEvery,
            label: "\(configuration.model.rawValue)-\(configuration.variantName)")
        let trainer = try Trainer(
            run: run, configuration: schedule, seed: trainerSeed, modules: modules, optimizers: optimizers, resumeFrom: resumeFrom)
        if resumeFrom != nil { try run.writeConfig(configuration) }
        return trainer
    }

    /// Runs the trainer; true when it completed, false when interrupted by Ctrl-C.
    private func runTrainer(
        _ trainer: Trainer, step: (Int, inout SeededGenerator) throws -> [String: Double], evaluate: @escaping (Int) throws -> [String: Double]
    ) throws -> Bool {
        if trainer.step >= configuration.steps {
            log("the run is already at step \(trainer.step) of \(configuration.steps); evaluating only")
            return true
        }
        log("training \(configuration.steps - trainer.step) steps from step \(trainer.step); pictures in \(pictures.directory)")
        switch try trainer.run(step: step, evaluate: evaluate) {
        case .completed: return true
        case .interrupted: return false
        }
    }

    private func finish(
        scores: SampleScores, stepSeconds: [Double], evaluationSeconds: Double, quality: QualityReference,
        decoderParameters: Int, otherParameters: Int, counts: (nfm: Int, baseline: Int), steps: Int
    ) throws -> ExperimentResult {
        let sorted = stepSeconds.sorted()
        let result = ExperimentResult(
            configuration: configuration, decoderParameters: decoderParameters,
            decoderTrainedParameters: configuration.decoder.trainedParameterCount, nfmDecoderParameters: counts.nfm,
            nfmDecoderTrainedParameters: configuration.nfmDecoder.trainedParameterCount,
            baselineDecoderParameters: counts.baseline, otherParameters: otherParameters, steps: steps,
            sessionSteps: stepSeconds.count, trainingSeconds: stepSeconds.reduce(0, +), medianStepSeconds: sorted.isEmpty ? 0 : sorted[sorted.count / 2],
            evaluationSeconds: evaluationSeconds, scores: scores, classifierAccuracy: quality.record.testAccuracy,
            classifierAccuracyMeaning: quality.record.accuracyMeaning, classifierCheckpoint: quality.record.checkpoint,
            runDirectory: run.path, samplesDirectory: pictures.directory)
        run.record(output: pictures.directory, description: "pictures")
        return result
    }

    private func writeResult(_ result: ExperimentResult) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        let target = run.file("results.json")
        try (encoder.encode(result) + Data("\n".utf8)).write(to: URL(fileURLWithPath: target), options: .atomic)
        run.record(output: target, description: "results")
        try FinalMetrics.write(result.finalMetrics, to: run)
    }
}

/// The feature classifier and the real-image statistics FD and the class balance are measured against.
struct QualityReference {
    let classifier: FeatureClassifier
    let record: FeatureClassifierRecord
    /// Images per side.
    let samples: Int
    let testStatistics: GaussianStatistics
    /// The classes the classifier gives those test images, as shares (nil for attribute-labelled data).
    let testClassShares: [Double]?
    /// FD between real test and real training images (the best a model could hope for at this sample size).
    let floor: Double

    init(data: ImageData, directory: String, samples requested: Int, classifierSteps: Int, log: (String) -> Void) throws {
        (classifier, record) = try FeatureClassifier.loadOrTrain(data: data, directory: directory, steps: classifierSteps, log: log)
        samples = Swift.min(requested, data.test.count, data.train.count)
        let size = FeatureClassifier.featureSize
        let test = classifier.featureRows(count: samples) { data.test.images(indices: Array($0)) }
        testStatistics = GaussianStatistics(features: test.features, count: samples, dimension: size)
        if case .classes(_, let classCount) = data.test.labels {
            testClassShares = ClassBalance.shares(of: test.topOutputs, classCount: classCount)
        } else {
            testClassShares = nil
        }
        let train = classifier.featureRows(count: samples) { data.train.images(indices: Array($0)) }
        floor = FrechetDistance.distance(GaussianStatistics(features: train.features, count: samples, dimension: size), testStatistics)
        log("FD floor (real test vs real train, \(samples) images each): \(String(format: "%.4f", floor))")
    }

    /// FD and class balance of `samples` generated images (`generate(count)` gives [count, C, H, W]
    /// in [0, 1]) against the test images.
    func measure(generate: (Int) -> Tensor) -> SampleScores {
        var produced = 0
        let generated = classifier.featureRows(count: samples) { range in
            produced += range.count
            return generate(range.count)
        }
        precondition(produced == samples, "QualityReference: generated \(produced) of \(samples) images")
        let distance = FrechetDistance.distance(
            GaussianStatistics(features: generated.features, count: samples, dimension: FeatureClassifier.featureSize), testStatistics)
        var scores = SampleScores(frechetDistance: distance, frechetDistanceFloor: floor, frechetSamples: samples, testClassShares: testClassShares)
        if let testClassShares {
            let shares = ClassBalance.shares(of: generated.topOutputs, classCount: testClassShares.count)
            scores.generatedClassShares = shares
            scores.classDivergence = ClassBalance.divergence(shares, from: testClassShares)
        }
        return scores
    }
}

/// What the final evaluation measures of a generator's (or decoder's) samples.
public struct SampleScores: Codable, Sendable, Equatable {
    /// "FD (classifier features)" between generated and test images.
    public var frechetDistance: Double
    /// The same distance between real test and real training images: the floor.
    public var frechetDistanceFloor: Double
    /// Images on each side of both distances.
    public var frechetSamples: Int
    /// KL(generated ‖ test) in nats between the shares of the classes the feature classifier gives
    /// generated and test images: 0 when the generator draws every class as often as the data has
    /// it (`ClassBalance`; nil for attribute-labelled data).
    public var classDivergence: Double?
    /// The generated images' class shares, class by class.
    public var generatedClassShares: [Double]?
    /// The test images' class shares as the same classifier labels them.
    public var testClassShares: [Double]?

    /// As final metrics: `eval/fd`, `eval/fd_floor`, and `eval/class_kl` where there are classes.
    public var metrics: [String: Double] {
        var values = ["eval/fd": frechetDistance, "eval/fd_floor": frechetDistanceFloor]
        values["eval/class_kl"] = classDivergence
        return values
    }

    /// The lines a report prints: FD beside its floor, and the class balance.
    public func reportLines(classifier: String? = nil) -> [String] {
        var lines = [
            String(format: "  FD (classifier features): %.3f   [", frechetDistance) + (classifier.map { $0 + "; " } ?? "")
                + String(format: "floor, real test vs real train: %.3f; %d images each]", frechetDistanceFloor, frechetSamples)
        ]
        if let classDivergence, let generatedClassShares {
            lines.append(
                String(format: "  class balance: KL(generated ‖ test) %.4f nats; generated class shares (%%): ", classDivergence)
                    + generatedClassShares.map { String(format: "%.1f", 100 * $0) }.joined(separator: " "))
        }
        return lines
    }
}

/// 1234567 → "1,234,567".
func grouped(_ value: Int) -> String {
    let digits = String(abs(value))
    var result = ""
    for (index, character) in digits.enumerated() {
        if index > 0 && (digits.count - index) % 3 == 0 { result += "," }
        result.append(character)
    }
    return (value < 0 ? "-" : "") + result
}
