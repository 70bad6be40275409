import ClassifyKit
import NFMData
import NFMTensor
import XCTest

final class AccuracyTableTests: XCTestCase {
    typealias Kind = SortOfCLEVR.QuestionKind

    /// Hand-made predictions: in-distribution, shape 3/4, is_left 1/2, nearest_shape 0/1,
    /// same_shape_count 2/2; out-of-distribution, shape 1/2, farthest_shape 1/1.
    func makeTable() -> AccuracyTable {
        var table = AccuracyTable.sortOfCLEVR(splits: [AccuracyTable.inDistribution, AccuracyTable.outOfDistribution])
        table.record(
            split: 0,
            categories: [Kind.shape, .shape, .shape, .shape, .isLeft, .isLeft, .nearestShape, .sameShapeCount, .sameShapeCount].map(\.rawValue),
            predictions: [2, 3, 2, 2, 0, 0, 2, 5, 9],
            labels: [2, 3, 2, 3, 0, 1, 3, 5, 9])
        table.record(
            split: 1, categories: [Kind.shape, .shape, .farthestShape].map(\.rawValue), predictions: [3, 2, 2], labels: [3, 3, 2])
        return table
    }

    func testCountsAndSummaryAccuraciesPerSplit() {
        let table = makeTable()
        XCTAssertEqual(table.cells[0][Kind.shape.rawValue], AccuracyTable.Cell(correct: 3, total: 4))
        XCTAssertEqual(table.cells[0][Kind.isTop.rawValue], AccuracyTable.Cell(correct: 0, total: 0))
        XCTAssertNil(table.cells[0][Kind.isTop.rawValue].accuracy, "an empty cell has no accuracy")
        let metrics = table.metrics()
        XCTAssertEqual(metrics["eval/nonrelational_accuracy"]!, 4.0 / 6, accuracy: 1e-12)
        XCTAssertEqual(metrics["eval/relational_accuracy"]!, 2.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(metrics["eval/accuracy"]!, 6.0 / 9, accuracy: 1e-12)
        XCTAssertEqual(metrics["ood/nonrelational_accuracy"]!, 0.5, accuracy: 1e-12)
        XCTAssertEqual(metrics["ood/relational_accuracy"]!, 1, accuracy: 1e-12)
        XCTAssertEqual(metrics["ood/accuracy"]!, 2.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(metrics.count, 6)
    }

    func testTheColorTableHasARowPerKindAndColourAndAColourSummaryRow() {
        var table = AccuracyTable.sortOfCLEVRByColor(splits: [AccuracyTable.inDistribution])
        let red = SortOfCLEVR.Color.red, yellow = SortOfCLEVR.Color.yellow
        // is_left about red: 2 of 3 right; about yellow: 0 of 1; count about red: 1 of 1.
        let rows = [(Kind.isLeft, red), (.isLeft, red), (.isLeft, red), (.isLeft, yellow), (.sameShapeCount, red)]
        table.record(
            split: 0, categories: rows.map { AccuracyTable.colorCategory(kind: $0.0, color: $0.1) },
            predictions: [0, 1, 0, 0, 4], labels: [0, 1, 1, 1, 4])
        XCTAssertEqual(table.categories.count, 36)
        XCTAssertEqual(table.categories[AccuracyTable.colorCategory(kind: .isLeft, color: yellow)], "is_left yellow")
        XCTAssertEqual(table.cell(split: 0, members: [AccuracyTable.colorCategory(kind: .isLeft, color: red)]), AccuracyTable.Cell(correct: 2, total: 3))
        XCTAssertEqual(table.metrics(), ["eval/red_accuracy": 0.75, "eval/yellow_accuracy": 0], "one summary row per colour")
        let lines = table.csv().split(separator: "\n")
        XCTAssertEqual(lines.count, 1 + 36 + 6)
        XCTAssertEqual(lines.last, "yellow,,0,1,0.000000")
    }

    func testCSVHasOneLinePerQuestionTypeThenTheGroups() {
        let lines = makeTable().csv().split(separator: "\n").map(String.init)
        XCTAssertEqual(
            lines[0], "category,type,eval_correct,eval_total,eval_accuracy,ood_correct,ood_total,ood_accuracy")
        XCTAssertEqual(lines[1], "shape,non-relational,3,4,0.750000,1,2,0.500000")
        XCTAssertEqual(lines[3], "is_top,non-relational,0,0,,0,0,", "empty cells leave the accuracy blank")
        XCTAssertEqual(lines[5], "farthest_shape,relational,0,0,,1,1,1.000000")
        XCTAssertEqual(lines[7], "nonrelational,,4,6,0.666667,1,2,0.500000")
        XCTAssertEqual(lines[9], "all,,6,9,0.666667,2,3,0.666667")
        XCTAssertEqual(lines.count, 10)
    }

    func testFormattedTableShowsPercentCountsAndDashes() {
        let text = makeTable().formatted()
        let lines = text.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines[0].contains("in-distribution") && lines[0].contains("out-of-distribution"), lines[0])
        XCTAssertTrue(lines[1].hasPrefix("shape") && lines[1].contains("75.0% (4)") && lines[1].contains("50.0% (2)"), lines[1])
        XCTAssertTrue(lines[3].hasPrefix("is_top") && lines[3].hasSuffix("-"), lines[3])
        XCTAssertTrue(lines[7].allSatisfy { $0 == "-" }, "a rule before the summary rows")
        XCTAssertTrue(lines[10].hasPrefix("all") && lines[10].contains("66.7% (9)"), lines[10])
    }

    func testFashionMNISTTableIsPerClass() {
        var table = AccuracyTable.fashionMNIST()
        table.record(split: 0, categories: [0, 0, 9], predictions: [0, 6, 9], labels: [0, 0, 9])
        XCTAssertEqual(table.metrics(), ["eval/accuracy": 2.0 / 3])
        XCTAssertTrue(table.csv().contains("T-shirt/top,,1,2,0.500000"))
        XCTAssertTrue(table.formatted().hasPrefix("class"))
    }

    func testPredictionsAreTheArgMaxWithTheFirstOnTies() {
        let scores = Tensor(shape: [3, 4], scalars: [0, 3, 1, 3, -1, -2, -0.5, -3, 7, 0, 0, 0])
        XCTAssertEqual(Evaluator.predictions(scores), [1, 2, 0])
    }
}

final class QuestionPriorTests: XCTestCase {
    typealias Kind = SortOfCLEVR.QuestionKind

    /// A scene with one object per colour in the given shapes, at distinct positions.
    func scene(_ shapes: [SortOfCLEVR.Shape], questions: [(SortOfCLEVR.Color, Kind)]) -> SortOfCLEVR.Scene {
        let objects = SortOfCLEVR.Color.allCases.map { color in
            SortOfCLEVR.SceneObject(color: color, shape: shapes[color.rawValue], x: Double(10 + 11 * color.rawValue), y: 20)
        }
        let plain = SortOfCLEVR.Scene(objects: objects)
        return SortOfCLEVR.Scene(objects: objects, questions: questions.map { plain.question(about: $0.0, kind: $0.1) })
    }

    func testTheQuestionOnlyPredictorAnswersEachQuestionsMostCommonTrainingAnswer() {
        let questions: [(SortOfCLEVR.Color, Kind)] = [(.red, .shape), (.blue, .shape), (.red, .isLeft), (.red, .sameShapeCount)]
        // Training: red is a square twice and a circle once; blue is a circle twice, a square once;
        // red's shape is shared by 5, 5 and 2 objects.
        let train = SortOfCLEVR.Dataset(split: .train, scenes: [
            scene([.square, .square, .circle, .square, .square, .square], questions: questions),
            scene([.square, .square, .circle, .square, .square, .square], questions: questions),
            scene([.circle, .circle, .square, .square, .square, .square], questions: questions),
        ])
        let answers = QuestionPrior.majorityAnswers(train)
        XCTAssertEqual(answers[Kind.shape.rawValue][SortOfCLEVR.Color.red.rawValue], SortOfCLEVR.Answer.square.rawValue)
        XCTAssertEqual(answers[Kind.shape.rawValue][SortOfCLEVR.Color.blue.rawValue], SortOfCLEVR.Answer.circle.rawValue)
        XCTAssertEqual(answers[Kind.isLeft.rawValue][SortOfCLEVR.Color.red.rawValue], SortOfCLEVR.Answer.yes.rawValue)
        // Counts 5, 5 and 2 for red's shape: the answer "5".
        XCTAssertEqual(answers[Kind.sameShapeCount.rawValue][SortOfCLEVR.Color.red.rawValue], SortOfCLEVR.Answer.five.rawValue)
        // Unasked questions: a tie at zero goes to the lowest answer index.
        XCTAssertEqual(answers[Kind.isTop.rawValue][SortOfCLEVR.Color.gray.rawValue], 0)

        // Test: red a circle (shape wrong), blue a circle (right), red on the left (right), count 1 (wrong).
        let test = SortOfCLEVR.Dataset(split: .test, scenes: [
            scene([.circle, .square, .circle, .square, .square, .square], questions: questions)
        ])
        let table = QuestionPrior.table(train: train, test: test, outOfDistribution: nil)
        XCTAssertEqual(table.metrics(), ["eval/accuracy": 0.5, "eval/nonrelational_accuracy": 2.0 / 3, "eval/relational_accuracy": 0])
    }
}
