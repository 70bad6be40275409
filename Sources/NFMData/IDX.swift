import Foundation
import NFMTensor

/// The IDX format of MNIST and Fashion-MNIST (LeCun et al.): a big-endian header, then raw values.
///
/// The header is a 4-byte magic number (two zero bytes, the value type — 0x08 for unsigned bytes — and the
/// number of dimensions), then one 4-byte big-endian size per dimension. Images files have magic 0x00000803
/// (N × rows × columns bytes) and label files 0x00000801 (N bytes).
public enum IDX {
    /// The magic number of an unsigned-byte, 3-dimensional file (images).
    public static let imagesMagic: UInt32 = 0x0000_0803
    /// The magic number of an unsigned-byte, 1-dimensional file (labels).
    public static let labelsMagic: UInt32 = 0x0000_0801

    /// A stack of greyscale images read from an IDX file.
    public struct Images: Equatable, Sendable {
        /// The number of images.
        public let count: Int
        /// The height of each image.
        public let rows: Int
        /// The width of each image.
        public let columns: Int
        /// `count × rows × columns` bytes, image-major then row-major; 0 is the background.
        public let pixels: [UInt8]

        /// Images from their sizes and bytes.
        public init(count: Int, rows: Int, columns: Int, pixels: [UInt8]) {
            precondition(
                pixels.count == count * rows * columns,
                "IDX.Images: \(pixels.count) bytes for \(count) images of \(rows)×\(columns)")
            self.count = count
            self.rows = rows
            self.columns = columns
            self.pixels = pixels
        }
    }

    /// Parses an images file (magic 0x00000803) from its decompressed bytes.
    ///
    /// - Parameter file: the file's path or name, used only in error messages.
    /// - Throws: `DataError.invalidFormat` naming `file` when the magic, sizes or length are wrong.
    public static func parseImages(_ bytes: [UInt8], file: String) throws -> Images {
        let sizes = try parseHeader(bytes, file: file, magic: imagesMagic, what: "images")
        let (count, rows, columns) = (sizes[0], sizes[1], sizes[2])
        guard rows > 0, columns > 0 else {
            throw DataError.invalidFormat(file, reason: "image size \(rows)×\(columns) is empty")
        }
        let headerLength = 16
        let expected = headerLength + count * rows * columns
        guard bytes.count == expected else {
            throw DataError.invalidFormat(
                file,
                reason: "\(count) images of \(rows)×\(columns) need \(expected) bytes, the file has \(bytes.count)"
                    + (bytes.count < expected ? " (truncated?)" : ""))
        }
        return Images(count: count, rows: rows, columns: columns, pixels: Array(bytes[headerLength...]))
    }

    /// Parses a labels file (magic 0x00000801) from its decompressed bytes.
    ///
    /// - Parameter file: the file's path or name, used only in error messages.
    /// - Throws: `DataError.invalidFormat` naming `file` when the magic or length are wrong.
    public static func parseLabels(_ bytes: [UInt8], file: String) throws -> [UInt8] {
        let sizes = try parseHeader(bytes, file: file, magic: labelsMagic, what: "labels")
        let headerLength = 8
        let expected = headerLength + sizes[0]
        guard bytes.count == expected else {
            throw DataError.invalidFormat(
                file,
                reason: "\(sizes[0]) labels need \(expected) bytes, the file has \(bytes.count)"
                    + (bytes.count < expected ? " (truncated?)" : ""))
        }
        return Array(bytes[headerLength...])
    }

    /// Checks the magic number and reads the dimension sizes that follow it.
    private static func parseHeader(_ bytes: [UInt8], file: String, magic: UInt32, what: String) throws -> [Int] {
        let dimensions = Int(magic & 0xFF)
        let headerLength = 4 + 4 * dimensions
        guard bytes.count >= 4 else {
            throw DataError.invalidFormat(file, reason: "\(bytes.count) bytes is too short for an IDX header")
        }
        let found = readBigEndian(bytes, at: 0)
        guard found == magic else {
            var reason = "magic number \(hex(found)), expected \(hex(magic)) for IDX \(what)"
            if bytes[0] == 0x1F && bytes[1] == 0x8B { reason += " (the bytes are gzip-compressed; decompress first)" }
            throw DataError.invalidFormat(file, reason: reason)
        }
        guard bytes.count >= headerLength else {
            throw DataError.invalidFormat(
                file, reason: "\(bytes.count) bytes is too short for the \(headerLength)-byte header of IDX \(what)")
        }
        return (0..<dimensions).map { Int(readBigEndian(bytes, at: 4 + 4 * $0)) }
    }

    private static func readBigEndian(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        bytes[offset..<(offset + 4)].reduce(0) { $0 << 8 | UInt32($1) }
    }

    private static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
    }

    /// Builds an IDX file's bytes (uncompressed): the inverse of `parseImages` and `parseLabels`, for tests and tools.
    public static func encode(dimensions: [Int], values: [UInt8]) -> [UInt8] {
        precondition(
            values.count == dimensions.reduce(1, *),
            "IDX.encode: \(values.count) values do not fill dimensions \(dimensions)")
        var bytes: [UInt8] = [0, 0, 0x08, UInt8(dimensions.count)]
        for size in dimensions {
            let value = UInt32(size)
            bytes += [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
        }
        return bytes + values
    }
}

/// Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 28×28 greyscale clothing images in 10 classes,
/// 60,000 for training and 10,000 for testing, read from the IDX files of the Debian package dataset-fashion-mnist.
public struct FashionMNIST: Equatable, Sendable {
    /// Where dataset-fashion-mnist installs the files.
    public static let defaultDirectory = "/usr/share/datasets/fashion-mnist"
    /// The class names, by label.
    public static let classNames = [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ]
    /// The side of each image.
    public static let imageSize = 28

    /// The training or test files.
    public enum Split: String, CaseIterable, Sendable {
        /// 60,000 images: train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz.
        case train
        /// 10,000 images: t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz.
        case test

        /// The file-name prefix of the split.
        public var filePrefix: String { self == .train ? "train" : "t10k" }
    }

    /// The images, `count × 28 × 28` bytes.
    public let images: IDX.Images
    /// One label in 0...9 per image.
    public let labels: [Int]

    /// A data set from parsed images and labels, checked to match.
    ///
    /// - Throws: `DataError.invalidFormat` when the images are not 28×28, the counts differ or a label is not 0...9.
    public init(images: IDX.Images, labels: [UInt8], imagesFile: String = "images", labelsFile: String = "labels") throws {
        guard images.rows == FashionMNIST.imageSize, images.columns == FashionMNIST.imageSize else {
            throw DataError.invalidFormat(imagesFile, reason: "images are \(images.rows)×\(images.columns), expected 28×28")
        }
        guard images.count == labels.count else {
            throw DataError.invalidFormat(
                labelsFile, reason: "\(labels.count) labels for the \(images.count) images of \(imagesFile)")
        }
        if let bad = labels.firstIndex(where: { $0 > 9 }) {
            throw DataError.invalidFormat(labelsFile, reason: "label \(labels[bad]) at index \(bad) is not in 0...9")
        }
        self.images = images
        self.labels = labels.map(Int.init)
    }

    /// The paths of a split's images and labels files in `directory`.
    public static func paths(split: Split, directory: String = defaultDirectory) -> (images: String, labels: String) {
        let base = directory.hasSuffix("/") ? directory : directory + "/"
        return (
            base + "\(split.filePrefix)-images-idx3-ubyte.gz",
            base + "\(split.filePrefix)-labels-idx1-ubyte.gz"
        )
    }

    /// Loads a split from `directory`.
    ///
    /// - Parameter decompress: gunzips a file's bytes; pass NFMIO's `Gzip.decompress`. It is called only for
    ///   files that start with the gzip magic bytes 1F 8B, so already decompressed files are read as they are.
    /// - Throws: `DataError.missingFile` (with the hint to run `bash scripts/setup.sh`), `.unreadableFile`,
    ///   `.decompressionFailed` or `.invalidFormat`, each naming the file.
    public static func load(
        split: Split, directory: String = defaultDirectory, decompress: ([UInt8]) throws -> [UInt8]
    ) throws -> FashionMNIST {
        let (imagesPath, labelsPath) = paths(split: split, directory: directory)
        let images = try IDX.parseImages(readFile(imagesPath, decompress: decompress), file: imagesPath)
        let labels = try IDX.parseLabels(readFile(labelsPath, decompress: decompress), file: labelsPath)
        return try FashionMNIST(images: images, labels: labels, imagesFile: imagesPath, labelsFile: labelsPath)
    }

    /// Reads a file's bytes, gunzipping them with `decompress` when they are gzip-compressed.
    ///
    /// - Throws: `DataError.missingFile` with the Fashion-MNIST setup hint, `.unreadableFile` or `.decompressionFailed`.
    public static func readFile(_ path: String, decompress: ([UInt8]) throws -> [UInt8]) throws -> [UInt8] {
        guard FileManager.default.fileExists(atPath: path) else {
            throw DataError.missingFile(path, hint: DataError.fashionMNISTHint)
        }
        let bytes: [UInt8]
        do {
            bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw DataError.unreadableFile(path, reason: error.localizedDescription)
        }
        guard bytes.count >= 2, bytes[0] == 0x1F, bytes[1] == 0x8B else { return bytes }
        do {
            return try decompress(bytes)
        } catch {
            throw DataError.decompressionFailed(path, reason: String(describing: error))
        }
    }

    /// The number of images.
    public var count: Int { images.count }

    /// The images at `indices` as a [N, 1, 28, 28] Float32 tensor with value = byte / 255, in [0, 1].
    public func imageTensor(indices: [Int]) -> Tensor {
        let plane = FashionMNIST.imageSize * FashionMNIST.imageSize
        var scalars = [Float](repeating: 0, count: indices.count * plane)
        images.pixels.withUnsafeBufferPointer { bytes in
            for (slot, index) in indices.enumerated() {
                precondition(index >= 0 && index < count, "FashionMNIST: image \(index) out of 0..<\(count)")
                for pixel in 0..<plane { scalars[slot * plane + pixel] = Float(bytes[index * plane + pixel]) / 255 }
            }
        }
        return Tensor(shape: [indices.count, 1, FashionMNIST.imageSize, FashionMNIST.imageSize], scalars: scalars)
    }

    /// All images as a [N, 1, 28, 28] Float32 tensor in [0, 1].
    public func imageTensor() -> Tensor { imageTensor(indices: Array(0..<count)) }
}

extension FashionMNIST: IndexedDataset {
    /// Images at some indices with their labels.
    public struct Batch: Sendable {
        /// [N, 1, 28, 28] in [0, 1].
        public var images: Tensor
        /// N labels in 0...9.
        public var labels: [Int]
    }

    /// The images and labels at `indices`.
    public func batch(indices: [Int]) -> Batch {
        Batch(images: imageTensor(indices: indices), labels: indices.map { labels[$0] })
    }
}
