// Sort-of-CLEVR (Santoro et al. 2017, "A simple neural network module for relational reasoning"),
// as specified in DESIGN.md §3: the scene vocabulary, questions, answers and the rule that answers them.
//
// Geometry used everywhere in this module. Coordinates are continuous, in pixels, with x to the right and
// y downward; pixel (column i, row j) covers [i, i + 1) × [j, j + 1), so its centre is (i + 0.5, j + 0.5)
// and the image spans [0, 75) × [0, 75), whose vertical centre line is x = 37.5.

/// Sort-of-CLEVR: 75×75 RGB scenes of six coloured squares and circles, with relational and
/// non-relational questions about them (Santoro et al. 2017; DESIGN.md §3).
public enum SortOfCLEVR {
    /// The side of the square images, in pixels.
    public static let imageSize = 75
    /// The colour channels per pixel (RGB).
    public static let channelCount = 3
    /// The length of a question vector: 6 colour one-hot, 2 type one-hot, 3 subtype one-hot.
    public static let questionLength = 11
    /// The number of answer classes: yes, no, square, circle, 1, 2, 3, 4, 5, 6.
    public static let answerCount = 10
    /// Non-relational questions per image (Santoro et al. 2017).
    public static let nonRelationalQuestionsPerImage = 10
    /// Relational questions per image (Santoro et al. 2017).
    public static let relationalQuestionsPerImage = 10
    /// All questions per image; within an image, questions 0–9 are non-relational and 10–19 relational.
    public static let questionsPerImage = nonRelationalQuestionsPerImage + relationalQuestionsPerImage
    /// The side of a square object, in pixels.
    public static let squareSide: Double = 10
    /// The radius of a circle object, in pixels.
    public static let circleRadius: Double = 5
    /// Half the extent of either shape: a centre at least this far from every border keeps the object inside.
    public static let objectHalfExtent: Double = 5

    /// The six object colours, in the order of the question vector's one-hot (and of every colour index).
    public enum Color: Int, CaseIterable, Sendable, Codable, Comparable {
        /// RGB (255, 0, 0).
        case red
        /// RGB (0, 255, 0).
        case green
        /// RGB (0, 0, 255).
        case blue
        /// RGB (255, 156, 0).
        case orange
        /// RGB (128, 128, 128).
        case gray
        /// RGB (255, 255, 0).
        case yellow

        /// The lowercase English name, as written in exported files.
        public var name: String {
            switch self {
            case .red: return "red"
            case .green: return "green"
            case .blue: return "blue"
            case .orange: return "orange"
            case .gray: return "gray"
            case .yellow: return "yellow"
            }
        }

        /// The colour named `name` (as written by `name`), or nil.
        public init?(name: String) {
            guard let color = Color.allCases.first(where: { $0.name == name }) else { return nil }
            self = color
        }

        /// The standard Sort-of-CLEVR RGB value of this colour (Santoro et al. 2017's generator).
        public var rgb: (red: UInt8, green: UInt8, blue: UInt8) {
            switch self {
            case .red: return (255, 0, 0)
            case .green: return (0, 255, 0)
            case .blue: return (0, 0, 255)
            case .orange: return (255, 156, 0)
            case .gray: return (128, 128, 128)
            case .yellow: return (255, 255, 0)
            }
        }

        /// Orders colours by their index, the order used to break ties.
        public static func < (left: Color, right: Color) -> Bool { left.rawValue < right.rawValue }
    }

    /// The two object shapes.
    public enum Shape: Int, CaseIterable, Sendable, Codable {
        /// An axis-aligned square of side 10.
        case square
        /// A disc of radius 5.
        case circle

        /// The lowercase English name, as written in exported files.
        public var name: String { self == .square ? "square" : "circle" }

        /// The shape named `name` (as written by `name`), or nil.
        public init?(name: String) {
            switch name {
            case "square": self = .square
            case "circle": self = .circle
            default: return nil
            }
        }

        /// The other shape.
        public var other: Shape { self == .square ? .circle : .square }
    }

    /// One object of a scene: a coloured shape centred at (x, y) in pixel coordinates.
    public struct SceneObject: Equatable, Sendable {
        /// The object's colour; a scene holds exactly one object of each colour.
        public var color: Color
        /// The object's shape.
        public var shape: Shape
        /// The centre's x coordinate (to the right), in pixels; 37.5 is the image's vertical centre line.
        public var x: Double
        /// The centre's y coordinate (downward), in pixels; 37.5 is the image's horizontal centre line.
        public var y: Double

        /// An object of `color` and `shape` centred at (`x`, `y`).
        public init(color: Color, shape: Shape, x: Double, y: Double) {
            self.color = color
            self.shape = shape
            self.x = x
            self.y = y
        }

        /// The squared Euclidean distance between the two centres (exact for integer and half-integer centres).
        public func squaredDistance(to other: SceneObject) -> Double {
            let dx = x - other.x
            let dy = y - other.y
            return dx * dx + dy * dy
        }

        /// Whether the pixel (column, row) is covered by this object.
        ///
        /// The pixel's centre (column + 0.5, row + 0.5) decides: a square covers it when both offsets from the
        /// object's centre are under 5 (strictly), a circle when the distance is at most 5. With an integer
        /// centre either shape spans exactly 10 pixels across, like the reference generator's objects.
        public func covers(column: Int, row: Int) -> Bool {
            let dx = Double(column) + 0.5 - x
            let dy = Double(row) + 0.5 - y
            switch shape {
            case .square:
                return abs(dx) < squareSide / 2 && abs(dy) < squareSide / 2
            case .circle:
                return dx * dx + dy * dy <= circleRadius * circleRadius
            }
        }
    }

    /// The six kinds of question: three non-relational and three relational (Santoro et al. 2017).
    ///
    /// The raw value is `typeIndex * 3 + subtype`.
    public enum QuestionKind: Int, CaseIterable, Sendable, Codable {
        /// Non-relational 0: what shape is the object of this colour? (square / circle)
        case shape
        /// Non-relational 1: is the object on the left, centre x < 37.5? (yes / no)
        case isLeft
        /// Non-relational 2: is the object on the top, centre y < 37.5? (yes / no)
        case isTop
        /// Relational 0: what shape is the object nearest to it (centre to centre)? (square / circle)
        case nearestShape
        /// Relational 1: what shape is the object farthest from it? (square / circle)
        case farthestShape
        /// Relational 2: how many objects have its shape, itself included? (1–6)
        case sameShapeCount

        /// The kind with the given type (relational or not) and subtype (0, 1 or 2).
        public init(relational: Bool, subtype: Int) {
            precondition((0..<3).contains(subtype), "QuestionKind: subtype must be 0, 1 or 2, got \(subtype)")
            self = QuestionKind(rawValue: (relational ? 3 : 0) + subtype)!
        }

        /// Whether the question needs other objects to answer.
        public var isRelational: Bool { rawValue >= 3 }
        /// 0 for non-relational, 1 for relational: the position of the type bit in the question vector, after 6.
        public var typeIndex: Int { isRelational ? 1 : 0 }
        /// 0, 1 or 2 within the type: the position of the subtype bit in the question vector, after 8.
        public var subtype: Int { rawValue % 3 }
        /// The type as written in exported files: "non-relational" or "relational".
        public var typeName: String { isRelational ? "relational" : "non-relational" }
        /// A short name, as written in exported files.
        public var name: String {
            switch self {
            case .shape: return "shape"
            case .isLeft: return "is_left"
            case .isTop: return "is_top"
            case .nearestShape: return "nearest_shape"
            case .farthestShape: return "farthest_shape"
            case .sameShapeCount: return "same_shape_count"
            }
        }
    }

    /// The ten answer classes, with the indices the classifier predicts (Santoro et al. 2017's order).
    public enum Answer: Int, CaseIterable, Sendable, Codable {
        /// 0: yes.
        case yes
        /// 1: no.
        case no
        /// 2: square.
        case square
        /// 3: circle.
        case circle
        /// 4: one object.
        case one
        /// 5: two objects.
        case two
        /// 6: three objects.
        case three
        /// 7: four objects.
        case four
        /// 8: five objects.
        case five
        /// 9: six objects.
        case six

        /// The answer naming `shape`.
        public init(shape: Shape) { self = shape == .square ? .square : .circle }

        /// The answer for a count from 1 to 6.
        public init(count: Int) {
            precondition((1...6).contains(count), "Answer(count:): count must be 1...6, got \(count)")
            self = Answer(rawValue: count + 3)!
        }

        /// The answer for a yes/no question.
        public init(_ truth: Bool) { self = truth ? .yes : .no }

        /// The word written in exported files: "yes", "no", "square", "circle", "1" … "6".
        public var word: String {
            switch self {
            case .yes: return "yes"
            case .no: return "no"
            case .square: return "square"
            case .circle: return "circle"
            default: return String(rawValue - 3)
            }
        }
    }

    /// A question about the object of one colour, with its answer.
    public struct Question: Equatable, Sendable {
        /// The colour of the object the question is about.
        public var color: Color
        /// What is asked.
        public var kind: QuestionKind
        /// The correct answer, as computed by `Scene.answer(about:kind:)`.
        public var answer: Answer

        /// A question with its answer.
        public init(color: Color, kind: QuestionKind, answer: Answer) {
            self.color = color
            self.kind = kind
            self.answer = answer
        }

        /// The 11-d encoding: colour one-hot (0–5), type one-hot (6 non-relational, 7 relational), subtype one-hot (8–10).
        public var vector: [Float] {
            var vector = [Float](repeating: 0, count: SortOfCLEVR.questionLength)
            vector[color.rawValue] = 1
            vector[6 + kind.typeIndex] = 1
            vector[8 + kind.subtype] = 1
            return vector
        }
    }

    /// One image's content: six objects, one of each colour, and the questions asked about them.
    public struct Scene: Equatable, Sendable {
        /// The objects, ordered by colour, so that `objects[c.rawValue].color == c`.
        public let objects: [SceneObject]
        /// The questions about this scene; for generated scenes 10 non-relational then 10 relational.
        public var questions: [Question]

        /// A scene of exactly one object per colour (in any order; they are stored by colour).
        ///
        /// Positions are not checked, so that tests can build scenes with ties and touching objects;
        /// the generator guarantees separation (see `Configuration.minimumCenterDistance`).
        public init(objects: [SceneObject], questions: [Question] = []) {
            let sorted = objects.sorted { $0.color < $1.color }
            precondition(
                sorted.map(\.color) == Color.allCases,
                "Scene: needs exactly one object of each of the 6 colours, got \(objects.map(\.color.name))")
            self.objects = sorted
            self.questions = questions
        }

        /// The object of `color`.
        public func object(_ color: Color) -> SceneObject { objects[color.rawValue] }

        /// The other object whose centre is nearest to the centre of the `color` object.
        ///
        /// Ties (exactly equal squared distances) go to the lowest colour index, in the order red, green,
        /// blue, orange, gray, yellow.
        public func nearestObject(to color: Color) -> SceneObject {
            extremeObject(relativeTo: color, farther: false)
        }

        /// The other object whose centre is farthest from the centre of the `color` object.
        ///
        /// Ties (exactly equal squared distances) go to the lowest colour index, as for `nearestObject(to:)`.
        public func farthestObject(from color: Color) -> SceneObject {
            extremeObject(relativeTo: color, farther: true)
        }

        private func extremeObject(relativeTo color: Color, farther: Bool) -> SceneObject {
            let subject = object(color)
            var best: SceneObject? = nil
            var bestDistance = 0.0
            // Colour order, with a strict comparison: an equal distance never replaces an earlier (lower) colour.
            for candidate in objects where candidate.color != color {
                let distance = subject.squaredDistance(to: candidate)
                if best == nil || (farther ? distance > bestDistance : distance < bestDistance) {
                    best = candidate
                    bestDistance = distance
                }
            }
            return best!
        }

        /// The answer to `kind` asked about the `color` object (Santoro et al. 2017's six questions).
        ///
        /// "Left" means centre x < 37.5 and "top" means centre y < 37.5 (y grows downward); an object
        /// centred exactly on the centre line is neither left nor top. Counts include the object itself.
        public func answer(about color: Color, kind: QuestionKind) -> Answer {
            let subject = object(color)
            let half = Double(SortOfCLEVR.imageSize) / 2
            switch kind {
            case .shape: return Answer(shape: subject.shape)
            case .isLeft: return Answer(subject.x < half)
            case .isTop: return Answer(subject.y < half)
            case .nearestShape: return Answer(shape: nearestObject(to: color).shape)
            case .farthestShape: return Answer(shape: farthestObject(from: color).shape)
            case .sameShapeCount: return Answer(count: objects.filter { $0.shape == subject.shape }.count)
            }
        }

        /// The question of `kind` about `color`, answered from this scene.
        public func question(about color: Color, kind: QuestionKind) -> Question {
            Question(color: color, kind: kind, answer: answer(about: color, kind: kind))
        }

        /// The smallest distance between two object centres.
        public var minimumCenterDistance: Double {
            var smallest = Double.infinity
            for first in 0..<objects.count {
                for second in (first + 1)..<objects.count {
                    smallest = min(smallest, objects[first].squaredDistance(to: objects[second]))
                }
            }
            return smallest.squareRoot()
        }

        /// Draws the scene on white into `pixels`, 75 × 75 × 3 bytes, row-major HWC RGB.
        ///
        /// Objects are drawn in colour order with hard edges (no anti-aliasing); each pixel takes the colour of
        /// the last object covering it, which only matters for hand-built scenes, since generated objects never
        /// overlap.
        public func render(into pixels: UnsafeMutableBufferPointer<UInt8>) {
            let size = SortOfCLEVR.imageSize
            precondition(
                pixels.count == size * size * SortOfCLEVR.channelCount,
                "Scene.render: buffer holds \(pixels.count) bytes, a 75×75×3 image needs \(size * size * 3)")
            pixels.initialize(repeating: 255)  // may be uninitialized memory (renderedImage); UInt8 is trivial
            for object in objects {
                let (red, green, blue) = object.color.rgb
                // Only the bounding box can be covered; clamp it to the image for hand-built scenes near edges.
                let half = SortOfCLEVR.objectHalfExtent
                let firstColumn = max(0, Int((object.x - half).rounded(.down)))
                let lastColumn = min(size - 1, Int((object.x + half).rounded(.up)))
                let firstRow = max(0, Int((object.y - half).rounded(.down)))
                let lastRow = min(size - 1, Int((object.y + half).rounded(.up)))
                guard firstColumn <= lastColumn, firstRow <= lastRow else { continue }
                for row in firstRow...lastRow {
                    for column in firstColumn...lastColumn where object.covers(column: column, row: row) {
                        let offset = (row * size + column) * 3
                        pixels[offset] = red
                        pixels[offset + 1] = green
                        pixels[offset + 2] = blue
                    }
                }
            }
        }

        /// The rendered image: 75 × 75 × 3 bytes, row-major HWC RGB, white background.
        public func renderedImage() -> [UInt8] {
            let size = SortOfCLEVR.imageSize
            return [UInt8](unsafeUninitializedCapacity: size * size * 3) { buffer, initialized in
                render(into: buffer)
                initialized = buffer.count
            }
        }
    }
}
