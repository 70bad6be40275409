// Seaquest — a port of minatar/environments/seaquest.py (MinAtar 1.0.15), step for step.
//
// Objects: the player's submarine (two cells: a front at its position and a back one cell behind it, so
//   its facing is visible; starts at row 0, column 5, facing left), its torpedoes ("friendly bullets",
//   one cell per frame horizontally), enemy fish and enemy submarines (travel horizontally, entering from
//   either side on rows 1 ... 8), the enemy submarines' bullets (one cell per frame), and divers to rescue.
// Channels: 0 sub_front, 1 sub_back, 2 friendly_bullet, 3 trail (the cell behind every fish, enemy sub
//   and diver, when on the board), 4 enemy_bullet, 5 enemy_fish, 6 enemy_sub, 7 oxygen_guage (row 9,
//   columns 0 ..< oxygen·10/200), 8 diver_guage (row 9, columns 9 − divers ..< 9), 9 diver. The two gauge
//   names keep MinAtar's spelling.
// Actions: all six are distinct (no-op, left, up, right, down, fire). The submarine moves in rows 0 ... 8;
//   fire launches a torpedo from the submarine's cell in its facing direction when the cooldown (5) is 0.
// Frame order: (1) spawn an enemy if its timer is 0 (timer restarts at the spawn interval) and a diver if
//   its timer is 0 (restarts at 30); (2) fire or move; (3) torpedoes move, leave the board, or hit the
//   first fish, else the first enemy sub, in their new cell (+1, both removed); (4) divers: one on the
//   submarine's cell is picked up if fewer than 6 are aboard, else it moves every 6th frame (timer 5),
//   leaving the board or being picked up on arrival; (5) enemy subs: one on the submarine ends the episode;
//   every move-interval + 1 frames it moves, leaves the board, ends the episode on arrival at the
//   submarine, or is hit by the first torpedo on its new cell (+1); every 11th frame it fires a bullet on
//   its own cell; (6) enemy bullets: one on the submarine ends the episode, then it moves and leaves the
//   board or ends the episode on arrival; (7) fish as enemy subs, without shooting; (8) timers count down;
//   oxygen at or below 0 ends the episode; below the surface oxygen drops by 1; arriving at the surface
//   (row 0 after having been below) with no divers ends the episode, otherwise surfaces.
// Spawning an enemy: lr = rand() < 1/2 (enters at column 0 moving right if true, else column 9 moving
//   left), sub = rand() < 1/3, row = randint(1, 9); nothing spawns if some fish or sub on that row travels
//   the other way. Spawning a diver: lr = rand() < 1/2, row = randint(1, 9), always spawns.
// Surfacing: with 6 divers, all are dropped and the reward is oxygen·10 // 200 (one per full tenth of the
//   200-frame tank); otherwise no reward. Oxygen refills to 200 and — quirk — one diver is then removed in
//   both cases, so surfacing with 6 leaves the count at −1 (the gauge shows nothing, a −1 count may
//   surface again and go lower, and picking up one diver brings it to 0, with which surfacing is fatal).
// Rewards: +1 per fish or enemy sub torpedoed, plus the surfacing bonus.
// Termination: touching a fish, enemy sub or enemy bullet; oxygen exhausted; surfacing with 0 divers.
// Difficulty ramp (when `difficultyRamping`): every surfacing, while the enemy spawn interval is above 1
//   or the move interval above 2, the move interval drops by one on odd ramp indices (from 5 down to 2)
//   and the spawn interval by one (from 20 down to 1); the ramp index counts surfacings that ramped.
// Quirks kept (all of Python's list semantics, via ObjectList): `list.remove` removes the first *equal*
//   object; reversed iteration re-reads the list; an enemy sub that leaves the board or is torpedoed in
//   its move still fires that frame (off-board bullets vanish in the bullet update of the same frame;
//   on-board ones stay); an enemy bullet is spawned on the sub's own cell (`sub[0] if sub[2] else
//   sub[0]`); objects can overlap, since only the player's cell and torpedoes are checked.

/// Seaquest from MinAtar: torpedo fish and submarines, rescue divers and surface for air.
public struct Seaquest: Game {
    /// "seaquest".
    public static let name = "seaquest"
    /// sub_front, sub_back, friendly_bullet, trail, enemy_bullet, enemy_fish, enemy_sub, oxygen_guage,
    /// diver_guage, diver.
    public static let channelNames = ["sub_front", "sub_back", "friendly_bullet", "trail", "enemy_bullet",
                                      "enemy_fish", "enemy_sub", "oxygen_guage", "diver_guage", "diver"]
    /// All six actions.
    public static let minimalActionSet = [0, 1, 2, 3, 4, 5]

    /// Full oxygen tank (seaquest.py `max_oxygen`).
    static let maximumOxygen = 200
    /// Frames between enemy spawns at the start (`init_spawn_speed`).
    static let initialSpawnInterval = 20
    /// Frames between diver spawns (`diver_spawn_speed`).
    static let diverSpawnInterval = 30
    /// Frames between enemy moves at the start (`init_move_interval`).
    static let initialMoveInterval = 5
    /// Torpedo cooldown (`shot_cool_down`).
    static let shotCooldown = 5
    /// Frames between an enemy sub's shots (`enemy_shot_interval`).
    static let enemyShotInterval = 10
    /// Frames between diver moves (`diver_move_interval`).
    static let diverMoveInterval = 5
    /// Divers the submarine can carry.
    static let diverCapacity = 6

    /// A torpedo, fish, enemy sub, enemy bullet or diver: MinAtar's `[x, y, lr, ...]` lists.
    ///
    /// Bullets use only column, row and direction; fish and divers add the move timer; enemy subs add the
    /// shot timer. Unused fields stay 0, so equality matches Python's list equality.
    struct Mover: Equatable, Sendable {
        /// Column (may be −1 or 10 for a moment before removal).
        var column: Int
        /// Row.
        var row: Int
        /// Whether it travels right.
        var movesRight: Bool
        /// Frames until its next move (fish, subs, divers).
        var moveTimer: Int = 0
        /// Frames until its next shot (enemy subs).
        var shotTimer: Int = 0
    }

    /// Whether surfacing speeds the enemies up (MinAtar's `ramping`).
    let difficultyRamping: Bool
    /// Oxygen left (200 when full; can reach −1 on the frame the episode ends).
    var oxygen = Seaquest.maximumOxygen
    /// Divers aboard; can go negative (see the surfacing quirk).
    var diverCount = 0
    /// Submarine column.
    var submarineColumn = 5
    /// Submarine row (0 is the surface).
    var submarineRow = 0
    /// Whether the submarine faces right (MinAtar's `sub_or`).
    var facingRight = false
    /// Torpedoes.
    var friendlyBullets = ObjectList<Mover>(capacity: 16)
    /// Enemy subs' bullets.
    var enemyBullets = ObjectList<Mover>(capacity: 64)
    /// Enemy fish.
    var enemyFish = ObjectList<Mover>(capacity: 64)
    /// Enemy subs.
    var enemySubs = ObjectList<Mover>(capacity: 64)
    /// Divers.
    var divers = ObjectList<Mover>(capacity: 16)
    /// Frames between enemy spawns.
    var enemySpawnInterval = Seaquest.initialSpawnInterval
    /// Frames until the next enemy spawn.
    var enemySpawnTimer = Seaquest.initialSpawnInterval
    /// Frames until the next diver spawn.
    var diverSpawnTimer = Seaquest.diverSpawnInterval
    /// Frames between enemy moves, minus one.
    var moveInterval = Seaquest.initialMoveInterval
    /// Surfacings that ramped the difficulty.
    var rampIndex = 0
    /// Frames until the submarine may fire again.
    var shotTimer = 0
    /// Whether the submarine is at the surface and has already surfaced there.
    var surfaced = true
    /// Whether the episode is over.
    public private(set) var isTerminal = false

    /// The ramp index (MinAtar's `difficulty_ramp()`).
    public var difficultyRamp: Int? { rampIndex }

    /// Builds and resets the game; Seaquest's reset draws nothing.
    public init(difficultyRamping: Bool = true, random: inout NumpyRandomState) {
        self.difficultyRamping = difficultyRamping
        reset(random: &random)
    }

    /// Starts a new episode; draws nothing.
    public mutating func reset(random: inout NumpyRandomState) {
        oxygen = Seaquest.maximumOxygen
        diverCount = 0
        submarineColumn = 5
        submarineRow = 0
        facingRight = false
        friendlyBullets.removeAll()
        enemyBullets.removeAll()
        enemyFish.removeAll()
        enemySubs.removeAll()
        divers.removeAll()
        enemySpawnInterval = Seaquest.initialSpawnInterval
        enemySpawnTimer = enemySpawnInterval
        diverSpawnTimer = Seaquest.diverSpawnInterval
        moveInterval = Seaquest.initialMoveInterval
        rampIndex = 0
        shotTimer = 0
        surfaced = true
        isTerminal = false
    }

    /// Whether a mover is on the submarine's cell.
    @inline(__always)
    private func isOnSubmarine(_ mover: Mover) -> Bool {
        mover.column == submarineColumn && mover.row == submarineRow
    }

    /// Advances one frame (see the rules at the top of this file).
    public mutating func act(_ action: Int, random: inout NumpyRandomState) -> (reward: Float, terminal: Bool) {
        var reward = 0
        if isTerminal { return (0, true) }
        let move = decodeAction(action)

        if enemySpawnTimer == 0 {
            spawnEnemy(random: &random)
            enemySpawnTimer = enemySpawnInterval
        }
        if diverSpawnTimer == 0 {
            spawnDiver(random: &random)
            diverSpawnTimer = Seaquest.diverSpawnInterval
        }

        if move == .fire && shotTimer == 0 {
            friendlyBullets.append(Mover(column: submarineColumn, row: submarineRow, movesRight: facingRight))
            shotTimer = Seaquest.shotCooldown
        } else if move == .left {
            submarineColumn = max(0, submarineColumn - 1)
            facingRight = false
        } else if move == .right {
            submarineColumn = min(9, submarineColumn + 1)
            facingRight = true
        } else if move == .up {
            submarineRow = max(0, submarineRow - 1)
        } else if move == .down {
            submarineRow = min(8, submarineRow + 1)
        }

        reward += updateFriendlyBullets()
        updateDivers()
        reward += updateEnemies(subs: true)
        updateEnemyBullets()
        reward += updateEnemies(subs: false)

        if enemySpawnTimer > 0 { enemySpawnTimer -= 1 }
        if diverSpawnTimer > 0 { diverSpawnTimer -= 1 }
        if shotTimer > 0 { shotTimer -= 1 }
        if oxygen <= 0 { isTerminal = true }
        if submarineRow > 0 {
            oxygen -= 1
            surfaced = false
        } else if !surfaced {
            if diverCount == 0 {
                isTerminal = true
            } else {
                reward += surface()
            }
        }
        return (Float(reward), isTerminal)
    }

    // Every `update` below walks its list the way CPython's `reversed(list)` does: from the last index
    // down, re-reading the list length each time (see ObjectList.swift).

    /// Torpedoes: move, leave the board, or hit the first fish / enemy sub on their new cell.
    private mutating func updateFriendlyBullets() -> Int {
        var reward = 0
        var index = friendlyBullets.count - 1
        while index >= 0 && index < friendlyBullets.count {
            let bullet = friendlyBullets.handle(at: index)
            index -= 1
            friendlyBullets[bullet].column += friendlyBullets[bullet].movesRight ? 1 : -1
            let current = friendlyBullets[bullet]
            if current.column < 0 || current.column > 9 {
                friendlyBullets.remove(bullet)
                continue
            }
            var removed = false
            for position in 0..<enemyFish.count {
                let fish = enemyFish.handle(at: position)
                if enemyFish[fish].column == current.column && enemyFish[fish].row == current.row {
                    enemyFish.remove(fish)
                    friendlyBullets.remove(bullet)
                    reward += 1
                    removed = true
                    break
                }
            }
            if !removed {
                for position in 0..<enemySubs.count {
                    let sub = enemySubs.handle(at: position)
                    if enemySubs[sub].column == current.column && enemySubs[sub].row == current.row {
                        enemySubs.remove(sub)
                        friendlyBullets.remove(bullet)
                        reward += 1
                        break
                    }
                }
            }
        }
        return reward
    }

    /// Divers: picked up where the submarine is (if it has room), otherwise drift every sixth frame.
    private mutating func updateDivers() {
        var index = divers.count - 1
        while index >= 0 && index < divers.count {
            let diver = divers.handle(at: index)
            index -= 1
            if isOnSubmarine(divers[diver]) && diverCount < Seaquest.diverCapacity {
                divers.remove(diver)
                diverCount += 1
            } else if divers[diver].moveTimer == 0 {
                divers[diver].moveTimer = Seaquest.diverMoveInterval
                divers[diver].column += divers[diver].movesRight ? 1 : -1
                let current = divers[diver]
                if current.column < 0 || current.column > 9 {
                    divers.remove(diver)
                } else if isOnSubmarine(current) && diverCount < Seaquest.diverCapacity {
                    divers.remove(diver)
                    diverCount += 1
                }
            } else {
                divers[diver].moveTimer -= 1
            }
        }
    }

    /// Enemy subs (`shoot` true) or fish: collide, move, get torpedoed; subs also shoot — even when
    /// removed this frame.
    private mutating func updateEnemies(subs shoot: Bool) -> Int {
        // Work on the list out of `self` (an O(1) swap, no allocation) so that it can be changed
        // while the bullets and the terminal flag are.
        var enemies = ObjectList<Mover>(capacity: 0)
        if shoot { swap(&enemies, &enemySubs) } else { swap(&enemies, &enemyFish) }
        defer { if shoot { swap(&enemies, &enemySubs) } else { swap(&enemies, &enemyFish) } }
        var reward = 0
        var index = enemies.count - 1
        while index >= 0 && index < enemies.count {
            let enemy = enemies.handle(at: index)
            index -= 1
            if isOnSubmarine(enemies[enemy]) { isTerminal = true }
            if enemies[enemy].moveTimer == 0 {
                enemies[enemy].moveTimer = moveInterval
                enemies[enemy].column += enemies[enemy].movesRight ? 1 : -1
                let current = enemies[enemy]
                if current.column < 0 || current.column > 9 {
                    enemies.remove(enemy)
                } else if isOnSubmarine(current) {
                    isTerminal = true
                } else {
                    for position in 0..<friendlyBullets.count {
                        let bullet = friendlyBullets.handle(at: position)
                        if friendlyBullets[bullet].column == current.column && friendlyBullets[bullet].row == current.row {
                            enemies.remove(enemy)
                            friendlyBullets.remove(bullet)
                            reward += 1
                            break
                        }
                    }
                }
            } else {
                enemies[enemy].moveTimer -= 1
            }
            guard shoot else { continue }
            // MinAtar keeps using `sub` after removing it: a sub removed above still fires. Its slot is not
            // reused before the next spawn, so reading and writing it here is safe.
            if enemies[enemy].shotTimer == 0 {
                enemies[enemy].shotTimer = Seaquest.enemyShotInterval
                let shooter = enemies[enemy]
                enemyBullets.append(Mover(column: shooter.column, row: shooter.row, movesRight: shooter.movesRight))
            } else {
                enemies[enemy].shotTimer -= 1
            }
        }
        return reward
    }

    /// Enemy bullets: collide, move, leave the board or collide again.
    private mutating func updateEnemyBullets() {
        var index = enemyBullets.count - 1
        while index >= 0 && index < enemyBullets.count {
            let bullet = enemyBullets.handle(at: index)
            index -= 1
            if isOnSubmarine(enemyBullets[bullet]) { isTerminal = true }
            enemyBullets[bullet].column += enemyBullets[bullet].movesRight ? 1 : -1
            let current = enemyBullets[bullet]
            if current.column < 0 || current.column > 9 {
                enemyBullets.remove(bullet)
            } else if isOnSubmarine(current) {
                isTerminal = true
            }
        }
    }

    /// seaquest.py `_surface`: the bonus, the oxygen refill, the diver removal quirk and the ramp.
    private mutating func surface() -> Int {
        surfaced = true
        var reward = 0
        if diverCount == Seaquest.diverCapacity {
            diverCount = 0
            // Python's `//` floors; oxygen is never negative here (it only drops below the surface).
            reward = oxygen * 10 / Seaquest.maximumOxygen
        }
        oxygen = Seaquest.maximumOxygen
        diverCount -= 1
        if difficultyRamping && (enemySpawnInterval > 1 || moveInterval > 2) {
            if moveInterval > 2 && rampIndex % 2 == 1 { moveInterval -= 1 }
            if enemySpawnInterval > 1 { enemySpawnInterval -= 1 }
            rampIndex += 1
        }
        return reward
    }

    /// seaquest.py `_spawn_enemy`: rand(), rand(), randint(1, 9); skipped if it would meet a
    /// fish or sub head-on in its row.
    private mutating func spawnEnemy(random: inout NumpyRandomState) {
        let movesRight = random.randomSample() < 1.0 / 2.0
        let isSub = random.randomSample() < 1.0 / 3.0
        let column = movesRight ? 0 : 9
        let row = random.randomInteger(low: 1, high: 9)
        if enemySubs.contains(where: { $0.row == row && $0.movesRight != movesRight })
            || enemyFish.contains(where: { $0.row == row && $0.movesRight != movesRight }) {
            return
        }
        if isSub {
            enemySubs.append(Mover(column: column, row: row, movesRight: movesRight, moveTimer: moveInterval,
                                   shotTimer: Seaquest.enemyShotInterval))
        } else {
            enemyFish.append(Mover(column: column, row: row, movesRight: movesRight, moveTimer: moveInterval))
        }
    }

    /// seaquest.py `_spawn_diver`: rand(), randint(1, 9).
    private mutating func spawnDiver(random: inout NumpyRandomState) {
        let movesRight = random.randomSample() < 1.0 / 2.0
        let row = random.randomInteger(low: 1, high: 9)
        divers.append(Mover(column: movesRight ? 0 : 9, row: row, movesRight: movesRight,
                            moveTimer: Seaquest.diverMoveInterval))
    }

    /// Writes the CHW observation (10 channels).
    public func writeObservation(into buffer: UnsafeMutableBufferPointer<Float>) {
        let writer = ObservationWriter(buffer, channels: 10)
        writer.set(0, submarineRow, submarineColumn)
        // numpy would wrap a back column of −1 to 9; the back never leaves the board (reaching column 0
        // means facing left, column 9 facing right), but keep numpy's indexing anyway.
        let back = facingRight ? submarineColumn - 1 : submarineColumn + 1
        writer.set(1, submarineRow, back < 0 ? back + boardSize : back)
        for column in 0..<(max(0, oxygen) * 10 / Seaquest.maximumOxygen) { writer.set(7, 9, column) }
        // `state[9, 9 - diver_count : 9]` with Python's slice rules: a start past the end is empty.
        var start = 9 - diverCount
        if start < 0 { start = max(0, start + boardSize) }
        if start < 9 { for column in start..<9 { writer.set(8, 9, column) } }
        for position in 0..<friendlyBullets.count {
            let bullet = friendlyBullets[friendlyBullets.handle(at: position)]
            writer.set(2, bullet.row, bullet.column)
        }
        for position in 0..<enemyBullets.count {
            let bullet = enemyBullets[enemyBullets.handle(at: position)]
            writer.set(4, bullet.row, bullet.column)
        }
        for position in 0..<enemyFish.count {
            let fish = enemyFish[enemyFish.handle(at: position)]
            writer.set(5, fish.row, fish.column)
            writeTrail(writer, fish)
        }
        for position in 0..<enemySubs.count {
            let sub = enemySubs[enemySubs.handle(at: position)]
            writer.set(6, sub.row, sub.column)
            writeTrail(writer, sub)
        }
        for position in 0..<divers.count {
            let diver = divers[divers.handle(at: position)]
            writer.set(9, diver.row, diver.column)
            writeTrail(writer, diver)
        }
    }

    /// The cell behind a mover in the trail channel, when it is on the board.
    private func writeTrail(_ writer: ObservationWriter, _ mover: Mover) {
        let behind = mover.movesRight ? mover.column - 1 : mover.column + 1
        if behind >= 0 && behind <= 9 { writer.set(3, mover.row, behind) }
    }
}
