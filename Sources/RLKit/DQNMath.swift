// The two formulas of MinAtar's DQN (examples/dqn.py) that are easy to get subtly wrong, as pure
// functions so that tests can pin them: the exploration schedule and the TD target.

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
    rewards: UnsafeBufferPointer<Float>, terminals: UnsafeBufferPointer<Float>, nextValues: UnsafeBufferPointer<Float>,
    actionCount: Int, discount: Float, into targets: UnsafeMutableBufferPointer<Float>
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
    rewards.withUnsafeBufferPointer { r in
        terminals.withUnsafeBufferPointer { t in
            nextValues.withUnsafeBufferPointer { q in
                targets.withUnsafeMutableBufferPointer {
                    temporalDifferenceTargets(rewards: r, terminals: t, nextValues: q, actionCount: actionCount, discount: discount, into: $0)
                }
            }
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
