import ClassifyKit
import Foundation
import NFMData
import NFMLayers
import NFMLog
import NFMModels
import NFMNN
import NFMTensor
import NFMTraining
import XCTest

/// Tiny runs of the whole program path (data, both models, trainer, evaluation, outputs), small
/// enough for a debug build: widths of 4 channels, a handful of images, batches of 4.
final class EndToEndTests: XCTestCase {
    var root = ""

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "nfm-classify-e2e-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: root)
    }

    func tinySortOfCLEVR(steps: Int) -> ClassifyConfiguration {
        var configuration = ClassifyConfiguration.defaults(preset: .quick, dataset: .sortOfCLEVR)
        configuration.widths = [4, 4, 4, 4]
        configuration.heads = 2
        configuration.keySize = 4
        configuration.valueSize = 4
        configuration.trainingImages = 6
        configuration.testImages = 2
        configuration.outOfDistributionImages = 2
        configuration.batchSize = 4
        configuration.steps = steps
        configuration.evaluationInterval = 2
        configuration.checkpointInterval = 2
        configuration.seed = 7
        return configuration
    }

    func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    func testBothModelsTrainWriteEverythingAndAResumedRunEqualsAStraightOne() throws {
        let silent: (String) -> Void = { _ in }
        // Straight: 4 steps.
        let straight = try ClassifySession.train(
            configuration: tinySortOfCLEVR(steps: 4), runPath: root + "/straight", resume: false, log: silent)
        // Interrupted after 2 steps, then resumed to 4 (a resume may extend --steps).
        _ = try ClassifySession.train(configuration: tinySortOfCLEVR(steps: 2), runPath: root + "/resumed", resume: false, log: silent)
        let saved = try ClassifySession.readConfiguration(root + "/resumed/config.json")
        XCTAssertEqual(saved, tinySortOfCLEVR(steps: 2), "config.json holds every setting")
        var extended = saved
        extended.steps = 4
        XCTAssertEqual(ClassifySession.resumeConflicts(saved: saved, requested: extended), [])
        let resumed = try ClassifySession.train(configuration: extended, runPath: root + "/resumed", resume: true, log: silent)

        XCTAssertEqual(resumed.map(\.kind), [.baseline, .nfm])
        for (straightResult, resumedResult) in zip(straight, resumed) {
            XCTAssertEqual(resumedResult.outcome, .completed(steps: 4))
            let straightMetrics = straightResult.evaluation!.metrics, resumedMetrics = resumedResult.evaluation!.metrics
            XCTAssertEqual(Set(straightMetrics.keys), [
                "eval/accuracy", "eval/relational_accuracy", "eval/nonrelational_accuracy", "eval/loss",
                "ood/accuracy", "ood/relational_accuracy", "ood/nonrelational_accuracy",
                "eval/heldout_colors_accuracy", "ood/gap",
            ])
            // The held-out colours' in-distribution questions, counted from the colour table's rows.
            let byColor = straightResult.evaluation!.tableByColor!
            let heldOut = try SortOfCLEVR.heldOutTrainingShapes(count: 2).keys.map { color in
                try XCTUnwrap(byColor.groups.firstIndex { $0.name == color.name })
            }
            let counts = heldOut.map { byColor.cell(split: 0, members: byColor.groups[$0].members) }
            XCTAssertEqual(
                straightMetrics["eval/heldout_colors_accuracy"]!,
                Double(counts.map(\.correct).reduce(0, +)) / Double(counts.map(\.total).reduce(0, +)), accuracy: 1e-12)
            XCTAssertEqual(
                straightMetrics["ood/gap"]!, straightMetrics["eval/heldout_colors_accuracy"]! - straightMetrics["ood/accuracy"]!,
                accuracy: 1e-12)
            for (name, value) in straightMetrics {
                XCTAssertEqual(Float(resumedMetrics[name]!), Float(value), "\(resumedResult.kind) \(name) after resume")
            }
            let run = resumedResult.run.path
            let losses = try MetricsWriterLosses.losses(in: run)
            XCTAssertEqual(losses.map(\.step), [1, 2, 3, 4], "each step logged once across the resume")
            XCTAssertEqual(
                losses.map { Float($0.value) }, try MetricsWriterLosses.losses(in: straightResult.run.path).map { Float($0.value) },
                "\(resumedResult.kind): the loss curve after resume")
            for file in [
                "config.json", "metrics.csv", "metrics.jsonl", "loss.png", "accuracy.png", "accuracy_by_question_type.csv",
                "accuracy_by_question_and_color.csv",
            ] {
                XCTAssertTrue(exists(run + "/" + file), "\(run)/\(file)")
            }
            XCTAssertTrue(try Checkpoint.resolve(run).hasSuffix("step-000000004"))
            XCTAssertEqual(exists(run + "/attention.png"), resumedResult.kind == .nfm, "only the NFM model has an attention map")
        }
        XCTAssertTrue(exists(root + "/resumed/summary.csv"))
        XCTAssertEqual(try ClassifySession.readConfiguration(root + "/resumed/nfm/config.json").model, .nfm)

        // The NFM checkpoint has the reference's key names, and eval reloads it to the same numbers.
        let keys = try StateDict.load(contentsOf: try Checkpoint.resolve(root + "/resumed/nfm") + "/model.safetensors").keys
        XCTAssertTrue(keys.contains("conv.ad.query_layers.4.weight") && keys.contains("conv.conv4b.weight") && keys.contains("fcout.fc3.bias"))
        let evaluations = try ClassifyCheckpointEvaluation.evaluate(
            checkpoint: root + "/resumed", configuration: try ClassifySession.readConfiguration(root + "/resumed/config.json"),
            runPath: root + "/eval", log: silent)
        XCTAssertEqual(evaluations.map(\.kind), [.baseline, .nfm])
        for ((_, evaluation), result) in zip(evaluations, resumed) {
            XCTAssertEqual(evaluation.metrics, result.evaluation!.metrics)
        }
        XCTAssertTrue(exists(root + "/eval/nfm/attention.png"))
        XCTAssertEqual(ClassifyCheckpointEvaluation.findConfiguration(near: try Checkpoint.resolve(root + "/resumed/nfm") + "/model.safetensors"),
                       URL(fileURLWithPath: root + "/resumed/nfm/config.json").path)
    }

    func testAResumeRefusesChangedModelSettings() throws {
        let saved = tinySortOfCLEVR(steps: 2)
        var requested = saved
        requested.topK = 5
        requested.widths = [8, 8, 8, 8]
        requested.steps = 10
        XCTAssertEqual(ClassifySession.resumeConflicts(saved: saved, requested: requested), ["top_k", "widths"])
        XCTAssertTrue("\(ClassifyError.resumeMismatch(path: "r", keys: ["top_k"]))".contains("--top-k"))
    }

    func testFashionMNISTTrainsBothModelsOnIDXFiles() throws {
        let data = root + "/fashion"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        try writeFashionMNIST(to: data, training: 40, test: 20)
        var configuration = ClassifyConfiguration.defaults(preset: .quick, dataset: .fashionMNIST)
        configuration.dataDirectory = data
        configuration.widths = [4, 4]
        configuration.heads = 1
        configuration.keySize = 4
        configuration.valueSize = 4
        configuration.batchSize = 8
        configuration.steps = 3
        configuration.evaluationInterval = 0
        configuration.checkpointInterval = 0
        let results = try ClassifySession.train(configuration: configuration, runPath: root + "/fashion-run", resume: false, log: { _ in })
        XCTAssertEqual(results.map(\.kind), [.baseline, .nfm])
        for result in results {
            XCTAssertEqual(result.evaluation?.table.cells[0].reduce(0) { $0 + $1.total }, 20)
            XCTAssertTrue(exists(result.run.path + "/accuracy_by_class.csv"))
        }
        let attention = try XCTUnwrap(results[1].evaluation?.attention)
        XCTAssertEqual(attention.rows.map(\.slot), [2, 3], "the two layers of pass 2 read")
        for row in attention.rows {
            XCTAssertEqual(row.weights.compactMap { $0 }.reduce(0, +), 1, accuracy: 1e-4, "the weights of a read sum to 1")
        }
        XCTAssertEqual(try ClassifySession.readConfiguration(root + "/fashion-run/config.json").trainingImages, 40)
    }

    func testFashionMNISTTrainsPreActResNetsWithNFMAfterEveryBlock() throws {
        let data = root + "/fashion"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        try writeFashionMNIST(to: data, training: 16, test: 8)
        var configuration = ClassifyConfiguration.defaults(preset: .paper, dataset: .fashionMNIST)
        XCTAssertEqual(configuration.architecture, .preActResNet18)
        configuration.dataDirectory = data
        configuration.trainingImages = 16
        configuration.testImages = 8
        configuration.widths = [2, 3, 4, 5]
        configuration.heads = 1
        configuration.keySize = 2
        configuration.valueSize = 2
        configuration.batchSize = 8
        configuration.steps = 2
        configuration.evaluationInterval = 0
        configuration.checkpointInterval = 0
        let results = try ClassifySession.train(configuration: configuration, runPath: root + "/resnet-run", resume: false, log: { _ in })
        XCTAssertEqual(results.map(\.outcome), [.completed(steps: 2), .completed(steps: 2)])
        let attention = try XCTUnwrap(results[1].evaluation?.attention)
        XCTAssertEqual(attention.rows.map(\.slot), Array(8..<16), "the eight blocks of pass 2 read")
        // The checkpoint holds PyTorch's PreActResNet names.
        let keys = try StateDict.load(contentsOf: try Checkpoint.resolve(results[1].run.path) + "/model.safetensors").keys
        for key in ["conv1.weight", "layer1.0.bn1.weight", "layer2.0.shortcut.0.weight", "pass2.layer4.1.conv2.weight", "linear.bias", "ad.gammas.15"] {
            XCTAssertTrue(keys.contains(key), key)
        }
    }

    func testSharingTheTrunkAmongAnImagesQuestionsDoesNotChangeTheAnswers() {
        for pooling in HeadPooling.allCases {
            var generator = SeededGenerator(seed: 3)
            let model = SortOfClevrModel(
                widths: [4, 4, 4, 4], nfm: NFMConfiguration(heads: 2, keySize: 4, valueSize: 4), headPooling: pooling, using: &generator)
            // Make the NFM layers matter: non-zero gates.
            model.update(parameters: Dictionary(uniqueKeysWithValues: (4..<8).map { ("conv.ad.gammas.\($0)", Tensor(0.5)) }))
            model.eval()
            let images = Tensor.randomUniform([2, 3, 75, 75], using: &generator)
            let questions = Tensor.randomUniform([5, 11], using: &generator)
            let rows = [0, 0, 1, 0, 1]
            var unused = SeededGenerator(seed: 0)
            let direct = model(images: images.indexSelect(alongAxis: 0, indices: rows), questions: questions, generator: &unused)
            let shared = model.answer(
                imageFeatures: model.imageFeatures(images).indexSelect(alongAxis: 0, indices: rows), questions: questions, generator: &unused)
            XCTAssertEqual(direct.shape, [5, 10])
            for (a, b) in zip(direct.scalars, shared.scalars) { XCTAssertEqual(a, b, accuracy: 1e-5, "\(pooling)") }
        }
    }

    func testTheReferencePoolingAveragesPositionsAwayAndNoPoolingKeepsThem() {
        // The reference's avg-pool 4 turns the trunk's 5×5 map into 1×1, and the resize repeats it.
        var generator = SeededGenerator(seed: 4)
        let model = SortOfClevrModel(widths: [4, 4, 4, 4], nfm: nil, headPooling: .reference, using: &generator)
        model.eval()
        let features = model.imageFeatures(Tensor.randomUniform([1, 3, 75, 75], using: &generator))
        let perChannel = features.reshaped(to: [64, 25])
        for channel in 0..<64 { XCTAssertEqual(Set((0..<25).map { perChannel[channel, $0] }).count, 1) }
        var unpooled = SeededGenerator(seed: 4)
        let positional = SortOfClevrModel(widths: [4, 4, 4, 4], nfm: nil, headPooling: .none, using: &unpooled)
        positional.eval()
        let kept = positional.imageFeatures(Tensor.randomUniform([1, 3, 75, 75], using: &unpooled)).reshaped(to: [64, 25])
        XCTAssertGreaterThan(Set((0..<25).map { kept[0, $0] }).count, 1)
        XCTAssertEqual(positional.stateDict().keys, model.stateDict().keys, "the same parameters either way")
    }

    func testQuestionBatchesAndTheReferencePoolingTrainToo() throws {
        var configuration = tinySortOfCLEVR(steps: 2)
        configuration.batching = .questions
        configuration.headPooling = .reference
        let results = try ClassifySession.train(configuration: configuration, runPath: root + "/questions", resume: false, log: { _ in })
        XCTAssertEqual(results.map(\.outcome), [.completed(steps: 2), .completed(steps: 2)])
    }

    func testACosineScheduleAnnealsTheRateStepByStepAndResumesOnIt() throws {
        var configuration = tinySortOfCLEVR(steps: 4)
        configuration.model = .baseline
        configuration.learningRateSchedule = .cosine
        let straight = try ClassifySession.train(configuration: configuration, runPath: root + "/cosine", resume: false, log: { _ in })
        // CosineAnnealingLR with T_max = 4, read before each of the 4 steps: base · (1 + cos(π t / 4)) / 2.
        let rates = try MetricsWriterLosses.values(of: "train/learning_rate", in: straight[0].run.path)
        let expected = (0..<4).map { configuration.learningRate * (1 + cos(Double.pi * Double($0) / 4)) / 2 }
        XCTAssertEqual(rates.count, 4)
        for (rate, want) in zip(rates, expected) { XCTAssertEqual(rate, want, accuracy: 1e-12) }
        var constant = configuration
        constant.learningRateSchedule = .constant
        let unscheduled = try ClassifySession.train(configuration: constant, runPath: root + "/constant", resume: false, log: { _ in })
        XCTAssertNotEqual(
            try MetricsWriterLosses.losses(in: straight[0].run.path).last?.value,
            try MetricsWriterLosses.losses(in: unscheduled[0].run.path).last?.value, "the schedule changes the training")
        // Lost after step 2 (its last checkpoint gone) and resumed: the same rates and losses again.
        try FileManager.default.copyItem(atPath: root + "/cosine", toPath: root + "/resumed")
        let modelPath = straight[0].run.path.replacingOccurrences(of: root + "/cosine", with: root + "/resumed")
        try FileManager.default.removeItem(atPath: modelPath + "/checkpoints/step-000000004")
        let resumed = try ClassifySession.train(configuration: configuration, runPath: root + "/resumed", resume: true, log: { _ in })
        XCTAssertEqual(try MetricsWriterLosses.values(of: "train/learning_rate", in: resumed[0].run.path), rates)
        XCTAssertEqual(
            try MetricsWriterLosses.losses(in: resumed[0].run.path).map(\.value),
            try MetricsWriterLosses.losses(in: straight[0].run.path).map(\.value))
    }

    func testAConfigWrittenBeforeTheNewerKeysStillDecodes() throws {
        let current = ClassifyConfiguration.defaults(preset: .paper, dataset: .sortOfCLEVR)
        var object = try XCTUnwrap(try JSONSerialization.jsonObject(with: JSONEncoder().encode(current)) as? [String: Any])
        for key in ["batching", "head_pooling", "architecture", "lr_schedule"] { XCTAssertNotNil(object.removeValue(forKey: key), key) }
        let decoded = try JSONDecoder().decode(ClassifyConfiguration.self, from: JSONSerialization.data(withJSONObject: object))
        XCTAssertEqual(decoded, current, "older runs batched questions, pooled as the reference, used the small CNN and a constant rate")
        XCTAssertEqual(try JSONDecoder().decode(ClassifyConfiguration.self, from: JSONEncoder().encode(current)), current)
    }

    func testInvalidSettingsAreReportedByFlagName() {
        var configuration = ClassifyConfiguration.defaults(preset: .quick, dataset: .sortOfCLEVR)
        XCTAssertEqual(configuration.problems(), [])
        configuration.topK = 0
        configuration.widths = [8, 8, 8, 8, 8]
        configuration.heldOutColors = 7
        let problems = configuration.problems()
        XCTAssertEqual(problems.count, 3, "\(problems)")
        XCTAssertTrue(problems[0].hasPrefix("--top-k must be at least 1"))
        XCTAssertTrue(problems.contains { $0.hasPrefix("--widths: Sort-of-CLEVR takes 1 to 4 layers") })
        XCTAssertTrue(problems.contains { $0.hasPrefix("--heldout-colors must be 0...6") })
        var unpooled = ClassifyConfiguration.defaults(preset: .quick, dataset: .sortOfCLEVR)
        unpooled.widths = [8, 8, 8]
        XCTAssertEqual(unpooled.problems(), ["--head-pooling none needs the trunk's 5×5 map, so 4 layers in --widths, got 3"])
        XCTAssertEqual(ClassifyConfiguration.defaults(preset: .paper, dataset: .sortOfCLEVR).problems(), [])
        XCTAssertEqual(ClassifyConfiguration.defaults(preset: .paper, dataset: .sortOfCLEVR).steps, 150 * (9_800 * 20 / 64))
    }

    func testMediumPresetIsTheQuickModelOnThePapersDataWithACosineSchedule() {
        let quick = ClassifyConfiguration.defaults(preset: .quick, dataset: .sortOfCLEVR)
        var medium = ClassifyConfiguration.defaults(preset: .medium, dataset: .sortOfCLEVR)
        XCTAssertEqual(medium.problems(), [])
        XCTAssertEqual(
            [medium.trainingImages, medium.testImages, medium.outOfDistributionImages, medium.steps, medium.evaluationInterval],
            [9_800, 2_000, 2_000, 10_000, 1_000])
        XCTAssertEqual(medium.learningRateSchedule, .cosine)
        // Everything else is the quick preset's: the model, its batches and its learning rate.
        medium.trainingImages = quick.trainingImages
        medium.testImages = quick.testImages
        medium.outOfDistributionImages = quick.outOfDistributionImages
        medium.steps = quick.steps
        medium.evaluationInterval = quick.evaluationInterval
        medium.checkpointInterval = quick.checkpointInterval
        medium.learningRateSchedule = quick.learningRateSchedule
        medium.preset = .quick
        XCTAssertEqual(medium, quick)
        XCTAssertEqual(
            ClassifyConfiguration.defaults(preset: .medium, dataset: .fashionMNIST).problems(),
            ["--preset medium is sized for Sort-of-CLEVR; Fashion-MNIST has quick and paper"])
    }

    func testRunSeedsGiveIndependentReproducibleStreams() {
        let (a, b, c) = (RunSeeds(seed: 1), RunSeeds(seed: 1), RunSeeds(seed: 2))
        XCTAssertEqual(a.batchOrder, b.batchOrder)
        XCTAssertEqual(a.initialisation, b.initialisation)
        XCTAssertNotEqual(a.batchOrder, c.batchOrder)
        XCTAssertNotEqual(a.batchOrder, a.training)
        XCTAssertEqual(a.data, 1, "the data seed is --seed itself, so `generate --seed S` exports a run's data")
    }
}

/// The `train/loss` records of a run's metrics.jsonl.
enum MetricsWriterLosses {
    static func losses(in run: String) throws -> [(step: Int, value: Double)] {
        try MetricsWriter.load(directory: run)["train/loss", default: []].map { ($0.step, $0.value) }
    }

    /// The values of metric `name`, step by step.
    static func values(of name: String, in run: String) throws -> [Double] {
        try MetricsWriter.load(directory: run)[name, default: []].map(\.value)
    }
}
