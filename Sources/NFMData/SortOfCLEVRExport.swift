import Foundation

// The on-disk format of a Sort-of-CLEVR split, readable from Python with numpy and json alone
// (DESIGN.md §3: "The data can be written to disk in a documented format"). A split is one directory:
//
//   images.u8     raw uint8, shape [N, 75, 75, 3], C order (image, row, column, RGB channel), no header
//   images.json   one JSON object describing images.u8 and the vocabularies (format "nfm-sort-of-clevr", version 1)
//   scenes.jsonl  N lines, line i describing image i: its objects and its 20 questions with answers
//
// The README's FORMAT section describes every field; `load(from:)` checks all of them, recomputes every
// answer from the objects, and throws DataError.invalidFormat naming the file and line on any mismatch.

extension SortOfCLEVR {
    /// The `format` value in images.json.
    public static let exportFormat = "nfm-sort-of-clevr"
    /// The `version` value in images.json.
    public static let exportVersion = 1

    /// Writes `dataset` into `directory` (created if needed) as images.u8, images.json and scenes.jsonl.
    ///
    /// - Throws: Foundation's file errors when the directory or the files cannot be written.
    public static func export(_ dataset: Dataset, to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Data(dataset.pixels).write(to: directory.appendingPathComponent("images.u8"), options: .atomic)
        try Data(header(of: dataset).utf8).write(to: directory.appendingPathComponent("images.json"), options: .atomic)
        // There are only 6 × 6 × 10 distinct questions: format each once, not once per image.
        var questionTexts: [String] = []
        for color in Color.allCases {
            for kind in QuestionKind.allCases {
                for answer in Answer.allCases {
                    questionTexts.append(questionText(Question(color: color, kind: kind, answer: answer)))
                }
            }
        }
        var lines = ""
        lines.reserveCapacity(dataset.imageCount * 4_200)
        for (index, scene) in dataset.scenes.enumerated() {
            lines += sceneLine(scene, index: index) { question in
                questionTexts[(question.color.rawValue * QuestionKind.allCases.count + question.kind.rawValue) * answerCount
                    + question.answer.rawValue]
            }
            lines += "\n"
        }
        try Data(lines.utf8).write(to: directory.appendingPathComponent("scenes.jsonl"), options: .atomic)
    }

    /// Writes the training, test and (if any) out-of-distribution sets into `train/`, `test/` and `ood/` of `directory`.
    public static func export(_ splits: Splits, to directory: URL) throws {
        for dataset in [splits.train, splits.test] + (splits.outOfDistribution.map { [$0] } ?? []) {
            try export(dataset, to: directory.appendingPathComponent(dataset.split.rawValue))
        }
    }

    /// Reads a split written by `export(_:to:)`.
    ///
    /// - Throws: `DataError.missingFile`, `.unreadableFile` or `.invalidFormat`, naming the file (and line)
    ///   that is missing or inconsistent; answers that disagree with the objects are rejected too.
    public static func load(from directory: URL) throws -> Dataset {
        let headerURL = directory.appendingPathComponent("images.json")
        let imagesURL = directory.appendingPathComponent("images.u8")
        let scenesURL = directory.appendingPathComponent("scenes.jsonl")
        let hint = "write it with SortOfCLEVR.export(_:to:)"

        let header: ExportHeader
        do {
            header = try JSONDecoder().decode(ExportHeader.self, from: try readData(headerURL, hint: hint))
        } catch let error as DataError {
            throw error
        } catch {
            throw DataError.invalidFormat(headerURL.path, reason: "not a Sort-of-CLEVR header: \(error)")
        }
        guard header.format == exportFormat, header.version == exportVersion else {
            throw DataError.invalidFormat(
                headerURL.path,
                reason: "format \(header.format) version \(header.version), expected \(exportFormat) version \(exportVersion)")
        }
        guard header.dtype == "uint8", header.layout == "NHWC", header.shape.count == 4,
            header.shape[1] == imageSize, header.shape[2] == imageSize, header.shape[3] == channelCount
        else {
            throw DataError.invalidFormat(
                headerURL.path, reason: "images are \(header.dtype) \(header.layout) \(header.shape), expected uint8 NHWC [N, 75, 75, 3]")
        }
        guard let split = Split(rawValue: header.split) else {
            throw DataError.invalidFormat(headerURL.path, reason: "unknown split \"\(header.split)\"")
        }
        var heldOut: [Color: Shape] = [:]
        for (name, shapeName) in header.heldOutTrainingShapes {
            guard let color = Color(name: name), let shape = Shape(name: shapeName) else {
                throw DataError.invalidFormat(headerURL.path, reason: "held_out_training_shapes has \(name): \(shapeName)")
            }
            heldOut[color] = shape
        }

        let count = header.shape[0]
        let pixels = [UInt8](try readData(imagesURL, hint: hint))
        // Divide rather than multiply: a damaged header's count must not overflow.
        let bytesPerImage = imageSize * imageSize * channelCount
        guard count >= 0, pixels.count % bytesPerImage == 0, pixels.count / bytesPerImage == count else {
            throw DataError.invalidFormat(
                imagesURL.path, reason: "\(pixels.count) bytes, but images.json announces \(count) images of 75×75×3")
        }

        guard let text = String(data: try readData(scenesURL, hint: hint), encoding: .utf8) else {
            throw DataError.invalidFormat(scenesURL.path, reason: "not UTF-8 text")
        }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        guard lines.count == count else {
            throw DataError.invalidFormat(scenesURL.path, reason: "\(lines.count) lines for \(count) images")
        }
        let decoder = JSONDecoder()
        var scenes: [Scene] = []
        scenes.reserveCapacity(count)
        for (index, line) in lines.enumerated() {
            let place = "\(scenesURL.path) line \(index + 1)"
            let record: ExportScene
            do {
                record = try decoder.decode(ExportScene.self, from: Data(line.utf8))
            } catch {
                throw DataError.invalidFormat(place, reason: "\(error)")
            }
            scenes.append(try scene(from: record, index: index, place: place))
        }
        return Dataset(split: split, scenes: scenes, pixels: pixels, heldOutTrainingShapes: heldOut)
    }

    // MARK: Writing

    private static func header(of dataset: Dataset) -> String {
        func strings(_ values: [String]) -> String { "[" + values.map { "\"\($0)\"" }.joined(separator: ", ") + "]" }
        let heldOut = dataset.heldOutColors.map { "\"\($0.name)\": \"\(dataset.heldOutTrainingShapes[$0]!.name)\"" }
        return """
            {
              "format": "\(exportFormat)",
              "version": \(exportVersion),
              "split": "\(dataset.split.rawValue)",
              "images_file": "images.u8",
              "dtype": "uint8",
              "layout": "NHWC",
              "shape": [\(dataset.imageCount), \(imageSize), \(imageSize), \(channelCount)],
              "channels": ["red", "green", "blue"],
              "questions_per_image": \(questionsPerImage),
              "colors": \(strings(Color.allCases.map(\.name))),
              "shapes": \(strings(Shape.allCases.map(\.name))),
              "answers": \(strings(Answer.allCases.map(\.word))),
              "question_kinds": \(strings(QuestionKind.allCases.map(\.name))),
              "held_out_training_shapes": {\(heldOut.joined(separator: ", "))}
            }

            """
    }

    private static func sceneLine(_ scene: Scene, index: Int, questionText: (Question) -> String) -> String {
        // Written by hand rather than with JSONEncoder: fixed key order reads better, and every string is
        // one of the vocabularies above, so nothing needs escaping.
        let objects = scene.objects.map { object in
            "{\"color\": \"\(object.color.name)\", \"color_index\": \(object.color.rawValue), "
                + "\"shape\": \"\(object.shape.name)\", \"x\": \(number(object.x)), \"y\": \(number(object.y))}"
        }
        return "{\"image\": \(index), \"objects\": [\(objects.joined(separator: ", "))], "
            + "\"questions\": [\(scene.questions.map(questionText).joined(separator: ", "))]}"
    }

    private static func questionText(_ question: Question) -> String {
        let vector = question.vector.map { $0 == 1 ? "1" : "0" }.joined(separator: ", ")
        return "{\"vector\": [\(vector)], \"color\": \"\(question.color.name)\", "
            + "\"type\": \"\(question.kind.typeName)\", \"type_index\": \(question.kind.typeIndex), "
            + "\"subtype\": \(question.kind.subtype), \"kind\": \"\(question.kind.name)\", "
            + "\"answer\": \(question.answer.rawValue), \"answer_word\": \"\(question.answer.word)\"}"
    }

    /// Integers without a fractional part (generated centres), other values in Swift's shortest round-trip form.
    private static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : "\(value)"
    }

    // MARK: Reading

    private static func readData(_ url: URL, hint: String) throws -> Data {
        guard FileManager.default.fileExists(atPath: url.path) else { throw DataError.missingFile(url.path, hint: hint) }
        do {
            return try Data(contentsOf: url)
        } catch {
            throw DataError.unreadableFile(url.path, reason: error.localizedDescription)
        }
    }

    private static func scene(from record: ExportScene, index: Int, place: String) throws -> Scene {
        guard record.image == index else {
            throw DataError.invalidFormat(place, reason: "describes image \(record.image), expected \(index)")
        }
        var objects: [SceneObject] = []
        for object in record.objects {
            guard let color = Color(name: object.color), color.rawValue == object.colorIndex,
                let shape = Shape(name: object.shape)
            else {
                throw DataError.invalidFormat(
                    place, reason: "object \(object.color) (\(object.colorIndex)) \(object.shape) is not in the vocabulary")
            }
            objects.append(SceneObject(color: color, shape: shape, x: object.x, y: object.y))
        }
        guard objects.map(\.color).sorted() == Color.allCases else {
            throw DataError.invalidFormat(place, reason: "needs one object of each of the 6 colours, has \(objects.map(\.color.name))")
        }
        let scene = Scene(objects: objects)
        var questions: [Question] = []
        for (number, entry) in record.questions.enumerated() {
            guard let color = Color(name: entry.color), (0..<2).contains(entry.typeIndex), (0..<3).contains(entry.subtype),
                let answer = Answer(rawValue: entry.answer)
            else {
                throw DataError.invalidFormat(place, reason: "question \(number) is not in the vocabulary")
            }
            let kind = QuestionKind(relational: entry.typeIndex == 1, subtype: entry.subtype)
            let question = Question(color: color, kind: kind, answer: answer)
            guard kind.name == entry.kind, kind.typeName == entry.type, answer.word == entry.answerWord,
                question.vector == entry.vector
            else {
                throw DataError.invalidFormat(place, reason: "question \(number): its fields disagree with each other")
            }
            guard scene.answer(about: color, kind: kind) == answer else {
                throw DataError.invalidFormat(
                    place,
                    reason: "question \(number) (\(kind.name) of \(color.name)) says \(answer.word), "
                        + "the objects say \(scene.answer(about: color, kind: kind).word)")
            }
            questions.append(question)
        }
        return Scene(objects: objects, questions: questions)
    }
}

/// images.json, as decoded.
private struct ExportHeader: Decodable {
    var format: String
    var version: Int
    var split: String
    var dtype: String
    var layout: String
    var shape: [Int]
    var heldOutTrainingShapes: [String: String]

    enum CodingKeys: String, CodingKey {
        case format, version, split, dtype, layout, shape
        case heldOutTrainingShapes = "held_out_training_shapes"
    }
}

/// One line of scenes.jsonl, as decoded.
private struct ExportScene: Decodable {
    struct Object: Decodable {
        var color: String
        var colorIndex: Int
        var shape: String
        var x: Double
        var y: Double

        enum CodingKeys: String, CodingKey {
            case color, shape, x, y
            case colorIndex = "color_index"
        }
    }

    struct Entry: Decodable {
        var vector: [Float]
        var color: String
        var type: String
        var typeIndex: Int
        var subtype: Int
        var kind: String
        var answer: Int
        var answerWord: String

        enum CodingKeys: String, CodingKey {
            case vector, color, type, subtype, kind, answer
            case typeIndex = "type_index"
            case answerWord = "answer_word"
        }
    }

    var image: Int
    var objects: [Object]
    var questions: [Entry]
}
