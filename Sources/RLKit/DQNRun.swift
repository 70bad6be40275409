// One DQN run: the agent inside the trainer, one trainer step per frame. The trainer checkpoints the
// online and target networks (`model`, `target`), the optimizer, its generator (the agent's draws)
// and the agent's program state, logs metrics to metrics.csv/jsonl and draws the PNG curves; the run
// then evaluates the agent and draws a filmstrip of it playing.

import Foundation
import NFMIO
import NFMLog
import NFMTensor
import NFMTraining

/// What a finished run reports.
public struct DQNRunSummary: Sendable {
    /// How the trainer finished.
    public var outcome: TrainingOutcome
    /// Episodes finished during training.
    public var episodes: Int
    /// The last 100-episode average of the training return.
    public var averageReturn: Double
    /// The final evaluation's mean return, if it ran.
    public var evaluationReturn: Double?
    /// Training frames per second over this invocation (resumed frames excluded).
    public var framesPerSecond: Double
    /// Training frames per CPU-second of the process (independent of other programs' load).
    public var framesPerCPUSecond: Double
    /// Wall-clock seconds of training in this invocation.
    public var trainingSeconds: Double
    /// The filmstrip PNG, if drawn.
    public var filmstripPath: String?
}

/// Trains a DQN agent in a run directory (fresh, or resumed from its latest checkpoint) and returns
/// the summary. `configuration` is written to the run's config.json.
public final class DQNRun {
    /// The settings.
    public let configuration: DQNConfiguration
    /// The run directory.
    public let run: RunDirectory
    /// The agent.
    public let agent: DQNAgent
    /// The trainer around it.
    public let trainer: Trainer

    /// Prepares the run: builds the agent, writes config.json, and with `resume` restores the latest
    /// checkpoint of `run` (the networks, optimizer, generator, replay buffer and environment).
    public init(configuration: DQNConfiguration, run: RunDirectory, resume: Bool) throws {
        self.configuration = configuration
        self.run = run
        agent = try DQNAgent(configuration: configuration)
        // A fresh run records its settings first; a resumed one after the trainer checked the
        // resume, so that a resume that fails leaves the run as it was.
        if !resume { try run.writeConfig(configuration) }
        trainer = try Trainer(
            run: run,
            configuration: TrainingConfiguration(
                steps: configuration.frames, checkpointInterval: configuration.checkpointInterval, label: configuration.game),
            seed: RunSeeds.agent(configuration.seed),
            modules: [("model", agent.online), ("target", agent.target)],
            optimizers: [("optimizer", agent.optimizer, agent.online)],
            programState: agent.programState, resumeFrom: resume ? run.path : nil)
        if resume { try run.writeConfig(configuration) }
    }

    /// Reads the config.json of a run directory; when it is damaged, the copy saved with the newest
    /// checkpoint that has a readable one (said on standard output).
    public static func configuration(ofRun path: String) throws -> DQNConfiguration {
        guard FileManager.default.fileExists(atPath: path + "/config.json") || !Checkpoint.stepDirectories(inRun: path).isEmpty else {
            throw ConfigurationError(message: "no config.json in \(path); is it an nfm-rl run directory?")
        }
        return try Checkpoint.loadConfiguration(DQNConfiguration.self, ofRun: path) { print($0) }
    }

    /// Trains to `configuration.frames`, then (unless interrupted) evaluates and draws the filmstrip.
    public func train() throws -> DQNRunSummary {
        let startFrame = trainer.step
        let start = DispatchTime.now().uptimeNanoseconds
        let cpuStart = CPUClock.process
        let evaluate: (Int) throws -> [String: Double] = { [self] _ in
            guard configuration.evaluationEpisodes > 0 else { return [:] }
            var generator = RunSeeds.evaluation(configuration.seed)
            let records = try playEpisodes(
                network: agent.online, game: configuration.game, seed: RunSeeds.evaluationEnvironment(configuration.seed),
                episodes: configuration.evaluationEpisodes, epsilon: configuration.evaluationEpsilon,
                frameLimit: configuration.evaluationFrameLimit, stickyActionProbability: configuration.stickyActionProbability,
                using: &generator)
            return ["eval/mean_return": records.map(\.totalReturn).reduce(0, +) / Double(records.count)]
        }
        let outcome = try trainer.run(step: { [agent] frame, generator in agent.playFrame(frame, generator: &generator) }, evaluate: evaluate)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
        let cpuSeconds = CPUClock.process - cpuStart
        var summary = DQNRunSummary(
            outcome: outcome, episodes: agent.episodes, averageReturn: agent.averageReturn,
            evaluationReturn: trainer.metrics.points(of: "eval/mean_return").last?.value,
            framesPerSecond: Double(trainer.step - startFrame) / Swift.max(seconds, 1e-9),
            framesPerCPUSecond: Double(trainer.step - startFrame) / Swift.max(cpuSeconds, 1e-9), trainingSeconds: seconds,
            filmstripPath: nil)
        if case .completed = outcome {
            if configuration.filmstripFrames > 0 { summary.filmstripPath = try writeFilmstrip() }
            try FinalMetrics.write(finalMetrics(summary), to: run)
        }
        return summary
    }

    /// What a comparison over seeds summarises (`final_metrics.json`): the evaluation's mean
    /// return, the last 100-episode average training return (as logged), the episodes played, and the online
    /// network's total and trained parameters.
    func finalMetrics(_ summary: DQNRunSummary) -> [String: Double] {
        var values: [String: Double] = [
            "rollout/average_return_100": summary.averageReturn, "rollout/episodes": Double(summary.episodes),
            "parameters/total": Double(agent.online.parameterCount), "parameters/trained": Double((agent.online as? NFMQNetwork)?.trainedParameterCount ?? agent.online.parameterCount),
        ]
        values["eval/mean_return"] = summary.evaluationReturn
        return values
    }

    /// Plays one greedy-ish episode (ε = `evaluationEpsilon`) and writes its first frames as
    /// `filmstrip.png` in the run directory.
    public func writeFilmstrip() throws -> String {
        var generator = RunSeeds.evaluation(configuration.seed).split(stream: 3)
        let records = try playEpisodes(
            network: agent.online, game: configuration.game, seed: RunSeeds.evaluationEnvironment(configuration.seed) &+ 7,
            episodes: 1, epsilon: configuration.evaluationEpsilon, frameLimit: configuration.evaluationFrameLimit,
            stickyActionProbability: configuration.stickyActionProbability, recordFrames: configuration.filmstripFrames,
            using: &generator)
        let path = run.file("filmstrip.png")
        try Filmstrip.image(observations: records[0].observations, channels: agent.environment.channelCount).write(to: path)
        run.record(output: path, description: "filmstrip (return \(formatReturn(records[0].totalReturn)) in \(records[0].frames) frames)")
        return path
    }
}

/// A return for people: integers without decimals, otherwise two decimals.
func formatReturn(_ value: Double) -> String {
    value == value.rounded() ? String(Int(value)) : String(format: "%.2f", value)
}
