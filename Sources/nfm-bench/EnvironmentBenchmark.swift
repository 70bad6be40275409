import Envs
import NFMTensor

/// Steps per second of one MinAtar game: `act` with sticky actions, then the observation, resetting
/// when an episode ends (what an agent does each frame; the Python side runs the same loop).
struct EnvironmentResult: Codable, Sendable {
    var game: String
    var stepsPerSecond: Summary
}

/// Times `stepsPerIteration` random-action steps per iteration of `game`.
func runEnvironmentBenchmark(
    game: String, stepsPerIteration: Int, warmup: Int, iterations: Int
) throws -> EnvironmentResult {
    var environment = try Environment(game: game, seed: 0)
    var generator = SeededGenerator(seed: 5)
    // Actions drawn up front so that the loop times the game, not the generator.
    let actions = (0..<4096).map { _ in generator.nextIndex(below: Environment.actionCount) }
    var observation = [Float](repeating: 0, count: environment.observationCount)
    var step = 0
    var checksum: Float = 0
    let times = timeMilliseconds(warmup: warmup, iterations: iterations) {
        observation.withUnsafeMutableBufferPointer { buffer in
            for _ in 0..<stepsPerIteration {
                let (reward, terminal) = environment.act(actions[step & 4095])
                environment.observation(into: buffer)
                checksum += reward + buffer[0]
                if terminal { environment.reset() }
                step += 1
            }
        }
    }
    precondition(checksum.isFinite)
    return EnvironmentResult(
        game: game,
        stepsPerSecond: Summary(times, unit: "ms").rate(amount: Double(stepsPerIteration), unit: "steps/s"))
}
