import XCTest
import NFMKernels
@testable import NFMTensor

final class AutodiffTests: XCTestCase {
    func testGradientsAccumulateForATensorUsedTwice() {
        // f(x) = x·x + 3x  ⇒  f'(x) = 2x + 3
        let x = Tensor([1, -2, 0.5]).requiringGradient()
        let y = (x * x + 3 * x).sum()
        let grad = gradients(of: y, withRespectTo: [x])[0]!
        XCTAssertEqual(grad.scalars, [5, -1, 4])
    }

    func testNoGradientScopeRecordsNothing() {
        let x = Tensor([1, 2]).requiringGradient()
        let y = withoutGradient { exp(x) * 2 }
        XCTAssertFalse(y.requiresGradient)
        XCTAssertNil(gradients(of: y.sum(), withRespectTo: [x])[0])
        XCTAssertTrue((exp(x) * 2).requiresGradient, "recording resumes after the scope")
    }

    func testStopGradientBlocksFlow() {
        let x = Tensor([2, 3]).requiringGradient()
        // d/dx [x · stop(x)] = stop(x) = x, not 2x.
        let grad = gradients(of: (x * x.detached()).sum(), withRespectTo: [x])[0]!
        XCTAssertEqual(grad.scalars, [2, 3])
    }

    func testUnrelatedInputGetsNil() {
        let x = Tensor([1]).requiringGradient(), z = Tensor([5]).requiringGradient()
        let grads = gradients(of: (x * 2).sum(), withRespectTo: [x, z])
        XCTAssertEqual(grads[0]?.scalars, [2])
        XCTAssertNil(grads[1])
    }

    func testAnInputListedTwiceGetsItsGradientBothTimes() {
        // As torch.autograd.grad(y, [x, x]).
        let x = Tensor([1, 2]).requiringGradient()
        let grads = gradients(of: (x * 3).sum(), withRespectTo: [x, x])
        XCTAssertEqual(grads[0]?.scalars, [3, 3])
        XCTAssertEqual(grads[1]?.scalars, [3, 3])
    }

    func testBackwardOverAHundredThousandNodesDoesNotOverflowTheStack() {
        let x = Tensor([1]).requiringGradient()
        var y = x
        for _ in 0..<100_000 { y = y + 1e-6 }
        let grad = gradients(of: y.sum(), withRespectTo: [x])[0]!
        XCTAssertEqual(grad.scalars, [1])
        // Dropping a long, never-differentiated chain must not overflow either.
        var chain = x
        for _ in 0..<100_000 { chain = chain * 1 }
        chain = Tensor(0)
        XCTAssertFalse(chain.requiresGradient)
    }

    func testIntermediatesAreFreedAfterBackward() {
        weak var intermediateNode: GradientNode?
        let x = Tensor([1, 2, 3]).requiringGradient()
        var loss: Tensor
        do {
            let hidden = exp(x) * 2
            intermediateNode = hidden.node
            loss = hidden.sum()
        }
        XCTAssertNotNil(intermediateNode, "the graph holds the intermediate before backward")
        _ = gradients(of: loss, withRespectTo: [x])
        loss = Tensor(0)
        XCTAssertNil(intermediateNode, "backward freed the intermediate")
    }

    func testValueWithGradientOfAQuadratic() {
        let (value, grads) = valueWithGradient(at: [Tensor([3, 4])]) { x in (x[0] * x[0]).sum() }
        XCTAssertEqual(value.item, 25)
        XCTAssertEqual(grads[0].scalars, [6, 8])
    }

}

final class CreationTests: XCTestCase {
    func testCreationOps() {
        XCTAssertEqual(Tensor(zeros: [2, 2]).scalars, [0, 0, 0, 0])
        XCTAssertEqual(Tensor(ones: [3]).scalars, [1, 1, 1])
        XCTAssertEqual(Tensor(repeating: 7, shape: [2]).scalars, [7, 7])
        XCTAssertEqual(Tensor(rangeFrom: 0, to: 1, stride: 0.25).scalars, [0, 0.25, 0.5, 0.75])
        XCTAssertEqual(Tensor(shape: [2, 1], scalars: [1, 2])[1, 0], 2)
        XCTAssertEqual(Tensor(4).shape, [])
    }

    func testRandomDrawsAreSeededAndHaveTheRightMoments() {
        var a = SeededGenerator(seed: 42), b = SeededGenerator(seed: 42)
        let x = Tensor.randomNormal([20_000], mean: 1, std: 2, using: &a)
        XCTAssertEqual(x.scalars, Tensor.randomNormal([20_000], mean: 1, std: 2, using: &b).scalars)
        XCTAssertEqual(x.mean().item, 1, accuracy: 0.05)
        XCTAssertEqual(x.variance().item.squareRoot(), 2, accuracy: 0.05)
        let u = Tensor.randomUniform([20_000], lowerBound: -1, upperBound: 3, using: &a)
        XCTAssertGreaterThanOrEqual(u.scalars.min()!, -1)
        XCTAssertLessThan(u.scalars.max()!, 3)
        XCTAssertEqual(u.mean().item, 1, accuracy: 0.05)
        // Restoring the state resumes the same stream.
        let saved = a.state
        let next = a.next()
        var restored = SeededGenerator(state: saved)
        XCTAssertEqual(restored.next(), next)
    }

    func testValueSemantics() {
        let a = Tensor([1, 2, 3])
        var b = a
        b.withUniquelyOwnedBuffer { Kernels.backend.fill($0, with: 10) }
        XCTAssertEqual(a.scalars, [1, 2, 3])
        XCTAssertEqual(b.scalars, [10, 10, 10])
    }

    func testDropoutKeepsOrScalesAndRoutesGradientThroughTheSameMask() {
        var generator = SeededGenerator(seed: 7)
        let x = Tensor(ones: [10_000]).requiringGradient()
        let y = dropout(x, probability: 0.3, using: &generator)
        let values = Set(y.scalars.map { ($0 * 1000).rounded() / 1000 })
        XCTAssertEqual(values, [0, Float(1 / 0.7 * 1000).rounded() / 1000])
        let keptFraction = Float(y.scalars.filter { $0 != 0 }.count) / 10_000
        XCTAssertEqual(keptFraction, 0.7, accuracy: 0.02)
        let grad = gradients(of: y.sum(), withRespectTo: [x])[0]!
        XCTAssertEqual(grad.scalars, y.detached().scalars)
    }
}
