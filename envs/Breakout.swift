// Breakout — a port of minatar/environments/breakout.py (MinAtar 1.0.15), step for step.
//
// Objects: a paddle on row 9 (starts at column 4, moves one cell per frame), a ball that travels only
//   along diagonals one cell per frame, and bricks filling rows 1 ... 3.
// Channels: 0 paddle, 1 ball, 2 trail (the ball's previous cell), 3 brick.
// Actions: minimal set no-op, left, right (up, down and fire do nothing).
// Reset: the ball starts on row 3 at column 0 heading down-right or at column 9 heading down-left, chosen
//   by randint(2) — the only random draw in the game.
// Ball directions: 0 up-left, 1 up-right, 2 down-right, 3 down-left. Each frame the ball's new cell is
//   computed; then, in this order: leaving the side of the board clamps the column and mirrors the
//   direction left-right; leaving the top clamps to row 0 and mirrors up-down; otherwise, entering a brick
//   breaks it (+1), keeps the ball on its old row and mirrors up-down; otherwise, reaching row 9 bounces
//   off the paddle if the paddle is under the ball's old column (mirrored up-down) or its new column
//   (reversed), and ends the episode if neither.
// Rewards: +1 per brick broken (at most one per frame).
// Termination: the ball reaches row 9 away from the paddle.
// Refill: when the ball reaches row 9 and no bricks are left, rows 1 ... 3 are filled again (before the
//   paddle check, so it happens even on the losing frame).
// Difficulty ramp: none (`difficultyRamp` is nil; MinAtar ignores `ramping`).
// Quirks kept: the "strike" flag — after breaking a brick, a ball that enters another brick on the very
//   next frame passes into it without breaking it or bouncing (the flag only clears on a frame that hits
//   no brick), so the ball can share a cell with a brick; the paddle moves before the ball, and the
//   paddle check compares with the ball's old column first.

/// Breakout from MinAtar: keep the ball in play with a paddle and break the bricks.
public struct Breakout: Game {
    /// "breakout".
    public static let name = "breakout"
    /// paddle, ball, trail, brick.
    public static let channelNames = ["paddle", "ball", "trail", "brick"]
    /// No-op, left, right.
    public static let minimalActionSet = [0, 1, 3]

    /// The three rows of bricks a new wall fills (`brick_map[1:4, :] = 1`).
    static let wall = BitGrid.block(rows: 1..<4, columns: 0..<10)

    /// Ball column.
    private(set) var ballColumn = 0
    /// Ball row.
    private(set) var ballRow = 3
    /// 0 up-left, 1 up-right, 2 down-right, 3 down-left.
    private(set) var ballDirection = 2
    /// Paddle column.
    private(set) var paddleColumn = 4
    /// Remaining bricks.
    private(set) var bricks = Breakout.wall
    /// Whether the previous frame broke or entered a brick (MinAtar's `strike`).
    private(set) var strike = false
    /// The ball's column before this frame's move (the trail).
    private(set) var lastColumn = 0
    /// The ball's row before this frame's move (the trail).
    private(set) var lastRow = 3
    /// Whether the episode is over.
    public private(set) var isTerminal = false

    /// Breakout never ramps: nil, as MinAtar's `difficulty_ramp()` returns None.
    public var difficultyRamp: Int? { nil }

    /// Builds and resets the game, drawing the ball's starting side from `random`.
    public init(difficultyRamping: Bool = true, random: inout NumpyRandomState) {
        reset(random: &random)
    }

    /// Starts a new episode: one randint(2) draw picks the ball's side.
    public mutating func reset(random: inout NumpyRandomState) {
        ballRow = 3
        if random.randomInteger(high: 2) == 0 {
            ballColumn = 0
            ballDirection = 2
        } else {
            ballColumn = 9
            ballDirection = 3
        }
        paddleColumn = 4
        bricks = Breakout.wall
        strike = false
        lastColumn = ballColumn
        lastRow = ballRow
        isTerminal = false
    }

    /// Advances one frame (see the rules at the top of this file); never draws.
    public mutating func act(_ action: Int, random: inout NumpyRandomState) -> (reward: Float, terminal: Bool) {
        var reward = 0
        if isTerminal { return (0, true) }
        switch decodeAction(action) {
        case .left: paddleColumn = max(0, paddleColumn - 1)
        case .right: paddleColumn = min(9, paddleColumn + 1)
        default: break
        }

        lastColumn = ballColumn
        lastRow = ballRow
        var newColumn: Int
        var newRow: Int
        switch ballDirection {
        case 0: newColumn = ballColumn - 1; newRow = ballRow - 1
        case 1: newColumn = ballColumn + 1; newRow = ballRow - 1
        case 2: newColumn = ballColumn + 1; newRow = ballRow + 1
        default: newColumn = ballColumn - 1; newRow = ballRow + 1
        }

        var strikeThisFrame = false
        if newColumn < 0 || newColumn > 9 {
            newColumn = min(max(newColumn, 0), 9)
            ballDirection = Breakout.mirrorSideways[ballDirection]
        }
        if newRow < 0 {
            newRow = 0
            ballDirection = Breakout.mirrorVertically[ballDirection]
        } else if bricks[newRow, newColumn] {
            strikeThisFrame = true
            if !strike {
                reward += 1
                strike = true
                bricks[newRow, newColumn] = false
                newRow = lastRow
                ballDirection = Breakout.mirrorVertically[ballDirection]
            }
        } else if newRow == 9 {
            if bricks.isEmpty { bricks = Breakout.wall }
            if ballColumn == paddleColumn {
                ballDirection = Breakout.mirrorVertically[ballDirection]
                newRow = lastRow
            } else if newColumn == paddleColumn {
                ballDirection = Breakout.reverse[ballDirection]
                newRow = lastRow
            } else {
                isTerminal = true
            }
        }
        if !strikeThisFrame { strike = false }

        ballColumn = newColumn
        ballRow = newRow
        return (Float(reward), isTerminal)
    }

    /// Direction after bouncing off a side wall (`[1,0,3,2][dir]`).
    private static let mirrorSideways = [1, 0, 3, 2]
    /// Direction after bouncing off the top, a brick or the paddle's centre (`[3,2,1,0][dir]`).
    private static let mirrorVertically = [3, 2, 1, 0]
    /// Direction after hitting the paddle with the ball's new column (`[2,3,0,1][dir]`).
    private static let reverse = [2, 3, 0, 1]

    /// Writes the CHW observation (4 channels).
    public func writeObservation(into buffer: UnsafeMutableBufferPointer<Float>) {
        let writer = ObservationWriter(buffer, channels: 4)
        writer.set(1, ballRow, ballColumn)
        writer.set(0, 9, paddleColumn)
        writer.set(2, lastRow, lastColumn)
        writer.set(3, bricks)
    }
}
