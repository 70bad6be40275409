import Foundation
import NFMLayers
import NFMLog
import NFMModels
import NFMNN
import NFMOptimizers
import NFMTensor
import NFMTraining
import XCTest

/// A tiny end-to-end training example: a two-pass NFM Sort-of-CLEVR model (three layers per pass,
/// on 32×32 images so that it runs in seconds) trained with Adam through the `Trainer` on a fixed
/// random data set. The loss goes down, the run writes a checkpoint that
/// loads back strictly, and a run stopped at step 15 by an error and then resumed ends bit-identical
/// to an uninterrupted one (parameters, batch-norm statistics, Adam's moments and the dropout
/// generator all restored).
final class NFMTrainingExampleTests: XCTestCase {
    static let steps = 30
    static let stopStep = 15

    /// Thrown from the step closure to stop a run part-way, as a crash would.
    struct StopRequested: Error {}

    /// A fixed data set of two batches of 4: random 32×32 images in [0, 1], Sort-of-CLEVR-style
    /// questions (colour, type and subtype one-hot) and random answers, which the model must memorise.
    struct Batch {
        let images: Tensor
        let questions: Tensor
        let answers: [Int]
    }

    let batches: [Batch] = {
        var generator = SeededGenerator(seed: 2021)
        return (0..<2).map { _ in
            let images = Tensor.randomUniform([4, 3, 32, 32], using: &generator)
            var questions = [Float](repeating: 0, count: 4 * 11)
            var answers: [Int] = []
            for n in 0..<4 {
                questions[n * 11 + Int.random(in: 0..<6, using: &generator)] = 1
                questions[n * 11 + 6 + Int.random(in: 0..<2, using: &generator)] = 1
                questions[n * 11 + 8 + Int.random(in: 0..<3, using: &generator)] = 1
                answers.append(Int.random(in: 0..<10, using: &generator))
            }
            return Batch(images: images, questions: Tensor(shape: [4, 11], scalars: questions), answers: answers)
        }
    }()

    var root = ""

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "nfm-training-example-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: root)
    }

    /// The same initial model every time: two passes of three layers (32 → 16 → 8 → 4), NFM with
    /// 2 heads and k = 3 (6 slots), dropout 0.2 in the head.
    func makeModel() -> SortOfClevrModel {
        var generator = SeededGenerator(seed: 7)
        return SortOfClevrModel(
            widths: [4, 8, 8], nfm: NFMConfiguration(heads: 2, keySize: 4, valueSize: 4, topK: 3),
            headChannels: 4, hiddenSize: 32, dropout: 0.2, using: &generator)
    }

    /// Trains run `name` to `steps`, throwing `StopRequested` at step `stopAt` if given, resuming from
    /// the run's last checkpoint if `resume`. Returns the final model and the logged losses.
    func train(name: String, stopAt: Int? = nil, resume: Bool = false) throws -> (model: SortOfClevrModel, losses: [Float], trainer: Trainer) {
        let model = makeModel()
        let optimizer = Adam(learningRate: 3e-3)
        let run = try RunDirectory(name: name, root: root, resume: resume)
        let trainer = try Trainer(
            run: run, configuration: TrainingConfiguration(steps: Self.steps, checkpointInterval: 5), seed: 5,
            modules: [("model", model)], optimizers: [("optimizer", optimizer, model)],
            resumeFrom: resume ? run.path : nil)
        try trainer.run(step: { step, generator in
            if step == stopAt { throw StopRequested() }
            let batch = batches[step % batches.count]
            let (loss, gradients) = valueAndGrad(model: model) { model in
                nllLoss(model(images: batch.images, questions: batch.questions, generator: &generator), targets: batch.answers)
            }
            optimizer.update(model: model, gradients: gradients)
            return ["train/loss": Double(loss.item)]
        })
        return (model, trainer.metrics.points(of: "train/loss").map { Float($0.value) }, trainer)
    }

    /// Every parameter and buffer, bit for bit.
    func assertIdentical(_ first: StateDict, _ second: StateDict, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(first.keys, second.keys, message, file: file, line: line)
        for (key, value) in first.entries {
            switch (value, second[key]) {
            case (.float(let a), .float(let b)?):
                XCTAssertEqual(a.shape, b.shape, key, file: file, line: line)
                XCTAssertTrue(a.scalars.map(\.bitPattern) == b.scalars.map(\.bitPattern), "\(message): \(key) differs", file: file, line: line)
            case (.int64(let a), .int64(let b)?): XCTAssertEqual(a, b, "\(message): \(key)", file: file, line: line)
            default: XCTFail("\(message): \(key) missing or of another dtype", file: file, line: line)
            }
        }
    }

    func testTwoPassNFMModelLearnsCheckpointsAndResumesExactly() throws {
        let initial = makeModel().stateDict()
        let straight = try train(name: "straight")

        // The loss goes down on the fixed data set.
        XCTAssertEqual(straight.losses.count, Self.steps)
        let first = straight.losses.prefix(5).reduce(0, +) / 5, last = straight.losses.suffix(5).reduce(0, +) / 5
        XCTAssertLessThan(last, 0.8 * first, "mean loss of the last 5 steps \(last) vs the first 5 \(first)")

        // The NFM path was trained: the pass-2 gates moved away from 0; the pass-1 query layers,
        // which never read, got no gradient and were skipped by Adam.
        let trained = straight.model.stateDict()
        for slot in 3..<6 {
            guard case .float(let gamma)? = trained["conv.ad.gammas.\(slot)"] else { return XCTFail("no γ \(slot)") }
            XCTAssertNotEqual(gamma.item, 0, "γ of pass-2 slot \(slot) was not trained")
        }
        guard case .float(let before)? = initial["conv.ad.query_layers.0.weight"],
            case .float(let after)? = trained["conv.ad.query_layers.0.weight"]
        else { return XCTFail("no pass-1 query layer") }
        XCTAssertEqual(before.scalars, after.scalars, "a pass-1 query layer changed though it gets no gradient")

        // The final checkpoint loads strictly into a fresh model and holds exactly the trained state.
        let checkpoint = try Checkpoint.resolve(straight.trainer.run.path)
        XCTAssertTrue(checkpoint.hasSuffix("step-000000030"), checkpoint)
        let reloaded = makeModel()
        try Checkpoint.loadModule(reloaded, from: checkpoint)
        assertIdentical(reloaded.stateDict(), trained, "the checkpoint")

        // Stopped by an error at step 15 (the checkpoint of step 15 is the last), then resumed.
        XCTAssertThrowsError(try train(name: "resumed", stopAt: Self.stopStep)) { error in
            XCTAssertTrue(error is StopRequested, "\(error)")
        }
        XCTAssertTrue(try Checkpoint.resolve(root + "/resumed").hasSuffix("step-000000015"))
        let resumed = try train(name: "resumed", resume: true)
        assertIdentical(resumed.model.stateDict(), trained, "resumed vs uninterrupted run")
        XCTAssertEqual(resumed.losses, straight.losses, "the loss curve after resume differs")
    }
}
