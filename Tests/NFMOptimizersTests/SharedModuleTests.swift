import NFMNN
import NFMOptimizers
import NFMTensor
import XCTest

/// One linear layer applied twice, as a tied-weight model is: y = L(tanh(L(x))).
private final class AppliedTwice: Module, UnaryLayer {
    let first: Linear
    let second: Linear

    init(_ layer: Linear) {
        first = layer
        second = layer
        super.init()
    }

    func callAsFunction(_ x: Tensor) -> Tensor { second(tanh(first(x))) }
}

/// A module used twice is one set of parameters, as in torch: named once, one gradient summing both
/// uses, one optimizer step.
final class SharedModuleTests: XCTestCase {
    func testAModuleUsedTwiceGetsOneGradientSummingBothUsesAndOneStep() {
        var generator = SeededGenerator(seed: 12)
        let layer = Linear(3, 3, using: &generator)
        let model = AppliedTwice(layer)
        let input = Tensor.randomNormal([4, 3], using: &generator)
        func loss(_ model: AppliedTwice) -> Tensor {
            let y = model(input)
            return (y * y).sum()
        }

        // torch: named_parameters() lists a shared parameter once; state_dict() under every name.
        XCTAssertEqual(model.namedParameters().map(\.name), ["first.weight", "first.bias"])
        XCTAssertEqual(Set(model.stateDict().keys), ["first.weight", "first.bias", "second.weight", "second.bias"])
        XCTAssertEqual(model.parameterCount, 12)
        let (_, gradients) = valueAndGrad(model: model, loss)
        XCTAssertEqual(Set(gradients.keys), ["first.weight", "first.bias"], "one gradient per parameter, under its first name")

        // Central differences of the loss in each parameter see both uses at once, so they check that
        // the gradient is the sum of both uses' contributions, not one of them.
        let epsilon: Float = 1e-2
        for name in ["weight", "bias"] {
            let original = name == "weight" ? layer.weight : layer.bias!
            var expected = [Float](repeating: 0, count: original.scalarCount)
            for index in expected.indices {
                func lossWith(_ change: Float) -> Float {
                    var scalars = original.scalars
                    scalars[index] += change
                    if name == "weight" { layer.weight = Tensor(shape: original.shape, scalars: scalars) } else { layer.bias = Tensor(shape: original.shape, scalars: scalars) }
                    return withoutGradient { loss(model) }.item
                }
                expected[index] = (lossWith(epsilon) - lossWith(-epsilon)) / (2 * epsilon)
            }
            if name == "weight" { layer.weight = original } else { layer.bias = original }
            assertClose(
                gradients["first." + name]!, Tensor(shape: original.shape, scalars: expected), relative: 1e-2, absolute: 2e-3,
                "gradient of the shared \(name) against finite differences")
        }

        // One SGD step moves each parameter by −lr·g once; stepping the shared layer under both of its
        // names would move it twice as far.
        let before = (layer.weight, layer.bias!)
        SGD(learningRate: 0.5).update(model: model, gradients: gradients)
        assertClose(layer.weight, before.0 - 0.5 * gradients["first.weight"]!, "weight after one step")
        assertClose(layer.bias!, before.1 - 0.5 * gradients["first.bias"]!, "bias after one step")
    }
}
