import Foundation
import NFMLayers
import NFMModels
import NFMTraining

/// Which generative model to train.
public enum ModelKind: String, Codable, Sendable, CaseIterable {
    /// A hinge-loss GAN with a spectrally normalised discriminator (SNGAN / InfoMax-GAN recipe).
    case gan
    /// A variational autoencoder.
    case vae
}

/// How long and how large a run is.
public enum Preset: String, Codable, Sendable, CaseIterable {
    /// Sized to train in about 10 minutes on 2 CPU cores (measured; see docs/generate.md).
    case small
    /// The full recipe at the authors' scale: wider networks, 100,000 steps (hours on a CPU).
    case paper
}

/// Everything that defines a run; saved as the run's `config.json`, so that `--resume` and
/// `sample` rebuild exactly the same models.
public struct ExperimentConfiguration: Codable, Sendable, Equatable {
    /// GAN or VAE.
    public var model: ModelKind
    /// The data set.
    public var dataset: DatasetName
    /// The preset the sizes came from.
    public var preset: Preset
    /// True: NFM in the generator (GAN) or decoder (VAE); false: the capacity-matched baseline.
    public var useNFM: Bool
    /// The NFM hyperparameters (defaults: 1 head, k = 3, key and value size 32, the authors' best GAN).
    public var nfm: NFMConfiguration
    /// Training steps (GAN: generator updates, each after `discriminatorSteps` discriminator updates).
    public var steps: Int
    /// The one seed every random stream of the run derives from.
    public var seed: UInt64
    /// Images per step.
    public var batchSize: Int
    /// The size of z.
    public var latentSize: Int
    /// Widths of the NFM generator / decoder (stages, then the head); the baseline scales them up to match its parameters.
    public var decoderWidths: [Int]
    /// Discriminator widths at full, half and quarter resolution (GAN).
    public var discriminatorWidths: [Int]
    /// Discriminator updates per generator update (SNGAN's n_dis = 5).
    public var discriminatorSteps: Int
    /// Encoder convolution widths (VAE).
    public var encoderWidths: [Int]
    /// Encoder hidden units (VAE).
    public var encoderHidden: Int
    /// Adam's learning rate (2e-4 for the GAN, 1e-3 for the VAE).
    public var learningRate: Double
    /// Adam's β₁ (0 for the GAN, as SNGAN).
    public var beta1: Double
    /// Adam's β₂ (0.9 for the GAN, as SNGAN).
    public var beta2: Double
    /// Write sample grids (and a fixed-noise strip) every this many steps, and at the end.
    public var sampleEvery: Int
    /// Checkpoint every this many steps, and at the end.
    public var checkpointEvery: Int
    /// Generated and real images for the Fréchet distance (10,000 as FID).
    public var fdSamples: Int
    /// Test images the importance-weighted bound is computed on (VAE).
    public var iwaeImages: Int
    /// Importance samples per image (k = 100).
    public var iwaeSamples: Int
    /// Training steps of the feature classifier, if it has to be trained.
    public var classifierSteps: Int
    /// Which parameter count of the NFM decoder the baseline is widened to match: `trained` (new
    /// runs) or `total`, which also counts the first pass's idle query layers, out blocks and gates.
    /// nil in the config.json of runs made before this setting, which matched `total`.
    public var capacityMatching: CapacityMatching?

    /// The parameter count a capacity-matched baseline matches.
    public enum CapacityMatching: String, Codable, Sendable {
        /// The parameters that get gradients.
        case trained
        /// Every parameter, idle ones included (the first runs' rule).
        case total
    }

    /// The defaults of `preset` for a model and data set.
    public static func defaults(model: ModelKind, dataset: DatasetName, preset: Preset = .small, useNFM: Bool = true) -> ExperimentConfiguration {
        let paper = preset == .paper
        switch model {
        case .gan:
            return ExperimentConfiguration(
                model: .gan, dataset: dataset, preset: preset, useNFM: useNFM,
                nfm: NFMConfiguration(heads: 1, keySize: 32, valueSize: 32, topK: 3),
                steps: paper ? 100_000 : 1_000, seed: 1, batchSize: paper ? 64 : 32, latentSize: paper ? 128 : 64,
                decoderWidths: paper ? [256, 128, 64] : [96, 48, 24],
                discriminatorWidths: paper ? [64, 128, 256] : [16, 32, 64], discriminatorSteps: 5,
                encoderWidths: [32, 64], encoderHidden: 256,
                learningRate: 2e-4, beta1: 0, beta2: 0.9,
                sampleEvery: paper ? 5_000 : 100, checkpointEvery: paper ? 5_000 : 100,
                fdSamples: 10_000, iwaeImages: 1_000, iwaeSamples: 100, classifierSteps: 1_500, capacityMatching: .trained)
        case .vae:
            return ExperimentConfiguration(
                model: .vae, dataset: dataset, preset: preset, useNFM: useNFM,
                nfm: NFMConfiguration(heads: 1, keySize: 32, valueSize: 32, topK: 3),
                steps: paper ? 100_000 : 2_000, seed: 1, batchSize: 64, latentSize: paper ? 32 : 16,
                decoderWidths: paper ? [128, 64, 32] : [64, 32, 16],
                discriminatorWidths: [32, 64, 128], discriminatorSteps: 1,
                encoderWidths: paper ? [64, 128] : [32, 64], encoderHidden: paper ? 512 : 256,
                learningRate: 1e-3, beta1: 0.9, beta2: 0.999,
                sampleEvery: paper ? 5_000 : 200, checkpointEvery: paper ? 5_000 : 200,
                fdSamples: 10_000, iwaeImages: 1_000, iwaeSamples: 100, classifierSteps: 1_500, capacityMatching: .trained)
        }
    }

    /// Channels of the data set's images.
    public var imageChannels: Int { dataset == .fashionMNIST ? 1 : 3 }
    /// The side of the data set's images.
    public var imageSize: Int { dataset == .fashionMNIST ? 28 : ImageData.sortOfCLEVRSize }
    /// The VAE's pixel likelihood: Bernoulli for grey Fashion-MNIST, discretised logistic for RGB.
    public var likelihood: PixelLikelihood { dataset == .fashionMNIST ? .bernoulli : .discretizedLogistic }

    /// The generator (GAN) or decoder (VAE) with NFM.
    public var nfmDecoder: DecoderConfiguration {
        let outputs = model == .gan ? imageChannels : imageChannels * likelihood.parametersPerChannel
        return DecoderConfiguration(latentSize: latentSize, imageSize: imageSize, outputChannels: outputs, widths: decoderWidths, nfm: nfm)
    }

    /// The capacity-matched baseline: one pass, no NFM, widths scaled so that its parameter count
    /// is as close as possible to the NFM decoder's trained parameters (``capacityMatching``).
    public var baselineDecoder: DecoderConfiguration {
        let nfm = nfmDecoder
        return nfm.capacityMatched(to: capacityMatching == .trained ? nfm.trainedParameterCount : nfm.parameterCount)
    }

    /// The decoder this run trains.
    public var decoder: DecoderConfiguration { useNFM ? nfmDecoder : baselineDecoder }

    /// The discriminator (GAN).
    public var discriminator: DiscriminatorConfiguration {
        DiscriminatorConfiguration(imageChannels: imageChannels, imageSize: imageSize, widths: discriminatorWidths)
    }

    /// The VAE (with `decoder`).
    public var variationalAutoencoder: VAEConfiguration {
        VAEConfiguration(
            imageChannels: imageChannels, imageSize: imageSize, latentSize: latentSize, encoderWidths: encoderWidths,
            encoderHidden: encoderHidden, likelihood: likelihood, decoder: decoder)
    }

    /// "nfm" or "baseline".
    public var variantName: String { useNFM ? "nfm" : "baseline" }

    /// Checks ranges; returns a message for the first problem, nil if none.
    public func problem() -> String? {
        if steps < 1 { return "--steps must be at least 1 (got \(steps))" }
        if batchSize < 2 { return "--batch-size must be at least 2 (got \(batchSize))" }
        if sampleEvery < 0 || checkpointEvery < 0 { return "--sample-every must not be negative" }
        if fdSamples < 2 { return "--fd-samples must be at least 2 (got \(fdSamples))" }
        if iwaeSamples < 1 || iwaeImages < 0 { return "--iwae-samples must be at least 1 and --iwae-images not negative" }
        if nfm.heads < 1 || nfm.topK < 1 || nfm.keySize < 1 || nfm.valueSize < 1 { return "--heads, --top-k, --key-size and --value-size must be positive" }
        if discriminatorSteps < 1 { return "--discriminator-steps must be at least 1" }
        if !(learningRate > 0 && learningRate.isFinite) { return "--learning-rate must be positive and finite (got \(learningRate))" }
        if classifierSteps < 1 { return "--classifier-steps must be at least 1 (got \(classifierSteps))" }
        if decoderWidths.count < 2 || decoderWidths.contains(where: { $0 < 1 }) { return "the decoder needs at least two positive widths" }
        if imageSize % (1 << (decoderWidths.count - 1)) != 0 {
            return "\(decoderWidths.count) decoder stages do not divide the image size \(imageSize) by powers of 2"
        }
        return nil
    }
}

extension ExperimentConfiguration {
    /// Reads the `config.json` of a run directory (for `--resume`); when it is damaged, the copy
    /// saved with the newest checkpoint that has a readable one (said through `log`).
    ///
    /// - Throws: `SamplingError.missingConfiguration` when the directory has neither, or
    ///   `TrainingError.unreadableConfiguration`, naming the file.
    public static func load(runDirectory: String, log: (String) -> Void = { print($0) }) throws -> ExperimentConfiguration {
        let path = runDirectory + "/config.json"
        guard FileManager.default.fileExists(atPath: path) || !Checkpoint.stepDirectories(inRun: runDirectory).isEmpty else {
            throw SamplingError.missingConfiguration(path: runDirectory)
        }
        return try Checkpoint.loadConfiguration(ExperimentConfiguration.self, ofRun: runDirectory, log: log)
    }
}
