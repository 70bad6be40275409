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
    ///
    /// With `dataParallel` this is rank 0 of a data-parallel run: it alone writes the run's files,
    /// tells the other ranks (``trainReplica(_:configuration:data:dataParallel:)``) which checkpoint
    /// it resumed from, broadcasts its weights, and evaluates while they wait.
    public static func train(
        _ kind: ClassifyModelKind, configuration: ClassifyConfiguration, data: ClassifyData, run: RunDirectory,
        resume: Bool, dataParallel: DataParallel? = nil, log: (String) -> Void
    ) throws -> ModelResult {
        let start = ProgressBar.monotonicSeconds()
        let seeds = RunSeeds(seed: configuration.seed)
        let (model, optimizer) = makeModel(kind, configuration: configuration, seeds: seeds)
        // The trainer checks the run's checkpoints and metrics before it writes anything; only then
        // is config.json (re)written, so that a resume that fails leaves the run as it was.
        let trainer = try Trainer(
            run: run, configuration: trainingConfiguration(kind, configuration),
            seed: seeds.training, modules: [("model", model)], optimizers: [("optimizer", optimizer, model)],
            resumeFrom: resume ? run.path : nil)
        if let dataParallel {
            _ = try dataParallel.agreeOnCheckpoint(trainer.lastCheckpoint)
            try dataParallel.broadcastState(of: model)
        }
        try run.writeConfig(configuration)
        let unit = configuration.dataset == .sortOfCLEVR && configuration.batching == .images ? " images (20 questions each)" : ""
        log("\(kind.rawValue): \(groupedThousands(model.parameterCount)) parameters (\(groupedThousands(model.trainedParameterCount)) trained), \(configuration.steps) steps of batch \(configuration.batchSize)\(unit)")
        if let dataParallel, dataParallel.size > 1 {
            log("\(kind.rawValue): data-parallel over \(dataParallel.size) ranks, each taking its share of every batch (batch norm with per-rank statistics)")
        }

        let step = try makeStep(model: model, optimizer: optimizer, data: data, configuration: configuration, seeds: seeds, dataParallel: dataParallel)
        var stepSeconds: [Double] = []
        var latest: (step: Int, evaluation: Evaluation)?
        let outcome = try trainer.run(
            step: { number, generator in
                let before = ProgressBar.monotonicSeconds()
                let metrics = try step(number, &generator)
                stepSeconds.append(ProgressBar.monotonicSeconds() - before)
                return metrics
            },
            evaluate: { number in
                let evaluation = Evaluator.evaluate(model, data: data)
                latest = (number, evaluation)
                // The other ranks wait here (asleep) while rank 0 evaluates.
                try dataParallel?.synchronize()
                return evaluation.metrics
            })
        if let dataParallel, dataParallel.size > 1, let averaging = median(dataParallel.averagingSeconds),
            let allReduce = median(dataParallel.allReduceSeconds), let fastest = dataParallel.allReduceSeconds.min()
        {
            log(String(
                format: "\(kind.rawValue): gradient averaging %.1f ms per step, of which the all-reduce %.1f ms (medians on rank 0; fastest all-reduce %.1f ms)",
                averaging * 1000, allReduce * 1000, fastest * 1000))
        }
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

    /// A rank other than 0 of a data-parallel run: trains model `kind` step for step with rank 0
    /// (which runs ``train(_:configuration:data:run:resume:dataParallel:log:)``) from the checkpoint
    /// rank 0 resumed from, and writes nothing.
    public static func trainReplica(
        _ kind: ClassifyModelKind, configuration: ClassifyConfiguration, data: ClassifyData, dataParallel: DataParallel
    ) throws -> TrainingOutcome {
        let seeds = RunSeeds(seed: configuration.seed)
        let (model, optimizer) = makeModel(kind, configuration: configuration, seeds: seeds)
        var state = (step: 0, generator: SeededGenerator(seed: seeds.training))
        if let checkpoint = try dataParallel.agreeOnCheckpoint(nil) {
            state = try dataParallel.restore(from: checkpoint, modules: [("model", model)], optimizers: [("optimizer", optimizer, model)])
        }
        try dataParallel.broadcastState(of: model)
        let step = try makeStep(model: model, optimizer: optimizer, data: data, configuration: configuration, seeds: seeds, dataParallel: dataParallel)
        return try dataParallel.followPrimary(
            configuration: trainingConfiguration(kind, configuration), from: state.step, generator: state.generator, evaluates: true, step: step)
    }

    /// A fresh model of `kind` (weights drawn from the run's seed) and its Adam.
    static func makeModel(_ kind: ClassifyModelKind, configuration: ClassifyConfiguration, seeds: RunSeeds) -> (TrunkClassifier, Adam) {
        var initialisation = seeds.initialisation
        return (makeClassifier(kind, configuration: configuration, using: &initialisation), Adam(learningRate: configuration.learningRate))
    }

    /// The trainer's schedule for model `kind`.
    static func trainingConfiguration(_ kind: ClassifyModelKind, _ configuration: ClassifyConfiguration) -> TrainingConfiguration {
        TrainingConfiguration(
            steps: configuration.steps, evaluationInterval: configuration.evaluationInterval,
            checkpointInterval: configuration.checkpointInterval, label: kind.rawValue)
    }

    /// Writes the accuracy table (CSV) and, when present, the attention map (PNG and CSV) into `run`.
    public static func writeOutputs(_ evaluation: Evaluation, dataset: ClassifyDataset, run: RunDirectory) throws {
        let table = run.file(tableFile(dataset))
        try AtomicFile.write(evaluation.table.csv(), to: table)
        run.record(output: table, description: "accuracy table")
        if let byColor = evaluation.tableByColor {
            let file = run.file("accuracy_by_question_and_color.csv")
            try AtomicFile.write(byColor.csv(), to: file)
            run.record(output: file, description: "accuracy by question kind and colour")
        }
        if let attention = evaluation.attention {
            let picture = run.file("attention.png")
            try attention.render().write(to: picture)
            run.record(output: picture, description: "attention map")
            let values = run.file("attention.csv")
            try AtomicFile.write(attention.csv(), to: values)
            run.record(output: values, description: "attention map (values)")
        }
    }

    /// One batch's forward and backward pass: the loss (a mean over the batch's rows), the gradient
    /// of each parameter, and the fraction of rows answered right.
    typealias BatchGradients = (loss: Tensor, gradients: [String: Tensor], accuracy: Double)

    /// The training step of `model` on `data`: the loader's batch for the step number, the NLL of
    /// the log-probabilities, one Adam update; it returns `train/loss` and `train/accuracy` (of the batch).
    ///
    /// With `dataParallel`, each rank computes the gradients of its contiguous share of the same
    /// global batch and the ranks average them (weighted by share) before the update, so that the
    /// step is that of the whole batch; `train/loss` and `train/accuracy` are those of the whole batch.
    static func makeStep(
        model: TrunkClassifier, optimizer: Adam, data: ClassifyData, configuration: ClassifyConfiguration, seeds: RunSeeds,
        dataParallel: DataParallel? = nil
    ) throws -> (Int, inout SeededGenerator) throws -> [String: Double] {
        let (batchRows, batchGradients) = try makeBatchGradients(model: model, data: data, configuration: configuration, seeds: seeds)
        // The rate is a function of the step number alone (0 for the first step, as torch's scheduler
        // before its first `step()`), so a resumed run, and every rank of a data-parallel one, follows
        // the same schedule.
        let schedule = configuration.learningRateSchedule.schedule(
            learningRate: configuration.learningRate, steps: configuration.steps)
        let update: (Int, [String: Tensor]) -> [String: Double] = { step, gradients in
            var metrics: [String: Double] = [:]
            if let schedule {
                optimizer.learningRate = schedule.learningRate(at: step)
                metrics["train/learning_rate"] = optimizer.learningRate
            }
            optimizer.update(model: model, gradients: gradients)
            return metrics
        }
        guard let dataParallel else {
            return { step, generator in
                let result = batchGradients(batchRows(step), &generator)
                return update(step, result.gradients).merging(
                    ["train/loss": Double(result.loss.item), "train/accuracy": result.accuracy]) { $1 }
            }
        }
        return { step, generator in
            let rows = batchRows(step)
            let share = dataParallel.share(of: rows)
            let result = dataParallel.withRankGenerator(&generator) { batchGradients(share, &$0) }
            // Every Sort-of-CLEVR image has 20 questions, so a share of images is the same share of the rows the loss averages.
            let (gradients, metrics) = try dataParallel.average(
                gradients: result.gradients, metrics: ["train/loss": Double(result.loss.item), "train/accuracy": result.accuracy],
                weight: Double(share.count) / Double(rows.count))
            return update(step, gradients).merging(metrics) { $1 }
        }
    }

    /// The example numbers of each step's batch (from the loader of `configuration.batching`), and
    /// the forward and backward pass of `model` on the examples with given numbers.
    static func makeBatchGradients(
        model: TrunkClassifier, data: ClassifyData, configuration: ClassifyConfiguration, seeds: RunSeeds
    ) throws -> (rows: (Int) -> [Int], gradients: ([Int], inout SeededGenerator) -> BatchGradients) {
        switch data {
        case .sortOfCLEVR(let train, _, _):
            guard let train, let model = model as? SortOfClevrModel else { preconditionFailure("makeStep: Sort-of-CLEVR needs its training set and model") }
            switch configuration.batching {
            case .questions:
                let loader = DataLoader(dataset: train, batchSize: configuration.batchSize, seed: seeds.batchOrder)
                return (loader.indices(step:), { rows, generator in
                    let batch = train.batch(indices: rows)
                    var output = Tensor(0)
                    let (loss, gradients) = valueAndGrad(model: model) { model in
                        output = model(images: batch.images, questions: batch.questions, generator: &generator)
                        return nllLoss(output, targets: batch.answers)
                    }
                    return (loss, gradients, accuracy(output.detached(), labels: batch.answers))
                })
            case .images:
                let images = SortOfCLEVR.ImageQuestionSet(train)
                let loader = DataLoader(dataset: images, batchSize: configuration.batchSize, seed: seeds.batchOrder)
                return (loader.indices(step:), { rows, generator in
                    let batch = images.batch(indices: rows)
                    var output = Tensor(0)
                    let (loss, gradients) = valueAndGrad(model: model) { model in
                        let features = model.imageFeatures(batch.images).indexSelect(alongAxis: 0, indices: batch.imageRows)
                        output = model.answer(imageFeatures: features, questions: batch.questions, generator: &generator)
                        return nllLoss(output, targets: batch.answers)
                    }
                    return (loss, gradients, accuracy(output.detached(), labels: batch.answers))
                })
            }
        case .fashionMNIST(let train, _):
            guard let train, let model = model as? ImageClassifier else { preconditionFailure("makeStep: Fashion-MNIST needs its training set and an image classifier") }
            let loader = DataLoader(dataset: train, batchSize: configuration.batchSize, seed: seeds.batchOrder)
            return (loader.indices(step:), { rows, generator in
                let batch = train.batch(indices: rows)
                var output = Tensor(0)
                let (loss, gradients) = valueAndGrad(model: model) { model in
                    output = model(batch.images, generator: &generator)
                    return nllLoss(output, targets: batch.labels)
                }
                return (loss, gradients, accuracy(output.detached(), labels: batch.labels))
            })
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
