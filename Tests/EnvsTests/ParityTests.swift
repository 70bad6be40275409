import Envs
import XCTest

/// Replays the MinAtar 1.0.15 reference traces (scripts/reference/minatar_traces.py) step by step:
/// every executed action (sticky actions), reward, terminal flag and observation must match.
final class ParityTests: XCTestCase {
    func testAsterixMatchesMinAtar() throws { try replay(game: "asterix") }
    func testBreakoutMatchesMinAtar() throws { try replay(game: "breakout") }
    func testFreewayMatchesMinAtar() throws { try replay(game: "freeway") }
    func testSeaquestMatchesMinAtar() throws { try replay(game: "seaquest") }
    func testSpaceInvadersMatchesMinAtar() throws { try replay(game: "space_invaders") }

    /// Replays every trace of one game; reports the first mismatch of each trace.
    private func replay(game: String) throws {
        let file = try TraceFile.load(game: game)
        XCTAssertEqual(file.game, game)
        XCTAssertGreaterThanOrEqual(file.traces.count, 3, "\(game): expected several seeds")
        var totalSteps = 0
        var episodes = 0
        for trace in file.traces {
            var environment = try Environment(game: game, seed: trace.seed,
                                              stickyActionProbability: trace.stickyActionProbability,
                                              difficultyRamping: trace.difficultyRamping)
            XCTAssertEqual(environment.channelCount, file.channelCount, "\(game): channel count")
            var buffer = [Float](repeating: -1, count: environment.observationCount)
            let label = "\(game) seed \(trace.seed)"
            if let problem = compare(&environment, &buffer, trace.initialObservation) {
                XCTFail("\(label), initial observation after reset: \(problem)")
                continue
            }
            for (index, step) in trace.steps.enumerated() {
                let (reward, terminal) = environment.act(step.requestedAction)
                let at = "\(label) step \(index) (requested action \(step.requestedAction))"
                if environment.lastAction != step.executedAction {
                    XCTFail("\(at): executed action \(environment.lastAction), MinAtar executed "
                        + "\(step.executedAction) — the sticky-action draw is out of step with MinAtar's stream")
                    break
                }
                if reward != Float(step.reward) || terminal != step.terminal {
                    XCTFail("\(at): got reward \(reward), terminal \(terminal); MinAtar gave reward "
                        + "\(step.reward), terminal \(step.terminal)")
                    break
                }
                if let problem = compare(&environment, &buffer, step.observation) {
                    XCTFail("\(at): observation after act: \(problem)")
                    break
                }
                if let expected = step.resetObservation {
                    environment.reset()
                    episodes += 1
                    if let problem = compare(&environment, &buffer, expected) {
                        XCTFail("\(at): observation after reset: \(problem)")
                        break
                    }
                }
                totalSteps += 1
            }
        }
        XCTAssertGreaterThan(episodes, 0, "\(game): the traces should include resets")
        XCTAssertGreaterThanOrEqual(totalSteps, 6000, "\(game): thousands of steps expected")
    }

    /// Writes the environment's observation into `buffer` and compares it with packed CHW bits; returns a
    /// description of every differing channel, or nil if they agree.
    private func compare(_ environment: inout Environment, _ buffer: inout [Float], _ expected: [UInt8]) -> String? {
        buffer.withUnsafeMutableBufferPointer { environment.observation(into: $0) }
        var problems: [String] = []
        for channel in 0..<environment.channelCount {
            var cells: [String] = []
            for cell in 0..<100 {
                let bit = channel * 100 + cell
                let want: Float = (expected[bit / 8] >> (bit % 8)) & 1 == 1 ? 1 : 0
                let got = buffer[bit]
                if got != want { cells.append("(\(cell / 10),\(cell % 10)): MinAtar \(Int(want)), Swift \(got)") }
            }
            if !cells.isEmpty {
                problems.append("channel \(channel) (\(environment.channelNames[channel])) differs at "
                    + cells.joined(separator: "; ")
                    + "\n  MinAtar:\n" + grid(channel: channel) { (expected[$0 / 8] >> ($0 % 8)) & 1 == 1 }
                    + "\n  Swift:\n" + grid(channel: channel) { buffer[$0] != 0 })
            }
        }
        return problems.isEmpty ? nil : problems.joined(separator: "\n")
    }

    /// A channel drawn as ten rows of `.` and `#`.
    private func grid(channel: Int, _ isSet: (Int) -> Bool) -> String {
        (0..<10).map { row in
            "    " + String((0..<10).map { isSet(channel * 100 + row * 10 + $0) ? "#" : "." })
        }.joined(separator: "\n")
    }
}
