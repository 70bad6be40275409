// Exact storage of integer and bit data in the Float32 tensors that the trainer's checkpoints hold.
//
// `ProgramState` saves named Float tensors (`trainer.safetensors`, F32). A Float32 represents every
// integer in 0 ..< 2^24 exactly, so each 64-bit word is split into three 24-bit limbs (24 + 24 + 16
// bits), least significant first, and each limb is stored as the Float of its value. No bit pattern
// is reinterpreted (a NaN payload could be changed by a copy), and a file can be read back with numpy:
// `words = l[0::3] + (l[1::3] << 24) + (l[2::3] << 48)` for `l = tensor.astype(np.uint64)`.
//
// Bytes are first gathered little-endian into 64-bit words (8 bytes per word, the last one
// zero-padded), so a byte costs 1.5 bytes of checkpoint; signed integers go through their two's
// complement bit pattern, Doubles through their IEEE bit pattern.

import NFMTensor

/// Exact conversion of words, bytes, integers and Doubles to and from Float32 tensors of 24-bit limbs.
public enum PackedState {
    /// Bits per limb: Float32 holds every integer below 2^24 exactly.
    static let limbBits: UInt64 = 24
    /// Limbs per 64-bit word.
    static let limbsPerWord = 3

    /// Errors reading packed state back.
    public enum DecodingError: Error, CustomStringConvertible, Equatable {
        /// A tensor's length is not a whole number of words, or a limb is not an integer in range.
        case corrupt(String)

        /// A readable explanation.
        public var description: String {
            switch self {
            case .corrupt(let reason): return "packed checkpoint state is corrupt: \(reason)"
            }
        }
    }

    /// `words` as a rank-1 tensor of `3 · words.count` limbs.
    public static func tensor(words: UnsafeBufferPointer<UInt64>) -> Tensor {
        var scalars = [Float](repeating: 0, count: words.count * limbsPerWord)
        let mask: UInt64 = (1 << limbBits) - 1
        for (index, word) in words.enumerated() {
            scalars[index * 3] = Float(word & mask)
            scalars[index * 3 + 1] = Float((word >> limbBits) & mask)
            scalars[index * 3 + 2] = Float(word >> (2 * limbBits))
        }
        return Tensor(shape: [scalars.count], scalars: scalars)
    }

    /// `words` as a rank-1 tensor of limbs.
    public static func tensor(words: [UInt64]) -> Tensor {
        words.withUnsafeBufferPointer { tensor(words: $0) }
    }

    /// The words stored by `tensor(words:)`.
    public static func words(_ tensor: Tensor) throws(DecodingError) -> [UInt64] {
        let limbs = tensor.scalars
        guard limbs.count % limbsPerWord == 0 else {
            throw .corrupt("\(limbs.count) limbs are not a whole number of 64-bit words")
        }
        var words = [UInt64](repeating: 0, count: limbs.count / limbsPerWord)
        for index in words.indices {
            var word: UInt64 = 0
            for limb in 0..<limbsPerWord {
                let value = limbs[index * limbsPerWord + limb]
                let limit: Float = limb == 2 ? 65_536 : 16_777_216
                guard value >= 0, value < limit, value == value.rounded() else {
                    throw .corrupt("limb \(index * limbsPerWord + limb) is \(value), not an integer in 0 ..< \(Int(limit))")
                }
                word |= UInt64(value) << (UInt64(limb) * limbBits)
            }
            words[index] = word
        }
        return words
    }

    /// `bytes` as limbs: gathered little-endian into words, then split; `count` is not stored.
    public static func tensor(bytes: [UInt8]) -> Tensor {
        var words = [UInt64](repeating: 0, count: (bytes.count + 7) / 8)
        for (index, byte) in bytes.enumerated() { words[index / 8] |= UInt64(byte) << (UInt64(index % 8) * 8) }
        return tensor(words: words)
    }

    /// The first `count` bytes stored by `tensor(bytes:)`.
    public static func bytes(_ tensor: Tensor, count: Int) throws(DecodingError) -> [UInt8] {
        let words = try words(tensor)
        guard count >= 0, words.count == (count + 7) / 8 else {
            throw .corrupt("\(words.count) words cannot hold exactly \(count) bytes")
        }
        return (0..<count).map { UInt8(truncatingIfNeeded: words[$0 / 8] >> (UInt64($0 % 8) * 8)) }
    }

    /// Integers (two's complement) as limbs.
    public static func tensor(integers: [Int]) -> Tensor {
        tensor(words: integers.map { UInt64(bitPattern: Int64($0)) })
    }

    /// The integers stored by `tensor(integers:)`.
    public static func integers(_ tensor: Tensor) throws(DecodingError) -> [Int] {
        try words(tensor).map { Int(Int64(bitPattern: $0)) }
    }

    /// Doubles (IEEE bit patterns) as limbs.
    public static func tensor(doubles: [Double]) -> Tensor {
        tensor(words: doubles.map(\.bitPattern))
    }

    /// The Doubles stored by `tensor(doubles:)`, bit for bit.
    public static func doubles(_ tensor: Tensor) throws(DecodingError) -> [Double] {
        try words(tensor).map(Double.init(bitPattern:))
    }
}
