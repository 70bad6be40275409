// Asterix — a port of minatar/environments/asterix.py (MinAtar 1.0.15), step for step.
//
// Objects: the player (starts at row 5, column 5; moves one cell per frame in the four directions,
//   confined to rows 1 ... 8 and columns 0 ... 9) and up to 8 entities, one per row 1 ... 8 ("slots"),
//   each an enemy or a piece of gold travelling horizontally in one direction.
// Channels: 0 player, 1 enemy, 2 trail (the cell an entity just left: behind it in its direction of travel,
//   omitted off the board), 3 gold.
// Actions: minimal set no-op, left, up, right, down (fire does nothing).
// Frame order: (1) if the spawn timer is 0, spawn an entity and restart the timer at the spawn interval;
//   (2) move the player; (3) collide the player with every entity where it stands — gold is collected
//   (+1, removed), an enemy ends the episode; (4) if the move timer is 0, restart it at the move interval
//   and move every entity one cell, removing those that leave the board, and collide again;
//   (5) both timers count down; (6) ramp the difficulty.
// Spawning: draws lr = rand() < 1/2 (true: enters at column 0 moving right, else column 9 moving left),
//   then gold = rand() < 1/3, then — only if some slot is free — a uniformly chosen free slot with
//   randint(number of free slots). Quirk: both rand() draws happen even when every slot is full, and
//   randint(1) draws nothing (numpy returns 0 for a one-value range without drawing).
// Rewards: +1 per gold collected; several can be collected in one frame.
// Termination: the player and an enemy share a cell (checked after the player moves and after entities
//   move). The frame still finishes, so gold collected in the same frame still counts.
// Difficulty ramp (when `difficultyRamping`): starts with spawn interval 10 and move interval 5. While
//   either is above 1, a ramp timer counts 100, 99, ..., 0, −1; on the frame after it reaches −1 (every
//   102 frames) the move interval drops by 1 if the ramp index is odd, the spawn interval drops by 1, the
//   ramp index grows and the timer restarts at 100. `difficultyRamp` is the ramp index.
// Quirks kept: the spawn timer is checked before the player moves, so an entity spawned on the player's
//   row cannot hit it until it moves; the trail of an entity at the edge it entered from is off the board
//   and not drawn; `shot_timer` exists in MinAtar's reset but is never used.

/// Asterix from MinAtar: dodge enemies and collect gold that cross the board from the sides.
public struct Asterix: Game {
    /// "asterix".
    public static let name = "asterix"
    /// player, enemy, trail, gold.
    public static let channelNames = ["player", "enemy", "trail", "gold"]
    /// No-op, left, up, right, down.
    public static let minimalActionSet = [0, 1, 2, 3, 4]

    /// Frames between ramp steps, minus two (asterix.py `ramp_interval`).
    static let rampInterval = 100
    /// Frames between spawns at the start (asterix.py `init_spawn_speed`).
    static let initialSpawnInterval = 10
    /// Frames between entity moves at the start (asterix.py `init_move_interval`).
    static let initialMoveInterval = 5
    /// Number of entity rows (slots), rows 1 ... 8.
    static let slotCount = 8

    /// One enemy or piece of gold; its row is its slot index + 1.
    struct Entity: Sendable {
        /// Column; always 0 ... 9 while the entity exists.
        var column: Int
        /// Whether it travels right (entered at column 0).
        var movesRight: Bool
        /// Gold (collectable) rather than an enemy.
        var isGold: Bool
    }

    /// Whether the spawn and move intervals shrink over time (MinAtar's `ramping`).
    let difficultyRamping: Bool
    /// Player column.
    private(set) var playerColumn = 5
    /// Player row.
    private(set) var playerRow = 5
    /// The entity in each of the eight rows, or nil (MinAtar's `entities`, `None` for empty slots).
    private(set) var entities = InlineArray<8, Entity?>(repeating: nil)
    /// Frames between spawns.
    private(set) var spawnInterval = Asterix.initialSpawnInterval
    /// Frames until the next spawn.
    private(set) var spawnTimer = Asterix.initialSpawnInterval
    /// Frames between entity moves.
    private(set) var moveInterval = Asterix.initialMoveInterval
    /// Frames until entities next move.
    private(set) var moveTimer = Asterix.initialMoveInterval
    /// Frames until the next ramp step (counts down to −1).
    private(set) var rampTimer = Asterix.rampInterval
    /// Ramp steps taken.
    private(set) var rampIndex = 0
    /// Whether the episode is over.
    public private(set) var isTerminal = false

    /// The ramp index (MinAtar's `difficulty_ramp()`).
    public var difficultyRamp: Int? { rampIndex }

    /// Builds and resets the game; Asterix's reset draws nothing.
    public init(difficultyRamping: Bool = true, random: inout NumpyRandomState) {
        self.difficultyRamping = difficultyRamping
        reset(random: &random)
    }

    /// Starts a new episode; draws nothing.
    public mutating func reset(random: inout NumpyRandomState) {
        playerColumn = 5
        playerRow = 5
        for slot in 0..<Asterix.slotCount { entities[slot] = nil }
        spawnInterval = Asterix.initialSpawnInterval
        spawnTimer = spawnInterval
        moveInterval = Asterix.initialMoveInterval
        moveTimer = moveInterval
        rampTimer = Asterix.rampInterval
        rampIndex = 0
        isTerminal = false
    }

    /// Advances one frame (see the rules at the top of this file).
    public mutating func act(_ action: Int, random: inout NumpyRandomState) -> (reward: Float, terminal: Bool) {
        var reward = 0
        if isTerminal { return (0, true) }
        let move = decodeAction(action)

        if spawnTimer == 0 {
            spawnEntity(random: &random)
            spawnTimer = spawnInterval
        }

        switch move {
        case .left: playerColumn = max(0, playerColumn - 1)
        case .right: playerColumn = min(9, playerColumn + 1)
        case .up: playerRow = max(1, playerRow - 1)
        case .down: playerRow = min(8, playerRow + 1)
        case .noOperation, .fire: break
        }

        // Collisions where the player now stands, before entities move.
        for slot in 0..<Asterix.slotCount {
            guard let entity = entities[slot] else { continue }
            if entity.column == playerColumn && slot + 1 == playerRow {
                if entity.isGold {
                    entities[slot] = nil
                    reward += 1
                } else {
                    isTerminal = true
                }
            }
        }

        if moveTimer == 0 {
            moveTimer = moveInterval
            for slot in 0..<Asterix.slotCount {
                guard var entity = entities[slot] else { continue }
                entity.column += entity.movesRight ? 1 : -1
                if entity.column < 0 || entity.column > 9 {
                    // Off the board: gone. (MinAtar still compares its position with the player's, which
                    // can never match off the board.)
                    entities[slot] = nil
                    continue
                }
                entities[slot] = entity
                if entity.column == playerColumn && slot + 1 == playerRow {
                    if entity.isGold {
                        entities[slot] = nil
                        reward += 1
                    } else {
                        isTerminal = true
                    }
                }
            }
        }

        spawnTimer -= 1
        moveTimer -= 1

        if difficultyRamping && (spawnInterval > 1 || moveInterval > 1) {
            if rampTimer >= 0 {
                rampTimer -= 1
            } else {
                if moveInterval > 1 && rampIndex % 2 == 1 { moveInterval -= 1 }
                if spawnInterval > 1 { spawnInterval -= 1 }
                rampIndex += 1
                rampTimer = Asterix.rampInterval
            }
        }
        return (Float(reward), isTerminal)
    }

    /// asterix.py `_spawn_entity`: two rand() draws always, then randint over the free slots if any.
    private mutating func spawnEntity(random: inout NumpyRandomState) {
        let movesRight = random.randomSample() < 1.0 / 2.0
        let isGold = random.randomSample() < 1.0 / 3.0
        var freeCount = 0
        for slot in 0..<Asterix.slotCount where entities[slot] == nil { freeCount += 1 }
        if freeCount == 0 { return }
        // MinAtar picks from the list of free slot indices in increasing order.
        var choice = random.randomInteger(high: freeCount)
        for slot in 0..<Asterix.slotCount where entities[slot] == nil {
            if choice == 0 {
                entities[slot] = Entity(column: movesRight ? 0 : 9, movesRight: movesRight, isGold: isGold)
                return
            }
            choice -= 1
        }
    }

    /// Writes the CHW observation (4 channels).
    public func writeObservation(into buffer: UnsafeMutableBufferPointer<Float>) {
        let writer = ObservationWriter(buffer, channels: 4)
        writer.set(0, playerRow, playerColumn)
        for slot in 0..<Asterix.slotCount {
            guard let entity = entities[slot] else { continue }
            writer.set(entity.isGold ? 3 : 1, slot + 1, entity.column)
            let behind = entity.movesRight ? entity.column - 1 : entity.column + 1
            if behind >= 0 && behind <= 9 { writer.set(2, slot + 1, behind) }
        }
    }
}
