import Foundation
import XCTest

/// One recorded MinAtar run, decoded from a `.trace` fixture written by
/// scripts/reference/minatar_traces.py (the format is documented there).
struct Trace {
    /// One `Environment.act` call and what followed it.
    struct Step {
        /// The action the agent asked for.
        let requestedAction: Int
        /// The action MinAtar executed after sticky actions (`env.last_action`).
        let executedAction: Int
        /// The reward `act` returned.
        let reward: Int
        /// Whether `act` reported the episode over.
        let terminal: Bool
        /// The packed observation after the step.
        let observation: [UInt8]
        /// The packed observation after `reset()`, for terminal steps.
        let resetObservation: [UInt8]?
    }

    /// The environment seed (`env.seed(seed)`).
    let seed: UInt32
    /// The seed of the generator that chose the actions (for reference only).
    let actionSeed: UInt32
    /// 0: uniform random actions; 1: lookahead policy.
    let policy: Int
    /// MinAtar's `difficulty_ramping`.
    let difficultyRamping: Bool
    /// MinAtar's `sticky_action_prob`.
    let stickyActionProbability: Double
    /// The packed observation right after `seed(seed); reset()`.
    let initialObservation: [UInt8]
    /// The steps, in order.
    let steps: [Step]
}

/// A decoded `.trace` file: the game and its traces.
struct TraceFile {
    /// MinAtar game name.
    let game: String
    /// Observation channels.
    let channelCount: Int
    /// The recorded runs.
    let traces: [Trace]

    /// Bytes per packed observation.
    var observationByteCount: Int { (channelCount * 100 + 7) / 8 }

    /// Loads `Fixtures/<name>.trace` from the test bundle.
    static func load(name: String) throws -> TraceFile {
        let url = try XCTUnwrap(Bundle.module.url(forResource: name, withExtension: "trace", subdirectory: "Fixtures"),
                                "missing fixture Fixtures/\(name).trace")
        return try TraceFile(bytes: [UInt8](Data(contentsOf: url)))
    }

    /// Decodes the format written by minatar_traces.py.
    init(bytes: [UInt8]) throws {
        var reader = ByteReader(bytes: bytes)
        guard try reader.bytes(8) == Array("MINATAR1".utf8) else { throw FixtureError.badMagic }
        channelCount = Int(try reader.byte())
        let nameLength = Int(try reader.byte())
        game = String(decoding: try reader.bytes(nameLength), as: UTF8.self)
        let traceCount = Int(try reader.byte())
        let size = (channelCount * 100 + 7) / 8
        var traces: [Trace] = []
        for _ in 0..<traceCount {
            let seed = try reader.uint32()
            let actionSeed = try reader.uint32()
            let stepCount = Int(try reader.uint32())
            let policy = Int(try reader.byte())
            let ramping = try reader.byte() != 0
            let sticky = Double(bitPattern: try reader.uint64())
            let initial = try reader.bytes(size)
            var observation = initial
            var steps: [Trace.Step] = []
            steps.reserveCapacity(stepCount)
            for _ in 0..<stepCount {
                let flags = try reader.byte()
                let reward = Int(Int8(bitPattern: try reader.byte()))
                try reader.applyDelta(to: &observation)
                let after = observation
                let terminal = flags & 64 != 0
                var reset: [UInt8]?
                if terminal {
                    try reader.applyDelta(to: &observation)
                    reset = observation
                }
                steps.append(Trace.Step(requestedAction: Int(flags & 7), executedAction: Int((flags >> 3) & 7),
                                        reward: reward, terminal: terminal, observation: after,
                                        resetObservation: reset))
            }
            traces.append(Trace(seed: seed, actionSeed: actionSeed, policy: policy, difficultyRamping: ramping,
                                stickyActionProbability: sticky, initialObservation: initial, steps: steps))
        }
        guard reader.isAtEnd else { throw FixtureError.trailingBytes }
        self.traces = traces
    }
}

/// Problems decoding a fixture.
enum FixtureError: Error {
    /// The file does not start with "MINATAR1".
    case badMagic
    /// The file ended early.
    case truncated
    /// Bytes left over after the last trace.
    case trailingBytes
}

/// Little-endian reading from a byte array.
struct ByteReader {
    /// The whole file.
    let bytes: [UInt8]
    /// The next byte to read.
    var offset = 0

    /// Whether every byte has been read.
    var isAtEnd: Bool { offset == bytes.count }

    /// The next byte.
    mutating func byte() throws -> UInt8 {
        guard offset < bytes.count else { throw FixtureError.truncated }
        offset += 1
        return bytes[offset - 1]
    }

    /// The next `count` bytes.
    mutating func bytes(_ count: Int) throws -> [UInt8] {
        guard offset + count <= bytes.count else { throw FixtureError.truncated }
        offset += count
        return Array(bytes[(offset - count)..<offset])
    }

    /// A little-endian 32-bit unsigned integer.
    mutating func uint32() throws -> UInt32 {
        try bytes(4).reversed().reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// A little-endian 64-bit unsigned integer.
    mutating func uint64() throws -> UInt64 {
        try bytes(8).reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// Reads one delta (count, then index/xor pairs) and applies it.
    mutating func applyDelta(to observation: inout [UInt8]) throws {
        let count = Int(try byte())
        for _ in 0..<count {
            let index = Int(try byte())
            let change = try byte()
            guard index < observation.count else { throw FixtureError.truncated }
            observation[index] ^= change
        }
    }
}
