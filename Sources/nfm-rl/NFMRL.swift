// nfm-rl: DQN on the MinAtar games (Young & Tian 2019), with MinAtar's baseline network or a
// two-pass Neural Function Modules encoder (Lamb et al. 2021). See docs/rl.md.
//
//   swift run -c release nfm-rl                      # Breakout, baseline DQN, about ten minutes
//   swift run -c release nfm-rl --encoder nfm --game space_invaders
//   swift run -c release nfm-rl --preset minatar     # MinAtar's 5 million frames
//   swift run -c release nfm-rl --resume runs/NAME   # continue a run from its latest checkpoint
//   swift run -c release nfm-rl eval --checkpoint runs/NAME
//   swift run -c release nfm-rl play --game breakout

import ArgumentParser
import Envs
import Foundation
import NFMDistributed
import NFMExperiments
import NFMKernels
import NFMLog
import NFMTensor
import NFMTraining
import RLKit

/// The command: `train` (the default), `eval`, `play`, `speed`.
@main
struct NFMRL: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nfm-rl",
        abstract: "DQN on the MinAtar games, with MinAtar's network or a two-pass NFM encoder.",
        subcommands: [Train.self, Evaluate.self, Play.self, Speed.self],
        defaultSubcommand: Train.self)

    /// Runs the command line with oneDNN's OpenMP threads sleeping rather than spinning while they
    /// wait (see `Kernels.requirePassiveOpenMPWaiting`), which matters with `--threads 2`.
    static func main() {
        Kernels.requirePassiveOpenMPWaiting()
        SeedSweep.followParentProcess()
        Kernels.announceBackend()
        main(nil)
    }
}

/// Writes a line to standard output at once (unbuffered), so that it stays in order with the
/// progress bar on standard error.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// The default frame budget: about ten minutes of baseline DQN on Breakout on two cores (docs/rl.md).
let defaultFrames = DQNConfiguration.defaultFrames

/// Trains a DQN agent in a run directory (fresh or resumed).
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "Train a DQN agent (the default command).")

    @Option(help: "MinAtar game: \(Environment.gameNames.joined(separator: ", ")).")
    var game = "breakout"

    @Option(help: "Frames to play (default \(defaultFrames); --preset minatar: \(DQNConfiguration.minatarFrames)). With --resume, extends the run.")
    var frames: Int?

    @Option(help: "The one seed: network initialisation, environment and the agent's draws.")
    var seed: UInt64 = 0

    @Option(help: "Encoder: baseline (MinAtar's conv 16@3×3), nfm (two passes with NFM attention) or two-layer (the NFM encoder's two convolutions without attention: the control for its extra layer).")
    var encoder: EncoderKind = .baseline

    @Option(help: "minatar: MinAtar's published run (5M frames; the other settings are MinAtar's by default).")
    var preset: Preset?

    @Option(help: "Run directory (default runs/nfm-rl-<encoder>-<game>-<time>).")
    var runDir: String?

    @Option(help: "Resume the run (or the --seeds sweep) in this directory from its latest checkpoint (its config.json is reused).")
    var resume: String?

    @OptionGroup var sweep: SweepOptions

    @Option(help: "With --seeds: the encoders compared, comma-separated (default baseline,nfm; baseline alone runs only the seeds of MinAtar's network).")
    var encoders = "baseline,nfm"

    @Option(help: "Frames between checkpoints (0: only at the end; default 100000).")
    var checkpointEvery: Int?

    @Option(help: "Frames of uniformly random play before learning (MinAtar: 5000).")
    var replayStart: Int?

    @Option(help: "Replay capacity in transitions (MinAtar: 100000).")
    var replayCapacity: Int?

    @Option(help: "Evaluation episodes at the end (ε = 0.01).")
    var evaluationEpisodes: Int?

    @Option(help: "NFM attention heads.")
    var heads: Int?

    @Option(help: "NFM top-k: memory entries each read keeps.")
    var topK: Int?

    @Option(help: "oneDNN (OpenMP) threads; 1 is fastest for this small network (docs/rl.md).")
    var threads = 1

    enum Preset: String, ExpressibleByArgument, CaseIterable {
        case minatar
    }

    func validate() throws {
        if threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
        // A fresh run's settings (or a sweep's, before any of its runs starts); a resumed run's are
        // checked in run(), once its config.json is read.
        if resume == nil { try freshConfiguration().validate() }
    }

    /// The settings of a fresh run, from the flags.
    func freshConfiguration() throws -> DQNConfiguration {
        _ = try Environment(game: game, seed: 0)  // an unknown game fails here, listing the valid ones
        var configuration = DQNConfiguration(game: game, frames: frames ?? defaultFrames, seed: seed, encoder: encoder)
        if preset == .minatar { configuration.frames = frames ?? DQNConfiguration.minatarFrames }
        if let replayStart { configuration.exploration.randomFrames = replayStart }
        if let replayCapacity { configuration.replayCapacity = replayCapacity }
        if let evaluationEpisodes { configuration.evaluationEpisodes = evaluationEpisodes }
        if let heads { configuration.nfm.heads = heads }
        if let topK { configuration.nfm.topK = topK }
        if let checkpointEvery { configuration.checkpointInterval = checkpointEvery }
        return configuration
    }

    /// `--seeds`, or `--resume` of a sweep: each encoder on every seed (NFMExperiments).
    func runSweep() throws {
        let arms = try EncoderKind.list(encoders, option: "--encoders").map {
            SweepArm(name: $0.rawValue, arguments: ["--encoder", $0.rawValue])
        }
        let code = try SweepCommand.run(
            program: "nfm-rl", arguments: Array(CommandLine.arguments.dropFirst()), seeds: sweep.seeds, resume: resume, directory: runDir,
            concurrentRuns: sweep.seedJobs, arms: arms, modelOptions: ["--encoder", "--encoders"],
            headlineMetrics: ["eval/mean_return", "rollout/average_return_100"],
            references: DQNConfiguration.minatarPublishedReturn[game].map {
                [SweepReference(metric: "rollout/average_return_100", value: $0, label: "MinAtar DQN at 5M frames (published)")]
            } ?? [],
            runThreads: threads == 1 ? .one : .all, log: consoleLog)
        if code != 0 { throw ExitCode(code) }
    }

    func run() throws {
        if sweep.isSweep(resume: resume) { return try runSweep() }
        var configuration: DQNConfiguration
        if let resume {
            configuration = try DQNRun.configuration(ofRun: resume)
            if let frames { configuration.frames = frames }
            if let checkpointEvery { configuration.checkpointInterval = checkpointEvery }
        } else {
            configuration = try freshConfiguration()
        }
        // Checked before the run directory is made, so that refused settings leave nothing behind.
        try configuration.validate()
        let run = try runDirectory(for: configuration)

        ComputeThreads.set(threads)
        let dqn = try DQNRun(configuration: configuration, run: run, resume: resume != nil)
        let counts = try parameterCounts(for: configuration)
        say("nfm-rl: \(configuration.game), \(configuration.encoder.rawValue) encoder, \(configuration.frames) frames, seed \(configuration.seed)")
        say("parameters: baseline \(counts.baseline), two-layer \(counts.twoLayer), nfm \(counts.nfm) (\(counts.nfmTrained) trained; see docs/rl.md)")
        if dqn.trainer.step > 0 { say("resumed at frame \(dqn.trainer.step)") }
        say("run directory: \(run.path)")
        let summary = try dqn.train()
        say(String(format: "frames/s %.0f wall-clock over %.1f s (%.0f per CPU-second); %d episodes; 100-episode average return %.2f",
                   summary.framesPerSecond, summary.trainingSeconds, summary.framesPerCPUSecond, summary.episodes, summary.averageReturn))
        if let evaluation = summary.evaluationReturn {
            say(String(format: "evaluation (ε = %.2f, %d episodes): mean return %.2f", configuration.evaluationEpsilon, configuration.evaluationEpisodes, evaluation))
        }
        FileHandle.standardOutput.write(Data(run.summary().utf8))
        // 128 + SIGINT, as a shell reports a Ctrl-C: a sweep records the run as unfinished.
        if case .interrupted = summary.outcome { throw ExitCode(130) }
    }

    /// The run's directory: the one resumed, `--run-dir`, or a new timestamped one under runs/.
    private func runDirectory(for configuration: DQNConfiguration) throws -> RunDirectory {
        guard let path = resume ?? runDir else {
            return try RunDirectory(
                name: RunDirectory.timestampedName(program: "nfm-rl", model: "\(configuration.encoder.rawValue)-\(configuration.game)"))
        }
        let url = URL(fileURLWithPath: path).standardizedFileURL
        return try RunDirectory(name: url.lastPathComponent, root: url.deletingLastPathComponent().path, resume: resume != nil)
    }
}

/// Parameter counts of every encoder for a configuration's game: total, and for NFM the trained ones
/// (pass 1's slots own query and out layers that never run).
func parameterCounts(for configuration: DQNConfiguration) throws -> (baseline: Int, twoLayer: Int, nfm: Int, nfmTrained: Int) {
    let environment = try Environment(game: configuration.game, seed: 0)
    var generator = SeededGenerator(seed: 0)
    let baseline = BaselineQNetwork(inputChannels: environment.channelCount, actionCount: environment.numActions, using: &generator)
    let twoLayer = TwoLayerQNetwork(inputChannels: environment.channelCount, actionCount: environment.numActions, using: &generator)
    let nfm = NFMQNetwork(inputChannels: environment.channelCount, actionCount: environment.numActions, configuration: configuration.nfm, using: &generator)
    return (baseline.parameterCount, twoLayer.parameterCount, nfm.parameterCount, nfm.trainedParameterCount)
}

/// Plays episodes with a checkpoint's online network.
struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval", abstract: "Play episodes with a trained agent and print the mean return.")

    @Option(help: "A run directory, a checkpoint directory, or a model.safetensors inside one.")
    var checkpoint: String

    @Option(help: "Episodes to play.")
    var episodes = 30

    @Option(help: "ε of the ε-greedy policy (0: greedy). 0.01 avoids loops that a greedy policy can enter.")
    var epsilon = 0.01

    @Option(help: "Seed of the evaluation environment and the ε draws.")
    var seed: UInt64 = 1

    @Option(help: "Cut an episode after this many frames.")
    var frameLimit = 20_000

    @Option(help: "Write a filmstrip of the first episode's first frames to this PNG.")
    var filmstrip: String?

    func run() throws {
        ComputeThreads.set(1)
        let configuration = try DQNRun.configuration(ofRun: runDirectory(of: checkpoint))
        let environment = try Environment(game: configuration.game, seed: 0)
        var generator = SeededGenerator(seed: 0)
        let network = makeQNetwork(
            configuration.encoder, inputChannels: environment.channelCount, actionCount: environment.numActions,
            nfm: configuration.nfm, using: &generator)
        try Checkpoint.loadModule(network, named: "model", from: checkpoint)
        var draws = SeededGenerator(seed: seed)
        let records = try playEpisodes(
            network: network, game: configuration.game, seed: UInt32(truncatingIfNeeded: seed), episodes: episodes,
            epsilon: epsilon, frameLimit: frameLimit, stickyActionProbability: configuration.stickyActionProbability,
            recordFrames: filmstrip == nil ? 0 : configuration.filmstripFrames, using: &draws)
        let returns = records.map(\.totalReturn)
        let mean = returns.reduce(0, +) / Double(max(returns.count, 1))
        let deviation = (returns.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(max(returns.count, 1))).squareRoot()
        say("\(configuration.game), \(configuration.encoder.rawValue) encoder, \(episodes) episodes, ε = \(epsilon)")
        say("returns: " + returns.map { String(format: "%g", $0) }.joined(separator: " "))
        say(String(format: "mean return %.2f ± %.2f (std); mean length %.0f frames; %d cut at %d frames", mean, deviation,
                     Double(records.map(\.frames).reduce(0, +)) / Double(max(records.count, 1)), records.filter(\.truncated).count, frameLimit))
        if let filmstrip, let first = records.first, !first.observations.isEmpty {
            try Filmstrip.image(observations: first.observations, channels: environment.channelCount).write(to: filmstrip)
            say("filmstrip: \(filmstrip)")
        }
    }

    /// The run directory that holds `path` (a run, a checkpoint directory, or a file in one).
    func runDirectory(of path: String) -> String {
        var url = URL(fileURLWithPath: path).standardizedFileURL
        if url.pathExtension == "safetensors" { url.deleteLastPathComponent() }
        for _ in 0..<3 {
            if FileManager.default.fileExists(atPath: url.path + "/config.json") { return url.path }
            url.deleteLastPathComponent()
        }
        return path
    }
}

/// A person plays a game in the terminal.
struct Play: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "play",
        abstract: "Play a MinAtar game in the terminal: arrows/WASD move, space fires, '.' waits, q quits.")

    @Option(help: "MinAtar game: \(Environment.gameNames.joined(separator: ", ")).")
    var game = "breakout"

    @Option(help: "Seed of the game's random stream.")
    var seed: UInt32 = 0

    @Option(help: "Frames per second in real time; 0 plays one frame per key.")
    var fps = 0.0

    @Option(help: "Sticky-action probability (MinAtar: 0.1).")
    var sticky = 0.1

    func run() throws {
        try TerminalPlay(game: game, seed: seed, framesPerSecond: fps, stickyActionProbability: sticky).run()
    }
}

/// `--encoder` takes RLKit's encoder names.
extension EncoderKind: ExpressibleByArgument {
    /// The encoders of a comma-separated list such as `--encoders baseline,nfm`.
    static func list(_ names: String, option: String) throws -> [EncoderKind] {
        try names.split(separator: ",").map { name in
            guard let encoder = EncoderKind(rawValue: String(name)) else {
                throw ValidationError("unknown encoder \"\(name)\" in \(option); valid encoders are \(EncoderKind.validNames)")
            }
            return encoder
        }
    }
}

/// Times the DQN step.
struct Speed: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "speed", abstract: "Time the parts of a DQN training frame and report training frames per second.")

    @Option(help: "MinAtar game.")
    var game = "breakout"

    @Option(help: "Encoders to time (baseline, nfm, two-layer), comma-separated.")
    var encoders = "baseline,nfm"

    @Option(help: "Repetitions per part (the median is reported).")
    var repetitions = 200

    @Option(help: "Whole training frames to time.")
    var frames = 2_000

    @Option(help: "oneDNN (OpenMP) threads.")
    var threads = 1

    func validate() throws {
        if threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
    }

    func run() throws {
        ComputeThreads.set(threads)
        for encoder in try EncoderKind.list(encoders, option: "--encoders") {
            var configuration = DQNConfiguration(game: game, frames: 1, seed: 0, encoder: encoder)
            configuration.exploration.randomFrames = 2_000
            let agent = try DQNAgent(configuration: configuration)
            let (parts, framesPerSecond, framesPerCPUSecond) = agent.measureSpeed(repetitions: repetitions, frames: frames)
            say("\(game), \(encoder.rawValue) encoder, \(ComputeThreads.current.map(String.init) ?? "?") oneDNN thread(s), batch \(configuration.batchSize):")
            for part in parts { say("  " + part.name.padding(toLength: 46, withPad: " ", startingAt: 0) + String(format: "%10.1f µs", part.microseconds)) }
            say(String(format: "  training frames per second: %.0f wall-clock, %.0f per CPU-second", framesPerSecond, framesPerCPUSecond))
            // The work a frame needs bounds the frame rate: at the machine's sgemm rate on one core
            // (`nfm-bench gemm`), frames/s can be at most that rate over these FLOPs.
            let flops = agent.flopsPerTrainingFrame
            say(String(
                format: "  work per frame: %.1f MFLOP (convolutions, products, attention), %.1f GFLOP/s per CPU-second",
                flops / 1e6, flops * framesPerCPUSecond / 1e9))
        }
    }
}
