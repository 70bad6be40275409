// MinAtar's DQN (Young & Tian 2019, examples/dqn.py; Mnih et al. 2015), top to bottom, as cleanrl
// writes its dqn.py. Every frame the agent
//
//   1. acts    ε-greedily on the online network (uniformly at random during the replay start), and
//   2. stores  the transition (s, a, r, s', terminal) in the replay buffer;
//
// then, once the frame index is past the replay start (MinAtar's `t > REPLAY_START_SIZE`), it updates
// the online network once per frame (TRAINING_FREQ = 1), always the current network, as MinAtar does:
//
//   3. sample  a batch of 32 transitions, uniformly without replacement,
//   4. target  y = r + γ · max_a' Q_target(s', a') · (1 − terminal),
//   5. loss    the Huber loss of Q(s, a) against y (MinAtar's `smooth_l1_loss`),
//   6. step    centered RMSprop; every 1,000 updates the target network becomes a copy of the online one.
//
// The plumbing is elsewhere: the settings (DQNConfiguration.swift), the networks (QNetworks.swift),
// the replay buffer's bit-packed storage (ReplayBuffer.swift), the statistics behind the metrics
// (TrainingProgress.swift), the agent's checkpoints (DQNCheckpoint.swift), timings (Speed.swift) and
// the run inside the trainer (DQNRun.swift).

import Envs
import NFMNN
import NFMOptimizers
import NFMTensor

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

/// MinAtar's exploration schedule (`world_dynamics` in examples/dqn.py).
///
/// For the first `randomFrames` frames (the replay start size) actions are uniformly random. After
/// that, ε falls linearly from `initial` to `final` over `annealFrames` frames counted *from the end
/// of the random start*, then stays at `final`:
///
///     ε(t) = final                                              if t − randomFrames ≥ annealFrames
///     ε(t) = (final − initial) / annealFrames · (t − randomFrames) + initial     otherwise
///
/// With MinAtar's numbers (5,000 random frames, 1.0 → 0.1 over 100,000 frames) ε reaches 0.1 at
/// frame 105,000. `t` is the 0-based frame about to be played.
public struct EpsilonSchedule: Sendable, Codable, Equatable {
    /// Frames of uniformly random play before ε-greedy starts (MinAtar's REPLAY_START_SIZE).
    public var randomFrames: Int
    /// ε when annealing starts (MinAtar's EPSILON).
    public var initial: Double
    /// ε after annealing (MinAtar's END_EPSILON).
    public var final: Double
    /// Frames over which ε falls (MinAtar's FIRST_N_FRAMES).
    public var annealFrames: Int

    /// A schedule; the defaults are MinAtar's.
    public init(randomFrames: Int = 5_000, initial: Double = 1.0, final: Double = 0.1, annealFrames: Int = 100_000) {
        precondition(randomFrames >= 0 && annealFrames > 0, "EpsilonSchedule: randomFrames \(randomFrames) must be ≥ 0 and annealFrames \(annealFrames) > 0")
        self.randomFrames = randomFrames
        self.initial = initial
        self.final = final
        self.annealFrames = annealFrames
    }

    /// Whether frame `t` is played uniformly at random (the replay start).
    public func isRandomStart(frame t: Int) -> Bool { t < randomFrames }

    /// ε at 0-based frame `t`; 1 during the random start (every action is random then).
    public func epsilon(frame t: Int) -> Double {
        if isRandomStart(frame: t) { return 1 }
        let elapsed = t - randomFrames
        if elapsed >= annealFrames { return final }
        return (final - initial) / Double(annealFrames) * Double(elapsed) + initial
    }
}

/// A DQN agent with its environment, replay buffer, online and target networks and optimizer. The
/// trainer calls `playFrame` once per frame and does the bookkeeping (checkpoints, metrics, Ctrl-C).
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
    public internal(set) var replay: ReplayBuffer
    /// The training environment.
    public internal(set) var environment: Environment
    /// Actions (MinAtar's full set of 6, as its DQN uses).
    public let actionCount: Int
    /// Values per observation.
    public let observationCount: Int
    /// Updates done so far.
    public internal(set) var updates = 0

    /// Every action requested of the environment since it was made, for checkpoints (DQNCheckpoint.swift).
    var actionLog: [UInt8] = []
    /// s: the observation the next action is chosen on.
    var observation: [Float]
    /// s': the observation after it.
    private var nextObservation: [Float]
    /// Returns and losses behind the metrics.
    var progress = TrainingProgress()
    /// Time spent in the update's phases (read by `measureSpeed`).
    var timings = UpdateTimings()

    // The batch, in buffers reused from update to update: each is uniquely held between updates, so
    // writing it copies nothing.
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
        // Acting uses the running statistics of the NFM encoder's batch norms; only the update trains.
        online.eval()
    }

    /// Plays 0-based frame `frame` (the trainer's step), drawing from `generator`, and returns the
    /// metrics of this frame: `rollout/episodic_return` and `rollout/average_return_100` when an episode
    /// ends, and every `logInterval` frames `train/loss` (mean over the updates since the last row),
    /// `train/epsilon` and `train/frames_per_second`.
    public func playFrame(_ frame: Int, generator: inout SeededGenerator) -> [String: Double] {
        precondition(frame == actionLog.count, "DQNAgent.playFrame: frame \(frame), but \(actionLog.count) frames were played")
        // 1. Act.
        let action = selectAction(frame: frame, generator: &generator)
        let (reward, terminal) = environment.act(action)
        actionLog.append(UInt8(action))
        nextObservation.withUnsafeMutableBufferPointer { environment.observation(into: $0) }

        // 2. Store.
        observation.withUnsafeBufferPointer { state in
            nextObservation.withUnsafeBufferPointer { next in
                replay.add(state: state, action: action, reward: reward, nextState: next, terminal: terminal)
            }
        }

        // 3–6. Learn, as MinAtar: once t > REPLAY_START_SIZE and a batch can be drawn, every TRAINING_FREQ frames.
        if frame > configuration.exploration.randomFrames && replay.count >= configuration.batchSize
            && frame % configuration.trainingFrequency == 0
        {
            progress.add(loss: update(generator: &generator))
            updates += 1
            if updates % configuration.targetUpdateInterval == 0 { synchronizeTarget() }
        }

        var metrics = progress.add(reward: Double(reward), terminal: terminal)
        if terminal {
            environment.reset()
            observation.withUnsafeMutableBufferPointer { environment.observation(into: $0) }
        } else {
            swap(&observation, &nextObservation)
        }
        if (frame + 1) % configuration.logInterval == 0 {
            metrics.merge(progress.trainingRow(frame: frame, epsilon: epsilon(frame: frame))) { _, row in row }
        }
        return metrics
    }

    /// The current ε (1 during the random start).
    public func epsilon(frame: Int) -> Double { configuration.exploration.epsilon(frame: frame) }

    /// Episodes finished so far.
    public var episodes: Int { progress.episodes }

    /// The mean of the last (up to) 100 episode returns; 0 before the first episode ends.
    public var averageReturn: Double { progress.averageReturn }

    /// 1. ε-greedy on the online network, or uniformly random during the random start.
    private func selectAction(frame: Int, generator: inout SeededGenerator) -> Int {
        let schedule = configuration.exploration
        if schedule.isRandomStart(frame: frame) { return generator.nextIndex(below: actionCount) }
        if Double(generator.nextUniform()) < schedule.epsilon(frame: frame) {
            return generator.nextIndex(below: actionCount)
        }
        return greedyAction(observation)
    }

    /// argmax_a Q(s, a) of the online network (evaluation mode) for one observation.
    public func greedyAction(_ observation: [Float]) -> Int {
        actingInput = Tensor(shape: actingInput.shape, scalars: observation)
        let values = withoutGradient { online(actingInput) }
        return values.withHostCopy { RLKit.greedyAction($0) }
    }

    /// 3. Draws a replay batch into the batch buffers.
    func sampleBatch(generator: inout SeededGenerator) {
        // The replay buffer unpacks straight into the host copies of the two batch tensors.
        let shape = states.shape
        var sampledNextStates: Tensor?
        states = Tensor(shape: shape) { stateValues in
            sampledNextStates = Tensor(shape: shape) { nextStateValues in
                replay.sample(into: &batch, states: stateValues, nextStates: nextStateValues, using: &generator)
            }
        }
        nextStates = sampledNextStates!
    }

    /// One DQN update on a replay batch (3–6); returns the Huber loss.
    func update(generator: inout SeededGenerator) -> Double {
        sampleBatch(generator: &generator)

        // 4. Target, from the target network.
        let nextValues = withoutGradient { target(nextStates) }
        targets = Tensor(shape: targets.shape) { targetValues in
            nextValues.withHostCopy { next in
                temporalDifferenceTargets(
                    rewards: batch.rewards, terminals: batch.terminals, nextValues: next, actionCount: actionCount,
                    discount: Float(configuration.discount), into: targetValues)
            }
        }
        chosenActions = Tensor(shape: chosenActions.shape, scalars: batch.actions.prefix(batch.size).map(Float.init))

        // 5. Loss: Huber on Q(s, a) against the target, as MinAtar's `f.smooth_l1_loss(target, Q_s_a)`,
        // with batch statistics in the NFM encoder's batch norms.
        online.train()
        timings.start()
        let (loss, gradients) = valueAndGrad(model: online) { online in
            let chosenValues = online(states).gathering(alongAxis: 1, indices: chosenActions)
            timings.mark(\.forward)
            return smoothL1Loss(chosenValues, targets)
        }
        timings.mark(\.backward)

        // 6. Step.
        optimizer.update(model: online, gradients: gradients)
        timings.mark(\.optimizer)
        online.eval()
        return Double(loss.item)
    }

    /// Copies the online network's parameters and buffers into the target network.
    public func synchronizeTarget() {
        do {
            try target.load(stateDict: online.stateDict())
        } catch {
            preconditionFailure("DQNAgent: the target network does not match the online network: \(error)")
        }
    }
}

/// The one-step Q-learning target of DQN (Mnih et al. 2015), as MinAtar computes it:
/// y_i = r_i + γ · max_a' Q_target(s'_i, a') · (1 − terminal_i).
///
/// MinAtar evaluates the target network only on non-terminal s' and leaves 0 elsewhere; multiplying
/// by (1 − terminal) gives the same targets with one batched forward.
///
/// - Parameters:
///   - rewards: r, one per transition.
///   - terminals: 1 where s' is terminal, else 0.
///   - nextValues: Q_target(s', ·) row-major, `rewards.count × actionCount` values.
///   - actionCount: actions per row.
///   - discount: γ.
///   - targets: receives y, one per transition.
public func temporalDifferenceTargets(
    rewards: [Float], terminals: [Float], nextValues: UnsafeBufferPointer<Float>, actionCount: Int, discount: Float,
    into targets: UnsafeMutableBufferPointer<Float>
) {
    let batch = rewards.count
    precondition(
        terminals.count == batch && targets.count == batch && nextValues.count == batch * actionCount,
        "temporalDifferenceTargets: \(batch) rewards, \(terminals.count) terminals, \(nextValues.count) next values for \(actionCount) actions, \(targets.count) targets")
    for row in 0..<batch {
        var best = nextValues[row * actionCount]
        for action in 1..<actionCount { best = Swift.max(best, nextValues[row * actionCount + action]) }
        targets[row] = rewards[row] + discount * best * (1 - terminals[row])
    }
}

/// `temporalDifferenceTargets` on arrays, returning the targets.
public func temporalDifferenceTargets(
    rewards: [Float], terminals: [Float], nextValues: [Float], actionCount: Int, discount: Float
) -> [Float] {
    var targets = [Float](repeating: 0, count: rewards.count)
    nextValues.withUnsafeBufferPointer { next in
        targets.withUnsafeMutableBufferPointer {
            temporalDifferenceTargets(rewards: rewards, terminals: terminals, nextValues: next, actionCount: actionCount, discount: discount, into: $0)
        }
    }
    return targets
}

/// The index of the largest of `values` (the first on ties, as torch's `max(1)[1]` on CPU).
@inline(__always)
func greedyAction(_ values: UnsafeBufferPointer<Float>) -> Int {
    var best = 0
    for index in 1..<values.count where values[index] > values[best] { best = index }
    return best
}
