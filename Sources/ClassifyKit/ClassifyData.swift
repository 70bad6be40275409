import Foundation
import NFMData
import NFMIO
import NFMTensor

/// The data of a run: generated (or exported) Sort-of-CLEVR splits, or Fashion-MNIST.
public enum ClassifyData: Sendable {
    /// Sort-of-CLEVR: training, in-distribution test and (with held-out colours) out-of-distribution test sets.
    case sortOfCLEVR(train: SortOfCLEVR.Dataset?, test: SortOfCLEVR.Dataset, outOfDistribution: SortOfCLEVR.Dataset?)
    /// Fashion-MNIST: the training set (nil when only evaluating) and the test set.
    case fashionMNIST(train: FashionMNIST?, test: FashionMNIST)

    /// Generates or reads the data of `configuration`. Sort-of-CLEVR is generated from the seed unless
    /// `dataDirectory` names a directory written by `nfm-classify generate` (with `train/`, `test/` and
    /// optionally `ood/`); Fashion-MNIST is read from `dataDirectory` or its Debian location, and the
    /// first `trainingImages` / `testImages` images are kept. With `training` false the training set is
    /// neither generated nor read (for `eval`).
    ///
    /// - Throws: `DataError` naming the missing or corrupt file (for Fashion-MNIST with the hint to run
    ///   `bash scripts/setup.sh`).
    public static func load(_ configuration: ClassifyConfiguration, training: Bool = true) throws -> ClassifyData {
        switch configuration.dataset {
        case .sortOfCLEVR:
            if let directory = configuration.dataDirectory {
                let root = URL(fileURLWithPath: directory)
                let train = training ? try SortOfCLEVR.load(from: root.appendingPathComponent("train")) : nil
                let test = try SortOfCLEVR.load(from: root.appendingPathComponent("test"))
                let oodDirectory = root.appendingPathComponent("ood")
                let ood =
                    FileManager.default.fileExists(atPath: oodDirectory.path)
                    ? try SortOfCLEVR.load(from: oodDirectory) : nil
                return .sortOfCLEVR(train: train, test: test, outOfDistribution: ood)
            }
            let generation = sortOfCLEVRConfiguration(configuration)
            let train = training ? SortOfCLEVR.generate(generation, split: .train, count: generation.trainingImages) : nil
            let test = SortOfCLEVR.generate(generation, split: .test, count: generation.testImages)
            let ood =
                generation.heldOutTrainingShapes.isEmpty || generation.outOfDistributionImages == 0
                ? nil : SortOfCLEVR.generate(generation, split: .outOfDistribution, count: generation.outOfDistributionImages)
            return .sortOfCLEVR(train: train, test: test, outOfDistribution: ood)
        case .fashionMNIST:
            let directory = configuration.dataDirectory ?? FashionMNIST.defaultDirectory
            let decompress: ([UInt8]) throws -> [UInt8] = { try Gzip.decompress($0) }
            let train = training
                ? try FashionMNIST.load(split: .train, directory: directory, decompress: decompress).prefix(configuration.trainingImages)
                : nil
            let test = try FashionMNIST.load(split: .test, directory: directory, decompress: decompress).prefix(configuration.testImages)
            return .fashionMNIST(train: train, test: test)
        }
    }

    /// The generator settings of a Sort-of-CLEVR run (the data seed is the run's seed; see ``RunSeeds``).
    public static func sortOfCLEVRConfiguration(_ configuration: ClassifyConfiguration) -> SortOfCLEVR.Configuration {
        SortOfCLEVR.Configuration(
            seed: RunSeeds(seed: configuration.seed).data, trainingImages: configuration.trainingImages,
            testImages: configuration.testImages, outOfDistributionImages: configuration.outOfDistributionImages,
            heldOutColors: configuration.heldOutColors)
    }

    /// The configuration with the image counts of the data actually loaded (exported or smaller data sets).
    public func adjusting(_ configuration: ClassifyConfiguration) -> ClassifyConfiguration {
        var adjusted = configuration
        switch self {
        case .sortOfCLEVR(let train, let test, let ood):
            if let train { adjusted.trainingImages = train.imageCount }
            adjusted.testImages = test.imageCount
            adjusted.outOfDistributionImages = ood?.imageCount ?? 0
            adjusted.heldOutColors = (train ?? test).heldOutTrainingShapes.count
        case .fashionMNIST(let train, let test):
            if let train { adjusted.trainingImages = train.count }
            adjusted.testImages = test.count
        }
        return adjusted
    }

    /// One line per split, for the console.
    public var summary: String {
        let count = groupedThousands
        switch self {
        case .sortOfCLEVR(let train, let test, let ood):
            var lines: [String] = []
            if let train { lines.append("Sort-of-CLEVR training: \(count(train.imageCount)) images, \(count(train.questionCount)) questions") }
            lines.append("Sort-of-CLEVR test (in-distribution): \(count(test.imageCount)) images, \(count(test.questionCount)) questions")
            if let ood {
                let heldOut = ood.heldOutColors.map { "\($0.name) only \(ood.heldOutTrainingShapes[$0]!.name)s" }.joined(separator: ", ")
                lines.append(
                    "Sort-of-CLEVR test (out-of-distribution): \(count(ood.imageCount)) images, \(count(ood.questionCount)) questions "
                        + "about the unseen shapes of the held-out colours (in training: \(heldOut))")
            }
            return lines.joined(separator: "\n")
        case .fashionMNIST(let train, let test):
            return (train.map { "Fashion-MNIST training: \(count($0.count)) images\n" } ?? "") + "Fashion-MNIST test: \(count(test.count)) images"
        }
    }
}

extension FashionMNIST {
    /// The first `count` images and labels (all of them if there are fewer).
    public func prefix(_ count: Int) -> FashionMNIST {
        guard count < self.count else { return self }
        let plane = images.rows * images.columns
        let kept = IDX.Images(count: count, rows: images.rows, columns: images.columns, pixels: Array(images.pixels.prefix(count * plane)))
        // The labels were validated when the full set was read, so this cannot fail.
        return try! FashionMNIST(images: kept, labels: labels.prefix(count).map(UInt8.init))
    }
}

/// The run's one seeding block: every random draw of an nfm-classify run derives from `--seed` here,
/// in separate streams, so that changing one use of randomness never shifts another.
///
/// - `data`: the Sort-of-CLEVR generator's seed, the run's seed itself, so that
///   `nfm-classify generate --seed S` exports exactly the data a `--seed S` run trains on.
/// - `batchOrder`: the data loader's per-epoch shuffles (stream 1).
/// - `initialisation`: the weights (stream 2).
/// - `training`: the trainer's generator, which draws the dropout masks and is checkpointed (stream 3).
///
/// The baseline and the NFM model of one run share all of them, so they see the same batches in the same order.
public struct RunSeeds: Sendable {
    /// Seed of the generated data.
    public let data: UInt64
    /// Seed of the batch order.
    public let batchOrder: UInt64
    /// Generator of the initial weights.
    public let initialisation: SeededGenerator
    /// Seed of the trainer's generator (dropout).
    public let training: UInt64

    /// The streams of `seed`.
    public init(seed: UInt64) {
        let root = SeededGenerator(seed: seed)
        data = seed
        var order = root.split(stream: 1)
        batchOrder = order.next()
        initialisation = root.split(stream: 2)
        var training = root.split(stream: 3)
        self.training = training.next()
    }
}

/// `value` with a comma between thousands: 196000 → "196,000".
public func groupedThousands(_ value: Int) -> String {
    let digits = String(value.magnitude)
    var result = ""
    for (index, digit) in digits.enumerated() {
        if index > 0 && (digits.count - index) % 3 == 0 { result += "," }
        result.append(digit)
    }
    return (value < 0 ? "-" : "") + result
}
