/// A seeded pseudo-random generator (xoshiro256**, Blackman & Vigna 2018), seeded through SplitMix64.
///
/// Randomness in this project is always passed in, never global, so that a seed reproduces a run.
/// The whole state is four `UInt64`s, exposed as `state` so trainers can checkpoint and restore it.
public struct SeededGenerator: RandomNumberGenerator, Sendable, Equatable, Codable {
    /// The raw xoshiro256** state; restoring it resumes the exact stream.
    public var state: [UInt64]

    /// A generator whose stream is fully determined by `seed`.
    public init(seed: UInt64) {
        var splitMix = seed
        func next() -> UInt64 {
            splitMix &+= 0x9E37_79B9_7F4A_7C15
            var z = splitMix
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = [next(), next(), next(), next()]
    }

    /// Restores a generator from a saved `state` (four words).
    public init(state: [UInt64]) {
        precondition(state.count == 4, "SeededGenerator: state must have 4 words, got \(state.count)")
        self.state = state
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        let result = rotateLeft(state[1] &* 5, 7) &* 9
        let t = state[1] << 17
        state[2] ^= state[0]
        state[3] ^= state[1]
        state[1] ^= state[2]
        state[0] ^= state[3]
        state[2] ^= t
        state[3] = rotateLeft(state[3], 45)
        return result
    }

    private func rotateLeft(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// A uniform integer in `0..<bound`, unbiased (Lemire 2019, "Fast random integer generation in
    /// an interval"): the high word of a 64-bit draw times `bound`, redrawing the few low words that
    /// would make some results likelier than others.
    ///
    /// Use this rather than `Int.random(in:using:)`, `randomElement(using:)` or `shuffle(using:)`:
    /// the standard library does not specify their algorithms, which may change between Swift
    /// releases, and a seed must give the same run on every toolchain. The first draws are pinned by
    /// a test against scripts/reference/seeded_generator_reference.py.
    public mutating func nextIndex(below bound: Int) -> Int {
        precondition(bound > 0, "nextIndex(below:): bound must be positive, got \(bound)")
        let range = UInt64(bound)
        var product = next().multipliedFullWidth(by: range)
        if product.low < range {
            // Only low words below 2^64 mod bound are redrawn; computing that remainder costs a
            // division, so it is done only when the low word is small enough to possibly need it.
            let threshold = (0 &- range) % range
            while product.low < threshold {
                product = next().multipliedFullWidth(by: range)
            }
        }
        return Int(product.high)
    }

    /// A uniform Float in [0, 1) with 24 random bits.
    public mutating func nextUniform() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }

    /// A standard normal Double (Box–Muller, computed in Double for accuracy in the tails).
    public mutating func nextNormal() -> Double {
        // 1 - u keeps the argument of log in (0, 1].
        let u1 = 1.0 - Double(next() >> 11) * 0x1.0p-53
        let u2 = Double(next() >> 11) * 0x1.0p-53
        return (-2.0 * _log(u1)).squareRoot() * _cos(2.0 * Double.pi * u2)
    }

    /// A derived generator for an independent stream (e.g. one per data-loader worker), chosen by `stream`.
    public func split(stream: UInt64) -> SeededGenerator {
        SeededGenerator(seed: state[0] ^ (stream &* 0x9E37_79B9_7F4A_7C15) ^ state[3])
    }
}

import Foundation

@inline(__always) private func _log(_ x: Double) -> Double { Foundation.log(x) }
@inline(__always) private func _cos(_ x: Double) -> Double { Foundation.cos(x) }
