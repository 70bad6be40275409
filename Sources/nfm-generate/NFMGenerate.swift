import ArgumentParser
import Foundation
import GenerateKit
import NFMData
import NFMExperiments
import NFMKernels
import NFMLog

// nfm-generate: a GAN (SNGAN / InfoMax-GAN recipe) or a VAE, with Neural Function Modules in the
// generator / decoder or as a capacity-matched baseline, on Fashion-MNIST or Sort-of-CLEVR. It writes
// sample grids and scores the model by the Fréchet distance in a feature classifier's penultimate
// layer. The models, losses and metrics live in GenerateKit; this file only maps flags to them.

extension ModelKind: ExpressibleByArgument {}
extension DatasetName: ExpressibleByArgument {}
extension Preset: ExpressibleByArgument {}
@main
struct NFMGenerate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nfm-generate",
        abstract: "Train a GAN or VAE with Neural Function Modules (or a capacity-matched baseline), write samples, score them by FD.",
        discussion: """
            With no arguments: trains a small GAN with NFM in its generator on Fashion-MNIST (about 10 minutes \
            on 2 cores), writes sample grids under samples/, and prints "FD (classifier features)" against the \
            test set. See docs/generate.md.
            """,
        subcommands: [Train.self, Sample.self, Evaluate.self],
        defaultSubcommand: Train.self)

    /// Runs the command line with oneDNN's OpenMP threads sleeping rather than spinning while they
    /// wait (see `Kernels.requirePassiveOpenMPWaiting`; measured here with the load average at 9, a
    /// generator step took 1.3–2.8 s with spinning against 0.23–0.35 s without).
    static func main() {
        Kernels.requirePassiveOpenMPWaiting()
        SeedSweep.followParentProcess()
        Kernels.announceBackend()
        main(nil)
    }
}

/// `nfm-generate [train]`: trains, writes pictures, evaluates.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "Train a model, write its pictures and report its scores (the default subcommand).")

    @Option(help: "The model: gan or vae.")
    var model: ModelKind = .gan

    @Flag(inversion: .prefixedNo, help: "NFM in the generator (GAN) or decoder (VAE); --no-nfm trains the capacity-matched baseline.")
    var nfm = true

    @Option(help: "The data: fashion-mnist or sort-of-clevr (generated, 32×32 RGB).")
    var dataset: DatasetName = .fashionMNIST

    @Option(help: "small (about 10 minutes on 2 cores) or paper (the full recipe: wider, 100,000 steps).")
    var preset: Preset = .small

    @Option(help: "Training steps (GAN: generator updates, each after n_dis discriminator updates). Default: the preset's.")
    var steps: Int?

    @Option(help: "The seed every random stream derives from.")
    var seed: UInt64?

    @Option(help: "Images per step (default 64).")
    var batchSize: Int?

    @Option(help: "The run directory (default runs/<model>-<dataset>-<nfm|baseline>-<time>).")
    var runDir: String?

    @Option(help: "Resume the run (or the --seeds sweep) in this directory from its latest checkpoint (its config.json is used; --steps may extend it).")
    var resume: String?

    @OptionGroup var sweep: SweepOptions

    @Option(help: "Write sample grids and a fixed-noise strip every this many steps (and checkpoint). Default: the preset's.")
    var sampleEvery: Int?

    @Option(help: "Generated and real images for the Fréchet distance (default 10,000).")
    var fdSamples: Int?

    @Option(help: "NFM attention heads (default 1).")
    var heads: Int?

    @Option(help: "NFM top-k: memory entries each read keeps (default 3).")
    var topK: Int?

    @Option(help: "NFM key and query size per head (default 32).")
    var keySize: Int?

    @Option(help: "NFM value size per head (default 32).")
    var valueSize: Int?

    @Option(help: "Discriminator updates per generator update (n_dis, default 5).")
    var discriminatorSteps: Int?

    @Option(help: "Adam's learning rate (default 2e-4 for the GAN, 1e-3 for the VAE).")
    var learningRate: Double?

    @Option(help: "VAE: test images for the importance-weighted bound (default 1,000).")
    var iwaeImages: Int?

    @Option(help: "VAE: importance samples per image (default 100).")
    var iwaeSamples: Int?

    @Option(help: "Where the feature classifier is cached (default runs/feature-classifier-<dataset>).")
    var classifierDirectory: String?

    @Option(help: "Feature-classifier training steps, when it is not cached yet (default 1,500).")
    var classifierSteps: Int?

    @Option(help: "The folder holding Fashion-MNIST's IDX files.")
    var fashionMnistDirectory: String = FashionMNIST.defaultDirectory

    @Option(help: "The folder the picture folders go into.")
    var samplesRoot: String = "samples"

    /// The settings of a fresh run, from the flags.
    func freshConfiguration(useNFM: Bool) -> ExperimentConfiguration {
        var configuration = ExperimentConfiguration.defaults(model: model, dataset: dataset, preset: preset, useNFM: useNFM)
        if let seed { configuration.seed = seed }
        if let batchSize { configuration.batchSize = batchSize }
        if let heads { configuration.nfm.heads = heads }
        if let topK { configuration.nfm.topK = topK }
        if let keySize { configuration.nfm.keySize = keySize }
        if let valueSize { configuration.nfm.valueSize = valueSize }
        if let discriminatorSteps { configuration.discriminatorSteps = discriminatorSteps }
        if let learningRate { configuration.learningRate = learningRate }
        if let classifierSteps { configuration.classifierSteps = classifierSteps }
        applyResumableFlags(to: &configuration)
        return configuration
    }

    /// The flags that may change a run when it resumes too.
    func applyResumableFlags(to configuration: inout ExperimentConfiguration) {
        if let steps { configuration.steps = steps }
        if let sampleEvery {
            configuration.sampleEvery = sampleEvery
            configuration.checkpointEvery = sampleEvery
        }
        if let fdSamples { configuration.fdSamples = fdSamples }
        if let iwaeImages { configuration.iwaeImages = iwaeImages }
        if let iwaeSamples { configuration.iwaeSamples = iwaeSamples }
    }

    /// `--seeds`, or `--resume` of a sweep: NFM and the baseline on every seed (NFMExperiments).
    func runSweep() throws {
        if sweep.seeds != nil && seed != nil { throw ValidationError("--seeds and --seed both choose seeds; give only one") }
        if resume == nil {
            // Refused settings stop the sweep before anything starts.
            let configuration = freshConfiguration(useNFM: true)
            if let problem = configuration.problem() { throw ValidationError(problem) }
            // The runs share the feature classifier: train it once here rather than in two runs at once.
            let data = try ImageData.load(configuration.dataset, fashionMNISTDirectory: fashionMnistDirectory)
            try Experiment.prepareFeatureClassifier(
                configuration: configuration, data: data, classifierDirectory: classifierDirectory, log: consoleLog)
        }
        let pictures = ["--samples-root", SweepArm.runDirectoryToken + "/samples"]
        let code = try SweepCommand.run(
            program: "nfm-generate", arguments: Array(CommandLine.arguments.dropFirst()), seeds: sweep.seeds, resume: resume,
            directory: runDir, concurrentRuns: sweep.seedJobs,
            arms: [SweepArm(name: "baseline", arguments: ["--no-nfm"] + pictures), SweepArm(name: "nfm", arguments: ["--nfm"] + pictures)],
            modelOptions: ["--samples-root"], modelFlags: ["--nfm", "--no-nfm"],
            headlineMetrics: model == .vae ? ["eval/elbo", "eval/iwae", "eval/fd"] : ["eval/fd"], log: consoleLog)
        if code != 0 { throw ExitCode(code) }
    }

    mutating func run() throws {
        if sweep.isSweep(resume: resume) { return try runSweep() }
        var configuration: ExperimentConfiguration
        if let resume {
            configuration = try ExperimentConfiguration.load(runDirectory: resume)
            applyResumableFlags(to: &configuration)
        } else {
            configuration = freshConfiguration(useNFM: nfm)
        }
        // Checked before the run directory is made, so that refused settings leave nothing behind.
        if let problem = configuration.problem() { throw ValidationError(problem) }
        let run = try RunDirectory(
            path: resume ?? runDir ?? "runs/" + RunDirectory.timestampedName(
                program: "\(configuration.model.rawValue)-\(configuration.dataset.rawValue)", model: configuration.variantName),
            resume: resume != nil)

        let data = try ImageData.load(configuration.dataset, fashionMNISTDirectory: fashionMnistDirectory)
        let experiment = Experiment(
            configuration: configuration, data: data, run: run, samplesRoot: samplesRoot, classifierDirectory: classifierDirectory,
            log: { print($0) })
        guard let result = try experiment.train(resumeFrom: resume) else {
            print("interrupted: resume with nfm-generate --resume \(run.path)")
            throw ExitCode(130)  // as nfm-classify and nfm-rl do, so that a sweep records the run as unfinished
        }
        print(Train.summary(result))
        run.printSummary()
    }

    static func summary(_ result: ExperimentResult) -> String {
        let configuration = result.configuration
        let variant = configuration.useNFM ? "NFM" : "capacity-matched baseline"
        let network = configuration.model == .gan ? "generator" : "decoder"
        var lines = [
            "",
            "Results: \(configuration.model.rawValue.uppercased()), \(configuration.dataset.rawValue), \(variant), seed \(configuration.seed)",
        ] + result.scores.reportLines(
            classifier: String(format: "classifier test accuracy %.4f (%@)", result.classifierAccuracy, result.classifierAccuracyMeaning))
        if let elbo = result.testELBO, let reconstruction = result.testReconstruction, let kl = result.testKL {
            lines.append(String(format: "  test ELBO: %.2f nats per image (reconstruction %.2f, KL %.2f)", elbo, reconstruction, kl))
        }
        if let iwae = result.testIWAE, let images = result.iwaeImages, let samples = result.iwaeSamples {
            lines.append(String(format: "  importance-weighted bound (k = %d, %d test images): %.2f nats per image", samples, images, iwae))
        }
        lines.append(
            "  \(network) parameters: \(result.decoderParameters), \(result.decoderTrainedParameters) trained "
                + "(NFM \(result.nfmDecoderParameters), \(result.nfmDecoderTrainedParameters) trained; capacity-matched baseline \(result.baselineDecoderParameters))")
        lines.append(
            String(
                format: "  time: %.1f min training (%d steps this session, median %.3f s/step), %.1f min final evaluation",
                result.trainingSeconds / 60, result.sessionSteps, result.medianStepSeconds, result.evaluationSeconds / 60))
        lines.append("  pictures: \(result.samplesDirectory)/ (samples.png, progress.png\(configuration.model == .vae ? ", reconstructions.png, interpolations.png" : ""))")
        return lines.joined(separator: "\n")
    }
}

/// `nfm-generate sample`: new samples from a saved model.
struct Sample: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write new samples from a saved generator (GAN) or decoder (VAE).")

    @Option(help: "A run directory, one of its checkpoints/step-… directories, or a weights .safetensors file inside one.")
    var checkpoint: String

    @Option(help: "How many samples.")
    var count: Int = 64

    @Option(help: "The seed of the latent vectors.")
    var seed: UInt64 = 0

    @Option(help: "Upscaling of each pixel in the grid.")
    var scale: Int = 3

    @Option(help: "The PNG to write (default samples/<model>-<dataset>-<run>/sample-seed<seed>-<count>.png).")
    var output: String?

    func validate() throws {
        if count < 1 { throw ValidationError("--count must be at least 1") }
        if scale < 1 { throw ValidationError("--scale must be at least 1") }
    }

    func run() throws {
        let path = try CheckpointSampler.writeSamples(checkpoint: checkpoint, count: count, seed: seed, scale: scale, output: output)
        print("wrote \(count) samples to \(path)")
    }
}

/// `nfm-generate evaluate`: a saved model scored as its run's final evaluation scores it.
struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score a saved generator (GAN) or decoder (VAE) by FD and class balance, as its run's final evaluation does.",
        discussion: """
            Draws the run's own evaluation noise, so that the last checkpoint of a finished run gives back its FD \
            (to rounding, with another thread count), and adds the class balance to runs that finished before it \
            was measured.
            """)

    @Option(help: "A run directory (its latest checkpoint), one of its checkpoints/step-… directories, or a weights .safetensors file inside one.")
    var checkpoint: String

    @Option(help: "Also write the scores as JSON to this file.")
    var output: String?

    @Flag(help: "Add the class balance (eval/class_kl) to the finished run's final_metrics.json, for a sweep's summary; only if the checkpoint reproduces the run's FD.")
    var record = false

    @Option(help: "Where the feature classifier is cached (default runs/feature-classifier-<dataset>).")
    var classifierDirectory: String?

    @Option(help: "The folder holding Fashion-MNIST's IDX files.")
    var fashionMnistDirectory: String = FashionMNIST.defaultDirectory

    func run() throws {
        let (configuration, runDirectory) = try CheckpointSampler.configuration(near: checkpoint)
        let data = try ImageData.load(configuration.dataset, fashionMNISTDirectory: fashionMnistDirectory)
        let result = try CheckpointSampler.evaluate(checkpoint: checkpoint, data: data, classifierDirectory: classifierDirectory, log: consoleLog)
        print("\(result.checkpoint): \(configuration.model.rawValue.uppercased()), \(configuration.variantName), seed \(configuration.seed)")
        print(result.scores.reportLines().joined(separator: "\n"))
        if let output {
            try result.write(to: output)
            print("wrote \(output)")
        }
        if record {
            try CheckpointSampler.record(result, inRun: runDirectory)
            print("recorded eval/class_kl in \(runDirectory)/final_metrics.json")
        }
    }
}
