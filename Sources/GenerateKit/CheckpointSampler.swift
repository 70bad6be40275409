import Foundation
import NFMNN
import NFMTensor
import NFMTraining

/// Why samples could not be drawn from a checkpoint.
public enum SamplingError: Error, CustomStringConvertible {
    /// No `config.json` in the checkpoint's run directory or above.
    case missingConfiguration(path: String)
    /// `config.json` exists but does not decode.
    case unreadableConfiguration(path: String, reason: String)

    /// A sentence naming the file.
    public var description: String {
        switch self {
        case .missingConfiguration(let path):
            return "no config.json found for checkpoint \(path): pass a run directory written by nfm-generate, one of its checkpoints/step-… directories, or a generator/model .safetensors file inside one"
        case let .unreadableConfiguration(path, reason):
            return "cannot read \(path): \(reason)"
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

    /// Writes `count` new samples from the model saved at `checkpoint` as one grid PNG (each pixel
    /// upscaled `scale` times), drawing z from `seed`; to `output`, or by default to
    /// `samples/<model>-<dataset>-<run>/sample-seed<seed>-<count>.png`. Returns the path.
    public static func writeSamples(
        checkpoint: String, count: Int, seed: UInt64, scale: Int = 3, output: String? = nil, samplesRoot: String = "samples"
    ) throws -> String {
        precondition(count >= 1 && scale >= 1, "writeSamples: count and scale must be positive")
        let (configuration, runDirectory) = try self.configuration(near: checkpoint)
        var initialisation = SeededGenerator(seed: 0)
        var noise = SeededGenerator(seed: seed)
        let z = Tensor.randomNormal([count, configuration.latentSize], using: &noise)
        let images: Tensor
        switch configuration.model {
        case .gan:
            let generator = ConvolutionalDecoder(configuration.decoder, using: &initialisation)
            try Checkpoint.loadModule(generator, named: "generator", from: checkpoint)
            generator.eval()
            images = withoutGradient { (tanh(generator(z)) + 1) * 0.5 }
        case .vae:
            let model = VariationalAutoencoder(configuration.variationalAutoencoder, using: &initialisation)
            try Checkpoint.loadModule(model, named: "model", from: checkpoint)
            model.eval()
            images = withoutGradient { model.meanImage(decoded: model.decoder(z)) }
        }
        let runName = (URL(fileURLWithPath: runDirectory).standardizedFileURL.path as NSString).lastPathComponent
        let target = output ?? Experiment.samplesDirectory(root: samplesRoot, configuration: configuration, runName: runName) + "/sample-seed\(seed)-\(count).png"
        let pictures = Pictures(directory: (target as NSString).deletingLastPathComponent, scale: scale)
        return try pictures.writeGrid(images, name: (target as NSString).lastPathComponent)
    }
}
