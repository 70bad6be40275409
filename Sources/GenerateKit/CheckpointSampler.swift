import Foundation
import NFMIO
import NFMLog
import NFMNN
import NFMTensor
import NFMTraining

/// Why samples could not be drawn from a checkpoint.
public enum SamplingError: Error, CustomStringConvertible {
    /// No `config.json` in the checkpoint's run directory or above.
    case missingConfiguration(path: String)
    /// `config.json` exists but does not decode.
    case unreadableConfiguration(path: String, reason: String)
    /// Scores were to be recorded into a run that has no final metrics yet.
    case unfinishedRun(path: String)
    /// The checkpoint's FD is not the one the run recorded: it is not the run's final model.
    case notTheFinalModel(checkpoint: String, recorded: Double, rescored: Double)

    /// A sentence naming the file.
    public var description: String {
        switch self {
        case .missingConfiguration(let path):
            return "no config.json found for checkpoint \(path): pass a run directory written by nfm-generate, one of its checkpoints/step-… directories, or a generator/model .safetensors file inside one"
        case let .unreadableConfiguration(path, reason):
            return "cannot read \(path): \(reason)"
        case .unfinishedRun(let path):
            return "\(path) has no final_metrics.json: the run has not finished, so there is nothing to add its scores to"
        case let .notTheFinalModel(checkpoint, recorded, rescored):
            return "\(checkpoint) scores FD \(rescored), but its run recorded \(recorded): it is not the model the run finished with; nothing was recorded"
        }
    }
}

/// Draws new samples from a saved generator (GAN) or decoder (VAE).
public enum CheckpointSampler {
    /// The run configuration for `path` (a run directory, a checkpoint directory or a weights file):
    /// the nearest `config.json` in it or up to three folders above (or, when that file is damaged,
    /// the copy its run's checkpoints keep), and the run directory holding it.
    public static func configuration(near path: String) throws -> (configuration: ExperimentConfiguration, runDirectory: String) {
        var directory = path.hasSuffix(".safetensors") ? (path as NSString).deletingLastPathComponent : path
        for _ in 0..<4 {
            let candidate = (directory.isEmpty ? "." : directory) + "/config.json"
            if FileManager.default.fileExists(atPath: candidate) {
                // A damaged config.json falls back to the copy its checkpoints keep.
                let runDirectory = directory.isEmpty ? "." : directory
                return (try ExperimentConfiguration.load(runDirectory: runDirectory), runDirectory)
            }
            directory = (directory as NSString).deletingLastPathComponent
        }
        throw SamplingError.missingConfiguration(path: path)
    }

    /// The generator (GAN) or decoder (VAE) saved at `checkpoint`, in eval mode, as a function from
    /// latent vectors [N, latent] to images [N, C, H, W] in [0, 1] (as the run's own final evaluation
    /// draws them), with the run's configuration and directory.
    public static func loadGenerator(
        checkpoint: String
    ) throws -> (configuration: ExperimentConfiguration, runDirectory: String, generate: (Tensor) -> Tensor) {
        let (configuration, runDirectory) = try self.configuration(near: checkpoint)
        // Every weight comes from the checkpoint; the seed only fills modules before loading.
        var initialisation = SeededGenerator(seed: 0)
        switch configuration.model {
        case .gan:
            let generator = ConvolutionalDecoder(configuration.decoder, using: &initialisation)
            try Checkpoint.loadModule(generator, named: "generator", from: checkpoint)
            generator.eval()
            return (configuration, runDirectory, { z in withoutGradient { (tanh(generator(z)) + 1) * 0.5 } })
        case .vae:
            let model = VariationalAutoencoder(configuration.variationalAutoencoder, using: &initialisation)
            try Checkpoint.loadModule(model, named: "model", from: checkpoint)
            model.eval()
            return (configuration, runDirectory, { z in withoutGradient { model.meanImage(decoded: model.decoder(z)) } })
        }
    }

    /// Writes `count` new samples from the model saved at `checkpoint` as one grid PNG (each pixel
    /// upscaled `scale` times), drawing z from `seed`; to `output`, or by default to
    /// `samples/<model>-<dataset>-<run>/sample-seed<seed>-<count>.png`. Returns the path.
    public static func writeSamples(
        checkpoint: String, count: Int, seed: UInt64, scale: Int = 3, output: String? = nil, samplesRoot: String = "samples"
    ) throws -> String {
        precondition(count >= 1 && scale >= 1, "writeSamples: count and scale must be positive")
        let (configuration, runDirectory, generate) = try loadGenerator(checkpoint: checkpoint)
        var noise = SeededGenerator(seed: seed)
        let images = generate(Tensor.randomNormal([count, configuration.latentSize], using: &noise))
        let runName = (URL(fileURLWithPath: runDirectory).standardizedFileURL.path as NSString).lastPathComponent
        let target = output ?? Experiment.samplesDirectory(root: samplesRoot, configuration: configuration, runName: runName) + "/sample-seed\(seed)-\(count).png"
        let pictures = Pictures(directory: (target as NSString).deletingLastPathComponent, scale: scale)
        return try pictures.writeGrid(images, name: (target as NSString).lastPathComponent)
    }

    /// Scores the model saved at `checkpoint` as its run's final evaluation does: FD and class
    /// balance over the run's `fdSamples` images, drawn from the run's evaluation noise, so that the
    /// final checkpoint of a finished run gives back its `eval/fd` (to rounding, when the thread count
    /// differs). For runs that finished before a metric existed (`eval/class_kl`), and for checkpoints
    /// part-way through a run.
    public static func evaluate(
        checkpoint: String, data: ImageData, classifierDirectory: String? = nil, log: (String) -> Void
    ) throws -> CheckpointEvaluation {
        let (configuration, runDirectory, generate) = try loadGenerator(checkpoint: checkpoint)
        precondition(data.name == configuration.dataset, "evaluate: \(runDirectory) was trained on \(configuration.dataset.rawValue), not \(data.name.rawValue)")
        let quality = try QualityReference(
            data: data, directory: classifierDirectory ?? FeatureClassifier.defaultDirectory(for: configuration.dataset),
            samples: configuration.fdSamples, classifierSteps: configuration.classifierSteps, log: log)
        var random = Experiment.evaluationStream(seed: configuration.seed)
        let scores = quality.measure { count in generate(Tensor.randomNormal([count, configuration.latentSize], using: &random)) }
        return CheckpointEvaluation(checkpoint: checkpoint.hasSuffix(".safetensors") ? checkpoint : try Checkpoint.resolve(checkpoint), scores: scores)
    }
}

extension CheckpointSampler {
    /// Adds `evaluation`'s class balance (`eval/class_kl`) to the final metrics of the finished run in
    /// `runDirectory`, so that a sweep summarising it counts a metric added after the run finished.
    /// Only when the evaluation is of the model the run finished with: its FD must agree with the
    /// recorded `eval/fd` to 1e-3 (relative; thread counts change the last digits).
    /// Returns the metrics written.
    @discardableResult
    public static func record(_ evaluation: CheckpointEvaluation, inRun runDirectory: String) throws -> [String: Double] {
        guard var metrics = try FinalMetrics.read(directory: runDirectory) else { throw SamplingError.unfinishedRun(path: runDirectory) }
        let recorded = metrics["eval/fd"] ?? .nan
        let rescored = evaluation.scores.frechetDistance
        guard abs(recorded - rescored) <= 1e-3 * Swift.max(1, abs(recorded)) else {
            throw SamplingError.notTheFinalModel(checkpoint: evaluation.checkpoint, recorded: recorded, rescored: rescored)
        }
        metrics["eval/class_kl"] = evaluation.scores.classDivergence
        try AtomicFile.write(FinalMetrics.encode(metrics), to: runDirectory + "/" + FinalMetrics.fileName)
        return metrics
    }
}

/// What `CheckpointSampler.evaluate` measured of a saved model (`nfm-generate evaluate`).
public struct CheckpointEvaluation: Codable, Sendable {
    /// The checkpoint directory (or weights file) the weights came from.
    public var checkpoint: String
    /// What its samples scored.
    public var scores: SampleScores

    /// Writes it as pretty-printed JSON, atomically.
    public func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        try AtomicFile.write(encoder.encode(self) + Data("\n".utf8), to: path)
    }
}
