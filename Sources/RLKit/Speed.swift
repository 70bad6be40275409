// How fast the DQN step runs, part by part (`nfm-rl speed`).
//
// oneDNN runs its kernels on OpenMP threads. MinAtar's network is tiny (a batch-32 update is about
// 45 MFLOP), so splitting each op across cores gains little, while the second thread's spin-waits
// between ops take a whole core; on a shared machine they take it from whoever else runs there.
// nfm-rl therefore runs oneDNN on one thread unless told otherwise (`--threads`).

import Envs
import Foundation
import NFMKernels
import NFMOptimizers
import NFMTensor

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// CPU time of the whole process, in seconds.
public enum CPUClock {
    /// Seconds of CPU the process has used, all threads together.
    public static var process: Double { seconds(CLOCK_PROCESS_CPUTIME_ID) }

    private static func seconds(_ clock: clockid_t) -> Double {
        var time = timespec()
        clock_gettime(clock, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }
}

/// Wall-clock nanoseconds of the update's phases (forward and loss, backward, optimizer),
/// accumulated over updates for `nfm-rl speed`.
struct UpdateTimings {
    /// Forward pass and loss.
    var forward: UInt64 = 0
    /// Back-propagation.
    var backward: UInt64 = 0
    /// The optimizer's step.
    var optimizer: UInt64 = 0
    /// The end of the last phase timed.
    private var lastMark: UInt64 = 0

    /// Starts timing an update's phases.
    mutating func start() { lastMark = DispatchTime.now().uptimeNanoseconds }

    /// Adds the time since the last mark to `phase`.
    mutating func mark(_ phase: WritableKeyPath<UpdateTimings, UInt64>) {
        let now = DispatchTime.now().uptimeNanoseconds
        self[keyPath: phase] += now - lastMark
        lastMark = now
    }
}

/// One timed part of the DQN step.
public struct SpeedMeasurement: Sendable {
    /// What was timed.
    public var name: String
    /// Median CPU microseconds per call: the process's CPU time, every thread's. The Swift kernels split
    /// large loops over the cores, so the calling thread's time alone would miss part of the work; and
    /// on a busy machine wall-clock time also counts the time other programs held the core.
    public var microseconds: Double
}

extension DQNAgent {
    /// The convolution, matrix-product and attention FLOPs of one training frame past the replay
    /// start: Q(s) for the one observation acted on, Q_target(s') for a batch, and the update's
    /// forward and backward on the batch (MinAtar's algorithm, one update per frame).
    public var flopsPerTrainingFrame: Double {
        let batch = configuration.batchSize
        return online.work(examples: 1).forward + online.work(examples: batch).forward + online.work(examples: batch).training
    }

    /// Times the parts of a training frame (CPU time) on a filled replay buffer: the agent plays its random
    /// start first, then each part runs `repetitions` times (median reported), then `frames` whole
    /// training frames are timed. Changes the agent (it trains), so use a throwaway one.
    public func measureSpeed(repetitions: Int, frames: Int) -> (parts: [SpeedMeasurement], framesPerSecond: Double, framesPerCPUSecond: Double) {
        var generator = SeededGenerator(seed: configuration.seed)
        var frame = 0
        while frame <= configuration.exploration.randomFrames {
            _ = playFrame(frame, generator: &generator)
            frame += 1
        }
        func median(_ name: String, _ body: () -> Void) -> SpeedMeasurement {
            var times: [Double] = []
            for _ in 0..<repetitions {
                let start = CPUClock.process
                body()
                times.append((CPUClock.process - start) * 1e6)
            }
            return SpeedMeasurement(name: name, microseconds: times.sorted()[times.count / 2])
        }
        let observation = [Float](repeating: 0, count: observationCount)
        var parts = [
            median("act: Q(s) for one observation") { _ = greedyAction(observation) },
            median("replay: sample a batch") { sampleBatch(generator: &generator) },
            median("target: Q_target(s') for a batch") { _ = withoutGradient { target(nextStates) } },
            median("update: forward, backward, RMSprop") { _ = update(generator: &generator) },
            median("parameter table lookup (namedParameters)") { _ = online.namedParameters() },
        ]
        // The optimizer alone, on copies of the parameters and a separate state.
        let copies = online.namedParameters()
        let gradients = copies.map { Tensor(repeating: 1e-3, shape: $0.tensor.shape) }
        let separate = RMSprop(learningRate: 1e-9, alpha: configuration.rmspropAlpha, epsilon: configuration.rmspropEpsilon, centered: true)
        var parameters = copies.map { Tensor(zeros: $0.tensor.shape) }
        parts.insert(median("  of which RMSprop over all parameters") {
            for index in parameters.indices { separate.update(&parameters[index], named: copies[index].name, gradient: gradients[index]) }
        }, at: 4)
        timings = UpdateTimings()
        let updatesBefore = updates
        if let network = online as? NFMQNetwork {
            var draws = SeededGenerator(seed: 9)
            let wide = Tensor.randomUniform([configuration.batchSize, 16, 10, 10], using: &draws)
            let small = Tensor.randomUniform([configuration.batchSize, 16, 8, 8], using: &draws)
            let input = Tensor.randomUniform([configuration.batchSize, environment.channelCount, 10, 10], using: &draws)
            let nfm = network.nfm
            let block = nfm.outLayers[2]
            let keys = [nfm.keyLayers[0](wide), nfm.keyLayers[1](small)]
            let values = [nfm.valueLayers[0](wide), nfm.valueLayers[1](small)]
            let query = nfm.queryLayers[2](wide)
            parts += withoutGradient { [
                median("  nfm: conv C→16 3×3 pad 1, 10×10") { _ = network.convolutions[0][0](input) },
                median("  nfm: conv 16→16 3×3, 10×10 → 8×8") { _ = network.convolutions[0][1](wide) },
                median("  nfm: conv 16→16 1×1 (key), 10×10") { _ = nfm.keyLayers[0](wide) },
                median("  nfm: attention over 2 entries, 10×10") {
                    _ = nfmAttention(query: query, keys: keys, values: values, heads: nfm.heads, keySize: nfm.keySize, valueSize: nfm.valueSize, topK: nfm.topK)
                },
                median("  nfm: out block (conv, BN, ReLU, conv), 10×10") { _ = block(wide) },
                median("  nfm: relu 32×16×10×10") { _ = relu(wide) },
            ] }
        }
        let start = DispatchTime.now().uptimeNanoseconds
        let cpuStart = CPUClock.process
        for _ in 0..<frames {
            _ = playFrame(frame, generator: &generator)
            frame += 1
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
        let cpuSeconds = CPUClock.process - cpuStart
        let count = Double(Swift.max(updates - updatesBefore, 1)) * 1000
        parts.append(SpeedMeasurement(name: "  update phase: forward and loss (mean, wall)", microseconds: Double(timings.forward) / count))
        parts.append(SpeedMeasurement(name: "  update phase: backward (mean, wall)", microseconds: Double(timings.backward) / count))
        parts.append(SpeedMeasurement(name: "  update phase: RMSprop (mean, wall)", microseconds: Double(timings.optimizer) / count))
        parts.append(SpeedMeasurement(name: "whole training frame", microseconds: cpuSeconds * 1e6 / Double(frames)))
        return (parts, Double(frames) / seconds, Double(frames) / cpuSeconds)
    }
}
