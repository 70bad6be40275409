import Foundation
import NFMNN
import NFMTensor
import XCTest

/// One torch.nn reference case from Fixtures/layers.json (scripts/reference/make_layer_fixtures.py).
struct LayerCase {
    let name: String
    let layer: String
    let config: [String: Any]
    let training: Bool
    let stateDict: StateDict
    let namedParameters: [String]
    let inputs: [Tensor]
    let outputs: [Tensor]
    let seed: Tensor
    let gradients: [String: Tensor]
    let stateAfter: StateDict

    init(_ json: [String: Any]) {
        name = json["name"] as! String
        layer = json["layer"] as! String
        config = json["config"] as! [String: Any]
        training = json["training"] as! Bool
        stateDict = Fixture.stateDict(json["state_dict"])
        namedParameters = json["named_parameters"] as! [String]
        inputs = (json["inputs"] as! [Any]).map(Fixture.tensor)
        outputs = (json["outputs"] as! [Any]).map(Fixture.tensor)
        seed = Fixture.tensor(json["seed"])
        gradients = (json["gradients"] as! [String: Any]).mapValues(Fixture.tensor)
        // Recorded only for modules with buffers; without them the state cannot change.
        stateAfter = json["state_after"].map(Fixture.stateDict) ?? stateDict
    }

    static func all() throws -> [LayerCase] {
        try (Fixture.load("layers")["cases"] as! [[String: Any]]).map(LayerCase.init)
    }

    private func int(_ key: String) -> Int { (config[key] as! NSNumber).intValue }
    private func float(_ key: String) -> Float { (config[key] as! NSNumber).floatValue }
    private func bool(_ key: String) -> Bool { config[key] as! Bool }

    /// Our layer for this case, freshly initialised (the test then loads torch's state dict), and how
    /// to apply it.
    func makeLayer() -> (module: Module, apply: (Tensor) -> Tensor) {
        var generator = SeededGenerator(seed: 7)
        switch layer {
        case "Linear":
            let linear = Linear(int("inputFeatures"), int("outputFeatures"), bias: bool("bias"), using: &generator)
            return (linear, linear.callAsFunction)
        case "Conv2d":
            let convolution = Conv2d(
                int("inputChannels"), int("outputChannels"), kernelSize: int("kernelSize"), stride: int("stride"),
                padding: int("padding"), bias: bool("bias"), using: &generator)
            return (convolution, convolution.callAsFunction)
        case "ConvTranspose2d":
            let convolution = ConvTranspose2d(
                int("inputChannels"), int("outputChannels"), kernelSize: int("kernelSize"), stride: int("stride"),
                padding: int("padding"), outputPadding: int("outputPadding"), bias: bool("bias"), using: &generator)
            return (convolution, convolution.callAsFunction)
        case "BatchNorm1d":
            let norm = BatchNorm1d(int("channels"), epsilon: float("epsilon"), momentum: float("momentum"))
            return (norm, norm.callAsFunction)
        case "BatchNorm2d":
            let norm = BatchNorm2d(int("channels"), epsilon: float("epsilon"), momentum: float("momentum"))
            return (norm, norm.callAsFunction)
        case "Dropout":
            let dropout = Dropout(probability: float("probability"))
            var maskGenerator = SeededGenerator(seed: 11)
            return (dropout, { dropout($0, using: &maskGenerator) })
        case "Sequential":
            let channels = int("channels")
            let outputHeight = 3  // 5×5 input, kernel 3, stride 2, padding 1
            let sequential = Sequential([
                Conv2d(
                    int("inputChannels"), channels, kernelSize: int("kernelSize"), stride: int("stride"),
                    padding: int("padding"), using: &generator),
                BatchNorm2d(channels),
                ReLU(),
                Flatten(),
                Linear(channels * outputHeight * outputHeight, int("outputFeatures"), using: &generator),
            ])
            return (sequential, sequential.callAsFunction)
        default:
            preconditionFailure("layers.json: unknown layer \(layer)")
        }
    }

    /// A layer loaded with torch's state dict and set to the case's mode.
    func loadedLayer() throws -> (module: Module, apply: (Tensor) -> Tensor) {
        let (module, apply) = makeLayer()
        try module.load(stateDict: stateDict)
        if training { module.train() } else { module.eval() }
        return (module, apply)
    }
}

/// Every NFMNN layer against torch.nn: loading torch's state dict, forward values in train and eval
/// mode, gradients of the input and of every parameter, and running statistics after the calls.
final class LayerFixtureTests: XCTestCase {
    func testFixturesCoverEveryLayer() throws {
        let layers = Set(try LayerCase.all().map(\.layer))
        XCTAssertEqual(
            layers, ["Linear", "Conv2d", "ConvTranspose2d", "BatchNorm1d", "BatchNorm2d", "Dropout", "Sequential"])
    }

    /// Forward values, parameter gradients through `valueAndGrad(model:)`, and the state afterwards.
    func testForwardParameterGradientsAndStateMatchTorch() throws {
        for layerCase in try LayerCase.all() {
            let (module, apply) = try layerCase.loadedLayer()
            for (input, output) in zip(layerCase.inputs, layerCase.outputs).dropLast() {
                assertClose(apply(input), output, "\(layerCase.name): output of an earlier call")
            }
            var lastOutput: Tensor? = nil
            let (value, gradients) = valueAndGrad(model: module) { _ in
                let output = apply(layerCase.inputs.last!)
                lastOutput = output
                return (output * layerCase.seed).sum()
            }
            let expectedOutput = layerCase.outputs.last!
            assertClose(try XCTUnwrap(lastOutput), expectedOutput, "\(layerCase.name): output")
            assertClose(
                value, (expectedOutput * layerCase.seed).sum(), absolute: 1e-3, "\(layerCase.name): loss value")
            XCTAssertEqual(
                Set(gradients.keys), Set(layerCase.namedParameters), "\(layerCase.name): parameters with a gradient")
            for name in layerCase.namedParameters {
                guard let gradient = gradients[name] else { continue }
                assertClose(gradient, layerCase.gradients[name]!, "\(layerCase.name): gradient of \(name)")
            }
            assertStateDictsMatch(module.stateDict(), layerCase.stateAfter, "\(layerCase.name): state after the calls")
            XCTAssertFalse(
                module.namedParameters().contains { $0.tensor.requiresGradient },
                "\(layerCase.name): valueAndGrad left a parameter on the tape")
        }
    }

    /// The input gradient, and the parameter gradients again by asking `gradients(of:withRespectTo:)`
    /// directly for differentiable parameters.
    func testInputAndParameterGradientsMatchTorch() throws {
        for layerCase in try LayerCase.all() {
            let (module, apply) = try layerCase.loadedLayer()
            for input in layerCase.inputs.dropLast() { _ = apply(input) }
            let parameters = module.namedParameters()
            let differentiable = parameters.map { ($0.name, $0.tensor.requiringGradient()) }
            module.update(parameters: Dictionary(uniqueKeysWithValues: differentiable))
            let leaves = module.namedParameters()
            let input = layerCase.inputs.last!.requiringGradient()
            let loss = (apply(input) * layerCase.seed).sum()
            let gradients = NFMTensor.gradients(of: loss, withRespectTo: [input] + leaves.map(\.tensor))
            assertClose(try XCTUnwrap(gradients[0]), layerCase.gradients["input"]!, "\(layerCase.name): input gradient")
            for (parameter, gradient) in zip(leaves, gradients.dropFirst()) {
                assertClose(
                    try XCTUnwrap(gradient, "\(layerCase.name): no gradient for \(parameter.name)"),
                    layerCase.gradients[parameter.name]!, "\(layerCase.name): gradient of \(parameter.name)")
            }
        }
    }

    func testStateDictKeysAndParameterOrderMatchTorch() throws {
        for layerCase in try LayerCase.all() {
            let (module, _) = layerCase.makeLayer()
            let stateDict = module.stateDict()
            XCTAssertEqual(stateDict.keys, layerCase.stateDict.keys, "\(layerCase.name): state_dict keys and order")
            for (key, value) in layerCase.stateDict.entries {
                XCTAssertEqual(stateDict[key]?.shape, value.shape, "\(layerCase.name): shape of \(key)")
            }
            XCTAssertEqual(
                module.namedParameters().map(\.name), layerCase.namedParameters,
                "\(layerCase.name): named_parameters order")
        }
    }

    func testLoadingTorchStateDictRoundTrips() throws {
        for layerCase in try LayerCase.all() {
            let (module, _) = try layerCase.loadedLayer()
            assertStateDictsMatch(
                module.stateDict(), layerCase.stateDict, "\(layerCase.name): state dict after loading",
                absolute: 0, relative: 0)
        }
    }

    func testEvalModeLeavesRunningStatisticsAlone() throws {
        for layerCase in try LayerCase.all() where !layerCase.training {
            let (module, apply) = try layerCase.loadedLayer()
            for input in layerCase.inputs { _ = apply(input) }
            assertStateDictsMatch(module.stateDict(), layerCase.stateDict, "\(layerCase.name): state after eval calls")
        }
    }
}
