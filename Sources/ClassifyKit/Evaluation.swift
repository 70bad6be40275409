import NFMData
import NFMModels
import NFMTensor

/// What evaluating a model on the test split(s) gives.
public struct Evaluation: Sendable {
    /// Accuracy by question kind (Sort-of-CLEVR) or class (Fashion-MNIST), per split.
    public var table: AccuracyTable
    /// Sort-of-CLEVR: accuracy by question kind and colour, per split (`AccuracyTable.sortOfCLEVRByColor`);
    /// nil for Fashion-MNIST. Written as a file only, not as metrics.
    public var tableByColor: AccuracyTable? = nil
    /// Mean attention weights of the NFM model's reading layers over the in-distribution test set; nil for the baseline.
    public var attention: AttentionMap?
    /// Mean negative log-likelihood on the in-distribution test set.
    public var loss: Double

    /// Sort-of-CLEVR with held-out colours: the in-distribution questions about the held-out colours
    /// (the ones the out-of-distribution set asks about), and the gap from them to the OOD set.
    public var heldOutColors: [SortOfCLEVR.Color] = []

    /// `eval/loss` and the table's accuracies (`eval/accuracy`, `eval/relational_accuracy`, `ood/…`);
    /// with held-out colours also `eval/heldout_colors_accuracy` and `ood/gap`, that accuracy minus
    /// `ood/accuracy`. The OOD set asks only about the held-out colours, which are easier than the others
    /// (a colour seen with one shape; results/README.md), so the gap, not `eval/accuracy − ood/accuracy`,
    /// measures what changing the colour–shape combination costs.
    public var metrics: [String: Double] {
        var metrics = table.metrics()
        metrics["eval/loss"] = loss
        if let byColor = tableByColor, !heldOutColors.isEmpty {
            let members = heldOutColors.flatMap { color in
                SortOfCLEVR.QuestionKind.allCases.map { AccuracyTable.colorCategory(kind: $0, color: color) }
            }
            if let inDistribution = byColor.cell(split: 0, members: members).accuracy {
                metrics["eval/heldout_colors_accuracy"] = inDistribution
                if let outOfDistribution = metrics["ood/accuracy"] { metrics["ood/gap"] = inDistribution - outOfDistribution }
            }
        }
        return metrics
    }
}

/// Evaluation of a trained classifier. The model is put in eval mode (batch-norm running statistics,
/// no dropout) and back in training mode afterwards; nothing is recorded for autodiff.
public enum Evaluator {
    /// Images per forward run: Sort-of-CLEVR runs the trunk once per image and the head on its 20
    /// questions, so a batch of 32 images is 640 questions.
    public static let sortOfCLEVRImagesPerBatch = 32
    /// Fashion-MNIST images per forward run.
    public static let fashionMNISTImagesPerBatch = 500

    /// Evaluates `model` on the test split(s) of `data`.
    public static func evaluate(_ model: TrunkClassifier, data: ClassifyData) -> Evaluation {
        let wasTraining = model.isTraining
        model.eval()
        defer { if wasTraining { model.train() } }
        return withoutGradient {
            switch data {
            case .sortOfCLEVR(_, let test, let outOfDistribution):
                guard let model = model as? SortOfClevrModel else { preconditionFailure("Evaluator: Sort-of-CLEVR needs a SortOfClevrModel") }
                return evaluate(model, test: test, outOfDistribution: outOfDistribution)
            case .fashionMNIST(_, let test):
                guard let model = model as? ImageClassifier else { preconditionFailure("Evaluator: Fashion-MNIST needs an image classifier") }
                return evaluate(model, test: test)
            }
        }
    }

    static func evaluate(
        _ model: SortOfClevrModel, test: SortOfCLEVR.Dataset, outOfDistribution: SortOfCLEVR.Dataset?
    ) -> Evaluation {
        let splits = [AccuracyTable.inDistribution] + (outOfDistribution == nil ? [] : [AccuracyTable.outOfDistribution])
        var table = AccuracyTable.sortOfCLEVR(splits: splits)
        var tableByColor = AccuracyTable.sortOfCLEVRByColor(splits: splits)
        var attention = AttentionAccumulator(layers: model.slotsPerPass, passes: model.passCount)
        var lossSum = 0.0
        var generator = SeededGenerator(seed: 0)  // dropout is off in eval mode: never drawn from
        for (split, dataset) in ([test] + (outOfDistribution.map { [$0] } ?? [])).enumerated() {
            var start = 0
            while start < dataset.imageCount {
                let imageIndices = Array(start..<min(start + sortOfCLEVRImagesPerBatch, dataset.imageCount))
                start += imageIndices.count
                let batch = dataset.batch(imageIndices: imageIndices)
                let features = model.imageFeatures(batch.images)
                if split == 0, let nfm = model.nfmLayers { attention.add(nfm.lastAttention) }
                let logProbabilities = model.answer(
                    imageFeatures: features.indexSelect(alongAxis: 0, indices: batch.imageRows), questions: batch.questions,
                    generator: &generator)
                let (kinds, answers) = (batch.kinds.map(\.rawValue), batch.answers)
                let predicted = predictions(logProbabilities)
                table.record(split: split, categories: kinds, predictions: predicted, labels: answers)
                tableByColor.record(
                    split: split, categories: zip(batch.kinds, batch.colors).map { AccuracyTable.colorCategory(kind: $0, color: $1) },
                    predictions: predicted, labels: answers)
                if split == 0 { lossSum += Double(nllLoss(logProbabilities, targets: answers, reduction: .sum).item) }
            }
        }
        return Evaluation(
            table: table, tableByColor: tableByColor, attention: attention.map(),
            loss: lossSum / Double(max(test.questionCount, 1)),
            heldOutColors: outOfDistribution == nil ? [] : test.heldOutColors)
    }

    static func evaluate(_ model: ImageClassifier, test: FashionMNIST) -> Evaluation {
        var table = AccuracyTable.fashionMNIST()
        var attention = AttentionAccumulator(layers: model.slotsPerPass, passes: model.passCount)
        var lossSum = 0.0
        var generator = SeededGenerator(seed: 0)  // dropout is off in eval mode: never drawn from
        var start = 0
        while start < test.count {
            let indices = Array(start..<min(start + fashionMNISTImagesPerBatch, test.count))
            start += indices.count
            let batch = test.batch(indices: indices)
            let logProbabilities = model(batch.images, generator: &generator)
            if let nfm = model.nfmLayers { attention.add(nfm.lastAttention) }
            table.record(split: 0, categories: batch.labels, predictions: predictions(logProbabilities), labels: batch.labels)
            lossSum += Double(nllLoss(logProbabilities, targets: batch.labels, reduction: .sum).item)
        }
        return Evaluation(table: table, attention: attention.map(), loss: lossSum / Double(max(test.count, 1)))
    }

    /// The arg-max class of each row of `scores` [N, C] (the first on ties).
    public static func predictions(_ scores: Tensor) -> [Int] {
        precondition(scores.rank == 2, "predictions: scores must be [N, C], got \(scores.shape)")
        let (rows, classes) = (scores.shape[0], scores.shape[1])
        return scores.withHostCopy { values in
            (0..<rows).map { row in
                var best = 0
                for column in 1..<classes where values[row * classes + column] > values[row * classes + best] { best = column }
                return best
            }
        }
    }
}

/// The accuracy of answering from the question alone: for each question (kind and colour), always the
/// answer most common in the training set (ties to the lower answer index). It is what a model reaches
/// by learning the answer priors without looking at the image — with held-out colours that includes
/// the shape questions about them, whose one training shape it memorises — so a model has learnt from
/// the images only where it beats this.
public enum QuestionPrior {
    /// The most common training answer of each question, indexed by kind then colour.
    public static func majorityAnswers(_ train: SortOfCLEVR.Dataset) -> [[Int]] {
        let kinds = SortOfCLEVR.QuestionKind.allCases.count, colors = SortOfCLEVR.Color.allCases.count
        var counts = [[[Int]]](
            repeating: [[Int]](repeating: [Int](repeating: 0, count: SortOfCLEVR.answerCount), count: colors), count: kinds)
        for scene in train.scenes {
            for question in scene.questions { counts[question.kind.rawValue][question.color.rawValue][question.answer.rawValue] += 1 }
        }
        return counts.map { byColor in byColor.map { row in row.indices.max { row[$0] < row[$1] || (row[$0] == row[$1] && $0 > $1) }! } }
    }

    /// The table of the question-only predictor on the test split(s).
    public static func table(train: SortOfCLEVR.Dataset, test: SortOfCLEVR.Dataset, outOfDistribution: SortOfCLEVR.Dataset?) -> AccuracyTable {
        let answers = majorityAnswers(train)
        let datasets = [test] + (outOfDistribution.map { [$0] } ?? [])
        var table = AccuracyTable.sortOfCLEVR(
            splits: [AccuracyTable.inDistribution] + (outOfDistribution == nil ? [] : [AccuracyTable.outOfDistribution]))
        for (split, dataset) in datasets.enumerated() {
            for scene in dataset.scenes {
                for question in scene.questions {
                    let guess = answers[question.kind.rawValue][question.color.rawValue]
                    table.record(split: split, category: question.kind.rawValue, correct: guess == question.answer.rawValue)
                }
            }
        }
        return table
    }
}
