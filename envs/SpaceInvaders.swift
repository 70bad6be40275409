// Space Invaders — a port of minatar/environments/space_invaders.py (MinAtar 1.0.15), step for step.
//
// Objects: a cannon on row 9 (starts at column 5), a wave of aliens (a 4 × 6 block, rows 0 ... 3 and
//   columns 2 ... 7, marching left at first), the cannon's bullets (moving up one row per frame) and the
//   aliens' bullets (moving down one row per frame).
// Channels: 0 cannon, 1 alien, 2 alien_left, 3 alien_right (every alien also appears in the channel of
//   the wave's current direction), 4 friendly_bullet, 5 enemy_bullet.
// Actions: minimal set no-op, left, right, fire (up and down do nothing).
// Frame order: (1) fire — if the shot cooldown is 0, a bullet appears at row 9 under the cannon and the
//   cooldown restarts at 5 — or move; (2) the cannon's bullets move up (leaving the top removes them) and
//   the aliens' bullets move down (leaving the bottom removes them); an alien bullet now on the cannon
//   ends the episode; (3) an alien on the cannon ends the episode; (4) if the alien move timer is 0 it
//   restarts at min(aliens left, move interval) and the wave moves: if an alien touches the side it is
//   heading to, the wave reverses and steps down one row (ending the episode if an alien was already on
//   row 9), otherwise it steps sideways; an alien on the cannon then ends the episode; (5) if the alien
//   shot timer is 0 it restarts at 10 and the alien nearest the cannon fires: the nearest occupied column
//   (by distance, the left one first on a tie) and its lowest alien, and the bullet appears on the alien's
//   own cell; (6) every cell holding both an alien and a friendly bullet loses both, +1 each; (7) timers
//   count down; (8) an empty board gets a new wave.
// Rewards: +1 per alien shot; several can fall in one frame.
// Termination: an alien bullet or an alien reaches the cannon, or the wave must step down with an alien
//   already on row 9.
// Difficulty ramp (when `difficultyRamping`): the move interval starts at 12; each cleared wave lowers it
//   by one while it is above 6, raising the ramp index. Independently of ramping, aliens speed up as they
//   thin out: the wave moves every min(aliens left, move interval) frames, so a lone alien moves every
//   frame.
// Quirks kept: the moves use np.roll, so the wave stepping down from row 9 wraps round to row 0 on the
//   terminal frame; bullets and aliens that swap cells in one frame pass through each other; the alien
//   shot lands on the alien's cell, not below it.

/// Space Invaders from MinAtar: shoot down waves of aliens before they or their bullets reach you.
public struct SpaceInvaders: Game {
    /// "space_invaders".
    public static let name = "space_invaders"
    /// cannon, alien, alien_left, alien_right, friendly_bullet, enemy_bullet.
    public static let channelNames = ["cannon", "alien", "alien_left", "alien_right", "friendly_bullet",
                                      "enemy_bullet"]
    /// No-op, left, right, fire.
    public static let minimalActionSet = [0, 1, 3, 5]

    /// Frames between the cannon's shots (space_invaders.py `shot_cool_down`).
    static let shotCooldown = 5
    /// Frames between wave moves at the start (space_invaders.py `enemy_move_interval`).
    static let initialMoveInterval = 12
    /// Frames between alien shots (space_invaders.py `enemy_shot_interval`).
    static let alienShotInterval = 10
    /// The starting block of aliens (`alien_map[0:4, 2:8] = 1`).
    static let wave = BitGrid.block(rows: 0..<4, columns: 2..<8)

    /// Whether cleared waves speed up the next (MinAtar's `ramping`).
    let difficultyRamping: Bool
    /// Cannon column.
    var cannonColumn = 5
    /// The cannon's bullets.
    var friendlyBullets = BitGrid.empty
    /// The aliens' bullets.
    var alienBullets = BitGrid.empty
    /// The aliens.
    var aliens = SpaceInvaders.wave
    /// −1 marching left, +1 marching right.
    var alienDirection = -1
    /// Frames between wave moves for a full wave.
    var moveInterval = SpaceInvaders.initialMoveInterval
    /// Frames until the wave next moves.
    var alienMoveTimer = SpaceInvaders.initialMoveInterval
    /// Frames until the aliens next shoot.
    var alienShotTimer = SpaceInvaders.alienShotInterval
    /// Waves that made the next one faster.
    var rampIndex = 0
    /// Frames until the cannon may shoot again.
    var shotTimer = 0
    /// Whether the episode is over.
    public private(set) var isTerminal = false

    /// The ramp index (MinAtar's `difficulty_ramp()`).
    public var difficultyRamp: Int? { rampIndex }

    /// Builds and resets the game; Space Invaders never draws random numbers.
    public init(difficultyRamping: Bool = true, random: inout NumpyRandomState) {
        self.difficultyRamping = difficultyRamping
        reset(random: &random)
    }

    /// Starts a new episode; draws nothing.
    public mutating func reset(random: inout NumpyRandomState) {
        cannonColumn = 5
        friendlyBullets = .empty
        alienBullets = .empty
        aliens = SpaceInvaders.wave
        alienDirection = -1
        moveInterval = SpaceInvaders.initialMoveInterval
        alienMoveTimer = moveInterval
        alienShotTimer = SpaceInvaders.alienShotInterval
        rampIndex = 0
        shotTimer = 0
        isTerminal = false
    }

    /// Advances one frame (see the rules at the top of this file); never draws.
    public mutating func act(_ action: Int, random: inout NumpyRandomState) -> (reward: Float, terminal: Bool) {
        if isTerminal { return (0, true) }
        let move = decodeAction(action)
        if move == .fire && shotTimer == 0 {
            friendlyBullets[9, cannonColumn] = true
            shotTimer = SpaceInvaders.shotCooldown
        } else if move == .left {
            cannonColumn = max(0, cannonColumn - 1)
        } else if move == .right {
            cannonColumn = min(9, cannonColumn + 1)
        }

        // np.roll then clearing the wrapped row removes bullets that leave the board.
        friendlyBullets = BitGrid(bits: friendlyBullets.rolledUp().bits & ~BitGrid.rowMask(9))
        alienBullets = BitGrid(bits: alienBullets.rolledDown().bits & ~BitGrid.rowMask(0))
        if alienBullets[9, cannonColumn] { isTerminal = true }

        if aliens[9, cannonColumn] { isTerminal = true }
        if alienMoveTimer == 0 {
            alienMoveTimer = min(aliens.count, moveInterval)
            if (aliens.columnIsOccupied(0) && alienDirection < 0) || (aliens.columnIsOccupied(9) && alienDirection > 0) {
                alienDirection = -alienDirection
                if aliens.rowIsOccupied(9) { isTerminal = true }
                aliens = aliens.rolledDown()
            } else {
                aliens = aliens.rolledSideways(by: alienDirection)
            }
            if aliens[9, cannonColumn] { isTerminal = true }
        }
        if alienShotTimer == 0 {
            alienShotTimer = SpaceInvaders.alienShotInterval
            // MinAtar would raise on an empty board here; the board is refilled at the end of every frame,
            // so it is never empty at this point.
            if let (row, column) = nearestAlien() { alienBullets[row, column] = true }
        }

        let kills = aliens & friendlyBullets
        let reward = kills.count
        aliens = aliens.subtracting(kills)
        friendlyBullets = friendlyBullets.subtracting(kills)

        if shotTimer > 0 { shotTimer -= 1 }
        alienMoveTimer -= 1
        alienShotTimer -= 1
        if aliens.isEmpty {
            if moveInterval > 6 && difficultyRamping {
                moveInterval -= 1
                rampIndex += 1
            }
            aliens = SpaceInvaders.wave
        }
        return (Float(reward), isTerminal)
    }

    /// space_invaders.py `_nearest_alien`: columns sorted stably by distance from the cannon (so the left
    /// column wins a tie), and the lowest alien of the first occupied one.
    private func nearestAlien() -> (row: Int, column: Int)? {
        if let row = aliens.lowestRow(inColumn: cannonColumn) { return (row, cannonColumn) }
        for distance in 1..<boardSize {
            let left = cannonColumn - distance
            if left >= 0, let row = aliens.lowestRow(inColumn: left) { return (row, left) }
            let right = cannonColumn + distance
            if right <= 9, let row = aliens.lowestRow(inColumn: right) { return (row, right) }
        }
        return nil
    }

    /// Writes the CHW observation (6 channels).
    public func writeObservation(into buffer: UnsafeMutableBufferPointer<Float>) {
        let writer = ObservationWriter(buffer, channels: 6)
        writer.set(0, 9, cannonColumn)
        writer.set(1, aliens)
        writer.set(alienDirection < 0 ? 2 : 3, aliens)
        writer.set(4, friendlyBullets)
        writer.set(5, alienBullets)
    }
}
