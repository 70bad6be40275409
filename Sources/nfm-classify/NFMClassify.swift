// nfm-classify: the paper's headline experiment (Lamb et al. 2021, §5.1) — relational reasoning on
// Sort-of-CLEVR with unseen shape–colour combinations, baseline CNN-MLP against the two-pass CNN-MLP
// with NFM — plus Fashion-MNIST classification with a small CNN. This file is only the command
// line; the work is in ClassifyKit. See docs/classify.md.

import ArgumentParser
import ClassifyKit
import Foundation
import NFMData
import NFMDistributed
import NFMExperiments
import NFMKernels
import NFMLog
import NFMModels
import NFMTraining

@main
struct NFMClassify: ParsableCommand {
    /// Runs the command line with oneDNN's OpenMP threads sleeping rather than spinning while they
    /// wait (see `Kernels.requirePassiveOpenMPWaiting`; measured here, spinning made an NFM step
    /// take 25 s instead of 3 s on the shared 2-core machine).
    static func main() {
        // Data-parallel ranks on one machine share its cores; set before anything reads the thread count.
        if CommandLine.arguments.contains("--data-parallel") { MPI.shareCoresAmongLocalRanks() }
        Kernels.requirePassiveOpenMPWaiting()
        SeedSweep.followParentProcess()
        Kernels.announceBackend()
        main(nil)
    }

    static let configuration = CommandConfiguration(
        commandName: "nfm-classify",
        abstract: "Train and compare a baseline and an NFM classifier (Sort-of-CLEVR relational reasoning, or Fashion-MNIST).",
        discussion: """
            With no arguments, trains the baseline and the NFM model on generated Sort-of-CLEVR with 2 held-out \
            colours (the quick preset: reduced widths, data and steps, about 10 minutes on 2 cores) and prints \
            both accuracy tables and a side-by-side summary. `--preset paper` gives the paper's settings.
            """,
        subcommands: [Train.self, Generate.self, Evaluate.self],
        defaultSubcommand: Train.self)
}

extension ClassifyDataset: ExpressibleByArgument {}
extension ClassifyModelChoice: ExpressibleByArgument {}
extension ClassifyPreset: ExpressibleByArgument {}
extension ClassifyBatching: ExpressibleByArgument {}
extension HeadPooling: ExpressibleByArgument {}
extension ClassifyArchitecture: ExpressibleByArgument {}
extension ClassifyLearningRateSchedule: ExpressibleByArgument {}
/// A comma-separated list of channel counts, e.g. `48,96,192,384`.
struct Widths: ExpressibleByArgument {
    var values: [Int]

    init?(argument: String) {
        let parts = argument.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !parts.isEmpty, parts.allSatisfy({ $0 != nil }) else { return nil }
        values = parts.map { $0! }
    }
}

/// Data flags shared by the subcommands.
struct DataOptions: ParsableArguments {
    @Option(help: "The data set: sort-of-clevr or fashion-mnist. (default: sort-of-clevr)")
    var dataset: ClassifyDataset?

    @Option(help: ArgumentHelp(
        "Read the data from here instead: a directory written by `generate` (Sort-of-CLEVR), or the Fashion-MNIST IDX files.",
        discussion: "Fashion-MNIST is read from /usr/share/datasets/fashion-mnist by default.", valueName: "dir"))
    var dataDir: String?

    @Option(help: "Sort-of-CLEVR colours seen in one shape only in training; the OOD test set asks about their other shape (0...6, 0 = no OOD split). (default: 2; Fashion-MNIST 0)")
    var heldoutColors: Int?

    @Option(help: "Training images (Sort-of-CLEVR: 20 questions each; Fashion-MNIST: the first N). (default: quick 4000 / medium and paper 9800; Fashion-MNIST 60000)")
    var trainImages: Int?

    @Option(help: "In-distribution test images. (default: quick 500 / medium and paper 2000; Fashion-MNIST 10000)")
    var testImages: Int?

    @Option(help: "Out-of-distribution test images (Sort-of-CLEVR). (default: quick 500 / medium and paper 2000)")
    var oodImages: Int?

    @Option(help: "The seed of every random draw: data, batch order, weights, dropout. (default: 1)")
    var seed: UInt64?

    func apply(to configuration: inout ClassifyConfiguration) {
        if let dataDir { configuration.dataDirectory = dataDir }
        if let heldoutColors { configuration.heldOutColors = heldoutColors }
        if let trainImages { configuration.trainingImages = trainImages }
        if let testImages { configuration.testImages = testImages }
        if let oodImages { configuration.outOfDistributionImages = oodImages }
        if let seed { configuration.seed = seed }
    }
}

/// Model flags shared by `train` and `eval`.
struct ModelOptions: ParsableArguments {
    @Option(help: "NFM attention heads. (default: 4)")
    var heads: Int?

    @Option(help: "NFM key (and query) size per head. (default: 16)")
    var keySize: Int?

    @Option(help: "NFM value size per head. (default: 16)")
    var valueSize: Int?

    @Option(help: "Memory slots each NFM read keeps (top-k sparsity; the reference ran with 3). (default: 3)")
    var topK: Int?

    @Option(help: "Passes of the NFM trunk over the image (the baseline makes one). (default: 2)")
    var passes: Int?

    @Option(help: ArgumentHelp(
        "Channels of the trunk's stride-2 convolutions, comma-separated. (default: Sort-of-CLEVR quick 24,48,96,192 / paper 48,96,192,384; Fashion-MNIST quick 32,64,128 / paper 64,128,256,512, the ResNet-18 stages)",
        valueName: "w1,w2,..."))
    var widths: Widths?

    @Option(help: "Fashion-MNIST network: cnn (the small CNN) or preact-resnet18 (NFM after every residual block). (default: quick cnn / paper preact-resnet18)")
    var architecture: ClassifyArchitecture?

    @Option(help: "Sort-of-CLEVR: how the trunk's 5×5 map reaches the head: reference (avg-pool 4 then resize to 5×5, as the reference code; it averages positions away) or none (the map as it is). (default: quick none / paper reference)")
    var headPooling: HeadPooling?

    func apply(to configuration: inout ClassifyConfiguration) {
        if let heads { configuration.heads = heads }
        if let keySize { configuration.keySize = keySize }
        if let valueSize { configuration.valueSize = valueSize }
        if let topK { configuration.topK = topK }
        if let passes { configuration.passes = passes }
        if let widths { configuration.widths = widths.values }
        if let headPooling { configuration.headPooling = headPooling }
        if let architecture { configuration.architecture = architecture }
    }
}

/// Prints an error without a stack trace and exits non-zero.
func fail(_ error: Error) -> ExitCode {
    let message = (error as? LocalizedError)?.errorDescription ?? String(describing: error)
    ProgressBar.writeToStandardError("nfm-classify: error: \(message)\n")
    return .failure
}

/// Throws ArgumentParser's `ValidationError` listing every problem of `configuration`.
func checkConfiguration(_ configuration: ClassifyConfiguration) throws {
    let problems = configuration.problems()
    if !problems.isEmpty { throw ValidationError(problems.joined(separator: "\n")) }
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train the baseline and/or NFM model, evaluate them, and compare (the default subcommand).")

    @Option(help: "baseline, nfm, or both (trained one after the other on the same batches). (default: both)")
    var model: ClassifyModelChoice?

    @Option(help: "quick (about 10 minutes on 2 cores), medium (Sort-of-CLEVR where the models learn the images: 9,800 images, 10,000 cosine-annealed steps; about 1 h for NFM on 2 cores) or paper (the paper's settings; a GPU job). (default: quick)")
    var preset: ClassifyPreset?

    @OptionGroup var data: DataOptions
    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Optimisation steps per model. (default: Sort-of-CLEVR quick 1200 / medium 10000 / paper 459300 = 150 epochs; Fashion-MNIST quick 1000 / paper 28110)")
    var steps: Int?

    @Option(help: "Examples per step (Sort-of-CLEVR: questions, or images with --batching images). (default: Sort-of-CLEVR quick 16 images / paper 64 questions; Fashion-MNIST 64)")
    var batchSize: Int?

    @Option(help: "Sort-of-CLEVR batches: questions (random (image, question) pairs, as the paper) or images (each with all 20 questions; the trunk runs once per image). (default: quick images / paper questions)")
    var batching: ClassifyBatching?

    @Option(help: "Adam's learning rate. (default: Sort-of-CLEVR quick 1e-3 / paper 1e-4, the paper's; Fashion-MNIST 1e-4)")
    var learningRate: Double?

    @Option(name: .customLong("lr-schedule"), help: "How the learning rate moves: constant, or cosine (annealed to 0 over the steps, as torch's CosineAnnealingLR). (default: constant; medium cosine)")
    var learningRateSchedule: ClassifyLearningRateSchedule?

    @Option(help: "Evaluate on the test set(s) every N steps and at the end (0: only at the end). (default: Sort-of-CLEVR quick 400 / medium 1000 / paper 3062; Fashion-MNIST quick 500 / paper 937)")
    var evalEvery: Int?

    @Option(help: "Checkpoint every N steps and at the end (0: only at the end). (default: Sort-of-CLEVR quick 400 / medium 1000 / paper 3062; Fashion-MNIST quick 500 / paper 937)")
    var checkpointEvery: Int?

    @Option(help: ArgumentHelp("The run directory. (default: runs/nfm-classify-<model>-<timestamp>)", valueName: "dir"))
    var runDir: String?

    @Option(help: ArgumentHelp("Continue the run (or the --seeds sweep) in this directory from its latest checkpoints, with its saved settings.", valueName: "run-dir"))
    var resume: String?

    @OptionGroup var sweep: SweepOptions

    @Flag(help: ArgumentHelp(
        "Under mpirun, train one run over the ranks: each takes its share of every batch and the gradients are averaged (README: cluster). Without mpirun, a run of one rank.",
        discussion: "Batch norm uses each rank's own statistics; rank 0 alone writes checkpoints, metrics and pictures."))
    var dataParallel = false

    /// The run's settings and directory from the flags (and, when resuming, the saved config.json).
    func resolve() throws -> (configuration: ClassifyConfiguration, runPath: String) {
        if let resume {
            if runDir != nil { throw ValidationError("--resume and --run-dir both name a run directory; give only --resume") }
            let saved = try Checkpoint.loadConfiguration(ClassifyConfiguration.self, ofRun: resume, log: consoleLog)
            var requested = saved
            apply(to: &requested)
            if let preset { requested.preset = preset }
            if let dataset = data.dataset { requested.dataset = dataset }
            let conflicts = ClassifySession.resumeConflicts(saved: saved, requested: requested)
            if !conflicts.isEmpty { throw ClassifyError.resumeMismatch(path: resume, keys: conflicts) }
            return (requested, resume)
        }
        var configuration = ClassifyConfiguration.defaults(preset: preset ?? .quick, dataset: data.dataset ?? .sortOfCLEVR)
        apply(to: &configuration)
        let runPath = runDir ?? "runs/" + RunDirectory.timestampedName(program: "nfm-classify", model: configuration.model.rawValue)
        return (configuration, runPath)
    }

    func apply(to configuration: inout ClassifyConfiguration) {
        if let model { configuration.model = model }
        data.apply(to: &configuration)
        modelOptions.apply(to: &configuration)
        if let steps { configuration.steps = steps }
        if let batchSize { configuration.batchSize = batchSize }
        if let batching { configuration.batching = batching }
        if let learningRate { configuration.learningRate = learningRate }
        if let learningRateSchedule { configuration.learningRateSchedule = learningRateSchedule }
        if let evalEvery { configuration.evaluationInterval = evalEvery }
        if let checkpointEvery { configuration.checkpointInterval = checkpointEvery }
    }

    func validate() throws {
        // A resumed run's settings are checked in run(), after its config.json is read.
        if resume == nil { try checkConfiguration(try resolve().configuration) }
        if sweep.seeds != nil && data.seed != nil { throw ValidationError("--seeds and --seed both choose seeds; give only one") }
        if dataParallel && sweep.isSweep(resume: resume) {
            throw ValidationError("--data-parallel trains one run over the ranks, and a sweep (--seeds) spreads seeds over them; give only one")
        }
        if !dataParallel && !sweep.isSweep(resume: resume), let ranks = MPI.launchedRankCount, ranks > 1 {
            throw ValidationError("started under mpirun with \(ranks) ranks: give --data-parallel (one run over the ranks) or --seeds (seeds spread over them)")
        }
    }

    /// `--data-parallel`: one run over the ranks of the MPI job (or over this process alone), rank 0
    /// writing its files. An error on any rank ends every rank, since the others would wait for it.
    func runDataParallel() throws {
        let group: any ProcessGroup
        do {
            group = try MPI.launched() ?? SingleProcess()
        } catch {
            throw fail(error)
        }
        defer { (group as? MPI)?.finalize() }
        let dataParallel = DataParallel(group: group)
        if !MPI.isLaunched { consoleLog("--data-parallel without mpirun: training as a single rank, the same as a plain run") }
        let interrupted: Bool
        do {
            let (configuration, runPath) = try resolve()
            try checkConfiguration(configuration)
            try dataParallel.checkBatchSize(configuration.batchSize)
            if dataParallel.isPrimary {
                let results = try ClassifySession.train(configuration: configuration, runPath: runPath, resume: resume != nil, dataParallel: dataParallel)
                if case .interrupted = results.last?.outcome { interrupted = true } else { interrupted = false }
            } else {
                let outcomes = try ClassifySession.trainReplica(configuration: configuration, dataParallel: dataParallel)
                if case .interrupted = outcomes.last { interrupted = true } else { interrupted = false }
            }
        } catch {
            let message = (error as? LocalizedError)?.errorDescription ?? String(describing: error)
            let rank = dataParallel.isPrimary ? "" : " (rank \(dataParallel.rank))"
            ProgressBar.writeToStandardError("nfm-classify: error\(rank): \(message)\n")
            if dataParallel.size > 1 { group.abort(code: 1) }
            throw ExitCode.failure
        }
        if interrupted { throw ExitCode(130) }
    }

    /// `--seeds`, or `--resume` of a sweep: every seed of the comparison as its own run (NFMExperiments).
    func runSweep() throws {
        let models = (model ?? .both).kinds
        let code: Int32
        do {
            code = try SweepCommand.run(
                program: "nfm-classify", arguments: Array(CommandLine.arguments.dropFirst()), seeds: sweep.seeds, resume: resume,
                directory: runDir, concurrentRuns: sweep.seedJobs,
                arms: models.map { SweepArm(name: $0.rawValue, arguments: ["--model", $0.rawValue]) }, modelOptions: ["--model"],
                headlineMetrics: ["eval/accuracy", "eval/relational_accuracy", "ood/accuracy"], log: consoleLog)
        } catch {
            throw fail(error)
        }
        if code != 0 { throw ExitCode(code) }
    }

    func run() throws {
        if sweep.isSweep(resume: resume) { return try runSweep() }
        if dataParallel { return try runDataParallel() }
        let resolved: (configuration: ClassifyConfiguration, runPath: String)
        do {
            resolved = try resolve()
        } catch {
            throw fail(error)
        }
        try checkConfiguration(resolved.configuration)
        let results: [ModelResult]
        do {
            results = try ClassifySession.train(configuration: resolved.configuration, runPath: resolved.runPath, resume: resume != nil)
        } catch {
            throw fail(error)
        }
        if case .interrupted = results.last?.outcome { throw ExitCode(130) }
    }
}

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a Sort-of-CLEVR data set (train/, test/, ood/) in the documented export format.",
        discussion: """
            Each split is a folder with images.u8 (uint8 [N, 75, 75, 3]), images.json (shape and vocabularies) and \
            scenes.jsonl (each image's objects and its 20 questions with answers); see docs/classify.md. \
            `train --data-dir DIR` trains on it. The default sizes are the paper's (9,800 / 2,000 / 2,000); \
            --preset quick writes the quick default's.
            """)

    @Option(help: ArgumentHelp("The output directory (created).", valueName: "dir"))
    var out: String

    @Option(help: "paper or medium (9800 / 2000 / 2000 images) or quick (4000 / 500 / 500). (default: paper)")
    var preset: ClassifyPreset?

    @Option(help: "Training images. (default: from the preset)")
    var trainImages: Int?

    @Option(help: "In-distribution test images. (default: from the preset)")
    var testImages: Int?

    @Option(help: "Out-of-distribution test images. (default: from the preset)")
    var oodImages: Int?

    @Option(help: "Colours seen in one shape only in training (0...6). (default: 2)")
    var heldoutColors: Int?

    @Option(help: "The seed; the same as a training run's --seed gives that run's data. (default: 1)")
    var seed: UInt64?

    func configuration() -> ClassifyConfiguration {
        var configuration = ClassifyConfiguration.defaults(preset: preset ?? .paper, dataset: .sortOfCLEVR)
        if let trainImages { configuration.trainingImages = trainImages }
        if let testImages { configuration.testImages = testImages }
        if let oodImages { configuration.outOfDistributionImages = oodImages }
        if let heldoutColors { configuration.heldOutColors = heldoutColors }
        if let seed { configuration.seed = seed }
        return configuration
    }

    func validate() throws {
        let configuration = configuration()
        if !(0...6).contains(configuration.heldOutColors) { throw ValidationError("--heldout-colors must be 0...6, got \(configuration.heldOutColors)") }
        if configuration.trainingImages < 0 || configuration.testImages < 0 || configuration.outOfDistributionImages < 0 {
            throw ValidationError("image counts must be non-negative")
        }
    }

    func run() throws {
        let start = ProgressBar.monotonicSeconds()
        let splits = SortOfCLEVR.generate(ClassifyData.sortOfCLEVRConfiguration(configuration()))
        let generated = ProgressBar.monotonicSeconds()
        do {
            try SortOfCLEVR.export(splits, to: URL(fileURLWithPath: out))
        } catch {
            throw fail(error)
        }
        print(ClassifyData.sortOfCLEVR(train: splits.train, test: splits.test, outOfDistribution: splits.outOfDistribution).summary)
        print(String(format: "generated in %.1f s, written in %.1f s", generated - start, ProgressBar.monotonicSeconds() - generated))
        print("Outputs:")
        for split in [splits.train.split, splits.test.split] + (splits.outOfDistribution.map { [$0.split] } ?? []) {
            let name = split.rawValue.padding(toLength: 5, withPad: " ", startingAt: 0)
            print("  \(name)  \(out)/\(split.rawValue)/ (images.u8, images.json, scenes.jsonl)")
        }
    }
}

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a saved model: accuracy tables and (NFM) the attention map.",
        discussion: """
            The model's settings come from the config.json of the run holding the checkpoint; flags given here \
            override them (and are required when there is no config.json).
            """)

    @Option(help: ArgumentHelp(
        "A run directory, a checkpoint directory (checkpoints/step-N) or a model.safetensors file. A --model both run evaluates both models.",
        valueName: "path"))
    var checkpoint: String

    @Option(help: "baseline or nfm, when there is no config.json. (default: nfm)")
    var model: ClassifyModelChoice?

    @OptionGroup var data: DataOptions
    @OptionGroup var modelOptions: ModelOptions

    @Option(help: ArgumentHelp("Where to write the outputs. (default: runs/nfm-classify-eval-<model>-<timestamp>)", valueName: "dir"))
    var runDir: String?

    func resolve() throws -> ClassifyConfiguration {
        var configuration: ClassifyConfiguration
        if let path = ClassifyCheckpointEvaluation.findConfiguration(near: checkpoint) {
            // A damaged config.json falls back to the copy its checkpoints keep.
            configuration = try Checkpoint.loadConfiguration(
                ClassifyConfiguration.self, ofRun: String(path.dropLast(ClassifySession.configurationFile.count + 1)), log: consoleLog)
            if let dataset = data.dataset, dataset != configuration.dataset {
                throw ValidationError("--dataset \(dataset.rawValue) differs from the checkpoint's \(configuration.dataset.rawValue) (\(path))")
            }
        } else {
            configuration = ClassifyConfiguration.defaults(preset: .quick, dataset: data.dataset ?? .sortOfCLEVR)
            configuration.model = .nfm
        }
        if let model { configuration.model = model }
        data.apply(to: &configuration)
        modelOptions.apply(to: &configuration)
        return configuration
    }

    func run() throws {
        let configuration: ClassifyConfiguration
        do {
            configuration = try resolve()
        } catch let error as ValidationError {
            throw error
        } catch {
            throw fail(error)
        }
        try checkConfiguration(configuration)
        let runPath = runDir ?? "runs/" + RunDirectory.timestampedName(program: "nfm-classify-eval", model: configuration.model.rawValue)
        do {
            _ = try ClassifyCheckpointEvaluation.evaluate(checkpoint: checkpoint, configuration: configuration, runPath: runPath)
        } catch {
            throw fail(error)
        }
    }
}
