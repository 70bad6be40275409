// The MinAtar `Environment` wrapper (minatar/environment.py, MinAtar 1.0.15): game lookup by name, sticky
// actions and the shared random stream.
//
// Sticky actions, exactly as environment.py's `act`: every call first draws `random.rand()` from the
// environment's stream — always, whatever the probability and even when the game is already over — and if
// the draw is below the sticky-action probability the requested action is replaced by the last *executed*
// action. The executed action becomes the new last action, then the game acts, drawing from the same
// stream after the sticky draw. `reset()` does not touch the last action, so it carries across episodes,
// and it starts at 0 (no-op).
//
// Seeding: MinAtar's `Environment.seed(seed)` makes one `RandomState(seed)` and hands it to the game too,
// but does not reset; the game was reset in the constructor from an unseeded generator (Breakout and
// Freeway draw during reset). The reproducible MinAtar sequence is therefore `seed(s)` then `reset()`
// (what its gym wrapper's `reset(seed=s)` does), and that is what `Environment(game:seed:)` reproduces:
// the game's first reset draws from the freshly seeded stream.

/// Errors from building an `Environment`.
public enum EnvironmentError: Error, Equatable, CustomStringConvertible {
    /// No MinAtar game has this name; `valid` lists the names that exist.
    case unknownGame(String, valid: [String])

    /// A readable explanation that lists the valid names.
    public var description: String {
        switch self {
        case let .unknownGame(name, valid):
            return "unknown MinAtar game \"\(name)\"; valid games are: \(valid.joined(separator: ", "))"
        }
    }
}

/// A MinAtar game behind MinAtar's `Environment` interface: sticky actions, six actions, a seeded stream.
///
/// Observations are channel-first, `[channels, 10, 10]` (CHW), so a batch of them is NCHW.
public struct Environment: Sendable {
    /// The game types, by MinAtar module name.
    public static let games: [any Game.Type] = [Asterix.self, Breakout.self, Freeway.self, Seaquest.self,
                                                SpaceInvaders.self]

    /// The valid game names: asterix, breakout, freeway, seaquest, space_invaders.
    public static var gameNames: [String] { games.map { $0.name } }

    /// Every MinAtar game accepts all six actions (`num_actions()`).
    public static let actionCount = 6

    /// The game being played.
    public private(set) var game: any Game
    /// The random stream shared by the sticky-action draws and the game.
    public private(set) var random: NumpyRandomState
    /// The MinAtar name of the game (`game_name()`).
    public let gameName: String
    /// Probability that a requested action is replaced by the previous executed one.
    public let stickyActionProbability: Double
    /// The last action the game executed (after sticky actions); 0 before the first `act`.
    public private(set) var lastAction = 0

    /// Makes a game by MinAtar name, seeds its stream like `RandomState(seed)`, and resets it from that
    /// stream — MinAtar's `Environment(name, sticky_action_prob, difficulty_ramping)` followed by
    /// `seed(seed)` and `reset()`.
    ///
    /// Throws `EnvironmentError.unknownGame` for a name other than those in `gameNames`.
    public init(game name: String, seed: UInt32, stickyActionProbability: Double = 0.1,
                difficultyRamping: Bool = true) throws(EnvironmentError) {
        guard let type = Environment.games.first(where: { $0.name == name }) else {
            throw .unknownGame(name, valid: Environment.gameNames)
        }
        self.init(type, seed: seed, stickyActionProbability: stickyActionProbability,
                  difficultyRamping: difficultyRamping)
    }

    /// Makes a game by type; otherwise like `init(game:seed:stickyActionProbability:difficultyRamping:)`.
    public init(_ type: any Game.Type, seed: UInt32, stickyActionProbability: Double = 0.1,
                difficultyRamping: Bool = true) {
        var random = NumpyRandomState(seed: seed)
        game = type.init(difficultyRamping: difficultyRamping, random: &random)
        self.random = random
        gameName = type.name
        self.stickyActionProbability = stickyActionProbability
    }

    /// Number of actions, always 6 (`num_actions()`): no-op, left, up, right, down, fire.
    public var numActions: Int { Environment.actionCount }

    /// The actions that have a distinct effect in this game (`minimal_action_set()`).
    public func minimalActionSet() -> [Int] { type(of: game).minimalActionSet }

    /// Number of observation channels (`state_shape()[2]`).
    public var channelCount: Int { type(of: game).channelCount }

    /// Names of the observation channels, in order.
    public var channelNames: [String] { type(of: game).channelNames }

    /// The observation's shape, channel-first: `[channels, 10, 10]`.
    public var observationShape: [Int] { [channelCount, boardSize, boardSize] }

    /// Number of values in one observation (`channels * 100`).
    public var observationCount: Int { channelCount * cellsPerChannel }

    /// Whether the current episode has ended.
    public var isTerminal: Bool { game.isTerminal }

    /// MinAtar's `difficulty_ramp()`: the ramp level, or nil for Breakout and Freeway.
    public var difficultyRamp: Int? { game.difficultyRamp }

    /// Replaces the random stream with `RandomState(seed)` without resetting, like MinAtar's `seed(seed)`.
    public mutating func seed(_ seed: UInt32) {
        random = NumpyRandomState(seed: seed)
    }

    /// Starts a new episode (`reset()`); the last action carries over, as in MinAtar.
    public mutating func reset() {
        game.reset(random: &random)
    }

    /// Plays one frame with sticky actions (`act(a)`); `action` is a MinAtar index in 0 ..< 6.
    ///
    /// Draws the sticky-action uniform first, then lets the game act on the same stream.
    @inline(__always)
    public mutating func act(_ action: Int) -> (reward: Float, terminal: Bool) {
        var executed = action
        if random.randomSample() < stickyActionProbability { executed = lastAction }
        lastAction = executed
        return game.act(executed, random: &random)
    }

    /// Lets `body` edit the game in place; for tests that start from a hand-made state.
    mutating func modifyGame<G: Game>(as type: G.Type, _ body: (inout G) -> Void) {
        guard var concrete = game as? G else { preconditionFailure("the game is not a \(G.self)") }
        body(&concrete)
        game = concrete
    }

    /// Writes the `[channels, 10, 10]` observation into the first `observationCount` values of `buffer`.
    public func observation(into buffer: UnsafeMutableBufferPointer<Float>) {
        game.writeObservation(into: buffer)
    }

    /// The `[channels, 10, 10]` observation as a new array (allocates; prefer `observation(into:)`).
    public func observation() -> [Float] {
        game.observation()
    }
}
