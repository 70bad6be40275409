import Foundation
import NFMData
import NFMIO
import NFMTensor

/// The data sets `nfm-generate` models.
public enum DatasetName: String, Codable, Sendable, CaseIterable {
    /// Fashion-MNIST, 28×28 grey (Debian's dataset-fashion-mnist).
    case fashionMNIST = "fashion-mnist"
    /// Sort-of-CLEVR scenes generated in Swift, downscaled to 32×32 RGB.
    case sortOfCLEVR = "sort-of-clevr"
}

/// What a feature classifier learns from each image.
public enum ImageLabels: Sendable {
    /// One class per image, `classCount` classes (Fashion-MNIST's ten garment types).
    case classes([Int], classCount: Int)
    /// `attributeCount` binary attributes per image, row-major 0/1 (Sort-of-CLEVR: for each of the
    /// six colours, is its object a square, is it in the left half, is it in the top half).
    case attributes([Float], attributeCount: Int)

    /// The classifier's output size.
    public var outputCount: Int {
        switch self {
        case .classes(_, let classCount): return classCount
        case .attributes(_, let attributeCount): return attributeCount
        }
    }
}

/// 8-bit images (NCHW bytes) with labels, batched as Float tensors in [0, 1].
public struct ImageSplit: IndexedDataset, Sendable {
    /// `count × channels × size × size` bytes, image-major, CHW.
    public let pixels: [UInt8]
    /// The number of images.
    public let count: Int
    /// Channels per image (1 or 3).
    public let channels: Int
    /// The side of the square images.
    public let size: Int
    /// The labels the feature classifier trains on.
    public let labels: ImageLabels

    /// A split from bytes and labels.
    public init(pixels: [UInt8], count: Int, channels: Int, size: Int, labels: ImageLabels) {
        precondition(pixels.count == count * channels * size * size, "ImageSplit: \(pixels.count) bytes are not \(count) × \(channels) × \(size)²")
        self.pixels = pixels
        self.count = count
        self.channels = channels
        self.size = size
        self.labels = labels
    }

    /// The images at `indices` as [N, C, size, size] in [0, 1] (byte / 255).
    public func images(indices: [Int]) -> Tensor {
        let plane = channels * size * size
        var scalars = [Float](repeating: 0, count: indices.count * plane)
        pixels.withUnsafeBufferPointer { bytes in
            for (slot, index) in indices.enumerated() {
                precondition(index >= 0 && index < count, "ImageSplit: image \(index) out of 0..<\(count)")
                for offset in 0..<plane { scalars[slot * plane + offset] = Float(bytes[index * plane + offset]) / 255 }
            }
        }
        return Tensor(shape: [indices.count, channels, size, size], scalars: scalars)
    }

    /// The first `count` images (all if more are asked for), in order.
    public func images(first number: Int) -> Tensor { images(indices: Array(0..<Swift.min(number, count))) }

    /// The images at `indices` (the data loader's batch).
    public func batch(indices: [Int]) -> Tensor { images(indices: indices) }

    /// The labels at `indices`: class indices, or an [N, attributes] 0/1 tensor.
    public func labelBatch(indices: [Int]) -> (classes: [Int]?, attributes: Tensor?) {
        switch labels {
        case .classes(let classes, _):
            return (indices.map { classes[$0] }, nil)
        case .attributes(let values, let attributeCount):
            var scalars: [Float] = []
            scalars.reserveCapacity(indices.count * attributeCount)
            for index in indices { scalars += values[(index * attributeCount)..<((index + 1) * attributeCount)] }
            return (nil, Tensor(shape: [indices.count, attributeCount], scalars: scalars))
        }
    }
}

/// A training and a test split of one data set.
public struct ImageData: Sendable {
    /// Which data set.
    public let name: DatasetName
    /// The images the models train on.
    public let train: ImageSplit
    /// The held-out images FD and the ELBO are measured on.
    public let test: ImageSplit

    /// Two splits of the same image shape.
    public init(name: DatasetName, train: ImageSplit, test: ImageSplit) {
        precondition(
            train.channels == test.channels && train.size == test.size,
            "ImageData: training images \(train.channels)×\(train.size)² and test images \(test.channels)×\(test.size)² differ")
        self.name = name
        self.train = train
        self.test = test
    }

    /// Channels per image.
    public var channels: Int { train.channels }
    /// The side of the images.
    public var size: Int { train.size }

    /// The Sort-of-CLEVR scenes the generative models use: 20,000 training and 10,000 test images
    /// from generator seed 2021, no held-out colours, downscaled to 32×32 by area averaging and
    /// stored as bytes.
    public static let sortOfCLEVRConfiguration = SortOfCLEVR.Configuration(
        seed: 2021, trainingImages: 20_000, testImages: 10_000, outOfDistributionImages: 0)

    /// The side Sort-of-CLEVR images are downscaled to.
    public static let sortOfCLEVRSize = 32

    /// Loads Fashion-MNIST from `directory` (its IDX files) or generates Sort-of-CLEVR.
    ///
    /// - Throws: `DataError` naming the missing or corrupt file and `bash scripts/setup.sh`.
    public static func load(_ name: DatasetName, fashionMNISTDirectory: String = FashionMNIST.defaultDirectory) throws -> ImageData {
        switch name {
        case .fashionMNIST:
            let decompress: ([UInt8]) throws -> [UInt8] = { try Gzip.decompress($0) }
            let train = try FashionMNIST.load(split: .train, directory: fashionMNISTDirectory, decompress: decompress)
            let test = try FashionMNIST.load(split: .test, directory: fashionMNISTDirectory, decompress: decompress)
            return ImageData(name: name, train: split(train), test: split(test))
        case .sortOfCLEVR:
            let configuration = sortOfCLEVRConfiguration
            let train = SortOfCLEVR.generate(configuration, split: .train, count: configuration.trainingImages)
            let trainSplit = split(train, size: sortOfCLEVRSize)
            let test = SortOfCLEVR.generate(configuration, split: .test, count: configuration.testImages)
            return ImageData(name: name, train: trainSplit, test: split(test, size: sortOfCLEVRSize))
        }
    }

    static func split(_ data: FashionMNIST) -> ImageSplit {
        ImageSplit(
            pixels: data.images.pixels, count: data.count, channels: 1, size: FashionMNIST.imageSize,
            labels: .classes(data.labels, classCount: FashionMNIST.classNames.count))
    }

    static func split(_ data: SortOfCLEVR.Dataset, size: Int) -> ImageSplit {
        let count = data.imageCount
        let plane = 3 * size * size
        var pixels = [UInt8](repeating: 0, count: count * plane)
        let chunk = 1000
        var start = 0
        while start < count {
            let end = Swift.min(count, start + chunk)
            let images = data.images(imageIndices: Array(start..<end), size: size)
            images.withHostCopy { values in
                for offset in 0..<values.count {
                    pixels[start * plane + offset] = UInt8((Swift.min(Swift.max(values[offset], 0), 1) * 255).rounded())
                }
            }
            start = end
        }
        let colors = SortOfCLEVR.Color.allCases
        var attributes: [Float] = []
        attributes.reserveCapacity(count * colors.count * 3)
        for scene in data.scenes {
            for color in colors {
                attributes.append(scene.answer(about: color, kind: .shape) == .square ? 1 : 0)
                attributes.append(scene.answer(about: color, kind: .isLeft) == .yes ? 1 : 0)
                attributes.append(scene.answer(about: color, kind: .isTop) == .yes ? 1 : 0)
            }
        }
        return ImageSplit(
            pixels: pixels, count: count, channels: 3, size: size, labels: .attributes(attributes, attributeCount: colors.count * 3))
    }
}
