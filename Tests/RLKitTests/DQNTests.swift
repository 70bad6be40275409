import Envs
import Foundation
import NFMIO
import NFMKernels
import NFMLog
import NFMNN
import NFMTensor
import NFMTraining
import XCTest

@testable import RLKit

final class DQNMathTests: XCTestCase {
    func testEpsilonScheduleFollowsMinAtar() {
        let schedule = EpsilonSchedule()  // 5,000 random frames, then 1.0 → 0.1 over 100,000 frames
        XCTAssertTrue(schedule.isRandomStart(frame: 0))
        XCTAssertTrue(schedule.isRandomStart(frame: 4_999))
        XCTAssertFalse(schedule.isRandomStart(frame: 5_000))
        XCTAssertEqual(schedule.epsilon(frame: 0), 1)
        XCTAssertEqual(schedule.epsilon(frame: 5_000), 1)
        XCTAssertEqual(schedule.epsilon(frame: 55_000), 0.55, accuracy: 1e-12)
        XCTAssertEqual(schedule.epsilon(frame: 104_999), 0.100_009, accuracy: 1e-12)
        XCTAssertEqual(schedule.epsilon(frame: 105_000), 0.1)
        XCTAssertEqual(schedule.epsilon(frame: 4_000_000), 0.1)
        let short = EpsilonSchedule(randomFrames: 10, initial: 1, final: 0.2, annealFrames: 4)
        for (frame, expected) in zip(10...15, [1, 0.8, 0.6, 0.4, 0.2, 0.2]) {
            XCTAssertEqual(short.epsilon(frame: frame), expected, accuracy: 1e-12, "linear from the end of the random start, frame \(frame)")
        }
    }

    func testTemporalDifferenceTargetsMaskTerminals() {
        // y = r + γ · max_a' Q(s', a') · (1 − terminal), γ = 0.9.
        let targets = temporalDifferenceTargets(
            rewards: [1, 0, 2, 0.5], terminals: [0, 1, 0, 1],
            nextValues: [0.5, 2, -1, /**/ 10, 10, 10, /**/ -3, -2, -4, /**/ 1, 1, 1], actionCount: 3, discount: 0.9)
        XCTAssertEqual(targets[0], 2.8, accuracy: 1e-6)
        XCTAssertEqual(targets[1], 0, "a terminal s' contributes nothing, however large its values")
        XCTAssertEqual(targets[2], 0.2, accuracy: 1e-6, "the max of all-negative values")
        XCTAssertEqual(targets[3], 0.5)
    }

    func testHuberLossOnChosenActions() {
        // Q(s, ·) for 3 transitions; chosen actions 2, 0, 1; targets 1, 5, 0.25.
        let values = Tensor(shape: [3, 3], scalars: [0, 0, 0.5, 2, 9, 9, 0, 0, 0])
        let chosen = values.gathering(alongAxis: 1, indices: Tensor(shape: [3, 1], scalars: [2, 0, 1]))
        let loss = smoothL1Loss(chosen, Tensor(shape: [3, 1], scalars: [1, 5, 0.25]))
        // |d| = 0.5 → 0.125; |d| = 3 → 2.5; |d| = 0.25 → 0.03125; mean.
        XCTAssertEqual(loss.item, (0.125 + 2.5 + 0.031_25) / 3, accuracy: 1e-6)
        XCTAssertEqual(greedyAction([0.1, 0.7, 0.7, -1].withUnsafeBufferPointer { $0 }), 1, "ties go to the first")
    }
}

final class QNetworkTests: XCTestCase {
    /// Checks the network's parameter count and its parameters' "name [shape]", in order.
    func assertParameters(_ network: Module, count: Int, shapes: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(network.parameterCount, count, file: file, line: line)
        XCTAssertEqual(network.namedParameters().map { "\($0.name) \($0.tensor.shape)" }, shapes, file: file, line: line)
    }

    func testBaselineMatchesMinAtarShapesAndNames() {
        var generator = SeededGenerator(seed: 1)
        let network = BaselineQNetwork(inputChannels: 4, actionCount: 6, using: &generator)
        assertParameters(
            network, count: 132_566,
            shapes: ["conv.weight [16, 4, 3, 3]", "conv.bias [16]", "fc_hidden.weight [128, 1024]", "fc_hidden.bias [128]",
             "output.weight [6, 128]", "output.bias [6]"])
        XCTAssertEqual(network(Tensor(zeros: [5, 4, 10, 10])).shape, [5, 6])
    }

    /// FLOPs worked out by hand from the layer shapes (2 per multiply-add).
    func testWorkPerExampleAndFrame() throws {
        var generator = SeededGenerator(seed: 1)
        let baseline = BaselineQNetwork(inputChannels: 4, actionCount: 6, using: &generator)
        // conv 4·16·9·64 = 36,864, fc_hidden 1,024·128 = 131,072, output 128·6 = 768 multiply-adds.
        XCTAssertEqual(baseline.work(examples: 1).forward, 2 * (36_864 + 131_072 + 768))
        // The conv reads the observations: weight gradient only; the linears: weight and data.
        XCTAssertEqual(baseline.work(examples: 1).backward, 2 * 36_864 + 4 * (131_072 + 768))
        XCTAssertEqual(baseline.work(examples: 32).forward, 32 * baseline.work(examples: 1).forward)
        let nfm = NFMQNetwork(inputChannels: 4, actionCount: 6, using: &generator)
        // Multiply-adds: conv1 2 × 57,600; conv2 2 × 147,456; keys and values 4 × 25,600 (10×10) and
        // 4 × 16,384 (8×8); pass 2's queries 25,600 + 16,384; out blocks 2 × 230,400 + 2 × 147,456; head
        // 131,840. Attention 2 · pixels · (16 + 16) · entries: 3 entries at 10×10, 4 at 8×8.
        let convolutions = 2 * 57_600 + 2 * 147_456 + 4 * 25_600 + 4 * 16_384 + 25_600 + 16_384 + 2 * 230_400 + 2 * 147_456
        let attention = 2 * 100 * 32 * 3 + 2 * 64 * 32 * 4
        XCTAssertEqual(nfm.work(examples: 1).forward, Double(2 * (convolutions + 131_840) + attention))
        XCTAssertEqual(
            nfm.work(examples: 1).backward, Double(2 * 2 * 57_600 + 4 * (convolutions - 2 * 57_600 + 131_840) + 2 * attention))
        // A frame: Q(s) for one observation, Q_target(s') and the update on a batch of 32.
        let agent = try DQNAgent(configuration: DQNConfiguration(game: "breakout", seed: 0, encoder: .baseline))
        XCTAssertEqual(agent.flopsPerTrainingFrame, 41_166_336)
    }

    func testNFMNetworkShapeCountsAndGradients() {
        var generator = SeededGenerator(seed: 1)
        let network = NFMQNetwork(inputChannels: 4, actionCount: 6, using: &generator)
        XCTAssertEqual(network.parameterCount, 159_754)
        XCTAssertEqual(network.trainedParameterCount, 149_864)
        XCTAssertEqual(network.normalizationLayers.count, 4)
        let names = network.namedParameters().map(\.name)
        for name in ["conv1.weight", "conv2.weight", "conv1b.weight", "conv2b.weight", "ad.gammas.3", "fc_hidden.weight", "output.weight"] {
            XCTAssertTrue(names.contains(name), name)
        }
        let input = Tensor.randomUniform([3, 4, 10, 10], using: &generator)
        let (_, gradients) = valueAndGrad(model: network) { network in network(input).sum() }
        // Pass 1's slots never read: their query, out and gate get no gradient; everything else does.
        let trained = gradients.values.reduce(0) { $0 + $1.scalarCount }
        XCTAssertEqual(trained, network.trainedParameterCount)
        XCTAssertNil(gradients["ad.query_layers.0.weight"])
        XCTAssertNotNil(gradients["ad.query_layers.2.weight"])
        XCTAssertNotNil(gradients["ad.gammas.3"])
        XCTAssertNotEqual(gradients["ad.gammas.3"]!.item, 0, "the gate learns from the first step")
    }
}

extension QNetworkTests {
    /// The two-layer control is the NFM encoder's pass-2 trunk: given the same weights it computes what a
    /// fresh NFM network (every γ = 0) does, so the two differ only by the attention.
    func testTwoLayerIsTheNFMTrunkWithoutAttention() {
        var generator = SeededGenerator(seed: 3)
        let network = TwoLayerQNetwork(inputChannels: 4, actionCount: 6, using: &generator)
        assertParameters(
            network, count: 134_886,
            shapes: ["conv1.weight [16, 4, 3, 3]", "conv1.bias [16]", "conv2.weight [16, 16, 3, 3]", "conv2.bias [16]",
             "fc_hidden.weight [128, 1024]", "fc_hidden.bias [128]", "output.weight [6, 128]", "output.bias [6]"])
        let nfm = NFMQNetwork(inputChannels: 4, actionCount: 6, using: &generator)
        let weights = Dictionary(uniqueKeysWithValues: nfm.namedParameters().map { ($0.name, $0.tensor) })
        network.update(parameters: [
            "conv1.weight": weights["conv1b.weight"]!, "conv1.bias": weights["conv1b.bias"]!,
            "conv2.weight": weights["conv2b.weight"]!, "conv2.bias": weights["conv2b.bias"]!,
            "fc_hidden.weight": weights["fc_hidden.weight"]!, "fc_hidden.bias": weights["fc_hidden.bias"]!,
            "output.weight": weights["output.weight"]!, "output.bias": weights["output.bias"]!,
        ])
        let input = Tensor.randomUniform([3, 4, 10, 10], using: &generator)
        XCTAssertEqual(network(input).scalars, nfm(input).scalars)
        // ...and the equality is not vacuous: a changed conv2 weight changes it.
        network.update(parameters: ["conv2.weight": weights["conv2b.weight"]! * 1.5])
        XCTAssertNotEqual(network(input).scalars, nfm(input).scalars)
    }

    /// Multiply-adds by hand: conv1 16·4·9·100 = 57,600 (weight gradient only: it reads the observations),
    /// conv2 16·16·9·64 = 147,456, head 131,072 + 768.
    func testTwoLayerWork() {
        var generator = SeededGenerator(seed: 1)
        let network = TwoLayerQNetwork(inputChannels: 4, actionCount: 6, using: &generator)
        XCTAssertEqual(network.work(examples: 1).forward, 2 * (57_600 + 147_456 + 131_840))
        XCTAssertEqual(network.work(examples: 1).backward, 2 * 57_600 + 4 * (147_456 + 131_840))
        XCTAssertEqual(EncoderKind(rawValue: "two-layer"), .twoLayer)
    }
}

final class DQNRunTests: XCTestCase {
    var root = ""

    override func setUpWithError() throws {
        ComputeThreads.set(1)  // as nfm-rl does: a second OpenMP thread only spins on these tiny ops
        root = NSTemporaryDirectory() + "nfm-rl-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: root)
    }

    func tinyConfiguration(frames: Int, encoder: EncoderKind) -> DQNConfiguration {
        var configuration = DQNConfiguration(game: "breakout", frames: frames, seed: 5, encoder: encoder)
        configuration.replayCapacity = 100
        configuration.batchSize = encoder == .nfm ? 4 : 8
        configuration.exploration = EpsilonSchedule(randomFrames: 30, annealFrames: 60)
        configuration.targetUpdateInterval = 15
        configuration.logInterval = 25
        configuration.checkpointInterval = encoder == .nfm ? 20 : 50
        configuration.evaluationEpisodes = 2
        configuration.evaluationFrameLimit = encoder == .nfm ? 8 : 20
        configuration.filmstripFrames = 4
        return configuration
    }

    struct Result {
        var parameters: [Float]
        var targetParameters: [Float]
        var losses: [MetricPoint]
        var returns: [MetricPoint]
        var summary: DQNRunSummary
        var path: String
    }

    func train(_ configuration: DQNConfiguration, name: String, resume: Bool = false) throws -> Result {
        let run = try RunDirectory(name: name, root: root, resume: resume)
        let dqn = try DQNRun(configuration: configuration, run: run, resume: resume)
        let summary = try dqn.train()
        return Result(
            parameters: dqn.agent.online.namedParameters().flatMap { $0.tensor.scalars },
            targetParameters: dqn.agent.target.namedParameters().flatMap { $0.tensor.scalars },
            losses: dqn.trainer.metrics.points(of: "train/loss"), returns: dqn.trainer.metrics.points(of: "rollout/episodic_return"),
            summary: summary, path: run.path)
    }

    /// Trains straight through, and in pieces with a simulated crash: the resumed run must match bit for bit.
    func checkResumeIsExact(encoder: EncoderKind, frames: Int) throws {
        let straight = try train(tinyConfiguration(frames: frames, encoder: encoder), name: "straight")
        XCTAssertEqual(straight.summary.outcome, .completed(steps: frames))
        XCTAssertFalse(straight.losses.isEmpty)
        XCTAssertNotNil(straight.summary.evaluationReturn)

        // Part 1 stops at frames − 25 (final checkpoint there, and one at the interval's last multiple before).
        let partial = try train(tinyConfiguration(frames: frames - 25, encoder: encoder), name: "pieces")
        // Simulate a crash after that checkpoint: the run resumes from the earlier one, and the
        // metrics logged after it are discarded.
        let interval = tinyConfiguration(frames: frames, encoder: encoder).checkpointInterval
        let earlier = String(format: "step-%09d", (frames - 26) / interval * interval)
        try (earlier + "\n").write(toFile: partial.path + "/checkpoints/latest", atomically: true, encoding: .utf8)
        let resumed = try train(tinyConfiguration(frames: frames, encoder: encoder), name: "pieces", resume: true)

        XCTAssertEqual(resumed.parameters, straight.parameters, "online network after resume differs")
        XCTAssertEqual(resumed.targetParameters, straight.targetParameters, "target network after resume differs")
        XCTAssertEqual(resumed.losses.map(\.step), straight.losses.map(\.step))
        XCTAssertEqual(resumed.losses.map { Float($0.value) }, straight.losses.map { Float($0.value) })
        XCTAssertEqual(resumed.returns.map(\.step), straight.returns.map(\.step))
        XCTAssertEqual(resumed.returns.map(\.value), straight.returns.map(\.value))
        XCTAssertEqual(resumed.summary.episodes, straight.summary.episodes)
        XCTAssertEqual(resumed.summary.evaluationReturn, straight.summary.evaluationReturn)
        for file in ["config.json", "metrics.csv", "metrics.jsonl", "filmstrip.png", "average_return_100.png", "loss.png"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: resumed.path + "/" + file), file)
        }
        let filmstrip = try PNGImage.read(contentsOf: resumed.path + "/filmstrip.png")
        XCTAssertEqual(filmstrip.height, 10 * 8 + 2 * 2, "one row of four 10×10 frames scaled 8×, padding 2")
    }

    func testBaselineRunResumesExactly() throws {
        try checkResumeIsExact(encoder: .baseline, frames: 120)
    }

    func testNFMRunResumesExactly() throws {
        try checkResumeIsExact(encoder: .nfm, frames: 60)
    }

    func testUnknownGameListsTheValidOnes() {
        XCTAssertThrowsError(try DQNAgent(configuration: DQNConfiguration(game: "pong"))) { error in
            XCTAssertEqual("\(error)", "unknown MinAtar game \"pong\"; valid games are: asterix, breakout, freeway, seaquest, space_invaders")
        }
    }
}

