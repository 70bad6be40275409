import Foundation
import GenerateKit
import NFMNN
import NFMTensor
import XCTest

/// Spectral normalisation against torch.nn.utils.spectral_norm (scripts/reference/make_generate_fixtures.py).
final class SpectralNormTests: XCTestCase {
    func testMatchesPyTorchSpectralNorm() throws {
        let fixture = try Fixture.load("spectral_norm")
        let cases = fixture["cases"] as! [[String: Any]]
        XCTAssertEqual(cases.count, 4)
        for testCase in cases {
            let name = testCase["name"] as! String
            let config = testCase["config"] as! [String: Int]
            var generator = SeededGenerator(seed: 0)
            let module: Module & UnaryLayer
            if testCase["kind"] as! String == "Conv2d" {
                module = SpectralNormConv2d(
                    config["in_channels"]!, config["out_channels"]!, kernelSize: config["kernel_size"]!, stride: config["stride"]!,
                    padding: config["padding"]!, using: &generator)
            } else {
                module = SpectralNormLinear(config["in_features"]!, config["out_features"]!, using: &generator)
            }
            // Key names and order are torch's: bias, weight_orig, weight_u, weight_v.
            var state = StateDict()
            for entry in testCase["state_dict"] as! [[String: Any]] { state[entry["key"] as! String] = .float(Fixture.tensor(entry)) }
            XCTAssertEqual(module.stateDict().keys, state.keys, name)
            try module.load(stateDict: state)

            module.train()
            for (index, call) in (testCase["train_calls"] as! [[String: Any]]).enumerated() {
                let input = Fixture.tensor(call["input"])
                let buffers = { () -> (Tensor, Tensor) in
                    let dictionary = module.stateDict()
                    guard case .float(let u) = dictionary["weight_u"], case .float(let v) = dictionary["weight_v"] else { fatalError() }
                    return (u, v)
                }
                if let expectedGradients = call["gradients"] as? [String: Any] {
                    // One forward, then the gradients for the input and every parameter at once.
                    let seed = Fixture.tensor(call["seed"])
                    let parameters = module.namedParameters()
                    let leaves = parameters.map { $0.tensor.requiringGradient() }
                    module.update(parameters: Dictionary(uniqueKeysWithValues: zip(parameters.map(\.name), leaves)))
                    let x = input.requiringGradient()
                    let output = module(x)
                    let results = gradients(of: (output * seed).sum(), withRespectTo: [x] + leaves)
                    module.update(parameters: Dictionary(uniqueKeysWithValues: zip(parameters.map(\.name), leaves.map { $0.detached() })))
                    assertClose(output, Fixture.tensor(call["output"]), "\(name) train call \(index) output")
                    assertClose(try XCTUnwrap(results[0]), Fixture.tensor(expectedGradients["input"]), absolute: 1e-4, "\(name) input gradient")
                    for (parameter, gradient) in zip(parameters, results.dropFirst()) {
                        assertClose(
                            try XCTUnwrap(gradient, "\(name): no gradient for \(parameter.name)"), Fixture.tensor(expectedGradients[parameter.name]),
                            absolute: 1e-4, "\(name) gradient of \(parameter.name)")
                    }
                    XCTAssertEqual(Set(expectedGradients.keys), Set(["input"] + parameters.map(\.name)), name)
                } else {
                    let output = module(input)
                    assertClose(output, Fixture.tensor(call["output"]), "\(name) train call \(index) output")
                }
                let (u, v) = buffers()
                assertClose(u, Fixture.tensor(call["weight_u"]), "\(name) weight_u after train call \(index)")
                assertClose(v, Fixture.tensor(call["weight_v"]), "\(name) weight_v after train call \(index)")
            }
            module.eval()
            let evalCall = testCase["eval_call"] as! [String: Any]
            let before = module.stateDict()
            assertClose(module(Fixture.tensor(evalCall["input"])), Fixture.tensor(evalCall["output"]), "\(name) eval output")
            guard case .float(let u) = module.stateDict()["weight_u"], case .float(let uBefore) = before["weight_u"] else { return XCTFail() }
            XCTAssertEqual(u.scalars, uBefore.scalars, "\(name): eval mode must not update u")
            assertClose(u, Fixture.tensor(evalCall["weight_u"]), "\(name) weight_u in eval")
        }
    }
}
