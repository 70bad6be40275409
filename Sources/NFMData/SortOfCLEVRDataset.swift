import NFMTensor

extension SortOfCLEVR {
    /// A generated (or loaded) Sort-of-CLEVR split: the scenes with their questions, and the rendered images.
    ///
    /// Images are kept as bytes (75 × 75 × 3 per image, HWC RGB, about 16.9 kB each) and turned into Float
    /// tensors only batch by batch, since a full training set as Float32 would take 660 MB.
    /// Question `q` of the data set is question `q % 20` of image `q / 20`.
    public struct Dataset: Equatable, Sendable {
        /// Which split this is.
        public let split: Split
        /// One scene per image, with its questions.
        public let scenes: [Scene]
        /// All images, `imageCount × 75 × 75 × 3` bytes, image-major then row-major HWC RGB.
        public let pixels: [UInt8]
        /// The held-out combinations of the configuration that generated this split (empty if none).
        public let heldOutTrainingShapes: [Color: Shape]

        /// A data set from scenes and their already rendered images.
        public init(split: Split, scenes: [Scene], pixels: [UInt8], heldOutTrainingShapes: [Color: Shape] = [:]) {
            let imageBytes = SortOfCLEVR.imageSize * SortOfCLEVR.imageSize * SortOfCLEVR.channelCount
            precondition(
                pixels.count == scenes.count * imageBytes,
                "SortOfCLEVR.Dataset: \(pixels.count) bytes for \(scenes.count) images of \(imageBytes) bytes")
            self.split = split
            self.scenes = scenes
            self.pixels = pixels
            self.heldOutTrainingShapes = heldOutTrainingShapes
        }

        /// A data set of hand-built scenes, rendered here (each scene needs 20 questions to be batched by question).
        public init(split: Split = .test, scenes: [Scene], heldOutTrainingShapes: [Color: Shape] = [:]) {
            var pixels: [UInt8] = []
            pixels.reserveCapacity(scenes.count * SortOfCLEVR.imageSize * SortOfCLEVR.imageSize * 3)
            for scene in scenes { pixels += scene.renderedImage() }
            self.init(split: split, scenes: scenes, pixels: pixels, heldOutTrainingShapes: heldOutTrainingShapes)
        }

        /// The number of images.
        public var imageCount: Int { scenes.count }

        /// The number of (image, question) pairs: 20 per image.
        public var questionCount: Int { scenes.count * SortOfCLEVR.questionsPerImage }

        /// The held-out colours, in colour order.
        public var heldOutColors: [Color] { heldOutTrainingShapes.keys.sorted() }

        /// The image and the question at a global question index.
        public func question(at index: Int) -> (imageIndex: Int, question: Question) {
            precondition(index >= 0 && index < questionCount, "question(at:): \(index) out of 0..<\(questionCount)")
            let imageIndex = index / SortOfCLEVR.questionsPerImage
            let questions = scenes[imageIndex].questions
            precondition(
                questions.count == SortOfCLEVR.questionsPerImage,
                "question(at:): image \(imageIndex) has \(questions.count) questions, not 20")
            return (imageIndex, questions[index % SortOfCLEVR.questionsPerImage])
        }

        /// The bytes of one image (75 × 75 × 3, HWC RGB).
        public func imageBytes(at index: Int) -> ArraySlice<UInt8> {
            let imageBytes = SortOfCLEVR.imageSize * SortOfCLEVR.imageSize * SortOfCLEVR.channelCount
            return pixels[(index * imageBytes)..<((index + 1) * imageBytes)]
        }

        /// The (image, question) pairs at the given global question indices, as tensors.
        ///
        /// Images are [N, 3, 75, 75] Float32 with value = byte / 255, so in [0, 1] with white = 1 and no mean
        /// or standard-deviation normalisation (the reference feeds `img / 255.` the same way); an image is
        /// repeated for each of its questions in the batch.
        public func batch(questionIndices: [Int]) -> Batch {
            let pairs = questionIndices.map { question(at: $0) }
            let imageIndices = pairs.map(\.imageIndex)
            let questions = pairs.map(\.question)
            var questionScalars: [Float] = []
            questionScalars.reserveCapacity(questions.count * SortOfCLEVR.questionLength)
            for question in questions { questionScalars += question.vector }
            return Batch(
                images: images(imageIndices: imageIndices),
                questions: Tensor(shape: [questions.count, SortOfCLEVR.questionLength], scalars: questionScalars),
                answers: questions.map(\.answer.rawValue),
                kinds: questions.map(\.kind),
                colors: questions.map(\.color),
                imageIndices: imageIndices)
        }

        /// Whole images with all 20 of their questions, image by image: the images once each, and for
        /// each question the row of its image. A model whose trunk does not see the question runs the
        /// trunk once per image and shares it among the image's questions (`imageRows` picks the rows).
        public func batch(imageIndices: [Int]) -> ImageQuestionsBatch {
            var rows: [Int] = [], vectors: [Float] = [], answers: [Int] = [], kinds: [QuestionKind] = [], colors: [Color] = []
            let capacity = imageIndices.count * SortOfCLEVR.questionsPerImage
            rows.reserveCapacity(capacity)
            vectors.reserveCapacity(capacity * SortOfCLEVR.questionLength)
            for (row, image) in imageIndices.enumerated() {
                precondition(image >= 0 && image < imageCount, "batch(imageIndices:): image \(image) out of 0..<\(imageCount)")
                for question in scenes[image].questions {
                    rows.append(row)
                    vectors += question.vector
                    answers.append(question.answer.rawValue)
                    kinds.append(question.kind)
                    colors.append(question.color)
                }
            }
            return ImageQuestionsBatch(
                images: images(imageIndices: imageIndices),
                questions: Tensor(shape: [rows.count, SortOfCLEVR.questionLength], scalars: vectors),
                imageRows: rows, answers: answers, kinds: kinds, colors: colors)
        }

        /// The images at `imageIndices` as a [N, 3, size, size] Float32 tensor in [0, 1] (byte / 255).
        ///
        /// With `size` below 75 each output pixel is the area average of the source pixels it covers
        /// (box filter with fractional overlaps, like OpenCV's INTER_AREA); 32 gives CIFAR-sized images for
        /// the generative models.
        public func images(imageIndices: [Int], size: Int = SortOfCLEVR.imageSize) -> Tensor {
            let source = SortOfCLEVR.imageSize
            precondition(size >= 1 && size <= source, "images(imageIndices:size:): size must be 1...75, got \(size)")
            let count = imageIndices.count
            let plane = size * size
            var scalars = [Float](repeating: 0, count: count * 3 * plane)
            let resampler = size == source ? nil : AreaResampler(sourceSize: source, targetSize: size)
            pixels.withUnsafeBufferPointer { bytes in
                scalars.withUnsafeMutableBufferPointer { output in
                    for (slot, imageIndex) in imageIndices.enumerated() {
                        precondition(
                            imageIndex >= 0 && imageIndex < imageCount,
                            "images(imageIndices:): image \(imageIndex) out of 0..<\(imageCount)")
                        let input = UnsafeBufferPointer(
                            rebasing: bytes[(imageIndex * source * source * 3)..<((imageIndex + 1) * source * source * 3)])
                        let target = UnsafeMutableBufferPointer(rebasing: output[(slot * 3 * plane)..<((slot + 1) * 3 * plane)])
                        if let resampler {
                            resampler.resample(hwc: input, intoCHW: target)
                        } else {
                            // HWC bytes → CHW floats, through a table (the same values as byte / 255).
                            for pixel in 0..<plane {
                                target[pixel] = byteToUnit[Int(input[pixel * 3])]
                                target[plane + pixel] = byteToUnit[Int(input[pixel * 3 + 1])]
                                target[2 * plane + pixel] = byteToUnit[Int(input[pixel * 3 + 2])]
                            }
                        }
                    }
                }
            }
            return Tensor(shape: [count, 3, size, size], scalars: scalars)
        }

        /// The images alone, as a data set for the data loader (for the generative models).
        public func imageSet(size: Int = SortOfCLEVR.imageSize) -> ImageSet { ImageSet(dataset: self, size: size) }
    }

    /// A batch of (image, question, answer) triples, with what metrics need to split accuracy by question kind.
    public struct Batch: Sendable {
        /// [N, 3, 75, 75] Float32 in [0, 1].
        public var images: Tensor
        /// [N, 11] question vectors.
        public var questions: Tensor
        /// N answer indices in 0..<10 (the NLL targets).
        public var answers: [Int]
        /// N question kinds: `kinds[i].isRelational` and `kinds[i].subtype` split the metrics.
        public var kinds: [QuestionKind]
        /// N question colours.
        public var colors: [Color]
        /// N indices of the images in the data set.
        public var imageIndices: [Int]
    }

    /// A batch of whole images and every question about them (see `Dataset.batch(imageIndices:)`).
    public struct ImageQuestionsBatch: Sendable {
        /// [B, 3, 75, 75] Float32 in [0, 1], each image once.
        public var images: Tensor
        /// [Q, 11] question vectors, image by image.
        public var questions: Tensor
        /// Q rows of `images`: the image each question is about.
        public var imageRows: [Int]
        /// Q answer indices in 0..<10.
        public var answers: [Int]
        /// Q question kinds.
        public var kinds: [QuestionKind]
        /// Q question colours.
        public var colors: [Color]
    }

    /// A data set's images, each with all its questions, as an indexed data set: a loader over it
    /// batches images, not (image, question) pairs.
    public struct ImageQuestionSet: IndexedDataset, Sendable {
        /// The underlying data set.
        public let dataset: Dataset

        /// A view of `dataset` by image.
        public init(_ dataset: Dataset) { self.dataset = dataset }

        /// The number of images.
        public var count: Int { dataset.imageCount }

        /// The images at `indices` with all their questions.
        public func batch(indices: [Int]) -> ImageQuestionsBatch { dataset.batch(imageIndices: indices) }
    }

    /// The images of a data set at one resolution, as an indexed data set of image tensors.
    public struct ImageSet: IndexedDataset, Sendable {
        /// The underlying data set.
        public let dataset: Dataset
        /// The side of the returned images (75, or smaller by area averaging).
        public let size: Int

        /// The number of images.
        public var count: Int { dataset.imageCount }

        /// The images at `indices`, [N, 3, size, size] in [0, 1].
        public func batch(indices: [Int]) -> Tensor { dataset.images(imageIndices: indices, size: size) }
    }
}

extension SortOfCLEVR.Dataset: IndexedDataset {
    /// The number of (image, question) pairs.
    public var count: Int { questionCount }

    /// The (image, question) pairs at the given global question indices.
    public func batch(indices: [Int]) -> SortOfCLEVR.Batch { batch(questionIndices: indices) }
}

/// byte / 255 for every byte value.
private let byteToUnit: [Float] = (0...255).map { Float($0) / 255 }

/// Area-averaging downscaling, separable: each output pixel averages the input pixels under its footprint,
/// weighting the two edge pixels by the fraction they overlap.
///
/// Sums are kept in Double, so that a uniform area (the white background) comes out exactly at its value
/// after rounding to Float.
struct AreaResampler {
    let sourceSize: Int
    let targetSize: Int
    /// For each output coordinate: the first input coordinate and the weights of the inputs from there on.
    let taps: [(first: Int, weights: [Double])]

    init(sourceSize: Int, targetSize: Int) {
        self.sourceSize = sourceSize
        self.targetSize = targetSize
        let scale = Double(sourceSize) / Double(targetSize)
        taps = (0..<targetSize).map { output in
            let start = Double(output) * scale
            let end = Double(output + 1) * scale
            let first = Int(start.rounded(.down))
            let last = min(sourceSize - 1, Int(end.rounded(.up)) - 1)
            let weights = (first...last).map { input in
                (min(end, Double(input + 1)) - max(start, Double(input))) / scale
            }
            return (first, weights)
        }
    }

    /// Resamples one HWC byte image into a CHW float image in [0, 1].
    func resample(hwc input: UnsafeBufferPointer<UInt8>, intoCHW output: UnsafeMutableBufferPointer<Float>) {
        // Horizontal pass: [sourceSize rows][targetSize columns][3].
        var rows = [Double](repeating: 0, count: sourceSize * targetSize * 3)
        for row in 0..<sourceSize {
            for (column, tap) in taps.enumerated() {
                for channel in 0..<3 {
                    var sum = 0.0
                    for (offset, weight) in tap.weights.enumerated() {
                        sum += weight * Double(input[(row * sourceSize + tap.first + offset) * 3 + channel])
                    }
                    rows[(row * targetSize + column) * 3 + channel] = sum
                }
            }
        }
        // Vertical pass into CHW, scaled from bytes to [0, 1].
        let plane = targetSize * targetSize
        for (row, tap) in taps.enumerated() {
            for column in 0..<targetSize {
                for channel in 0..<3 {
                    var sum = 0.0
                    for (offset, weight) in tap.weights.enumerated() {
                        sum += weight * rows[((tap.first + offset) * targetSize + column) * 3 + channel]
                    }
                    output[channel * plane + row * targetSize + column] = Float(min(1, max(0, sum / 255)))
                }
            }
        }
    }
}
