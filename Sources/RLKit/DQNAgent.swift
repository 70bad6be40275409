// MinAtar's DQN (Young & Tian 2019, examples/dqn.py) frame by frame: act ε-greedily, store the
// transition, update the online network on a replay batch, sync the target network. The trainer
// calls `playFrame` once per frame and does the bookkeeping (checkpoints, metrics, Ctrl-C); the agent
// checkpoints what the trainer does not know about (replay buffer, environment, counters) through
// `programState`.

import Envs
import Foundation
import NFMNN
import NFMOptimizers
import NFMTensor
import NFMTraining

/// The one seeding block of nfm-rl: every random stream of a run derives from its one seed.
public enum RunSeeds {
    /// Network initialisation (online network; the target is a copy).
    public static func initialization(_ seed: UInt64) -> SeededGenerator { SeededGenerator(seed: seed).split(stream: 1) }
    /// The agent's draws (ε-greedy, random start, replay sampling): the trainer's checkpointed generator.
    public static func agent(_ seed: UInt64) -> UInt64 { seed }
    /// The training environment's numpy stream (sticky actions and game events), MinAtar's `env.seed`.
    public static func environment(_ seed: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: seed) }
    /// The evaluation environment's stream, distinct from training's.
    public static func evaluationEnvironment(_ seed: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: seed &+ 1_000_003) }
    /// The evaluation's ε draws.
    public static func evaluation(_ seed: UInt64) -> SeededGenerator { SeededGenerator(seed: seed).split(stream: 2) }
}

/// A DQN agent with its environment, replay buffer, online and target networks and optimizer.
public final class DQNAgent {
    /// The run's settings.
    public let configuration: DQNConfiguration
    /// The network being trained.
    public let online: any QNetwork
    /// The target network, a copy of `online` refreshed every `targetUpdateInterval` updates; always
    /// in evaluation mode.
    public let target: any QNetwork
    /// Centered RMSprop, as MinAtar's.
    public let optimizer: RMSprop
    /// The experience replay.
    public private(set) var replay: ReplayBuffer
    /// The training environment.
    public private(set) var environment: Environment
    /// Actions (MinAtar's full set of 6, as its DQN uses).
    public let actionCount: Int
    /// Values per observation.
    public let observationCount: Int
    /// Updates done so far.
    public private(set) var updates = 0
    /// Episodes finished so far.
    public private(set) var episodes = 0

    /// Every action requested of the environment since it was made: replaying them rebuilds its exact
    /// state on resume (the games' state is not serialisable, but it is a pure function of the seed
    /// and the requested actions).
    private var actionLog: [UInt8] = []
    private var observation: [Float]
    private var nextObservation: [Float]
    private var episodeReturn = 0.0
    /// The last (up to) 100 returns, a ring indexed by `episodes % 100`.
    private var recentReturns: [Double] = []
    private var lossSum = 0.0
    private var lossCount = 0
    private var windowStartTime = DQNAgent.now()
    private var windowStartFrame = 0

    /// Time spent in the update's phases (read by `measureSpeed`).
    var timings = GradientStepTimings()
    /// The online network's parameters, listed once.
    private let parameterHandles: [ParameterHandle]

    // Reused batch buffers: each is uniquely held between updates, so writing it copies nothing.
    private var batch: ReplayBatch
    private var states: Tensor
    private(set) var nextStates: Tensor
    private var chosenActions: Tensor
    private var targets: Tensor
    private var actingInput: Tensor

    /// Builds the agent, its networks (from `RunSeeds.initialization`) and its seeded environment.
    /// Throws `EnvironmentError.unknownGame` listing the valid names, or a `ConfigurationError`.
    public init(configuration: DQNConfiguration) throws {
        try configuration.validate()
        self.configuration = configuration
        environment = try Environment(
            game: configuration.game, seed: RunSeeds.environment(configuration.seed),
            stickyActionProbability: configuration.stickyActionProbability)
        actionCount = environment.numActions
        observationCount = environment.observationCount
        let channels = environment.channelCount
        var generator = RunSeeds.initialization(configuration.seed)
        online = makeQNetwork(configuration.encoder, inputChannels: channels, actionCount: actionCount, nfm: configuration.nfm, using: &generator)
        target = makeQNetwork(configuration.encoder, inputChannels: channels, actionCount: actionCount, nfm: configuration.nfm, using: &generator)
        optimizer = RMSprop(
            learningRate: configuration.learningRate, alpha: configuration.rmspropAlpha, epsilon: configuration.rmspropEpsilon,
            centered: configuration.rmspropCentered)
        parameterHandles = online.parameterHandles
        replay = ReplayBuffer(capacity: configuration.replayCapacity, observationCount: observationCount)
        observation = [Float](repeating: 0, count: observationCount)
        nextObservation = observation
        let size = configuration.batchSize
        batch = ReplayBatch(size: size, observationCount: observationCount)
        states = Tensor(zeros: [size, channels, boardSize, boardSize])
        nextStates = states
        chosenActions = Tensor(zeros: [size, 1])
        targets = Tensor(zeros: [size, 1])
        actingInput = Tensor(zeros: [1, channels, boardSize, boardSize])
        observation.withUnsafeMutableBufferPointer { environment.observation(into: $0) }
        synchronizeTarget()
        target.eval()
        setNormalizationTraining(false)
    }

    /// The current ε (1 during the random start).
    public func epsilon(frame: Int) -> Double { configuration.exploration.epsilon(frame: frame) }

    /// Plays 0-based frame `frame` (the trainer's step), drawing from `generator`, and returns the
    /// metrics of this frame: `rollout/episodic_return` and `rollout/average_return_100` when an episode
    /// ends, and every `logInterval` frames `train/loss` (mean over the updates since the last row),
    /// `train/epsilon` and `train/frames_per_second`.
    public func playFrame(_ frame: Int, generator: inout SeededGenerator) -> [String: Double] {
        precondition(frame == actionLog.count, "DQNAgent.playFrame: frame \(frame), but \(actionLog.count) frames were played")
        let action = selectAction(frame: frame, generator: &generator)
        let (reward, terminal) = environment.act(action)
        actionLog.append(UInt8(action))
        nextObservation.withUnsafeMutableBufferPointer { environment.observation(into: $0) }
        observation.withUnsafeBufferPointer { state in
            nextObservation.withUnsafeBufferPointer { next in
                replay.add(state: state, action: action, reward: reward, nextState: next, terminal: terminal)
            }
        }
        // As MinAtar: learning starts once t > REPLAY_START_SIZE and a batch can be drawn.
        if frame > configuration.exploration.randomFrames && replay.count >= configuration.batchSize
            && frame % configuration.trainingFrequency == 0
        {
            lossSum += update(generator: &generator)
            lossCount += 1
            updates += 1
            if updates % configuration.targetUpdateInterval == 0 { synchronizeTarget() }
        }

        var metrics: [String: Double] = [:]
        episodeReturn += Double(reward)
        if terminal {
            recordReturn(episodeReturn)
            metrics["rollout/episodic_return"] = episodeReturn
            metrics["rollout/average_return_100"] = averageReturn
            episodeReturn = 0
            environment.reset()
            observation.withUnsafeMutableBufferPointer { environment.observation(into: $0) }
        } else {
            swap(&observation, &nextObservation)
        }
        if (frame + 1) % configuration.logInterval == 0 {
            if lossCount > 0 { metrics["train/loss"] = lossSum / Double(lossCount) }
            metrics["train/epsilon"] = epsilon(frame: frame)
            let now = DQNAgent.now()
            metrics["train/frames_per_second"] = Double(frame + 1 - windowStartFrame) / Swift.max(now - windowStartTime, 1e-9)
            (lossSum, lossCount, windowStartTime, windowStartFrame) = (0, 0, now, frame + 1)
        }
        return metrics
    }

    /// The mean of the last (up to) 100 episode returns; 0 before the first episode ends.
    public var averageReturn: Double {
        recentReturns.isEmpty ? 0 : recentReturns.reduce(0, +) / Double(recentReturns.count)
    }

    private func recordReturn(_ value: Double) {
        if recentReturns.count < 100 { recentReturns.append(value) } else { recentReturns[episodes % 100] = value }
        episodes += 1
    }

    /// ε-greedy on the online network, or uniformly random during the random start.
    private func selectAction(frame: Int, generator: inout SeededGenerator) -> Int {
        let schedule = configuration.exploration
        if schedule.isRandomStart(frame: frame) { return Int.random(in: 0..<actionCount, using: &generator) }
        if Double(generator.nextUniform()) < schedule.epsilon(frame: frame) {
            return Int.random(in: 0..<actionCount, using: &generator)
        }
        return greedyAction(observation)
    }

    /// argmax_a Q(s, a) of the online network (evaluation mode) for one observation.
    public func greedyAction(_ observation: [Float]) -> Int {
        actingInput.withUnsafeMutableBufferPointer { input in
            observation.withUnsafeBufferPointer { input.baseAddress!.update(from: $0.baseAddress!, count: observationCount) }
        }
        let values = withoutGradient { online(actingInput) }
        return values.withUnsafeBufferPointer { RLKit.greedyAction($0) }
    }

    /// Draws a replay batch into the batch buffers.
    func sampleBatch(generator: inout SeededGenerator) {
        states.withUnsafeMutableBufferPointer { stateValues in
            nextStates.withUnsafeMutableBufferPointer { nextStateValues in
                replay.sample(into: &batch, states: stateValues, nextStates: nextStateValues, using: &generator)
            }
        }
    }

    /// One DQN update on a replay batch; returns the Huber loss.
    func update(generator: inout SeededGenerator) -> Double {
        sampleBatch(generator: &generator)
        let nextValues = withoutGradient { target(nextStates) }
        targets.withUnsafeMutableBufferPointer { targetValues in
            batch.rewards.withUnsafeBufferPointer { rewards in
                batch.terminals.withUnsafeBufferPointer { terminals in
                    nextValues.withUnsafeBufferPointer { next in
                        temporalDifferenceTargets(
                            rewards: rewards, terminals: terminals, nextValues: next, actionCount: actionCount,
                            discount: Float(configuration.discount), into: targetValues)
                    }
                }
            }
        }
        chosenActions.withUnsafeMutableBufferPointer { chosen in
            for row in 0..<batch.size { chosen[row] = Float(batch.actions[row]) }
        }
        setNormalizationTraining(true)
        let loss = gradientStep(handles: parameterHandles, optimizer: optimizer, timings: &timings) {
            // Huber loss on Q(s, a) against the target, as MinAtar's `f.smooth_l1_loss(target, Q_s_a)`.
            smoothL1Loss(online(states).gathering(alongAxis: 1, indices: chosenActions), targets)
        }
        setNormalizationTraining(false)
        return Double(loss)
    }

    /// Copies the online network's parameters and buffers into the target network.
    public func synchronizeTarget() {
        do {
            try target.load(stateDict: online.stateDict())
        } catch {
            preconditionFailure("DQNAgent: the target network does not match the online network: \(error)")
        }
    }

    private func setNormalizationTraining(_ training: Bool) {
        for layer in online.normalizationLayers { if training { layer.train() } else { layer.eval() } }
    }

    private static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }

    // MARK: Checkpoints

    /// What the trainer checkpoints beside the networks and the optimizer: the replay buffer
    /// (`replay.*`), the environment as the list of actions requested of it (`environment.actions`),
    /// and the agent's counters and running sums (`agent.*`), all in `PackedState`'s exact encoding.
    public var programState: ProgramState {
        ProgramState(
            save: { [unowned self] in
                var state = replay.checkpointState(prefix: "replay.")
                state["environment.actions"] = PackedState.tensor(bytes: actionLog)
                state["agent.counters"] = PackedState.tensor(integers: [actionLog.count, episodes, updates, lossCount])
                state["agent.sums"] = PackedState.tensor(doubles: [episodeReturn, lossSum])
                state["agent.recent_returns"] = PackedState.tensor(doubles: recentReturns)
                return state
            },
            restore: { [unowned self] state in try restore(from: state) })
    }

    private func restore(from state: [String: Tensor]) throws {
        guard let countersTensor = state["agent.counters"], let sumsTensor = state["agent.sums"],
            let recentTensor = state["agent.recent_returns"], let actionsTensor = state["environment.actions"]
        else { throw PackedState.DecodingError.corrupt("the checkpoint has no DQN agent state (agent.*, environment.actions)") }
        let counters = try PackedState.integers(countersTensor)
        let sums = try PackedState.doubles(sumsTensor)
        guard counters.count == 4, sums.count == 2 else { throw PackedState.DecodingError.corrupt("agent counters \(counters) or sums \(sums)") }
        let actions = try PackedState.bytes(actionsTensor, count: counters[0])
        try replay.restore(from: state, prefix: "replay.")

        // Rebuild the environment by replaying every requested action, resetting where episodes ended.
        environment = try Environment(
            game: configuration.game, seed: RunSeeds.environment(configuration.seed),
            stickyActionProbability: configuration.stickyActionProbability)
        for action in actions {
            guard Int(action) < actionCount else { throw PackedState.DecodingError.corrupt("logged action \(action) is not a MinAtar action") }
            if environment.act(Int(action)).terminal { environment.reset() }
        }
        observation.withUnsafeMutableBufferPointer { environment.observation(into: $0) }
        actionLog = actions
        (episodes, updates, lossCount) = (counters[1], counters[2], counters[3])
        (episodeReturn, lossSum) = (sums[0], sums[1])
        recentReturns = try PackedState.doubles(recentTensor)
        windowStartFrame = actionLog.count
        windowStartTime = DQNAgent.now()
    }
}
