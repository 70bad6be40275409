// The interface every MinAtar game implements, and helpers they share.
//
// MinAtar's games (minatar/environments/*.py) each expose `act(a)`, `state()`, `reset()`,
// `state_shape()`, `minimal_action_set()` and `difficulty_ramp()`, and read randomness from a
// `self.random` that `Environment.seed` replaces with the environment's own generator, so the sticky-action
// draw and the game's draws share one stream. Here the stream is passed in explicitly (`inout`), which
// gives the same interleaving without two owners of one generator.

/// The six MinAtar actions, in the order of MinAtar's `action_map = ['n','l','u','r','d','f']`.
public enum Action: Int, CaseIterable, Sendable {
    /// Do nothing ('n').
    case noOperation = 0
    /// Move left ('l').
    case left = 1
    /// Move up ('u').
    case up = 2
    /// Move right ('r').
    case right = 3
    /// Move down ('d').
    case down = 4
    /// Fire ('f').
    case fire = 5
}

/// Side of MinAtar's square board, in cells.
public let boardSize = 10

/// Cells in one observation channel (`boardSize × boardSize`).
public let cellsPerChannel = boardSize * boardSize

/// One MinAtar game: its state, its rules, and its observation.
///
/// Observations are channel-first (CHW): value `[channel, row, column]` lives at
/// `channel * 100 + row * 10 + column`, 1 where MinAtar's boolean `state()[row, column, channel]` is true
/// and 0 elsewhere. Games never allocate in `act`.
public protocol Game: Sendable {
    /// The MinAtar module name, e.g. "space_invaders".
    static var name: String { get }
    /// The observation channels' names, in MinAtar's channel order.
    static var channelNames: [String] { get }
    /// The actions (MinAtar indices) that have a distinct effect in this game, in MinAtar's order.
    static var minimalActionSet: [Int] { get }

    /// Builds the game and resets it, drawing any reset randomness from `random`.
    ///
    /// `difficultyRamping` is MinAtar's `ramping`; games without a ramp ignore it, as MinAtar does.
    init(difficultyRamping: Bool, random: inout NumpyRandomState)

    /// Whether the episode has ended; `act` does nothing until `reset`.
    var isTerminal: Bool { get }

    /// MinAtar's `difficulty_ramp()`: the ramp level reached, or nil for games that never ramp.
    var difficultyRamp: Int? { get }

    /// Starts a new episode (MinAtar's `reset()`).
    mutating func reset(random: inout NumpyRandomState)

    /// Advances one frame with a MinAtar action index in 0 ..< 6 (MinAtar's `act(a)`).
    ///
    /// Returns the reward and whether the episode is over. Once terminal, returns (0, true) and changes
    /// nothing, exactly like MinAtar.
    mutating func act(_ action: Int, random: inout NumpyRandomState) -> (reward: Float, terminal: Bool)

    /// Writes the CHW observation into the first `channelNames.count * 100` values of `buffer`.
    func writeObservation(into buffer: UnsafeMutableBufferPointer<Float>)
}

extension Game {
    /// Number of observation channels.
    public static var channelCount: Int { channelNames.count }

    /// Number of observation channels.
    public var channelCount: Int { Self.channelNames.count }

    /// The observation channels' names, in MinAtar's channel order.
    public var channelNames: [String] { Self.channelNames }

    /// The actions (MinAtar indices) that have a distinct effect in this game.
    public var minimalActionSet: [Int] { Self.minimalActionSet }

    /// The CHW observation as a new array of `channelCount * 100` values.
    public func observation() -> [Float] {
        [Float](unsafeUninitializedCapacity: channelCount * cellsPerChannel) { buffer, count in
            writeObservation(into: buffer)
            count = channelCount * cellsPerChannel
        }
    }
}

/// Checks an action index and turns it into an `Action`.
///
/// MinAtar indexes `action_map` with the integer, so anything outside 0 ..< 6 is a caller bug
/// (Python would raise, or for negative numbers silently index from the end).
@inline(__always)
func decodeAction(_ action: Int) -> Action {
    guard let decoded = Action(rawValue: action) else {
        preconditionFailure("MinAtar actions are 0 ..< 6, got \(action)")
    }
    return decoded
}

/// Writes observations into a caller's buffer: zero it, then set single cells.
struct ObservationWriter {
    /// The destination, at least `channels * 100` values long.
    let buffer: UnsafeMutableBufferPointer<Float>

    /// Zeroes the first `channels * 100` values.
    init(_ buffer: UnsafeMutableBufferPointer<Float>, channels: Int) {
        precondition(buffer.count >= channels * cellsPerChannel,
                     "observation buffer holds \(buffer.count) values, needs \(channels * cellsPerChannel)")
        self.buffer = buffer
        buffer.baseAddress!.update(repeating: 0, count: channels * cellsPerChannel)
    }

    /// Sets `[channel, row, column]` to 1.
    @inline(__always)
    func set(_ channel: Int, _ row: Int, _ column: Int) {
        buffer[channel * cellsPerChannel + row * boardSize + column] = 1
    }

    /// Copies a whole bit grid into one channel.
    func set(_ channel: Int, _ grid: BitGrid) {
        var bits = grid.bits
        while bits != 0 {
            let cell = bits.trailingZeroBitCount
            buffer[channel * cellsPerChannel + cell] = 1
            bits &= bits &- 1
        }
    }
}
