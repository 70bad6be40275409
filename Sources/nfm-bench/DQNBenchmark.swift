import NFMTensor
import RLKit

/// DQN training frames per second with nfm-rl's own agent (MinAtar's network and settings): each
/// frame plays one ε-greedy step of Breakout, stores the transition, and runs one update on a batch
/// of 32 (target network forward, Q-network forward and backward, Huber loss, centered RMSprop), as
/// MinAtar's `dqn.py` does once its replay memory is past the start size.
struct DQNResult: Codable, Sendable {
    var game: String
    var batch: Int
    var framesPerSecond: Summary
}

/// Times `framesPerIteration` training frames per iteration, after a 1,000-frame random start.
func runDQNBenchmark(framesPerIteration: Int, warmup: Int, iterations: Int) throws -> DQNResult {
    var configuration = DQNConfiguration(game: "breakout", seed: 0)
    configuration.exploration.randomFrames = 1_000
    configuration.replayCapacity = 10_000
    let agent = try DQNAgent(configuration: configuration)
    var generator = SeededGenerator(seed: 9)
    var frame = 0
    while frame <= configuration.exploration.randomFrames {
        _ = agent.playFrame(frame, generator: &generator)
        frame += 1
    }
    let times = timeMilliseconds(warmup: warmup, iterations: iterations) {
        for _ in 0..<framesPerIteration {
            _ = agent.playFrame(frame, generator: &generator)
            frame += 1
        }
    }
    return DQNResult(
        game: configuration.game, batch: configuration.batchSize,
        framesPerSecond: Summary(times, unit: "ms").rate(amount: Double(framesPerIteration), unit: "frames/s"))
}
