import Foundation
import NFMNN
import NFMTensor
import XCTest

/// torch's `Block`: a batch norm child registered before a parameter of its own.
private final class Block: Module {
    let norm = BatchNorm1d(3)
    @ParameterInfo var gate = Tensor(ones: [3])
}

/// The Swift twin of the nested torch module in make_layer_fixtures.py, declared in torch's
/// registration order (children before some of the module's own parameters and buffers).
private final class Nested: Module {
    let layers: [Linear]
    @ParameterInfo var scale = Tensor(ones: [3])
    @ModuleInfo(key: "block") var innerBlock = Block()
    @BufferInfo var offset = Tensor(zeros: [3])
    let extras = ParameterList([Tensor(zeros: [2]), Tensor(zeros: [2, 3])])

    init(using generator: inout SeededGenerator) {
        layers = [Linear(4, 3, using: &generator), Linear(3, 3, bias: false, using: &generator)]
        super.init()
    }
}

/// The same tree with its list of layers declared through `@ModuleInfo` under a torch key.
private final class NestedWithModuleInfo: Module {
    @ModuleInfo(key: "layers") var linearLayers: [Linear]
    @ParameterInfo var scale = Tensor(ones: [3])
    @ModuleInfo(key: "block") var innerBlock = Block()
    @BufferInfo var offset = Tensor(zeros: [3])
    let extras = ParameterList([Tensor(zeros: [2]), Tensor(zeros: [2, 3])])

    init(using generator: inout SeededGenerator) {
        super.init()
        linearLayers = [Linear(4, 3, using: &generator), Linear(3, 3, bias: false, using: &generator)]
    }
}

/// Children held in the other ways a Swift module may hold them: optionals, and an array of layers
/// typed by protocol.
private final class Holder: Module {
    let present: Linear?
    let absent: Linear?
    @ModuleInfo(key: "head_layer") var head: Linear?
    let blocks: [any UnaryLayer]

    init(using generator: inout SeededGenerator) {
        present = Linear(2, 2, using: &generator)
        absent = nil
        blocks = [ReLU(), Linear(2, 1, bias: false, using: &generator)]
        super.init()
        head = Linear(2, 1, bias: false, using: &generator)
    }
}

/// Keys and order as torch names them, train/eval propagation, default initialisation, state-dict
/// loading errors, and `valueAndGrad(model:)`.
final class ModuleTests: XCTestCase {
    private struct TorchKeys {
        let stateDict: [(key: String, shape: [Int], dtype: String)]
        let namedParameters: [String]
        let namedBuffers: [String]
        let trainingAfterEval: [String: Bool]

        init() throws {
            let json = try Fixture.load("module_keys")
            stateDict = (json["state_dict"] as! [[String: Any]]).map {
                ($0["key"] as! String, $0["shape"] as! [Int], $0["dtype"] as! String)
            }
            namedParameters = json["named_parameters"] as! [String]
            namedBuffers = json["named_buffers"] as! [String]
            trainingAfterEval = json["training_after_eval"] as! [String: Bool]
        }
    }

    /// Every module of the tree with its dotted name (torch's `named_modules()`, root named "").
    private func namedModules(_ module: Module, prefix: String = "") -> [(name: String, module: Module)] {
        [(prefix, module)]
            + module.children().flatMap {
                namedModules($0.module, prefix: prefix.isEmpty ? $0.key : prefix + "." + $0.key)
            }
    }

    private func checkKeys(of model: Module, _ message: String) throws {
        let torch = try TorchKeys()
        let stateDict = model.stateDict()
        XCTAssertEqual(stateDict.keys, torch.stateDict.map(\.key), "\(message): state_dict keys and order")
        for (key, shape, dtype) in torch.stateDict {
            XCTAssertEqual(stateDict[key]?.shape, shape, "\(message): shape of \(key)")
            if case .int64 = stateDict[key] {
                XCTAssertEqual(dtype, "int64", "\(message): \(key) is a counter in Swift but \(dtype) in torch")
            } else {
                XCTAssertEqual(dtype, "float32", "\(message): \(key) is a float in Swift but \(dtype) in torch")
            }
        }
        let parameterNames = model.namedParameters().map(\.name)
        XCTAssertEqual(parameterNames, torch.namedParameters, "\(message): named_parameters order")
        XCTAssertEqual(
            stateDict.keys.filter { !parameterNames.contains($0) }, torch.namedBuffers, "\(message): named_buffers order")
        // torch's ModuleList is a module of its own ("layers"); a Swift array of modules is not.
        XCTAssertEqual(
            Set(namedModules(model).map(\.name)), Set(torch.trainingAfterEval.keys).subtracting(["layers"]),
            "\(message): named_modules")
    }

    func testNestedModuleKeysMatchTorch() throws {
        var generator = SeededGenerator(seed: 1)
        try checkKeys(of: Nested(using: &generator), "array property")
        try checkKeys(of: NestedWithModuleInfo(using: &generator), "@ModuleInfo array")
    }

    func testOptionalAndProtocolTypedChildrenAreKeyedLikeTorch() {
        var generator = SeededGenerator(seed: 1)
        let holder = Holder(using: &generator)
        XCTAssertEqual(holder.stateDict().keys, ["present.weight", "present.bias", "head_layer.weight", "blocks.1.weight"])
        holder.eval()
        XCTAssertFalse(holder.blocks[1].isTraining, "eval() reaches a layer in an array typed by protocol")
    }

    func testNestedModuleLoadsTorchKeysStrictly() throws {
        var generator = SeededGenerator(seed: 1)
        let model = Nested(using: &generator)
        var stateDict = StateDict()
        for (index, (key, shape, dtype)) in try TorchKeys().stateDict.enumerated() {
            let count = shape.reduce(1, *)
            stateDict[key] =
                dtype == "int64"
                ? .int64(42) : .float(Tensor(shape: shape, scalars: (0..<count).map { Float(index) + Float($0) / 8 }))
        }
        try model.load(stateDict: stateDict)
        assertStateDictsMatch(model.stateDict(), stateDict, "nested module after loading", absolute: 0, relative: 0)
        XCTAssertEqual(model.innerBlock.norm.batchesTracked, 42)
        XCTAssertEqual(model.extras[1].shape, [2, 3])
        XCTAssertEqual(model.layers[1].weight.scalars, (0..<9).map { 4 + Float($0) / 8 })
    }

    func testTrainAndEvalReachEveryDescendant() throws {
        var generator = SeededGenerator(seed: 1)
        let model = Nested(using: &generator)
        let modules = namedModules(model)
        XCTAssertTrue(modules.allSatisfy(\.module.isTraining), "modules start in training mode")
        model.eval()
        let torch = try TorchKeys()
        for (name, module) in modules {
            XCTAssertEqual(module.isTraining, torch.trainingAfterEval[name], "'\(name)' after eval()")
        }
        model.train()
        for (name, module) in modules { XCTAssertTrue(module.isTraining, "'\(name)' after train()") }

        let sequential = Sequential([BatchNorm2d(2), ReLU()])
        sequential.eval()
        XCTAssertFalse(sequential.layers[0].isTraining, "eval() on a Sequential reaches its layers")
    }

    // MARK: Default initialisation

    /// Checks that `values` lie in [−bound, bound] and spread over it like U(−bound, bound).
    private func checkUniform(_ values: Tensor, bound: Float, _ message: String) {
        let scalars = values.scalars
        let (low, high) = (scalars.min()!, scalars.max()!)
        XCTAssertGreaterThanOrEqual(low, -bound, "\(message): below the bound \(bound)")
        XCTAssertLessThanOrEqual(high, bound, "\(message): above the bound \(bound)")
        // The extremes of n uniform draws fall short of the bound by about 2·bound/n.
        let reach: Float = scalars.count >= 1000 ? 0.99 : 0.8
        XCTAssertLessThan(low, -reach * bound, "\(message): does not reach −\(bound)")
        XCTAssertGreaterThan(high, reach * bound, "\(message): does not reach \(bound)")
        guard scalars.count >= 1000 else { return }
        let mean = scalars.reduce(0, +) / Float(scalars.count)
        let variance = scalars.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(scalars.count)
        XCTAssertLessThan(abs(mean), 0.05 * bound, "\(message): mean")
        // U(−b, b) has variance b²/3.
        XCTAssertEqual(variance, bound * bound / 3, accuracy: 0.1 * bound * bound / 3, "\(message): variance")
    }

    func testDefaultInitialisationMatchesTorchBounds() throws {
        var generator = SeededGenerator(seed: 2021)
        let linear = Linear(400, 60, using: &generator)
        checkUniform(linear.weight, bound: 1 / Float(400).squareRoot(), "Linear weight")
        checkUniform(try XCTUnwrap(linear.bias), bound: 1 / Float(400).squareRoot(), "Linear bias")

        let convolution = Conv2d(6, 40, kernelSize: 3, using: &generator)
        let convolutionBound = 1 / Float(6 * 3 * 3).squareRoot()
        checkUniform(convolution.weight, bound: convolutionBound, "Conv2d weight")
        checkUniform(try XCTUnwrap(convolution.bias), bound: convolutionBound, "Conv2d bias")

        // torch's fan_in for a transposed convolution's [in, out, kh, kw] weight is out·kh·kw.
        let transposed = ConvTranspose2d(6, 40, kernelSize: 3, using: &generator)
        XCTAssertEqual(transposed.weight.shape, [6, 40, 3, 3])
        let transposedBound = 1 / Float(40 * 3 * 3).squareRoot()
        checkUniform(transposed.weight, bound: transposedBound, "ConvTranspose2d weight")
        checkUniform(try XCTUnwrap(transposed.bias), bound: transposedBound, "ConvTranspose2d bias")

        let norm = BatchNorm2d(4)
        XCTAssertEqual(norm.weight.scalars, [1, 1, 1, 1])
        XCTAssertEqual(norm.bias.scalars, [0, 0, 0, 0])
        XCTAssertEqual(norm.runningMean.scalars, [0, 0, 0, 0])
        XCTAssertEqual(norm.runningVariance.scalars, [1, 1, 1, 1])
        XCTAssertEqual(norm.batchesTracked, 0)
    }

    func testInitialisationIsReproducibleFromTheSeed() {
        var first = SeededGenerator(seed: 5)
        var second = SeededGenerator(seed: 5)
        XCTAssertEqual(Linear(3, 2, using: &first).weight.scalars, Linear(3, 2, using: &second).weight.scalars)
    }

    func testDropoutZeroesAndRescalesInTrainingModeOnly() {
        let dropout = Dropout(probability: 0.25)
        var generator = SeededGenerator(seed: 6)
        let input = Tensor(ones: [100, 100])
        let dropped = dropout(input, using: &generator).scalars
        let zeroed = Float(dropped.filter { $0 == 0 }.count) / Float(dropped.count)
        XCTAssertEqual(zeroed, 0.25, accuracy: 0.02, "fraction zeroed")
        XCTAssertTrue(dropped.allSatisfy { $0 == 0 || abs($0 - 1 / 0.75) < 1e-6 }, "kept elements scale by 1/(1 − p)")
        dropout.eval()
        XCTAssertEqual(dropout(input, using: &generator).scalars, input.scalars, "eval mode is the identity")
    }

    // MARK: Loading

    private func linearStateDict(weightShape: [Int] = [2, 3], bias: Bool = true, extra: Bool = false) -> StateDict {
        var stateDict = StateDict()
        stateDict["weight"] = .float(Tensor(repeating: 0.5, shape: weightShape))
        if bias { stateDict["bias"] = .float(Tensor([0.25, -0.25])) }
        if extra { stateDict["extra"] = .float(Tensor([1])) }
        return stateDict
    }

    func testLoadErrorNamesEveryProblemAndChangesNothing() {
        var generator = SeededGenerator(seed: 3)
        let linear = Linear(3, 2, using: &generator)
        let before = linear.stateDict()
        XCTAssertThrowsError(try linear.load(stateDict: linearStateDict(weightShape: [2, 4], bias: false, extra: true))) {
            error in
            guard let error = error as? StateDictError else { return XCTFail("unexpected error \(error)") }
            XCTAssertEqual(error.missingKeys, ["bias"])
            XCTAssertEqual(error.unexpectedKeys, ["extra"])
            XCTAssertEqual(error.shapeMismatches.map(\.key), ["weight"])
            let description = error.description
            for text in ["bias", "extra", "weight", "[2, 3]", "[2, 4]"] {
                XCTAssertTrue(description.contains(text), "the error does not mention \(text): \(description)")
            }
        }
        assertStateDictsMatch(linear.stateDict(), before, "after a failed load", absolute: 0, relative: 0)

        // One bad entry among good ones still changes nothing.
        var partlyGood = linearStateDict()
        partlyGood["weight"] = .float(Tensor(repeating: 0.5, shape: [3, 2]))
        XCTAssertThrowsError(try linear.load(stateDict: partlyGood))
        assertStateDictsMatch(linear.stateDict(), before, "after a failed load", absolute: 0, relative: 0)
    }

    func testNonStrictLoadIgnoresMissingAndUnexpectedKeys() throws {
        var generator = SeededGenerator(seed: 3)
        let linear = Linear(3, 2, using: &generator)
        let bias = try XCTUnwrap(linear.bias)
        try linear.load(stateDict: linearStateDict(bias: false, extra: true), strict: false)
        XCTAssertEqual(linear.weight.scalars, [Float](repeating: 0.5, count: 6))
        XCTAssertEqual(linear.bias?.scalars, bias.scalars, "a missing key keeps its value")
        // As in torch, a wrong shape is an error even when not strict.
        XCTAssertThrowsError(try linear.load(stateDict: linearStateDict(weightShape: [3, 3]), strict: false))
    }

    func testCounterLoadsFromInt64AndSavesAsInt64() throws {
        let norm = BatchNorm1d(2)
        var stateDict = norm.stateDict()
        let saved = stateDict["num_batches_tracked"]
        guard case .int64(0) = saved else {
            return XCTFail("num_batches_tracked should save as int64 0, got \(String(describing: saved))")
        }
        stateDict["num_batches_tracked"] = .int64(9)
        try norm.load(stateDict: stateDict)
        XCTAssertEqual(norm.batchesTracked, 9)
        _ = norm(Tensor(shape: [3, 2], scalars: [1, 2, 3, 5, 8, 13]))
        XCTAssertEqual(norm.batchesTracked, 10)
    }

    // MARK: valueAndGrad

    func testValueAndGradLeavesOutParametersThatDoNotAffectTheLoss() {
        var generator = SeededGenerator(seed: 4)
        let model = Nested(using: &generator)
        let input = Tensor.randomNormal([2, 4], using: &generator)
        let (value, gradients) = valueAndGrad(model: model) { model in
            (model.layers[0](input) * model.scale).sum()
        }
        XCTAssertEqual(Set(gradients.keys), ["scale", "layers.0.weight", "layers.0.bias"])
        let expected = withoutGradient { (model.layers[0](input) * model.scale).sum() }
        XCTAssertEqual(value.item, expected.item, accuracy: 1e-5)
        // d/db Σ (x·Wᵀ + b)·s = N·s.
        assertClose(gradients["layers.0.bias"]!, Tensor([2, 2, 2]), "bias gradient")
        XCTAssertFalse(model.namedParameters().contains { $0.tensor.requiresGradient })
    }
}
