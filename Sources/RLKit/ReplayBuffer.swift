// The experience replay of MinAtar's DQN (examples/dqn.py, `replay_buffer`): a ring of the last
// `capacity` transitions (s, a, r, s', terminal), overwritten oldest first once full, sampled
// uniformly *without* replacement (Python's `random.sample`).
//
// Storage is compact: MinAtar observations are 0/1 grids, so each observation is kept as bits, one
// per cell and channel, in `wordsPerObservation` 64-bit words (bit i of the observation's CHW index
// i). Breakout's 4 × 10 × 10 = 400 cells take 7 words (56 bytes) instead of 1,600 bytes of Float32,
// so the default 100,000 transitions with s and s' take 11 MB. Sampling writes straight into the
// caller's preallocated batch buffers and allocates nothing.

import NFMTensor

/// A batch of transitions drawn from a `ReplayBuffer`, in buffers that are reused from draw to draw.
public struct ReplayBatch {
    /// Transitions per batch.
    public let size: Int
    /// Values per observation (channels × 10 × 10).
    public let observationCount: Int
    /// The buffer positions drawn, in draw order.
    public internal(set) var indices: [Int]
    /// Actions a (MinAtar indices), one per transition.
    public internal(set) var actions: [Int]
    /// Rewards r.
    public internal(set) var rewards: [Float]
    /// 1 where s' ended the episode, else 0.
    public internal(set) var terminals: [Float]

    /// Empty buffers for `size` transitions of `observationCount` values each.
    public init(size: Int, observationCount: Int) {
        self.size = size
        self.observationCount = observationCount
        indices = [Int](repeating: 0, count: size)
        actions = [Int](repeating: 0, count: size)
        rewards = [Float](repeating: 0, count: size)
        terminals = [Float](repeating: 0, count: size)
    }
}

/// A ring buffer of MinAtar transitions with bit-packed observations.
public struct ReplayBuffer {
    /// The most transitions held; older ones are overwritten.
    public let capacity: Int
    /// Values per observation (channels × 10 × 10).
    public let observationCount: Int
    /// 64-bit words per packed observation.
    public let wordsPerObservation: Int
    /// Transitions held, at most `capacity`.
    public private(set) var count = 0
    /// Where the next transition is written (MinAtar's `location`).
    public private(set) var position = 0

    private var states: [UInt64]
    private var nextStates: [UInt64]
    private var actions: [UInt8]
    private var rewards: [Float]
    private var terminals: [UInt8]

    /// An empty buffer of `capacity` transitions whose observations have `observationCount` values.
    public init(capacity: Int, observationCount: Int) {
        precondition(capacity > 0 && observationCount > 0, "ReplayBuffer: capacity \(capacity) and observationCount \(observationCount) must be positive")
        self.capacity = capacity
        self.observationCount = observationCount
        wordsPerObservation = (observationCount + 63) / 64
        states = [UInt64](repeating: 0, count: capacity * wordsPerObservation)
        nextStates = states
        actions = [UInt8](repeating: 0, count: capacity)
        rewards = [Float](repeating: 0, count: capacity)
        terminals = [UInt8](repeating: 0, count: capacity)
    }

    /// Stores (s, a, r, s', terminal), overwriting the oldest transition when full. Observation values
    /// above 0.5 are stored as 1, the rest as 0 (MinAtar observations are exactly 0 or 1).
    public mutating func add(
        state: UnsafeBufferPointer<Float>, action: Int, reward: Float, nextState: UnsafeBufferPointer<Float>,
        terminal: Bool
    ) {
        precondition(state.count >= observationCount && nextState.count >= observationCount, "ReplayBuffer.add: observations need \(observationCount) values")
        precondition(action >= 0 && action < 256, "ReplayBuffer.add: action \(action) does not fit a byte")
        let (base, words, values) = (position * wordsPerObservation, wordsPerObservation, observationCount)
        states.withUnsafeMutableBufferPointer { Self.pack(state, into: $0.baseAddress! + base, words: words, values: values) }
        nextStates.withUnsafeMutableBufferPointer { Self.pack(nextState, into: $0.baseAddress! + base, words: words, values: values) }
        actions[position] = UInt8(action)
        rewards[position] = reward
        terminals[position] = terminal ? 1 : 0
        position = (position + 1) % capacity
        count = Swift.min(count + 1, capacity)
    }

    /// Packs `values` observation values into `words` words, bit i of the observation in word i / 64.
    private static func pack(
        _ observation: UnsafeBufferPointer<Float>, into target: UnsafeMutablePointer<UInt64>, words: Int, values: Int
    ) {
        for word in 0..<words {
            var bits: UInt64 = 0
            let start = word * 64
            for bit in 0..<Swift.min(64, values - start) where observation[start + bit] > 0.5 {
                bits |= 1 << UInt64(bit)
            }
            target[word] = bits
        }
    }

    /// Unpacks one observation into Float32 zeros and ones.
    private func unpack(_ words: UnsafePointer<UInt64>, into observation: UnsafeMutablePointer<Float>) {
        for word in 0..<wordsPerObservation {
            let bits = words[word]
            let start = word * 64
            for bit in 0..<Swift.min(64, observationCount - start) {
                observation[start + bit] = (bits >> UInt64(bit)) & 1 == 1 ? 1 : 0
            }
        }
    }

    /// Draws `batch.size` distinct transitions uniformly (as Python's `random.sample`) with
    /// `generator`, writing s and s' as Float32 CHW observations into `states` and `nextStates`
    /// (`batch.size · observationCount` values each) and a, r, terminal into `batch`. Allocates nothing.
    public func sample(
        into batch: inout ReplayBatch, states stateValues: UnsafeMutableBufferPointer<Float>,
        nextStates nextStateValues: UnsafeMutableBufferPointer<Float>, using generator: inout SeededGenerator
    ) {
        precondition(batch.size <= count, "ReplayBuffer.sample: \(batch.size) transitions asked of \(count) held")
        precondition(batch.observationCount == observationCount, "ReplayBuffer.sample: batch for \(batch.observationCount) values, buffer holds \(observationCount)")
        precondition(
            stateValues.count >= batch.size * observationCount && nextStateValues.count >= batch.size * observationCount,
            "ReplayBuffer.sample: state buffers need \(batch.size * observationCount) values")
        for slot in 0..<batch.size {
            // Rejection of repeats: a batch of 32 from thousands rarely repeats, so this is cheap.
            var index: Int
            repeat {
                index = generator.nextIndex(below: count)
            } while batch.indices[0..<slot].contains(index)
            batch.indices[slot] = index
            batch.actions[slot] = Int(actions[index])
            batch.rewards[slot] = rewards[index]
            batch.terminals[slot] = Float(terminals[index])
            states.withUnsafeBufferPointer {
                unpack($0.baseAddress! + index * wordsPerObservation, into: stateValues.baseAddress! + slot * observationCount)
            }
            nextStates.withUnsafeBufferPointer {
                unpack($0.baseAddress! + index * wordsPerObservation, into: nextStateValues.baseAddress! + slot * observationCount)
            }
        }
    }

    /// The transition at buffer position `index` with its observations unpacked (for tests and tools).
    public func transition(at index: Int) -> (state: [Float], action: Int, reward: Float, nextState: [Float], terminal: Bool) {
        precondition(index >= 0 && index < count, "ReplayBuffer.transition: index \(index) out of range 0..<\(count)")
        var state = [Float](repeating: 0, count: observationCount), next = state
        states.withUnsafeBufferPointer { words in
            state.withUnsafeMutableBufferPointer { unpack(words.baseAddress! + index * wordsPerObservation, into: $0.baseAddress!) }
        }
        nextStates.withUnsafeBufferPointer { words in
            next.withUnsafeMutableBufferPointer { unpack(words.baseAddress! + index * wordsPerObservation, into: $0.baseAddress!) }
        }
        return (state, Int(actions[index]), rewards[index], next, terminals[index] == 1)
    }

    // MARK: Checkpoints

    /// The buffer as named tensors for a checkpoint (keys prefixed with `prefix`): the held
    /// transitions only, observations and bytes in `PackedState`'s 24-bit limbs, rewards as Float32,
    /// and `meta` = [capacity, observationCount, count, position].
    public func checkpointState(prefix: String) -> [String: Tensor] {
        let used = count * wordsPerObservation
        return [
            prefix + "meta": PackedState.tensor(integers: [capacity, observationCount, count, position]),
            prefix + "states": states.withUnsafeBufferPointer { PackedState.tensor(words: UnsafeBufferPointer(rebasing: $0[0..<used])) },
            prefix + "next_states": nextStates.withUnsafeBufferPointer { PackedState.tensor(words: UnsafeBufferPointer(rebasing: $0[0..<used])) },
            prefix + "actions": PackedState.tensor(bytes: Array(actions[0..<count])),
            prefix + "terminals": PackedState.tensor(bytes: Array(terminals[0..<count])),
            prefix + "rewards": Tensor(shape: [count], scalars: Array(rewards[0..<count])),
        ]
    }

    /// Restores what `checkpointState(prefix:)` saved into this buffer, which must have the same
    /// capacity and observation size.
    public mutating func restore(from state: [String: Tensor], prefix: String) throws {
        func entry(_ name: String) throws -> Tensor {
            guard let tensor = state[prefix + name] else { throw PackedState.DecodingError.corrupt("no \(prefix + name) in the checkpoint") }
            return tensor
        }
        let meta = try PackedState.integers(try entry("meta"))
        guard meta.count == 4, meta[0] == capacity, meta[1] == observationCount else {
            throw PackedState.DecodingError.corrupt(
                "replay buffer meta \(meta) does not fit a buffer of capacity \(capacity) with \(observationCount) values per observation")
        }
        let (savedCount, savedPosition) = (meta[2], meta[3])
        guard savedCount >= 0, savedCount <= capacity, savedPosition >= 0, savedPosition < capacity,
            savedCount == capacity || savedPosition == savedCount
        else { throw PackedState.DecodingError.corrupt("replay buffer count \(savedCount) and position \(savedPosition) are inconsistent") }
        let savedStates = try PackedState.words(try entry("states"))
        let savedNextStates = try PackedState.words(try entry("next_states"))
        let savedActions = try PackedState.bytes(try entry("actions"), count: savedCount)
        let savedTerminals = try PackedState.bytes(try entry("terminals"), count: savedCount)
        let savedRewards = try entry("rewards").scalars
        let used = savedCount * wordsPerObservation
        guard savedStates.count == used, savedNextStates.count == used, savedRewards.count == savedCount else {
            throw PackedState.DecodingError.corrupt("replay buffer arrays do not hold \(savedCount) transitions")
        }
        states.replaceSubrange(0..<used, with: savedStates)
        nextStates.replaceSubrange(0..<used, with: savedNextStates)
        actions.replaceSubrange(0..<savedCount, with: savedActions)
        terminals.replaceSubrange(0..<savedCount, with: savedTerminals)
        rewards.replaceSubrange(0..<savedCount, with: savedRewards)
        count = savedCount
        position = savedPosition
    }
}
