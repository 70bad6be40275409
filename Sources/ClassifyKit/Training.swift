import Foundation
import NFMData
import NFMIO
import NFMLog
import NFMModels
import NFMNN
import NFMOptimizers
import NFMTensor
import NFMTraining

/// How one model's training went.
public struct ModelResult {
    /// Which model.
    public var kind: ClassifyModelKind
    /// Completed, or interrupted by Ctrl-C (with a checkpoint written).
    public var outcome: TrainingOutcome
    /// The final evaluation (nil if interrupted).
    public var evaluation: Evaluation?
    /// Trainable values, the unused pass-1 query and out layers of the NFM model included.
    public var parameterCount: Int
    /// Values that get gradients (the pass-1 query layers, out blocks and gates of NFM left out).
    public var trainedParameterCount: Int
    /// Median wall time of one training step in this session, in milliseconds (nil if no step ran).
    public var stepMilliseconds: Double?
    /// Wall time of this model's training and evaluation in this session, in seconds.
    public var seconds: Double
    /// The model's run directory.
    public var run: RunDirectory
}

/// Trains and evaluates the classifiers of nfm-classify through the shared ``Trainer``: the program
/// writes the step (a batch from the loader, NLL loss, Adam), the trainer does checkpoints, resume,
/// the NaN stop, Ctrl-C, metrics and plots.
public enum ClassifyTraining {
    /// The name of the per-question-type (Sort-of-CLEVR) or per-class (Fashion-MNIST) accuracy CSV.
    public static func tableFile(_ dataset: ClassifyDataset) -> String {
        dataset == .sortOfCLEVR ? "accuracy_by_question_type.csv" : "accuracy_by_class.csv"
    }

    /// Trains model `kind` in `run` (with `resume`, from its newest intact checkpoint, or from step
    /// 0 when it has none yet), writes `configuration` as its config.json, evaluates it, and writes
    /// the accuracy table and, for NFM, the attention map into `run`.
    ///
    /// - Throws: `TrainingError.nonFiniteMetric` naming the step when the loss is NaN or infinite, and
    ///   checkpoint or file errors.
    public static func train(
        _ kind: ClassifyModelKind, configuration: ClassifyConfiguration, data: ClassifyData, run: RunDirectory,
        resume: Bool, log: (String) -> Void
    ) throws -> ModelResult {
        let start = ProgressBar.monotonicSeconds()
        let seeds = RunSeeds(seed: configuration.seed)
        var initialisation = seeds.initialisation
        let model = makeClassifier(kind, configuration: configuration, using: &initialisation)
        let optimizer = Adam(learningRate: configuration.learningRate)
        // The trainer checks the run's checkpoints and metrics before it writes anything; only then
        // is config.json (re)written, so that a resume that fails leaves the run as it was.
        let trainer = try Trainer(
            run: run,
            configuration: TrainingConfiguration(
                steps: configuration.steps, evaluationInterval: configuration.evaluationInterval,
                checkpointInterval: configuration.checkpointInterval, label: kind.rawValue),
            seed: seeds.training, modules: [("model", model)], optimizers: [("optimizer", optimizer, model)],
            resumeFrom: resume ? run.path : nil)
        try run.writeConfig(configuration)
        let unit = configuration.dataset == .sortOfCLEVR && configuration.batching == .images ? " images (20 questions each)" : ""
        log("\(kind.rawValue): \(groupedThousands(model.parameterCount)) parameters (\(groupedThousands(model.trainedParameterCount)) trained), \(configuration.steps) steps of batch \(configuration.batchSize)\(unit)")

        let step = try makeStep(model: model, optimizer: optimizer, data: data, configuration: configuration, seeds: seeds)
        // The rate is a function of the step number alone (0 for the first step, as torch's scheduler
        // before its first `step()`), so a resumed run follows the same schedule.
        let schedule = configuration.learningRateSchedule.schedule(
            learningRate: configuration.learningRate, steps: configuration.steps)
        var stepSeconds: [Double] = []
        var latest: (step: Int, evaluation: Evaluation)?
        let outcome = try trainer.run(
            step: { number, generator in
                if let schedule { optimizer.learningRate = schedule.learningRate(at: number) }
                let before = ProgressBar.monotonicSeconds()
                var metrics = try step(number, &generator)
                stepSeconds.append(ProgressBar.monotonicSeconds() - before)
                if schedule != nil { metrics["train/learning_rate"] = optimizer.learningRate }
                return metrics
            },
            evaluate: { number in
                let evaluation = Evaluator.evaluate(model, data: data)
                latest = (number, evaluation)
                return evaluation.metrics
            })
        var result = ModelResult(
            kind: kind, outcome: outcome, evaluation: nil, parameterCount: model.parameterCount,
            trainedParameterCount: model.trainedParameterCount,
            stepMilliseconds: median(stepSeconds).map { $0 * 1000 }, seconds: 0, run: run)
        guard case .completed = outcome else {
            result.seconds = ProgressBar.monotonicSeconds() - start
            return result
        }
        // A resumed run that had already finished evaluates its final model here.
        let evaluation = latest?.step == configuration.steps ? latest!.evaluation : Evaluator.evaluate(model, data: data)
        try writeOutputs(evaluation, dataset: configuration.dataset, run: run)
        var final = evaluation.metrics.merging(evaluation.table.categoryMetrics()) { first, _ in first }
        final["parameters/total"] = Double(model.parameterCount)
        final["parameters/trained"] = Double(model.trainedParameterCount)
        try FinalMetrics.write(final, to: run)
        result.evaluation = evaluation
        result.seconds = ProgressBar.monotonicSeconds() - start
        return result
    }

    /// Writes the accuracy table (CSV) and, when present, the attention map (PNG and CSV) into `run`.
    public static func writeOutputs(_ evaluation: Evaluation, dataset: ClassifyDataset, run: RunDirectory) throws {
        let table = run.file(tableFile(dataset))
        try AtomicFile.write(evaluation.table.csv(), to: table)
        run.record(output: table, description: "accuracy table")
        if let attention = evaluation.attention {
            let picture = run.file("attention.png")
            try attention.render().write(to: picture)
            run.record(output: picture, description: "attention map")
            let values = run.file("attention.csv")
            try AtomicFile.write(attention.csv(), to: values)
            run.record(output: values, description: "attention map (values)")
        }
    }

    /// The training step of `model` on `data`: the loader's batch for the step number, the NLL of
    /// the log-probabilities, one Adam update; it returns `train/loss` and `train/accuracy` (of the batch).
    static func makeStep(
        model: TrunkClassifier, optimizer: Adam, data: ClassifyData, configuration: ClassifyConfiguration, seeds: RunSeeds
    ) throws -> (Int, inout SeededGenerator) throws -> [String: Double] {
        switch data {
        case .sortOfCLEVR(let train, _, _):
            guard let train, let model = model as? SortOfClevrModel else { preconditionFailure("makeStep: Sort-of-CLEVR needs its training set and model") }
            switch configuration.batching {
            case .questions:
                let loader = DataLoader(dataset: train, batchSize: configuration.batchSize, seed: seeds.batchOrder)
                return { step, generator in
                    let batch = loader.batch(step: step)
                    var output = Tensor(0)
                    let (loss, gradients) = valueAndGrad(model: model) { model in
                        output = model(images: batch.images, questions: batch.questions, generator: &generator)
                        return nllLoss(output, targets: batch.answers)
                    }
                    optimizer.update(model: model, gradients: gradients)
                    return ["train/loss": Double(loss.item), "train/accuracy": accuracy(output.detached(), labels: batch.answers)]
                }
            case .images:
                let loader = DataLoader(dataset: SortOfCLEVR.ImageQuestionSet(train), batchSize: configuration.batchSize, seed: seeds.batchOrder)
                return { step, generator in
                    let batch = loader.batch(step: step)
                    var output = Tensor(0)
                    let (loss, gradients) = valueAndGrad(model: model) { model in
                        let features = model.imageFeatures(batch.images).indexSelect(alongAxis: 0, indices: batch.imageRows)
                        output = model.answer(imageFeatures: features, questions: batch.questions, generator: &generator)
                        return nllLoss(output, targets: batch.answers)
                    }
                    optimizer.update(model: model, gradients: gradients)
                    return ["train/loss": Double(loss.item), "train/accuracy": accuracy(output.detached(), labels: batch.answers)]
                }
            }
        case .fashionMNIST(let train, _):
            guard let train, let model = model as? ImageClassifier else { preconditionFailure("makeStep: Fashion-MNIST needs its training set and an image classifier") }
            let loader = DataLoader(dataset: train, batchSize: configuration.batchSize, seed: seeds.batchOrder)
            return { step, generator in
                let batch = loader.batch(step: step)
                var output = Tensor(0)
                let (loss, gradients) = valueAndGrad(model: model) { model in
                    output = model(batch.images, generator: &generator)
                    return nllLoss(output, targets: batch.labels)
                }
                optimizer.update(model: model, gradients: gradients)
                return ["train/loss": Double(loss.item), "train/accuracy": accuracy(output.detached(), labels: batch.labels)]
            }
        }
    }

    /// The fraction of rows of `scores` whose arg-max is the label.
    static func accuracy(_ scores: Tensor, labels: [Int]) -> Double {
        let predictions = Evaluator.predictions(scores)
        return Double(zip(predictions, labels).filter { $0 == $1 }.count) / Double(max(labels.count, 1))
    }

    static func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
}
