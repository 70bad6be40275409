// numpy's legacy `RandomState`, reproduced draw for draw.
//
// MinAtar (environment.py and every game in minatar/environments/) draws all of its randomness from one
// `numpy.random.RandomState`, so matching MinAtar step for step means matching that generator exactly:
// the MT19937 core, numpy's seeding, and the way numpy turns 32-bit words into doubles and bounded
// integers. Everything here is checked against draws recorded from numpy 2.4.6
// (scripts/reference/numpy_random_fixture.py → Tests/EnvsTests/Fixtures/numpy_random.json).
//
// Seeding, verified against `RandomState(seed).get_state()`: an integer seed goes through MT19937's
// `init_genrand` (numpy's `mt19937_seed`); only an array seed goes through `init_by_array`. A one-element
// array `[s]` therefore gives a different stream from the integer `s`.

/// numpy's legacy `numpy.random.RandomState`: MT19937 with numpy's seeding, `random_sample`/`rand`,
/// `randint` (default dtype int64) and `choice` without probabilities, draw for draw.
///
/// A value type: copying it forks the stream, which is how callers snapshot an environment.
public struct NumpyRandomState: Sendable {
    /// Words in the MT19937 state.
    static let stateCount = 624
    /// The MT19937 recurrence's middle offset.
    static let middleOffset = 397

    /// The 624-word MT19937 state, stored inline so drawing needs no heap access or uniqueness check.
    private var state: InlineArray<624, UInt32>
    /// Index of the next word to temper; `stateCount` means the state must be regenerated first.
    private var position: Int

    /// Seeds like `numpy.random.RandomState(seed)` with an integer seed (numpy accepts 0 ... 2³² − 1),
    /// which numpy passes to MT19937's `init_genrand`.
    public init(seed: UInt32) {
        state = NumpyRandomState.initialState(seed: seed)
        position = NumpyRandomState.stateCount
    }

    /// Seeds like `numpy.random.RandomState(array)` with an array of 32-bit integers, which numpy passes
    /// to MT19937's `init_by_array`. `key` must not be empty.
    public init(seedArray key: [UInt32]) {
        precondition(!key.isEmpty, "numpy rejects an empty seed array")
        let count = NumpyRandomState.stateCount
        var words = NumpyRandomState.initialState(seed: 19_650_218)
        var i = 1
        var j = 0
        for _ in 0..<max(count, key.count) {
            let previous = words[i - 1] ^ (words[i - 1] >> 30)
            words[i] = (words[i] ^ (previous &* 1_664_525)) &+ key[j] &+ UInt32(truncatingIfNeeded: j)
            i += 1
            j += 1
            if i >= count {
                words[0] = words[count - 1]
                i = 1
            }
            if j >= key.count { j = 0 }
        }
        for _ in 0..<(count - 1) {
            let previous = words[i - 1] ^ (words[i - 1] >> 30)
            words[i] = (words[i] ^ (previous &* 1_566_083_941)) &- UInt32(truncatingIfNeeded: i)
            i += 1
            if i >= count {
                words[0] = words[count - 1]
                i = 1
            }
        }
        // MT19937's reference code forces the top bit so the state can never be all zeros.
        words[0] = 0x8000_0000
        state = words
        position = count
    }

    /// MT19937's `init_genrand`: the linear-congruential fill of the 624 words from one 32-bit seed.
    private static func initialState(seed: UInt32) -> InlineArray<624, UInt32> {
        var words = InlineArray<624, UInt32>(repeating: 0)
        words[0] = seed
        for index in 1..<stateCount {
            let previous = words[index - 1]
            words[index] = 1_812_433_253 &* (previous ^ (previous >> 30)) &+ UInt32(index)
        }
        return words
    }

    /// The first words of the raw MT19937 state, as `RandomState.get_state()[1]` lists them; for tests.
    public func stateWord(at index: Int) -> UInt32 { state[index] }

    /// Regenerates all 624 words (MT19937's "twist").
    private mutating func regenerate() {
        let count = NumpyRandomState.stateCount
        let middle = NumpyRandomState.middleOffset
        @inline(__always) func mix(_ upper: UInt32, _ lower: UInt32, _ far: UInt32) -> UInt32 {
            let y = (upper & 0x8000_0000) | (lower & 0x7FFF_FFFF)
            return far ^ (y >> 1) ^ ((y & 1) == 0 ? 0 : 0x9908_B0DF)
        }
        for index in 0..<(count - middle) {
            state[index] = mix(state[index], state[index + 1], state[index + middle])
        }
        for index in (count - middle)..<(count - 1) {
            state[index] = mix(state[index], state[index + 1], state[index + middle - count])
        }
        state[count - 1] = mix(state[count - 1], state[0], state[middle - 1])
        position = 0
    }

    /// The next raw 32-bit output (MT19937's `genrand_int32`, tempering included); numpy's `next_uint32`.
    @inline(__always)
    public mutating func nextUInt32() -> UInt32 {
        if position >= NumpyRandomState.stateCount { regenerate() }
        var y = state[position]
        position += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C_5680
        y ^= (y << 15) & 0xEFC6_0000
        y ^= y >> 18
        return y
    }

    /// numpy's `next_uint64` for MT19937: the first 32-bit output is the high half.
    public mutating func nextUInt64() -> UInt64 {
        let high = UInt64(nextUInt32())
        let low = UInt64(nextUInt32())
        return high << 32 | low
    }

    /// A double uniform on [0, 1) with 53 random bits: numpy's `random_sample()` / `rand()`.
    ///
    /// Takes two 32-bit outputs a and b and returns ((a >> 5) · 2²⁶ + (b >> 6)) / 2⁵³.
    /// `rand(n)` is n of these in order.
    @inline(__always)
    public mutating func randomSample() -> Double {
        let high = Double(nextUInt32() >> 5)
        let low = Double(nextUInt32() >> 6)
        return (high * 67_108_864.0 + low) / 9_007_199_254_740_992.0
    }

    /// An integer uniform on `low ..< high`: numpy's legacy `randint(low, high)` with the default int64
    /// dtype. Requires `low < high` (numpy raises otherwise).
    ///
    /// numpy draws `high − low − 1` ("rng") with masked rejection sampling: mask = the smallest
    /// all-ones number ≥ rng, draw `next_uint32() & mask` until it is ≤ rng. When rng is 0 (a one-value
    /// range) it returns `low` *without drawing*; when rng fits in 32 bits it draws 32-bit words; when
    /// rng is exactly 2³² − 1 it takes one raw word; wider ranges repeat the same with 64-bit words.
    /// `randint(low, high, size=n)` is n of these in order (numpy's 32-bit buffer is unused for int64).
    @inline(__always)
    public mutating func randomInteger(low: Int = 0, high: Int) -> Int {
        precondition(low < high, "randint needs low < high")
        let range = UInt64(bitPattern: Int64(high) &- Int64(low) &- 1)
        let offset = UInt64(bitPattern: Int64(low))
        let value: UInt64
        if range == 0 {
            value = 0
        } else if range < 0xFFFF_FFFF {
            let bound = UInt32(range)
            let mask = UInt32.max >> UInt32(bound.leadingZeroBitCount)
            var draw = nextUInt32() & mask
            while draw > bound { draw = nextUInt32() & mask }
            value = UInt64(draw)
        } else if range == 0xFFFF_FFFF {
            value = UInt64(nextUInt32())
        } else if range == UInt64.max {
            value = nextUInt64()
        } else {
            let mask = UInt64.max >> UInt64(range.leadingZeroBitCount)
            var draw = nextUInt64() & mask
            while draw > range { draw = nextUInt64() & mask }
            value = draw
        }
        return Int(Int64(bitPattern: offset &+ value))
    }

    /// numpy's legacy `choice(n)` without probabilities: `randint(0, n)`.
    public mutating func choice(count: Int) -> Int {
        randomInteger(low: 0, high: count)
    }

    /// numpy's legacy `choice(elements)` without probabilities: the element at `randint(0, count)`.
    public mutating func choice<Elements: Collection>(_ elements: Elements) -> Elements.Element {
        let offset = randomInteger(low: 0, high: elements.count)
        return elements[elements.index(elements.startIndex, offsetBy: offset)]
    }
}
