import NFMTensor
import XCTest

@testable import NFMNN

/// A module with one fixed child and one that can be replaced.
private final class Replaceable: Module {
    let body: Linear
    @ModuleInfo(key: "head_layer") var head: Linear

    init(using generator: inout SeededGenerator) {
        body = Linear(2, 3, using: &generator)
        super.init()
        head = Linear(3, 1, using: &generator)
    }
}

/// The parameter table is found by reflection once and reused; replacing a `@ModuleInfo` child
/// rebuilds it.
final class ParameterTableTests: XCTestCase {
    func testTheTableIsReusedUntilAModuleInfoChildIsReplaced() {
        var generator = SeededGenerator(seed: 3)
        let model = Replaceable(using: &generator)
        let table = model.parameterTable
        _ = model.namedParameters()
        _ = model.stateDict()
        _ = valueAndGrad(model: model) { model in model.head(model.body(Tensor(ones: [1, 2]))).sum() }
        model.eval()
        XCTAssertTrue(model.parameterTable === table, "the table is built once and reused")

        // New parameter values are not a new structure: the table stays, and reads the new values.
        model.body.weight = Tensor(zeros: [3, 2])
        XCTAssertTrue(model.parameterTable === table)
        XCTAssertEqual(model.namedParameters().first { $0.name == "body.weight" }?.tensor.scalars, [Float](repeating: 0, count: 6))

        // A new child is: every name, gradient, optimizer slot and train/eval switch must see it.
        let newHead = Linear(3, 4, using: &generator)
        model.head = newHead
        XCTAssertFalse(model.parameterTable === table, "replacing a @ModuleInfo child rebuilds the table")
        XCTAssertEqual(
            model.namedParameters().map { "\($0.name) \($0.tensor.shape)" },
            ["body.weight [3, 2]", "body.bias [3]", "head_layer.weight [4, 3]", "head_layer.bias [4]"])
        XCTAssertEqual(model.stateDict()["head_layer.weight"]?.shape, [4, 3])
        let (_, gradients) = valueAndGrad(model: model) { model in model.head(model.body(Tensor(ones: [1, 2]))).sum() }
        XCTAssertEqual(gradients["head_layer.weight"]?.shape, [4, 3])
        XCTAssertTrue(newHead.isTraining)
        model.eval()
        XCTAssertFalse(newHead.isTraining, "eval() reaches the new child")
    }
}
