// The settings of one nfm-classify run: every flag, resolved against a preset, and written to the
// run's config.json so that `eval` and `--resume` can rebuild the same model and data.

import NFMLayers
import NFMModels
import NFMOptimizers

/// The data set a run trains on.
public enum ClassifyDataset: String, Codable, CaseIterable, Sendable {
    /// Generated Sort-of-CLEVR (Santoro et al. 2017), with the out-of-distribution colour–shape split.
    case sortOfCLEVR = "sort-of-clevr"
    /// Fashion-MNIST (Xiao et al. 2017) from the Debian package dataset-fashion-mnist.
    case fashionMNIST = "fashion-mnist"
}

/// Which models a run trains.
public enum ClassifyModelChoice: String, Codable, CaseIterable, Sendable {
    /// The model without NFM (one pass).
    case baseline
    /// The model with NFM layers (two passes by default).
    case nfm
    /// The baseline, then the NFM model, on the same data and batches, compared side by side.
    case both

    /// The models trained, in order.
    public var kinds: [ClassifyModelKind] {
        switch self {
        case .baseline: return [.baseline]
        case .nfm: return [.nfm]
        case .both: return [.baseline, .nfm]
        }
    }
}

/// One model variant.
public enum ClassifyModelKind: String, Codable, CaseIterable, Sendable {
    /// Without NFM.
    case baseline
    /// With NFM.
    case nfm
}

/// What a Sort-of-CLEVR training batch is made of.
public enum ClassifyBatching: String, Codable, CaseIterable, Sendable {
    /// `batch_size` (image, question) pairs drawn at random, as the reference `main.py`: the trunk runs
    /// once per question.
    case questions
    /// `batch_size` images with all 20 of their questions: the trunk, which does not see the question,
    /// runs once per image and feeds all 20 (20× the supervision per convolution; measured, the quick
    /// preset learns the images only this way within its 10 minutes, see docs/classify.md).
    case images
}

/// The Fashion-MNIST network.
public enum ClassifyArchitecture: String, Codable, CaseIterable, Sendable {
    /// The Sort-of-CLEVR trunk on 28×28 images (stride-2 convolutions) and an MLP head.
    case cnn
    /// PreActResNet-18, NFM after every residual block (the paper's image-classification network).
    case preActResNet18 = "preact-resnet18"
}

/// How the learning rate moves over a run's steps.
public enum ClassifyLearningRateSchedule: String, Codable, CaseIterable, Sendable {
    /// The rate of `--learning-rate` throughout (the paper's and the reference's).
    case constant
    /// Cosine annealing from `--learning-rate` to 0 over the run's steps
    /// (`torch.optim.lr_scheduler.CosineAnnealingLR` with `T_max` = steps, stepped once per step).
    case cosine

    /// The schedule for a run of `steps` steps starting at `learningRate`; nil when the rate stays.
    public func schedule(learningRate: Double, steps: Int) -> (any LearningRateSchedule)? {
        switch self {
        case .constant: return nil
        case .cosine: return CosineAnnealingLR(baseLearningRate: learningRate, annealingSteps: steps)
        }
    }
}

/// A named set of defaults.
public enum ClassifyPreset: String, Codable, CaseIterable, Sendable {
    /// Sized to train both models in about 10 minutes on 2 CPU cores (reduced widths, data and steps).
    case quick
    /// Sort-of-CLEVR at a budget where the models learn the images, for comparisons over seeds (issue 11):
    /// the quick model and batches on the paper's 9,800 training images, 10,000 cosine-annealed steps
    /// (results/README.md, "Sizing the medium preset").
    case medium
    /// The paper's settings (full widths, 9,800 + 2,000 images, 150 epochs of batch 64); a GPU job.
    case paper
}

/// Every setting of a run. The JSON keys (config.json) are the flag names with `_` for `-`.
public struct ClassifyConfiguration: Codable, Equatable, Sendable {
    /// The preset the defaults came from.
    public var preset: ClassifyPreset
    /// The data set.
    public var dataset: ClassifyDataset
    /// The model or models trained.
    public var model: ClassifyModelChoice
    /// Where the data is read from (Sort-of-CLEVR: a directory written by `generate`; Fashion-MNIST:
    /// the IDX files); nil generates Sort-of-CLEVR, or reads Fashion-MNIST from its Debian location.
    public var dataDirectory: String?
    /// Sort-of-CLEVR colours that appear in one shape only in training (0 turns the OOD split off).
    public var heldOutColors: Int
    /// Training images (Sort-of-CLEVR: 20 questions each; Fashion-MNIST: the first this many).
    public var trainingImages: Int
    /// In-distribution test images.
    public var testImages: Int
    /// Out-of-distribution test images (Sort-of-CLEVR with held-out colours).
    public var outOfDistributionImages: Int
    /// NFM attention heads.
    public var heads: Int
    /// NFM key (and query) size per head.
    public var keySize: Int
    /// NFM value size per head.
    public var valueSize: Int
    /// Memory entries each NFM read keeps (top-k sparsity).
    public var topK: Int
    /// Passes of the NFM trunk over the image (the baseline always makes one).
    public var passes: Int
    /// Fashion-MNIST: the network (Sort-of-CLEVR always uses its CNN).
    public var architecture: ClassifyArchitecture
    /// Channels of each convolution of the trunk (PreActResNet-18: of its four stages).
    public var widths: [Int]
    /// Sort-of-CLEVR: how the trunk's 5×5 map reaches the head (`reference` pools positions away).
    public var headPooling: HeadPooling
    /// Optimisation steps per model.
    public var steps: Int
    /// Examples per step (Sort-of-CLEVR: questions, or images with all their questions; see `batching`).
    public var batchSize: Int
    /// Sort-of-CLEVR: whether a batch is of questions or of whole images.
    public var batching: ClassifyBatching
    /// Adam's learning rate (the starting rate under a schedule).
    public var learningRate: Double
    /// How the rate moves over the steps.
    public var learningRateSchedule: ClassifyLearningRateSchedule
    /// The one seed every random draw of the run derives from.
    public var seed: UInt64
    /// Evaluate every this many steps (and at the end).
    public var evaluationInterval: Int
    /// Checkpoint every this many steps (and at the end).
    public var checkpointInterval: Int

    enum CodingKeys: String, CodingKey {
        case preset, dataset, model, heads, passes, widths, steps, seed, batching, architecture
        case dataDirectory = "data_dir"
        case heldOutColors = "heldout_colors"
        case trainingImages = "train_images"
        case testImages = "test_images"
        case outOfDistributionImages = "ood_images"
        case keySize = "key_size"
        case valueSize = "value_size"
        case topK = "top_k"
        case batchSize = "batch_size"
        case headPooling = "head_pooling"
        case learningRate = "learning_rate"
        case learningRateSchedule = "lr_schedule"
        case evaluationInterval = "eval_every"
        case checkpointInterval = "checkpoint_every"
    }

    /// Encodes every key, `data_dir` as null when unset, so that config.json lists every setting.
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(preset, forKey: .preset)
        try container.encode(dataset, forKey: .dataset)
        try container.encode(model, forKey: .model)
        try container.encode(dataDirectory, forKey: .dataDirectory)
        try container.encode(heldOutColors, forKey: .heldOutColors)
        try container.encode(trainingImages, forKey: .trainingImages)
        try container.encode(testImages, forKey: .testImages)
        try container.encode(outOfDistributionImages, forKey: .outOfDistributionImages)
        try container.encode(heads, forKey: .heads)
        try container.encode(keySize, forKey: .keySize)
        try container.encode(valueSize, forKey: .valueSize)
        try container.encode(topK, forKey: .topK)
        try container.encode(passes, forKey: .passes)
        try container.encode(architecture, forKey: .architecture)
        try container.encode(widths, forKey: .widths)
        try container.encode(headPooling, forKey: .headPooling)
        try container.encode(steps, forKey: .steps)
        try container.encode(batchSize, forKey: .batchSize)
        try container.encode(batching, forKey: .batching)
        try container.encode(learningRate, forKey: .learningRate)
        try container.encode(learningRateSchedule, forKey: .learningRateSchedule)
        try container.encode(seed, forKey: .seed)
        try container.encode(evaluationInterval, forKey: .evaluationInterval)
        try container.encode(checkpointInterval, forKey: .checkpointInterval)
    }

    /// The defaults of `preset` for `dataset` (see docs/classify.md for why each number).
    ///
    /// Quick, Sort-of-CLEVR: widths 24-48-96-192 (half the paper's), 4,000 training images, 500 test and
    /// 500 out-of-distribution images, 1,200 steps of 16 whole images (all 20 questions of each, 320
    /// questions per step) per model at lr 1e-3, and the head sees the 5×5 map unpooled. Measured (docs/classify.md):
    /// batched by question, or with the reference's pooling, the models stay at the answer priors
    /// within the budget; this way they learn from the images, and both models take about 10 minutes
    /// on 2 cores. Paper, Sort-of-CLEVR: widths
    /// 48-96-192-384, 9,800 + 2,000 (+ 2,000 OOD) images, 150 epochs of 3,062 batches of 64 questions (459,300
    /// steps, as the reference `main.py`: 150 epochs, each 1,531 relational plus 1,531 non-relational
    /// batches), the reference's head pooling, Adam lr 1e-4, evaluated and checkpointed every epoch.
    /// Both: 4 heads, dk = dv = 16, k = 3, 2 passes, 2 held-out colours, seed 1.
    public static func defaults(preset: ClassifyPreset, dataset: ClassifyDataset) -> ClassifyConfiguration {
        var configuration = ClassifyConfiguration(
            preset: preset, dataset: dataset, model: .both, dataDirectory: nil, heldOutColors: 2,
            trainingImages: 9_800, testImages: 2_000, outOfDistributionImages: 2_000,
            heads: 4, keySize: 16, valueSize: 16, topK: 3, passes: 2, architecture: .cnn, widths: [48, 96, 192, 384], headPooling: .reference,
            steps: 459_300, batchSize: 64, batching: .questions, learningRate: 1e-4, learningRateSchedule: .constant, seed: 1, evaluationInterval: 3_062,
            checkpointInterval: 3_062)
        switch (preset, dataset) {
        case (.paper, .sortOfCLEVR):
            break
        case (.quick, .sortOfCLEVR), (.medium, .sortOfCLEVR):
            configuration.widths = [24, 48, 96, 192]
            configuration.trainingImages = 4_000
            configuration.testImages = 500
            configuration.outOfDistributionImages = 500
            configuration.batchSize = 16
            configuration.batching = .images
            configuration.headPooling = .none
            configuration.learningRate = 1e-3
            configuration.steps = 1_200
            configuration.evaluationInterval = 400
            configuration.checkpointInterval = 400
            if preset == .medium {
                // Measured by the pilots of results/README.md: the baseline's accuracy flattens by about
                // step 7,000 of 10,000; cosine decay to 0 lets the last steps settle.
                configuration.trainingImages = 9_800
                configuration.testImages = 2_000
                configuration.outOfDistributionImages = 2_000
                configuration.steps = 10_000
                configuration.learningRateSchedule = .cosine
                configuration.evaluationInterval = 1_000
                configuration.checkpointInterval = 1_000
            }
        case (.paper, .fashionMNIST):
            // The paper's image-classification network, PreActResNet-18 with NFM after every block, with
            // its recipe (Adam 1e-4, batch 64), 30 epochs of 937 batches.
            configuration.heldOutColors = 0
            configuration.architecture = .preActResNet18
            configuration.widths = PreActResNet.resNet18Widths
            configuration.trainingImages = 60_000
            configuration.testImages = 10_000
            configuration.outOfDistributionImages = 0
            configuration.steps = 28_110
            configuration.evaluationInterval = 937
            configuration.checkpointInterval = 937
        case (.quick, .fashionMNIST), (.medium, .fashionMNIST):
            // Medium is sized for Sort-of-CLEVR; `problems()` rejects it here, with these quick values.
            configuration.heldOutColors = 0
            configuration.widths = [32, 64, 128]
            configuration.trainingImages = 60_000
            configuration.testImages = 10_000
            configuration.outOfDistributionImages = 0
            configuration.steps = 1_000
            configuration.evaluationInterval = 500
            configuration.checkpointInterval = 500
        }
        return configuration
    }

    /// The keys that a resumed run may change (everything else must match the saved run).
    public static let keysChangeableOnResume: Set<String> = [
        CodingKeys.steps.rawValue, CodingKeys.evaluationInterval.rawValue, CodingKeys.checkpointInterval.rawValue,
    ]

    /// The trunk's NFM hyperparameters for `kind` (nil for the baseline).
    public func nfmConfiguration(for kind: ClassifyModelKind) -> NFMConfiguration? {
        kind == .baseline ? nil : NFMConfiguration(heads: heads, keySize: keySize, valueSize: valueSize, topK: topK)
    }

    /// The configuration of one model of this run (`model` set to that model alone).
    public func single(_ kind: ClassifyModelKind) -> ClassifyConfiguration {
        var copy = self
        copy.model = kind == .baseline ? .baseline : .nfm
        return copy
    }

    /// Problems that make the configuration unusable, as messages naming the flag; empty when valid.
    public func problems() -> [String] {
        var problems: [String] = []
        func require(_ condition: Bool, _ message: String) { if !condition { problems.append(message) } }
        require(heads >= 1, "--heads must be at least 1, got \(heads)")
        require(keySize >= 1, "--key-size must be at least 1, got \(keySize)")
        require(valueSize >= 1, "--value-size must be at least 1, got \(valueSize)")
        require(topK >= 1, "--top-k must be at least 1, got \(topK)")
        require(passes >= 2 || model == .baseline, "--passes must be at least 2 for an NFM model (pass 1 only writes), got \(passes)")
        require(!widths.isEmpty && widths.allSatisfy { $0 >= 1 }, "--widths must be positive channel counts, got \(widths)")
        switch dataset {
        case .sortOfCLEVR:
            // 75 → 38 → 19 → 10 → 5: the head's 4×4 average pool needs at least 4×4 features.
            require((1...4).contains(widths.count), "--widths: Sort-of-CLEVR takes 1 to 4 layers (the head pools 4×4), got \(widths.count)")
            require((0...6).contains(heldOutColors), "--heldout-colors must be 0...6, got \(heldOutColors)")
            require(
                headPooling == .reference || widths.count >= 4,
                "--head-pooling none needs the trunk's 5×5 map, so 4 layers in --widths, got \(widths.count)")
            require(architecture == .cnn, "--architecture applies to Fashion-MNIST only")
        case .fashionMNIST:
            require(preset != .medium, "--preset medium is sized for Sort-of-CLEVR; Fashion-MNIST has quick and paper")
            // 28 → 14 → 7 → 4 → 2 → 1.
            switch architecture {
            case .cnn: require((1...5).contains(widths.count), "--widths: Fashion-MNIST takes 1 to 5 layers, got \(widths.count)")
            case .preActResNet18: require(widths.count == 4, "--widths: PreActResNet-18 has 4 stages, got \(widths.count) widths")
            }
            require(heldOutColors == 0, "--heldout-colors applies to Sort-of-CLEVR only")
        }
        require(trainingImages >= 1, "--train-images must be at least 1, got \(trainingImages)")
        require(testImages >= 1, "--test-images must be at least 1, got \(testImages)")
        require(outOfDistributionImages >= 0, "--ood-images must be non-negative, got \(outOfDistributionImages)")
        require(steps >= 1, "--steps must be at least 1, got \(steps)")
        require(batchSize >= 1, "--batch-size must be at least 1, got \(batchSize)")
        let examples = dataset == .sortOfCLEVR && batching == .questions ? trainingImages * 20 : trainingImages
        require(batchSize <= examples, "--batch-size \(batchSize) is larger than the \(examples) training examples")
        require(learningRate > 0 && learningRate.isFinite, "--learning-rate must be positive, got \(learningRate)")
        require(evaluationInterval >= 0, "--eval-every must be non-negative, got \(evaluationInterval)")
        require(checkpointInterval >= 0, "--checkpoint-every must be non-negative, got \(checkpointInterval)")
        return problems
    }
}

extension ClassifyConfiguration {
    /// Decodes config.json. Keys added after the first release (`batching`, `head_pooling`,
    /// `architecture`, `lr_schedule`) default to what runs did before them (question batches, the
    /// reference's pooling, the small CNN, a constant rate), so that older run directories still
    /// resume and evaluate.
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            preset: try container.decode(ClassifyPreset.self, forKey: .preset),
            dataset: try container.decode(ClassifyDataset.self, forKey: .dataset),
            model: try container.decode(ClassifyModelChoice.self, forKey: .model),
            dataDirectory: try container.decodeIfPresent(String.self, forKey: .dataDirectory),
            heldOutColors: try container.decode(Int.self, forKey: .heldOutColors),
            trainingImages: try container.decode(Int.self, forKey: .trainingImages),
            testImages: try container.decode(Int.self, forKey: .testImages),
            outOfDistributionImages: try container.decode(Int.self, forKey: .outOfDistributionImages),
            heads: try container.decode(Int.self, forKey: .heads),
            keySize: try container.decode(Int.self, forKey: .keySize),
            valueSize: try container.decode(Int.self, forKey: .valueSize),
            topK: try container.decode(Int.self, forKey: .topK),
            passes: try container.decode(Int.self, forKey: .passes),
            architecture: try container.decodeIfPresent(ClassifyArchitecture.self, forKey: .architecture) ?? .cnn,
            widths: try container.decode([Int].self, forKey: .widths),
            headPooling: try container.decodeIfPresent(HeadPooling.self, forKey: .headPooling) ?? .reference,
            steps: try container.decode(Int.self, forKey: .steps),
            batchSize: try container.decode(Int.self, forKey: .batchSize),
            batching: try container.decodeIfPresent(ClassifyBatching.self, forKey: .batching) ?? .questions,
            learningRate: try container.decode(Double.self, forKey: .learningRate),
            learningRateSchedule: try container.decodeIfPresent(ClassifyLearningRateSchedule.self, forKey: .learningRateSchedule)
                ?? .constant,
            seed: try container.decode(UInt64.self, forKey: .seed),
            evaluationInterval: try container.decode(Int.self, forKey: .evaluationInterval),
            checkpointInterval: try container.decode(Int.self, forKey: .checkpointInterval))
    }
}
