// Freeway — a port of minatar/environments/freeway.py (MinAtar 1.0.15), step for step.
//
// Objects: the chicken, always in column 4, starting on row 9; eight cars, one per row 1 ... 8, each
//   with a speed of 1 ... 5 (a car moves one cell every speed + 1 frames, see below) and a direction.
//   Cars wrap round from one side of the board to the other.
// Channels: 0 chicken, 1 car, 2 ... 6 speed1 ... speed5: a car's trail (the cell behind it, wrapping
//   round the board) is drawn in the channel of its speed, so direction and speed are both visible.
// Actions: minimal set no-op, up, down (left, right and fire do nothing).
// Chicken: may move only when its move timer is 0; a move restarts the timer at 3 and the timer counts
//   down by one per frame, so the chicken moves at most once every 3 frames.
// Cars: each frame a car first knocks the chicken back to row 9 if it occupies the chicken's cell; then,
//   if its timer is 0, the timer restarts at |speed| and the car moves one cell (right for positive
//   speed), wrapping, and knocks the chicken back again if it landed on it; otherwise the timer counts
//   down. So a car moves once every |speed| + 1 frames.
// Car randomisation (reset, and every time the chicken reaches the top): speeds = randint(1, 6, size 8)
//   — eight bounded draws — then directions = sign(rand(8) − 0.5) — eight doubles; each car gets
//   timer = |speed| and signed speed = speed · direction. On reset every car also goes to column 0.
// Rewards: +1 when the chicken reaches row 0; it returns to row 9 and the car speeds are re-drawn.
// Termination: after 2500 frames have run out (the timer starts at 2500 and the episode ends on the
//   frame it goes below 0, i.e. frame 2501).
// Difficulty ramp: none (`difficultyRamp` is nil; MinAtar ignores `ramping`).
// Quirks kept: the scoring check happens after the chicken's move but before the cars move; a
//   direction draw of exactly 0.5 would give a speed-0 car, which moves left every frame and whose trail
//   MinAtar draws in the previous car's trail channel (Python keeps the loop variable), or not at all for
//   car 0 (where MinAtar would raise) — probability 2⁻⁵³ per draw, kept only for completeness.

/// Freeway from MinAtar: cross eight lanes of traffic as often as possible in 2500 frames.
public struct Freeway: Game {
    /// "freeway".
    public static let name = "freeway"
    /// chicken, car, speed1 ... speed5.
    public static let channelNames = ["chicken", "car", "speed1", "speed2", "speed3", "speed4", "speed5"]
    /// No-op, up, down.
    public static let minimalActionSet = [0, 2, 4]

    /// Frames between chicken moves (freeway.py `player_speed`).
    static let playerMoveInterval = 3
    /// Frames in an episode, minus one (freeway.py `time_limit`).
    static let timeLimit = 2500
    /// Number of cars (one per row 1 ... 8).
    static let carCount = 8

    /// One car: row `index + 1`.
    struct Car: Sendable {
        /// Column 0 ... 9.
        var column: Int
        /// Frames until the next move.
        var timer: Int
        /// Signed speed: |speed| is the move interval, the sign the direction (positive: right).
        var speed: Int
    }

    /// Chicken row (its column is always 4).
    private(set) var chickenRow = 9
    /// Frames until the chicken may move again.
    private(set) var moveTimer = Freeway.playerMoveInterval
    /// Frames left before the episode ends (goes below 0 on the last frame).
    private(set) var terminateTimer = Freeway.timeLimit
    /// The eight cars; car i drives on row i + 1.
    private(set) var cars = InlineArray<8, Car>(repeating: Car(column: 0, timer: 0, speed: 1))
    /// Scratch space for the eight speed draws.
    private var speedDraws = InlineArray<8, Int>(repeating: 0)
    /// Whether the episode is over.
    public private(set) var isTerminal = false

    /// Freeway never ramps: nil, as MinAtar's `difficulty_ramp()` returns None.
    public var difficultyRamp: Int? { nil }

    /// Builds and resets the game, drawing the car speeds from `random`.
    public init(difficultyRamping: Bool = true, random: inout NumpyRandomState) {
        reset(random: &random)
    }

    /// Starts a new episode: cars to column 0 with fresh speeds (16 draws).
    public mutating func reset(random: inout NumpyRandomState) {
        randomizeCars(initialize: true, random: &random)
        chickenRow = 9
        moveTimer = Freeway.playerMoveInterval
        terminateTimer = Freeway.timeLimit
        isTerminal = false
    }

    /// freeway.py `_randomize_cars`: eight randint(1, 6) draws, then eight rand() draws for directions.
    private mutating func randomizeCars(initialize: Bool, random: inout NumpyRandomState) {
        for index in 0..<Freeway.carCount {
            speedDraws[index] = random.randomInteger(low: 1, high: 6)
        }
        for index in 0..<Freeway.carCount {
            // np.sign(rand() - 0.5): +1 above one half, −1 below, 0 at exactly one half.
            let draw = random.randomSample()
            let direction = draw > 0.5 ? 1 : (draw < 0.5 ? -1 : 0)
            let speed = speedDraws[index] * direction
            if initialize { cars[index].column = 0 }
            cars[index].timer = abs(speed)
            cars[index].speed = speed
        }
    }

    /// Advances one frame (see the rules at the top of this file).
    public mutating func act(_ action: Int, random: inout NumpyRandomState) -> (reward: Float, terminal: Bool) {
        var reward = 0
        if isTerminal { return (0, true) }
        let move = decodeAction(action)
        if move == .up && moveTimer == 0 {
            moveTimer = Freeway.playerMoveInterval
            chickenRow = max(0, chickenRow - 1)
        } else if move == .down && moveTimer == 0 {
            moveTimer = Freeway.playerMoveInterval
            chickenRow = min(9, chickenRow + 1)
        }

        if chickenRow == 0 {
            reward += 1
            randomizeCars(initialize: false, random: &random)
            chickenRow = 9
        }

        for index in 0..<Freeway.carCount {
            let row = index + 1
            if cars[index].column == 4 && row == chickenRow { chickenRow = 9 }
            if cars[index].timer == 0 {
                cars[index].timer = abs(cars[index].speed)
                var column = cars[index].column + (cars[index].speed > 0 ? 1 : -1)
                if column < 0 {
                    column = 9
                } else if column > 9 {
                    column = 0
                }
                cars[index].column = column
                if column == 4 && row == chickenRow { chickenRow = 9 }
            } else {
                cars[index].timer -= 1
            }
        }

        if moveTimer > 0 { moveTimer -= 1 }
        terminateTimer -= 1
        if terminateTimer < 0 { isTerminal = true }
        return (Float(reward), isTerminal)
    }

    /// Writes the CHW observation (7 channels).
    public func writeObservation(into buffer: UnsafeMutableBufferPointer<Float>) {
        let writer = ObservationWriter(buffer, channels: 7)
        writer.set(0, chickenRow, 4)
        // Python's `trail` outlives each loop iteration; see the speed-0 quirk at the top of this file.
        var trailChannel = -1
        for index in 0..<Freeway.carCount {
            let car = cars[index]
            let row = index + 1
            writer.set(1, row, car.column)
            var behind = car.speed > 0 ? car.column - 1 : car.column + 1
            if behind < 0 {
                behind = 9
            } else if behind > 9 {
                behind = 0
            }
            let speed = abs(car.speed)
            if speed >= 1 && speed <= 5 { trailChannel = 1 + speed }
            if trailChannel >= 0 { writer.set(trailChannel, row, behind) }
        }
    }
}
