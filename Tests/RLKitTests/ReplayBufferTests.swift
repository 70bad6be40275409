import NFMTensor
import XCTest

@testable import RLKit

/// A deterministic 0/1 observation of `count` values for transition `index`.
func observation(_ index: Int, count: Int, salt: Int = 0) -> [Float] {
    (0..<count).map { cell in ((cell * 7 + index * 13 + salt * 5) % 11) < 4 ? 1 : 0 }
}

final class ReplayBufferTests: XCTestCase {
    let count = 400  // Breakout: 4 channels × 10 × 10, 7 words

    func add(_ buffer: inout ReplayBuffer, _ index: Int) {
        let state = observation(index, count: buffer.observationCount)
        let next = observation(index, count: buffer.observationCount, salt: 1)
        state.withUnsafeBufferPointer { s in
            next.withUnsafeBufferPointer { n in
                buffer.add(state: s, action: index % 6, reward: Float(index % 3), nextState: n, terminal: index % 5 == 0)
            }
        }
    }

    func testStoresAndUnpacksTransitionsExactly() {
        var buffer = ReplayBuffer(capacity: 10, observationCount: count)
        XCTAssertEqual(buffer.wordsPerObservation, 7)
        for index in 0..<4 { add(&buffer, index) }
        XCTAssertEqual(buffer.count, 4)
        XCTAssertEqual(buffer.position, 4)
        for index in 0..<4 {
            let transition = buffer.transition(at: index)
            XCTAssertEqual(transition.state, observation(index, count: count))
            XCTAssertEqual(transition.nextState, observation(index, count: count, salt: 1))
            XCTAssertEqual(transition.action, index % 6)
            XCTAssertEqual(transition.reward, Float(index % 3))
            XCTAssertEqual(transition.terminal, index % 5 == 0)
        }
    }

    func testWrapsAroundOverwritingTheOldest() {
        var buffer = ReplayBuffer(capacity: 5, observationCount: 1000)  // Seaquest's size: 16 words, last one partial
        for index in 0..<12 { add(&buffer, index) }
        XCTAssertEqual(buffer.count, 5)
        XCTAssertEqual(buffer.position, 12 % 5)
        // Position p holds the newest transition written there: 10, 11 at 0, 1; 7, 8, 9 at 2, 3, 4.
        for (position, index) in [(0, 10), (1, 11), (2, 7), (3, 8), (4, 9)] {
            let transition = buffer.transition(at: position)
            XCTAssertEqual(transition.state, observation(index, count: 1000), "position \(position)")
            XCTAssertEqual(transition.action, index % 6)
            XCTAssertEqual(transition.terminal, index % 5 == 0)
        }
    }

    func sample(_ buffer: ReplayBuffer, seed: UInt64, size: Int) -> (ReplayBatch, [Float], [Float]) {
        var batch = ReplayBatch(size: size, observationCount: buffer.observationCount)
        var states = [Float](repeating: -1, count: size * buffer.observationCount)
        var next = states
        var generator = SeededGenerator(seed: seed)
        states.withUnsafeMutableBufferPointer { s in
            next.withUnsafeMutableBufferPointer { n in buffer.sample(into: &batch, states: s, nextStates: n, using: &generator) }
        }
        return (batch, states, next)
    }

    func testSamplingIsDeterministicBySeedDistinctAndConsistent() {
        var buffer = ReplayBuffer(capacity: 100, observationCount: count)
        for index in 0..<60 { add(&buffer, index) }
        let (first, states, next) = sample(buffer, seed: 7, size: 32)
        let (again, statesAgain, _) = sample(buffer, seed: 7, size: 32)
        let (other, _, _) = sample(buffer, seed: 8, size: 32)
        XCTAssertEqual(first.indices, again.indices)
        XCTAssertEqual(states, statesAgain)
        XCTAssertNotEqual(first.indices, other.indices)
        XCTAssertEqual(Set(first.indices).count, 32, "a batch is drawn without replacement")
        for (slot, index) in first.indices.enumerated() {
            XCTAssertTrue((0..<60).contains(index))
            XCTAssertEqual(Array(states[slot * count..<(slot + 1) * count]), observation(index, count: count))
            XCTAssertEqual(Array(next[slot * count..<(slot + 1) * count]), observation(index, count: count, salt: 1))
            XCTAssertEqual(first.actions[slot], index % 6)
            XCTAssertEqual(first.rewards[slot], Float(index % 3))
            XCTAssertEqual(first.terminals[slot], index % 5 == 0 ? 1 : 0)
        }
        // A batch as large as the buffer is a permutation of it.
        let (whole, _, _) = sample(buffer, seed: 9, size: 60)
        XCTAssertEqual(Set(whole.indices), Set(0..<60))
    }

    func testCheckpointRoundTripRestoresEverything() throws {
        for written in [7, 23] {  // partly filled, and wrapped around
            var buffer = ReplayBuffer(capacity: 10, observationCount: count)
            for index in 0..<written { add(&buffer, index) }
            let saved = buffer.checkpointState(prefix: "replay.")
            var restored = ReplayBuffer(capacity: 10, observationCount: count)
            try restored.restore(from: saved, prefix: "replay.")
            XCTAssertEqual(restored.count, buffer.count)
            XCTAssertEqual(restored.position, buffer.position)
            for position in 0..<buffer.count {
                let (a, b) = (buffer.transition(at: position), restored.transition(at: position))
                XCTAssertEqual(a.state, b.state)
                XCTAssertEqual(a.nextState, b.nextState)
                XCTAssertEqual(a.action, b.action)
                XCTAssertEqual(a.reward, b.reward)
                XCTAssertEqual(a.terminal, b.terminal)
            }
            XCTAssertEqual(sample(buffer, seed: 3, size: 5).1, sample(restored, seed: 3, size: 5).1)
            // Both continue identically.
            add(&buffer, 100)
            add(&restored, 100)
            XCTAssertEqual(buffer.transition(at: written % 10).state, restored.transition(at: written % 10).state)
        }
        var wrongSize = ReplayBuffer(capacity: 11, observationCount: count)
        XCTAssertThrowsError(try wrongSize.restore(from: ReplayBuffer(capacity: 10, observationCount: count).checkpointState(prefix: ""), prefix: ""))
    }

    func testPackedStateIsExact() throws {
        let words: [UInt64] = [0, 1, .max, 0x8000_0000_0000_0001, 0x0123_4567_89AB_CDEF]
        XCTAssertEqual(try PackedState.words(PackedState.tensor(words: words)), words)
        let bytes: [UInt8] = (0..<19).map { UInt8(($0 * 37) % 256) }
        XCTAssertEqual(try PackedState.bytes(PackedState.tensor(bytes: bytes), count: 19), bytes)
        XCTAssertEqual(try PackedState.bytes(PackedState.tensor(bytes: []), count: 0), [])
        XCTAssertEqual(try PackedState.integers(PackedState.tensor(integers: [-5, 0, 5_000_000_123])), [-5, 0, 5_000_000_123])
        let doubles = [0.1, -3.25e200, .infinity, 1.0 / 3.0]
        XCTAssertEqual(try PackedState.doubles(PackedState.tensor(doubles: doubles)).map(\.bitPattern), doubles.map(\.bitPattern))
        XCTAssertThrowsError(try PackedState.words(Tensor([1, 2])))
        XCTAssertThrowsError(try PackedState.words(Tensor([1.5, 0, 0])))
        XCTAssertThrowsError(try PackedState.bytes(PackedState.tensor(bytes: bytes), count: 30))
    }
}
