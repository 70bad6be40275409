import NFMTensor

extension SortOfCLEVR {
    /// Which part of a generated data set a scene belongs to; each split draws from its own random streams.
    public enum Split: String, CaseIterable, Sendable, Codable {
        /// Training images: held-out colours appear only in their training shape.
        case train
        /// In-distribution test images: drawn exactly like the training images (held-out colours keep their training shape).
        case test
        /// Out-of-distribution test images: every held-out colour appears in its unseen shape, and every
        /// question asks about a held-out colour.
        case outOfDistribution = "ood"

        /// The stream number mixed into each image's seed, so that splits never share scenes.
        var stream: UInt64 {
            switch self {
            case .train: return 1
            case .test: return 2
            case .outOfDistribution: return 3
            }
        }
    }

    /// What to generate: sizes, the held-out shape–colour combinations, spacing and the seed.
    public struct Configuration: Sendable, Equatable {
        /// The seed from which every image, object and question is drawn.
        public var seed: UInt64
        /// Training images (Santoro et al. 2017's default: 9,800).
        public var trainingImages: Int
        /// In-distribution test images (default 2,000).
        public var testImages: Int
        /// Out-of-distribution test images, generated only when some colour is held out (default 2,000).
        public var outOfDistributionImages: Int
        /// For each held-out colour, the only shape it takes in the training and in-distribution test images;
        /// in the out-of-distribution images it takes the other shape. Empty: no held-out combinations.
        public var heldOutTrainingShapes: [Color: Shape]
        /// The smallest allowed distance between two object centres, in pixels.
        ///
        /// Each shape lies within 5√2 ≈ 7.07 pixels of its centre, so any distance of at least 10√2 ≈ 14.14
        /// guarantees that no two objects overlap or touch; the default 15 leaves a margin. (The reference
        /// generator used 10, which lets two squares overlap at their corners.)
        public var minimumCenterDistance: Double

        /// A configuration with Santoro et al. 2017's sizes by default.
        ///
        /// - Parameter heldOutColors: how many colours to hold out, taken in colour order (red, green, …);
        ///   see `heldOutTrainingShapes(count:)` for the shape each keeps in training.
        public init(
            seed: UInt64,
            trainingImages: Int = 9_800,
            testImages: Int = 2_000,
            outOfDistributionImages: Int = 2_000,
            heldOutColors: Int = 0,
            minimumCenterDistance: Double = 15
        ) {
            precondition(
                trainingImages >= 0 && testImages >= 0 && outOfDistributionImages >= 0,
                "SortOfCLEVR.Configuration: image counts must be non-negative")
            self.seed = seed
            self.trainingImages = trainingImages
            self.testImages = testImages
            self.outOfDistributionImages = outOfDistributionImages
            self.heldOutTrainingShapes = SortOfCLEVR.heldOutTrainingShapes(count: heldOutColors)
            self.minimumCenterDistance = minimumCenterDistance
        }

        /// The held-out colours, in colour order.
        public var heldOutColors: [Color] { heldOutTrainingShapes.keys.sorted() }
    }

    /// The default held-out combinations: the first `count` colours in colour order, where colour i keeps
    /// the square in training if i is even and the circle if i is odd (red: square, green: circle, blue: square, …).
    ///
    /// Alternating keeps both shapes equally common among the held-out training objects, so holding colours
    /// out does not also shift the shape balance (and with it the counting answers) of the training set.
    public static func heldOutTrainingShapes(count: Int) -> [Color: Shape] {
        precondition((0...6).contains(count), "heldOutTrainingShapes: count must be 0...6, got \(count)")
        var shapes: [Color: Shape] = [:]
        for color in Color.allCases.prefix(count) {
            shapes[color] = color.rawValue % 2 == 0 ? .square : .circle
        }
        return shapes
    }

    /// The generated data sets of one configuration.
    public struct Splits: Sendable {
        /// The training set.
        public var train: Dataset
        /// The in-distribution test set.
        public var test: Dataset
        /// The out-of-distribution test set, present when the configuration holds some colour out.
        public var outOfDistribution: Dataset?
    }

    /// Generates the training, test and (with held-out colours) out-of-distribution sets.
    public static func generate(_ configuration: Configuration) -> Splits {
        let outOfDistribution: Dataset? =
            configuration.heldOutTrainingShapes.isEmpty
            ? nil
            : generate(configuration, split: .outOfDistribution, count: configuration.outOfDistributionImages)
        return Splits(
            train: generate(configuration, split: .train, count: configuration.trainingImages),
            test: generate(configuration, split: .test, count: configuration.testImages),
            outOfDistribution: outOfDistribution)
    }

    /// Generates `count` images of one split.
    ///
    /// Image i of a split is drawn from its own generator, seeded by (seed, split, i), so an image does not
    /// depend on how many images come before it: a larger data set extends a smaller one with the same seed.
    /// The `.outOfDistribution` split needs at least one held-out colour (its questions ask only about them).
    public static func generate(_ configuration: Configuration, split: Split, count: Int) -> Dataset {
        let imageBytes = imageSize * imageSize * channelCount
        var scenes: [Scene] = []
        scenes.reserveCapacity(count)
        let root = SeededGenerator(seed: configuration.seed)
        for index in 0..<count {
            var generator = root.split(stream: split.stream << 40 | UInt64(index))
            scenes.append(generateScene(configuration, split: split, using: &generator))
        }
        let pixels = [UInt8](unsafeUninitializedCapacity: count * imageBytes) { buffer, initialized in
            for (index, scene) in scenes.enumerated() {
                scene.render(into: UnsafeMutableBufferPointer(rebasing: buffer[(index * imageBytes)..<((index + 1) * imageBytes)]))
            }
            initialized = count * imageBytes
        }
        return Dataset(
            split: split, scenes: scenes, pixels: pixels, heldOutTrainingShapes: configuration.heldOutTrainingShapes)
    }

    /// Draws one scene with its 20 questions.
    ///
    /// Shapes: a fair coin per object, except that a held-out colour takes its training shape (train, test)
    /// or the other shape (out-of-distribution). Centres: integers in 5...70 (so the object lies inside the
    /// image), drawn in colour order and redrawn until at least `minimumCenterDistance` from every earlier
    /// centre (rejection sampling). Questions: for each, a colour uniformly at random (from the held-out
    /// colours only, in the out-of-distribution split) and a subtype uniformly from 0, 1, 2; 10 non-relational
    /// then 10 relational, as in Santoro et al. 2017 but drawn afresh for every image.
    public static func generateScene(
        _ configuration: Configuration, split: Split, using generator: inout SeededGenerator
    ) -> Scene {
        precondition(
            configuration.minimumCenterDistance >= 0,
            "SortOfCLEVR: minimumCenterDistance must be non-negative, got \(configuration.minimumCenterDistance)")
        let shapes: [Shape] = Color.allCases.map { color in
            if let trainingShape = configuration.heldOutTrainingShapes[color] {
                return split == .outOfDistribution ? trainingShape.other : trainingShape
            }
            return generator.nextIndex(below: 2) == 0 ? .square : .circle
        }

        let lowest = Int(objectHalfExtent)
        let positions = imageSize - 2 * lowest + 1  // 5...70: 66 possible coordinates per axis
        let minimumSquared = configuration.minimumCenterDistance * configuration.minimumCenterDistance
        var objects: [SceneObject] = []
        objects.reserveCapacity(Color.allCases.count)
        var attempts = 0
        while objects.count < Color.allCases.count {
            let color = Color.allCases[objects.count]
            let candidate = SceneObject(
                color: color, shape: shapes[color.rawValue],
                x: Double(lowest + generator.nextIndex(below: positions)),
                y: Double(lowest + generator.nextIndex(below: positions)))
            if objects.allSatisfy({ $0.squaredDistance(to: candidate) >= minimumSquared }) {
                objects.append(candidate)
            } else {
                attempts += 1
                // A bad early placement can leave no room; start the layout over rather than loop forever.
                if attempts % 1_000 == 0 { objects.removeAll(keepingCapacity: true) }
                precondition(
                    attempts < 1_000_000,
                    "SortOfCLEVR: cannot place 6 objects \(configuration.minimumCenterDistance) pixels apart in 75×75")
            }
        }

        var scene = Scene(objects: objects)
        let questionColors = split == .outOfDistribution ? configuration.heldOutColors : Color.allCases
        precondition(!questionColors.isEmpty, "SortOfCLEVR: the out-of-distribution split needs held-out colours")
        var questions: [Question] = []
        questions.reserveCapacity(questionsPerImage)
        for index in 0..<questionsPerImage {
            let color = questionColors[generator.nextIndex(below: questionColors.count)]
            let kind = QuestionKind(
                relational: index >= nonRelationalQuestionsPerImage, subtype: generator.nextIndex(below: 3))
            questions.append(scene.question(about: color, kind: kind))
        }
        scene.questions = questions
        return scene
    }
}
