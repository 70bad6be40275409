import XCTest

@testable import NFMData

/// The six question kinds answered on hand-built scenes, whose answers are worked out by hand here.
final class SortOfCLEVRAnswerTests: XCTestCase {
    typealias Object = SortOfCLEVR.SceneObject

    /// A scene from (colour, shape, x, y) in colour order.
    func scene(_ objects: [(SortOfCLEVR.Shape, Double, Double)]) -> SortOfCLEVR.Scene {
        SortOfCLEVR.Scene(
            objects: zip(SortOfCLEVR.Color.allCases, objects).map { color, object in
                Object(color: color, shape: object.0, x: object.1, y: object.2)
            })
    }

    func testAnswerIndicesAndQuestionVector() {
        XCTAssertEqual(SortOfCLEVR.Answer.allCases.map(\.rawValue), Array(0..<10))
        XCTAssertEqual(
            SortOfCLEVR.Answer.allCases.map(\.word), ["yes", "no", "square", "circle", "1", "2", "3", "4", "5", "6"])
        XCTAssertEqual(SortOfCLEVR.Answer(count: 1).rawValue, 4)
        XCTAssertEqual(SortOfCLEVR.Answer(count: 6).rawValue, 9)
        XCTAssertEqual(SortOfCLEVR.Answer(shape: .square).rawValue, 2)
        XCTAssertEqual(SortOfCLEVR.Answer(shape: .circle).rawValue, 3)

        let question = SortOfCLEVR.Question(color: .blue, kind: .farthestShape, answer: .square)
        XCTAssertEqual(question.vector, [0, 0, 1, 0, 0, 0, 0, 1, 0, 1, 0])
        let nonRelational = SortOfCLEVR.Question(color: .yellow, kind: .isTop, answer: .no)
        XCTAssertEqual(nonRelational.vector, [0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 1])
        for kind in SortOfCLEVR.QuestionKind.allCases {
            XCTAssertEqual(SortOfCLEVR.QuestionKind(relational: kind.isRelational, subtype: kind.subtype), kind)
        }
        XCTAssertEqual(SortOfCLEVR.QuestionKind.allCases.filter(\.isRelational), [.nearestShape, .farthestShape, .sameShapeCount])
    }

    func testShape() {
        let scene = scene([(.square, 10, 10), (.circle, 30, 10), (.square, 50, 10), (.circle, 10, 50), (.circle, 30, 50), (.square, 50, 50)])
        XCTAssertEqual(scene.answer(about: .red, kind: .shape), .square)
        XCTAssertEqual(scene.answer(about: .green, kind: .shape), .circle)
        XCTAssertEqual(scene.answer(about: .yellow, kind: .shape), .square)
        XCTAssertEqual(scene.answer(about: .gray, kind: .shape), .circle)
    }

    func testLeftAndTopAtTheCentreLineAndEdges() {
        // x (and y) = 37.5 is exactly on the centre line: not left (not top), since the rule is x < 37.5.
        let scene = scene([
            (.square, 37, 37), (.square, 37.5, 37.5), (.circle, 38, 38),
            (.circle, 5, 70), (.square, 70, 5), (.circle, 37.49, 37.51),
        ])
        XCTAssertEqual(scene.answer(about: .red, kind: .isLeft), .yes)
        XCTAssertEqual(scene.answer(about: .red, kind: .isTop), .yes)
        XCTAssertEqual(scene.answer(about: .green, kind: .isLeft), .no)
        XCTAssertEqual(scene.answer(about: .green, kind: .isTop), .no)
        XCTAssertEqual(scene.answer(about: .blue, kind: .isLeft), .no)
        XCTAssertEqual(scene.answer(about: .blue, kind: .isTop), .no)
        XCTAssertEqual(scene.answer(about: .orange, kind: .isLeft), .yes)
        XCTAssertEqual(scene.answer(about: .orange, kind: .isTop), .no)
        XCTAssertEqual(scene.answer(about: .gray, kind: .isLeft), .no)
        XCTAssertEqual(scene.answer(about: .gray, kind: .isTop), .yes)
        XCTAssertEqual(scene.answer(about: .yellow, kind: .isLeft), .yes)
        XCTAssertEqual(scene.answer(about: .yellow, kind: .isTop), .no)
    }

    func testNearestWithATieGoesToTheLowestColourIndex() {
        // Red at (20, 20); green and blue both exactly 10 away; the rest farther.
        var objects: [(SortOfCLEVR.Shape, Double, Double)] = [
            (.square, 20, 20), (.circle, 30, 20), (.square, 20, 30), (.square, 60, 60), (.square, 60, 20), (.square, 20, 60),
        ]
        XCTAssertEqual(scene(objects).nearestObject(to: .red).color, .green)
        XCTAssertEqual(scene(objects).answer(about: .red, kind: .nearestShape), .circle)
        // Swap the two tied shapes: the answer follows green, the lower index, not a shape preference.
        objects[1].0 = .square
        objects[2].0 = .circle
        XCTAssertEqual(scene(objects).answer(about: .red, kind: .nearestShape), .square)
        // Move green 0.5 farther: blue is now strictly nearest.
        objects[1].1 = 30.5
        XCTAssertEqual(scene(objects).nearestObject(to: .red).color, .blue)
        XCTAssertEqual(scene(objects).answer(about: .red, kind: .nearestShape), .circle)
        // A tie between higher colours (gray and yellow, both 15 from orange), with red farther away.
        let tied = scene([
            (.square, 10, 10), (.square, 70, 10), (.square, 10, 70), (.circle, 40, 40), (.circle, 55, 40), (.square, 40, 55),
        ])
        XCTAssertEqual(tied.nearestObject(to: .orange).color, .gray)
        XCTAssertEqual(tied.answer(about: .orange, kind: .nearestShape), .circle)
        // From yellow (40, 55): orange is 15 away, gray 15√2 ≈ 21.2, so no tie and orange is nearest.
        XCTAssertEqual(tied.nearestObject(to: .yellow).color, .orange)
    }

    func testFarthestWithATieGoesToTheLowestColourIndex() {
        // Red in the middle; gray and yellow both exactly 30 away on either side; others nearer.
        var objects: [(SortOfCLEVR.Shape, Double, Double)] = [
            (.square, 37, 37), (.square, 37, 20), (.square, 20, 37), (.square, 50, 50), (.circle, 7, 37), (.square, 67, 37),
        ]
        XCTAssertEqual(scene(objects).farthestObject(from: .red).color, .gray)
        XCTAssertEqual(scene(objects).answer(about: .red, kind: .farthestShape), .circle)
        objects[4].0 = .square
        objects[5].0 = .circle
        XCTAssertEqual(scene(objects).answer(about: .red, kind: .farthestShape), .square)
        // Push yellow one pixel farther: it wins outright.
        objects[5].1 = 68
        XCTAssertEqual(scene(objects).farthestObject(from: .red).color, .yellow)
        XCTAssertEqual(scene(objects).answer(about: .red, kind: .farthestShape), .circle)
        // From a corner, the opposite corner is farthest.
        let corners = scene([
            (.circle, 5, 5), (.square, 70, 70), (.circle, 37, 37), (.circle, 70, 5), (.circle, 5, 70), (.circle, 50, 20),
        ])
        XCTAssertEqual(corners.answer(about: .red, kind: .farthestShape), .square)
        XCTAssertEqual(corners.answer(about: .green, kind: .farthestShape), .circle)
    }

    func testSameShapeCountIncludesTheObjectItself() {
        let mixed = scene([(.square, 10, 10), (.circle, 30, 10), (.square, 50, 10), (.square, 10, 50), (.circle, 30, 50), (.square, 50, 50)])
        XCTAssertEqual(mixed.answer(about: .red, kind: .sameShapeCount), .four)
        XCTAssertEqual(mixed.answer(about: .green, kind: .sameShapeCount), .two)
        XCTAssertEqual(mixed.answer(about: .gray, kind: .sameShapeCount), .two)
        let alone = scene([(.square, 10, 10), (.square, 30, 10), (.circle, 50, 10), (.square, 10, 50), (.square, 30, 50), (.square, 50, 50)])
        XCTAssertEqual(alone.answer(about: .blue, kind: .sameShapeCount), .one)
        XCTAssertEqual(alone.answer(about: .yellow, kind: .sameShapeCount), .five)
        let all = scene([(.circle, 10, 10), (.circle, 30, 10), (.circle, 50, 10), (.circle, 10, 50), (.circle, 30, 50), (.circle, 50, 50)])
        XCTAssertEqual(all.answer(about: .orange, kind: .sameShapeCount), .six)
        XCTAssertEqual(all.answer(about: .orange, kind: .sameShapeCount).word, "6")
    }

    func testSceneStoresObjectsByColour() {
        let shuffled = [
            Object(color: .yellow, shape: .circle, x: 60, y: 60), Object(color: .red, shape: .square, x: 10, y: 10),
            Object(color: .gray, shape: .square, x: 40, y: 60), Object(color: .green, shape: .circle, x: 30, y: 10),
            Object(color: .orange, shape: .circle, x: 20, y: 60), Object(color: .blue, shape: .square, x: 50, y: 10),
        ]
        let scene = SortOfCLEVR.Scene(objects: shuffled)
        XCTAssertEqual(scene.objects.map(\.color), SortOfCLEVR.Color.allCases)
        XCTAssertEqual(scene.object(.gray).x, 40)
    }
}
