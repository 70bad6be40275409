// Every setting of a DQN run, saved as the run's config.json so that `--resume` and `eval` rebuild
// exactly the same agent.

import NFMLayers

/// The settings of a DQN run. The defaults are MinAtar's DQN (Young & Tian 2019, examples/dqn.py)
/// except the frame budget, which the program sizes to about ten minutes on two cores;
/// `minatarPreset()` restores MinAtar's 5 million frames.
public struct DQNConfiguration: Sendable, Codable, Equatable {
    /// The MinAtar game (`asterix`, `breakout`, `freeway`, `seaquest`, `space_invaders`).
    public var game: String
    /// Frames to play (one frame is one `act` of the environment; MinAtar's NUM_FRAMES).
    public var frames: Int
    /// The one seed: network initialisation, environment stream and the agent's random draws.
    public var seed: UInt64
    /// The encoder in front of the 128-unit head.
    public var encoder: EncoderKind
    /// NFM settings, used when `encoder` is `.nfm`.
    public var nfm: NFMConfiguration
    /// Replay capacity in transitions (REPLAY_BUFFER_SIZE).
    public var replayCapacity: Int
    /// Transitions per update (BATCH_SIZE).
    public var batchSize: Int
    /// The exploration schedule; its `randomFrames` is also the replay start (REPLAY_START_SIZE):
    /// updates start at frame `randomFrames + 1`, as in MinAtar (`t > REPLAY_START_SIZE`).
    public var exploration: EpsilonSchedule
    /// Updates between target-network syncs (TARGET_NETWORK_UPDATE_FREQ).
    public var targetUpdateInterval: Int
    /// Frames between updates (TRAINING_FREQ).
    public var trainingFrequency: Int
    /// γ (GAMMA).
    public var discount: Double
    /// RMSprop step size (STEP_SIZE).
    public var learningRate: Double
    /// RMSprop smoothing constant α (SQUARED_GRAD_MOMENTUM).
    public var rmspropAlpha: Double
    /// RMSprop ε, added outside the square root as torch does (MIN_SQUARED_GRAD).
    public var rmspropEpsilon: Double
    /// Whether RMSprop is centered (MinAtar: yes). MinAtar's GRAD_MOMENTUM (0.95) is defined but
    /// never passed to the optimizer, so momentum is 0.
    public var rmspropCentered: Bool
    /// Probability that the environment repeats the previous action (MinAtar: 0.1).
    public var stickyActionProbability: Double
    /// Frames between `train/*` metric rows.
    public var logInterval: Int
    /// Frames between checkpoints (0: only at the end).
    public var checkpointInterval: Int
    /// Episodes played with ε = `evaluationEpsilon` at the end of training (0: none).
    public var evaluationEpisodes: Int
    /// ε of the final evaluation and of `nfm-rl eval`.
    public var evaluationEpsilon: Double
    /// An evaluation episode is cut after this many frames (Breakout refills its bricks, so a good
    /// agent could otherwise play for ever).
    public var evaluationFrameLimit: Int
    /// Frames of the trained agent drawn in the filmstrip (0: no filmstrip).
    public var filmstripFrames: Int

    /// The default run: MinAtar's DQN on `game` for `frames` frames.
    public init(game: String = "breakout", frames: Int = DQNConfiguration.defaultFrames, seed: UInt64 = 0, encoder: EncoderKind = .baseline) {
        self.game = game
        self.frames = frames
        self.seed = seed
        self.encoder = encoder
        nfm = .minAtarEncoder
        replayCapacity = 100_000
        batchSize = 32
        exploration = EpsilonSchedule()
        targetUpdateInterval = 1_000
        trainingFrequency = 1
        discount = 0.99
        learningRate = 0.000_25
        rmspropAlpha = 0.95
        rmspropEpsilon = 0.01
        rmspropCentered = true
        stickyActionProbability = 0.1
        logInterval = 1_000
        checkpointInterval = 100_000
        evaluationEpisodes = 20
        evaluationEpsilon = 0.01
        evaluationFrameLimit = 20_000
        filmstripFrames = 48
    }

    /// The default budget, 250,000 frames: about ten minutes of baseline DQN at the 420–450 training
    /// frames per CPU-second measured on the 2-core development machine (docs/rl.md). ε reaches its
    /// final 0.1 at frame 105,000, so more than half of the run learns at MinAtar's final exploration.
    public static let defaultFrames = 250_000

    /// MinAtar's published setting: 5 million frames (everything else is already MinAtar's).
    public static let minatarFrames = 5_000_000

    /// The training return MinAtar's DQN reaches after its 5,000,000 frames, read off the published
    /// curves (Young & Tian 2019, Figure 2, DQN with replay and target network), by game: what a
    /// sweep's curves are set beside.
    public static let minatarPublishedReturn: [String: Double] = [
        "breakout": 10, "freeway": 50, "space_invaders": 43, "asterix": 17, "seaquest": 20,
    ]

    /// Checks the settings; throws a message naming the bad one.
    public func validate() throws(ConfigurationError) {
        func require(_ condition: Bool, _ message: String) throws(ConfigurationError) {
            if !condition { throw ConfigurationError(message: message) }
        }
        try require(frames > 0, "frames must be positive, got \(frames)")
        try require(replayCapacity >= batchSize && batchSize > 0, "the replay capacity (\(replayCapacity)) must hold at least one batch (\(batchSize))")
        try require(targetUpdateInterval > 0 && trainingFrequency > 0, "target update interval and training frequency must be positive")
        try require(discount >= 0 && discount <= 1, "discount must be in [0, 1], got \(discount)")
        try require(learningRate > 0, "learning rate must be positive, got \(learningRate)")
        try require(logInterval > 0 && checkpointInterval >= 0, "log interval must be positive and checkpoint interval non-negative")
        try require(evaluationEpisodes >= 0 && evaluationFrameLimit > 0 && filmstripFrames >= 0, "evaluation settings must be non-negative")
        try require(nfm.heads > 0 && nfm.keySize > 0 && nfm.valueSize > 0 && nfm.topK > 0, "NFM heads, sizes and top-k must be positive")
    }
}

/// A setting that cannot work, with what is wrong.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    /// What is wrong.
    public let message: String

    /// The message.
    public var description: String { message }
}
