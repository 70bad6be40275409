import NFMKernels
import NFMTensor
import RLKit

/// DQN training frames per second with nfm-rl's own agent (MinAtar's settings, either encoder): each
/// frame plays one ε-greedy step of Breakout, stores the transition, and runs one update on a batch
/// of 32 (target network forward, Q-network forward and backward, Huber loss, centered RMSprop), as
/// MinAtar's `dqn.py` does once its replay memory is past the start size.
struct DQNResult: Codable, Sendable {
    var game: String
    var encoder: String
    var batch: Int
    /// oneDNN threads (nfm-rl trains on 1).
    var threads: Int
    var framesPerSecond: Summary
    /// Frames per second of the process's CPU time over all iterations (warm-up included): the rate
    /// that counts when every core of the machine has a run of its own.
    var framesPerCPUSecond: Double
    /// Convolution, product and attention FLOPs of one frame (`DQNAgent.flopsPerTrainingFrame`).
    var flopsPerFrame: Double
}

/// Times `framesPerIteration` training frames per iteration, after a 1,000-frame random start, with
/// oneDNN on `threads` threads.
func runDQNBenchmark(
    encoder: EncoderKind, threads: Int, framesPerIteration: Int, warmup: Int, iterations: Int
) throws -> DQNResult {
    ComputeThreads.set(threads)
    var configuration = DQNConfiguration(game: "breakout", seed: 0, encoder: encoder)
    configuration.exploration.randomFrames = 1_000
    configuration.replayCapacity = 10_000
    let agent = try DQNAgent(configuration: configuration)
    var generator = SeededGenerator(seed: 9)
    var frame = 0
    while frame <= configuration.exploration.randomFrames {
        _ = agent.playFrame(frame, generator: &generator)
        frame += 1
    }
    let cpuStart = CPUClock.process
    let times = timeMilliseconds(warmup: warmup, iterations: iterations) {
        for _ in 0..<framesPerIteration {
            _ = agent.playFrame(frame, generator: &generator)
            frame += 1
        }
    }
    let cpuSeconds = CPUClock.process - cpuStart
    return DQNResult(
        game: configuration.game, encoder: encoder.rawValue, batch: configuration.batchSize, threads: threads,
        framesPerSecond: Summary(times, unit: "ms").rate(amount: Double(framesPerIteration), unit: "frames/s"),
        framesPerCPUSecond: Double((warmup + iterations) * framesPerIteration) / cpuSeconds,
        flopsPerFrame: agent.flopsPerTrainingFrame)
}
