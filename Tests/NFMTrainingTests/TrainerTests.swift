import Foundation
import NFMLog
import NFMNN
import NFMOptimizers
import NFMTensor
import XCTest

@testable import NFMTraining

/// A small regression model with dropout, so that resume must restore parameters, Adam's moments
/// and the generator to reproduce a run.
final class TinyModel: Module {
    let first: Linear
    let second: Linear
    let dropout = Dropout(probability: 0.2)

    init(seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        first = Linear(4, 16, using: &generator)
        second = Linear(16, 1, using: &generator)
        super.init()
    }

    func callAsFunction(_ x: Tensor, generator: inout SeededGenerator) -> Tensor {
        second(dropout(relu(first(x)), using: &generator))
    }
}

/// A deterministic data stream: the batch depends only on the step number.
func batch(step: Int) -> (inputs: Tensor, targets: Tensor) {
    var generator = SeededGenerator(seed: UInt64(1000 + step))
    let inputs = Tensor.randomNormal([8, 4], using: &generator)
    let targets = inputs.sum(alongAxis: 1, keepDims: true) * 0.5
    return (inputs, targets)
}

final class TrainerTests: XCTestCase {
    var root = ""

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "nfm-trainer-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: root)
    }

    /// Trains for `steps` (stopping after `stopAfter` if given), optionally resuming; returns the
    /// model's final parameters and the logged losses.
    func train(name: String, steps: Int, stopAfter: Int? = nil, resume: Bool = false, from checkpoint: String? = nil, poison: Int? = nil) throws
        -> (parameters: [Float], losses: [Double], trainer: Trainer)
    {
        let model = TinyModel(seed: 3)
        let optimizer = Adam(learningRate: 0.01)
        let run = try RunDirectory(name: name, root: root, resume: resume || checkpoint != nil)
        let trainer = try Trainer(
            run: run, configuration: TrainingConfiguration(steps: steps, checkpointInterval: 5), seed: 11,
            modules: [("model", model)], optimizers: [("optimizer", optimizer, model)],
            resumeFrom: checkpoint ?? (resume ? run.path : nil))
        try trainer.run(step: { step, generator in
            if let stopAfter, step == stopAfter { throw CancellationError() }
            let (inputs, targets) = batch(step: step)
            let (loss, grads) = valueAndGrad(model: model) { model in mseLoss(model(inputs, generator: &generator), targets) }
            optimizer.update(model: model, gradients: grads)
            return ["train/loss": step == poison ? .nan : Double(loss.item)]
        })
        let parameters = model.namedParameters().flatMap { $0.tensor.scalars }
        return (parameters, trainer.metrics.points(of: "train/loss").map(\.value), trainer)
    }

    func testResumedRunEqualsUninterruptedRun() throws {
        let uninterrupted = try train(name: "straight", steps: 20)
        XCTAssertThrowsError(try train(name: "resumed", steps: 20, stopAfter: 13))  // dies at step 13; last checkpoint at 10
        let resumed = try train(name: "resumed", steps: 20, resume: true)
        XCTAssertEqual(resumed.parameters, uninterrupted.parameters, "parameters after resume differ")
        // Exactly: the reloaded steps' values must survive the round trip through the metrics files.
        XCTAssertEqual(resumed.losses, uninterrupted.losses, "the loss curve after resume differs (or has duplicates)")
        let early = uninterrupted.losses.prefix(5).reduce(0, +), late = uninterrupted.losses.suffix(5).reduce(0, +)
        XCTAssertLessThan(late, early, "the loss goes down")
    }

    func testNaNLossStopsWithTheStepAndKeepsTheLastGoodCheckpoint() throws {
        XCTAssertThrowsError(try train(name: "nan", steps: 20, poison: 7)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("step 8"), message)
            XCTAssertTrue(message.contains("train/loss"), message)
            XCTAssertTrue(message.contains("step-000000005"), message)
        }
        let checkpoint = try Checkpoint.resolve(root + "/nan")
        XCTAssertTrue(checkpoint.hasSuffix("step-000000005"))
        let model = TinyModel(seed: 99)
        XCTAssertNoThrow(try Checkpoint.loadModule(model, from: checkpoint))
        XCTAssertTrue(model.namedParameters().allSatisfy { $0.tensor.isFinite })
    }

    func testCorruptCheckpointGivesAClearErrorAndResumeIsRefused() throws {
        _ = try train(name: "corrupt", steps: 5)
        let file = try Checkpoint.resolve(root + "/corrupt") + "/model.safetensors"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: file))
        XCTAssertThrowsError(try train(name: "corrupt", steps: 10, resume: true)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("model.safetensors"), message)
        }
        XCTAssertThrowsError(try Checkpoint.resolve(root + "/does-not-exist")) { error in
            XCTAssertTrue("\(error)".contains("no checkpoint found"))
        }
    }

    func testCheckpointIsLoadableAsAPlainStateDictWithTorchNames() throws {
        _ = try train(name: "names", steps: 5)
        let directory = try Checkpoint.resolve(root + "/names")
        let model = try StateDict.load(contentsOf: directory + "/model.safetensors")
        XCTAssertEqual(Set(model.keys), ["first.weight", "first.bias", "second.weight", "second.bias"])
        let optimizer = try StateDict.load(contentsOf: directory + "/optimizer.safetensors")
        XCTAssertTrue(optimizer.keys.contains("state.0.exp_avg"), "\(optimizer.keys)")
        XCTAssertTrue(optimizer.keys.contains("state.3.step"), "\(optimizer.keys)")
    }

    func testInterruptWritesACheckpointAndStopsCleanly() throws {
        let model = TinyModel(seed: 3)
        let optimizer = Adam(learningRate: 0.01)
        let run = try RunDirectory(name: "interrupt", root: root)
        let trainer = try Trainer(
            run: run, configuration: TrainingConfiguration(steps: 50), seed: 1,
            modules: [("model", model)], optimizers: [("optimizer", optimizer, model)])
        let outcome = try trainer.run { step, generator in
            if step == 3 { raise(SIGINT) }
            let (inputs, targets) = batch(step: step)
            let (loss, grads) = valueAndGrad(model: model) { mseLoss($0(inputs, generator: &generator), targets) }
            optimizer.update(model: model, gradients: grads)
            return ["train/loss": Double(loss.item)]
        }
        XCTAssertEqual(outcome, .interrupted(step: 4))
        XCTAssertTrue(try Checkpoint.resolve(run.path).hasSuffix("step-000000004"))
    }
}
