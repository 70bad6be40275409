import Foundation
import NFMData
import NFMNN
import NFMOptimizers
import NFMTensor

/// The small classifier whose penultimate layer gives the features the Fréchet distance is measured
/// in (our stand-in for FID's Inception network, which cannot be had offline; DESIGN.md §6):
/// Conv3×3 (C → 32) → ReLU → MaxPool 2 → Conv3×3 (32 → 64) → ReLU → MaxPool 2 → Linear (→ 128) →
/// ReLU (the features) → Linear (→ outputs).
public final class FeatureClassifier: Module {
    /// The first convolution.
    public let conv1: Conv2d
    /// The second convolution.
    public let conv2: Conv2d
    /// The penultimate layer, whose ReLU output is the feature vector.
    public let hidden: Linear
    /// Class logits (or attribute logits).
    public let head: Linear

    /// The size of the feature vector.
    public static let featureSize = 128

    /// A classifier for `channels`-channel images of side `size` (divisible by 4) with `outputs` logits.
    public init(channels: Int, size: Int, outputs: Int, using generator: inout SeededGenerator) {
        conv1 = Conv2d(channels, 32, kernelSize: 3, padding: 1, using: &generator)
        conv2 = Conv2d(32, 64, kernelSize: 3, padding: 1, using: &generator)
        hidden = Linear(64 * (size / 4) * (size / 4), FeatureClassifier.featureSize, using: &generator)
        head = Linear(FeatureClassifier.featureSize, outputs, using: &generator)
        super.init()
    }

    /// Penultimate-layer features of images in [0, 1]: [N, 128].
    public func features(_ images: Tensor) -> Tensor {
        let x = maxPool2d(relu(conv2(maxPool2d(relu(conv1(images)), kernelSize: 2))), kernelSize: 2)
        return relu(hidden(x.flattened(fromAxis: 1)))
    }

    /// Logits: [N, outputs].
    public func callAsFunction(_ images: Tensor) -> Tensor { head(features(images)) }

    /// The features of many images, `batch` at a time, in eval mode without gradients (row-major
    /// [N, 128]), and the output each image scores highest on: its class, for class-labelled data.
    public func featureRows(count: Int, batch: Int = 500, images: (_ range: Range<Int>) -> Tensor) -> (features: [Float], topOutputs: [Int]) {
        eval()
        var rows: [Float] = []
        rows.reserveCapacity(count * FeatureClassifier.featureSize)
        var topOutputs: [Int] = []
        topOutputs.reserveCapacity(count)
        var start = 0
        while start < count {
            let end = Swift.min(count, start + batch)
            let features = withoutGradient { self.features(images(start..<end)) }
            rows += features.scalars
            topOutputs += withoutGradient { head(features) }.argmax(alongAxis: 1).scalars.map { Int($0) }
            start = end
        }
        return (rows, topOutputs)
    }
}

/// What was recorded about a trained feature classifier (saved beside its weights as `classifier.json`).
public struct FeatureClassifierRecord: Codable, Sendable, Equatable {
    /// The data set it was trained on.
    public var dataset: DatasetName
    /// Test accuracy: top-1 for classes, mean per-attribute accuracy for attributes.
    public var testAccuracy: Double
    /// What `testAccuracy` measures.
    public var accuracyMeaning: String
    /// Optimisation steps, batch size and seed it was trained with.
    public var steps: Int
    /// Images per step.
    public var batchSize: Int
    /// The seed of its initialisation and batches.
    public var seed: UInt64
    /// The size of the penultimate features.
    public var featureSize: Int
    /// The weights file, relative to the working directory it was trained from.
    public var checkpoint: String
}

/// Errors of the feature-classifier cache.
public enum FeatureClassifierError: Error, CustomStringConvertible {
    /// A cached classifier exists but cannot be read.
    case unreadableCache(path: String, reason: String)

    /// A sentence naming the file and what to do.
    public var description: String {
        switch self {
        case let .unreadableCache(path, reason):
            return "cannot use the cached feature classifier \(path): \(reason). Delete its directory to train it again."
        }
    }
}

extension FeatureClassifier {
    /// The default cache directory for a data set: `runs/feature-classifier-<dataset>`.
    public static func defaultDirectory(for dataset: DatasetName) -> String { "runs/feature-classifier-\(dataset.rawValue)" }

    /// Loads the classifier cached in `directory` (`model.safetensors` and `classifier.json`), or trains
    /// one on `data` for `steps` steps (Adam 1e-3, batch `batchSize`), measures its test accuracy and
    /// caches it there. A cache that exists but does not load is an error, never silently replaced.
    public static func loadOrTrain(
        data: ImageData, directory: String, steps: Int, batchSize: Int = 128, seed: UInt64 = 7,
        log: (String) -> Void
    ) throws -> (classifier: FeatureClassifier, record: FeatureClassifierRecord) {
        let modelPath = directory + "/model.safetensors"
        let recordPath = directory + "/classifier.json"
        var generator = SeededGenerator(seed: seed)
        let classifier = FeatureClassifier(channels: data.channels, size: data.size, outputs: data.train.labels.outputCount, using: &generator)
        let manager = FileManager.default
        if manager.fileExists(atPath: modelPath) || manager.fileExists(atPath: recordPath) {
            do {
                try classifier.load(contentsOf: modelPath)
                let record = try JSONDecoder().decode(FeatureClassifierRecord.self, from: Data(contentsOf: URL(fileURLWithPath: recordPath)))
                guard record.dataset == data.name else {
                    throw FeatureClassifierError.unreadableCache(path: recordPath, reason: "it was trained on \(record.dataset.rawValue), not \(data.name.rawValue)")
                }
                classifier.eval()
                log("feature classifier: \(modelPath) (test accuracy \(String(format: "%.4f", record.testAccuracy)))")
                return (classifier, record)
            } catch let error as FeatureClassifierError {
                throw error
            } catch {
                throw FeatureClassifierError.unreadableCache(path: modelPath, reason: "\(error)")
            }
        }
        log("feature classifier: training on \(data.name.rawValue) for \(steps) steps (cached afterwards in \(directory))")
        let optimizer = Adam(learningRate: 1e-3)
        let loader = DataLoader(dataset: data.train, batchSize: Swift.min(batchSize, data.train.count), seed: seed)
        classifier.train()
        for step in 0..<steps {
            let indices = loader.indices(step: step)
            let images = data.train.images(indices: indices)
            let labels = data.train.labelBatch(indices: indices)
            let (loss, gradients) = valueAndGrad(model: classifier) { model in
                classificationLoss(logits: model(images), labels: labels)
            }
            optimizer.update(model: classifier, gradients: gradients)
            if (step + 1) % 100 == 0 || step + 1 == steps {
                log("feature classifier: step \(step + 1)/\(steps) loss \(String(format: "%.4f", loss.item))")
            }
        }
        let accuracy = testAccuracy(classifier, on: data.test)
        let meaning: String
        switch data.test.labels {
        case .classes(_, let classCount): meaning = "top-1 accuracy over the \(classCount) classes"
        case .attributes(_, let attributeCount): meaning = "mean accuracy over the \(attributeCount) binary attributes"
        }
        let record = FeatureClassifierRecord(
            dataset: data.name, testAccuracy: accuracy, accuracyMeaning: meaning,
            steps: steps, batchSize: batchSize, seed: seed, featureSize: featureSize, checkpoint: modelPath)
        try manager.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try classifier.save(to: modelPath, metadata: ["format": "pt"])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try (encoder.encode(record) + Data("\n".utf8)).write(to: URL(fileURLWithPath: recordPath), options: .atomic)
        log("feature classifier: test accuracy \(String(format: "%.4f", accuracy)); saved \(modelPath)")
        return (classifier, record)
    }

    /// Cross-entropy for classes, mean binary cross-entropy for attributes.
    static func classificationLoss(logits: Tensor, labels: (classes: [Int]?, attributes: Tensor?)) -> Tensor {
        if let classes = labels.classes { return crossEntropy(logits: logits, targets: classes) }
        return binaryCrossEntropyWithLogits(logits: logits, targets: labels.attributes!)
    }

    /// Top-1 accuracy (classes) or mean attribute accuracy (attributes) on `split`, in eval mode.
    public static func testAccuracy(_ classifier: FeatureClassifier, on split: ImageSplit) -> Double {
        classifier.eval()
        var correct = 0.0
        var total = 0.0
        var start = 0
        while start < split.count {
            let indices = Array(start..<Swift.min(split.count, start + 500))
            let logits = withoutGradient { classifier(split.images(indices: indices)) }
            let labels = split.labelBatch(indices: indices)
            if let classes = labels.classes {
                let predicted = logits.argmax(alongAxis: 1).scalars.map { Int($0) }
                correct += Double(zip(predicted, classes).filter { $0 == $1 }.count)
                total += Double(classes.count)
            } else {
                let targets = labels.attributes!.scalars
                for (value, target) in zip(logits.scalars, targets) where (value > 0) == (target > 0.5) { correct += 1 }
                total += Double(targets.count)
            }
            start = indices.last! + 1
        }
        return correct / total
    }
}
