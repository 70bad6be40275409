import Foundation
import XCTest

@testable import NFMData

final class SortOfCLEVRExportTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("nfm-clevr-\(UUID().uuidString)")
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    func testRoundTripOfAllSplits() throws {
        let splits = SortOfCLEVR.generate(
            SortOfCLEVR.Configuration(seed: 8, trainingImages: 30, testImages: 10, outOfDistributionImages: 12, heldOutColors: 2))
        try SortOfCLEVR.export(splits, to: directory)
        let train = try SortOfCLEVR.load(from: directory.appendingPathComponent("train"))
        XCTAssertEqual(train, splits.train)
        XCTAssertEqual(train.heldOutTrainingShapes, [.red: .square, .green: .circle])
        XCTAssertEqual(try SortOfCLEVR.load(from: directory.appendingPathComponent("test")), splits.test)
        let ood = try SortOfCLEVR.load(from: directory.appendingPathComponent("ood"))
        XCTAssertEqual(ood, splits.outOfDistribution)
        XCTAssertEqual(ood.split, .outOfDistribution)
    }

    func testFilesAreReadableAsPlainJSONAndBytes() throws {
        let dataset = SortOfCLEVR.generate(SortOfCLEVR.Configuration(seed: 8), split: .test, count: 3)
        try SortOfCLEVR.export(dataset, to: directory)
        let bytes = try Data(contentsOf: directory.appendingPathComponent("images.u8"))
        XCTAssertEqual(bytes.count, 3 * 75 * 75 * 3)
        let header = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(contentsOf: directory.appendingPathComponent("images.json"))) as? [String: Any])
        XCTAssertEqual(header["shape"] as? [Int], [3, 75, 75, 3])
        XCTAssertEqual(header["layout"] as? String, "NHWC")
        XCTAssertEqual(header["answers"] as? [String], ["yes", "no", "square", "circle", "1", "2", "3", "4", "5", "6"])
        XCTAssertEqual(header["colors"] as? [String], ["red", "green", "blue", "orange", "gray", "yellow"])

        let text = try String(contentsOf: directory.appendingPathComponent("scenes.jsonl"), encoding: .utf8)
        let lines = text.split(separator: "\n")
        XCTAssertEqual(lines.count, 3)
        let line = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(lines[1].utf8)) as? [String: Any])
        XCTAssertEqual(line["image"] as? Int, 1)
        let objects = try XCTUnwrap(line["objects"] as? [[String: Any]])
        XCTAssertEqual(objects.count, 6)
        let scene = dataset.scenes[1]
        XCTAssertEqual(objects[3]["color"] as? String, "orange")
        XCTAssertEqual(objects[3]["shape"] as? String, scene.objects[3].shape.name)
        XCTAssertEqual(objects[3]["x"] as? Double, scene.objects[3].x)
        let questions = try XCTUnwrap(line["questions"] as? [[String: Any]])
        XCTAssertEqual(questions.count, 20)
        let question = questions[12]
        XCTAssertEqual(question["vector"] as? [Int], scene.questions[12].vector.map { Int($0) })
        XCTAssertEqual(question["type"] as? String, "relational")
        XCTAssertEqual(question["answer"] as? Int, scene.questions[12].answer.rawValue)
        XCTAssertEqual(question["answer_word"] as? String, scene.questions[12].answer.word)
        // The pixel under each object's centre in image 2, read from the file in NHWC order, has its colour.
        for object in dataset.scenes[2].objects {
            let offset: Int = ((2 * 75 + Int(object.y)) * 75 + Int(object.x)) * 3
            let rgb = object.color.rgb
            XCTAssertEqual([UInt8](bytes[offset..<(offset + 3)]), [rgb.red, rgb.green, rgb.blue])
        }
    }

    func testHandBuiltSceneWithHalfPixelCentresRoundTrips() throws {
        var scene = SortOfCLEVR.Scene(objects: SortOfCLEVR.Color.allCases.map {
            .init(color: $0, shape: .circle, x: 37.5, y: 8 + 11.5 * Double($0.rawValue))
        })
        scene.questions = (0..<20).map { scene.question(about: .blue, kind: .init(relational: $0 >= 10, subtype: $0 % 3)) }
        let dataset = SortOfCLEVR.Dataset(scenes: [scene])
        try SortOfCLEVR.export(dataset, to: directory)
        XCTAssertEqual(try SortOfCLEVR.load(from: directory), dataset)
    }

    func testLoadRejectsAWrongAnswerAndMissingFiles() throws {
        let dataset = SortOfCLEVR.generate(SortOfCLEVR.Configuration(seed: 8), split: .train, count: 2)
        try SortOfCLEVR.export(dataset, to: directory)
        let scenesURL = directory.appendingPathComponent("scenes.jsonl")
        var lines = try String(contentsOf: scenesURL, encoding: .utf8).split(separator: "\n").map(String.init)
        // Flip the first yes/no answer of image 2 ("answer": 0 ↔ 1, with its word).
        let question = dataset.scenes[1].questions.first { $0.kind == .isLeft || $0.kind == .isTop }!
        let (old, new) = question.answer == .yes ? ("\"answer\": 0, \"answer_word\": \"yes\"", "\"answer\": 1, \"answer_word\": \"no\"")
            : ("\"answer\": 1, \"answer_word\": \"no\"", "\"answer\": 0, \"answer_word\": \"yes\"")
        let range = try XCTUnwrap(lines[1].range(of: old))
        lines[1].replaceSubrange(range, with: new)
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: scenesURL)
        XCTAssertThrowsError(try SortOfCLEVR.load(from: directory)) { error in
            let message = String(describing: error)
            XCTAssertTrue(message.contains("scenes.jsonl line 2"), message)
            XCTAssertTrue(message.contains("the objects say"), message)
        }

        try FileManager.default.removeItem(at: directory.appendingPathComponent("images.u8"))
        XCTAssertThrowsError(try SortOfCLEVR.load(from: directory)) { error in
            guard case .missingFile(let path, _) = error as? DataError else { return XCTFail("\(error)") }
            XCTAssertTrue(path.hasSuffix("images.u8"))
        }
    }
}
