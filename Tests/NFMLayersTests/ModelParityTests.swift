import Foundation
import NFMKernels
import NFMLayers
import NFMModels
import NFMNN
import NFMTensor
import XCTest

/// Whole-model parity with the PyTorch reference (`scripts/reference/nfm_reference.py`): each fixture
/// is a small Sort-of-CLEVR model whose state_dict PyTorch saved as safetensors
/// (`NAME.model.safetensors`), with its inputs and the reference results computed in float64
/// (`NAME.expected.safetensors`, written by `scripts/reference/make_model_fixtures.py`). We load the
/// PyTorch file strictly into `SortOfClevrModel` and compare eval log-probabilities, the train-mode
/// loss, the gradient of every parameter and the batch-norm buffers after the train-mode forward.
///
/// Set NFM_PARITY_EXPORT=DIR to also write DIR/NAME.swift.safetensors (the model after its train-mode
/// forward), which `make_model_fixtures.py --check-swift DIR` loads back into PyTorch. Each test prints
/// its worst differences.
final class ModelParityTests: XCTestCase {
    /// Every value must satisfy |ours − reference| ≤ absoluteTolerance + relativeTolerance·|reference|.
    static let absoluteTolerance: Float = 1e-4
    /// See `absoluteTolerance`.
    static let relativeTolerance: Float = 1e-3

    /// The configuration written into the fixture's metadata (JSON with snake_case keys).
    struct Configuration: Decodable {
        var kind: String
        var widths: [Int]
        var heads: Int?
        var keySize: Int?
        var valueSize: Int?
        var topK: Int?
        var headChannels: Int
        var hiddenSize: Int
        /// How far the train-mode forward stays from ReLU kinks and top-k ties (null: not applicable).
        var margins: [String: Double?]
    }

    /// The worst differences seen in one comparison group.
    struct Worst: CustomStringConvertible {
        var absolute: Float = 0
        /// |difference| / (absoluteTolerance + relativeTolerance·|reference|): at most 1 passes.
        var ratio: Float = 0
        var key = ""
        var description: String { String(format: "max |Δ| %.3g, worst Δ/tolerance %.3f (%@)", absolute, ratio, key) }
    }

    func fixturePath(_ name: String) throws -> String {
        try XCTUnwrap(
            Bundle.module.url(forResource: name, withExtension: "safetensors", subdirectory: "Fixtures"),
            "missing fixture \(name).safetensors; run scripts/reference/make_model_fixtures.py"
        ).path
    }

    /// A fixture file that lacks an entry the test needs.
    struct MissingEntry: Error, CustomStringConvertible {
        let key: String
        var description: String { "the expected file has no float tensor \(key); rerun scripts/reference/make_model_fixtures.py" }
    }

    /// A float entry of an expected file.
    func float(_ state: StateDict, _ key: String) throws -> Tensor {
        guard case .float(let tensor) = state[key] else { throw MissingEntry(key: key) }
        return tensor
    }

    /// Compares element-wise and folds the result into `worst`.
    func compare(_ actual: Tensor, _ expected: Tensor, _ key: String, into worst: inout Worst) {
        XCTAssertEqual(actual.shape, expected.shape, key)
        guard actual.shape == expected.shape else { return }
        var failures: [String] = []
        for (index, (a, e)) in zip(actual.scalars, expected.scalars).enumerated() {
            let difference = abs(a - e)
            let ratio = difference / (Self.absoluteTolerance + Self.relativeTolerance * abs(e))
            if !(ratio <= 1) { failures.append("[\(index)] \(a) vs \(e)") }
            worst.absolute = max(worst.absolute, difference)
            if !(ratio <= worst.ratio) {
                worst.ratio = ratio
                worst.key = key
            }
        }
        XCTAssertEqual(
            failures.count, 0,
            "\(key): \(failures.count) of \(expected.scalarCount) values differ beyond tolerance, e.g. \(failures.prefix(4).joined(separator: ", "))")
    }

    func model(for configuration: Configuration) -> SortOfClevrModel {
        var generator = SeededGenerator(seed: 0)
        let nfm = configuration.kind == "nfm"
            ? NFMConfiguration(
                heads: configuration.heads!, keySize: configuration.keySize!, valueSize: configuration.valueSize!,
                topK: configuration.topK!)
            : nil
        // Dropout 0: the reference's train-mode results were computed without dropout.
        return SortOfClevrModel(
            widths: configuration.widths, nfm: nfm, headChannels: configuration.headChannels,
            hiddenSize: configuration.hiddenSize, dropout: 0, using: &generator)
    }

    /// Compares one model's results with a fixture's: eval and train log-probabilities, the loss,
    /// which parameters get a gradient and every gradient value, and every buffer after the
    /// train-mode forward (running statistics, counters). Returns the worst differences, for the log.
    func compareWithReference(
        _ model: Module, name: String, expected: StateDict, evalLogProbabilities: Tensor, trainLogProbabilities: Tensor,
        loss: Tensor, gradients: [String: Tensor]
    ) throws -> String {
        var outputs = Worst()
        compare(evalLogProbabilities, try float(expected, "eval.log_probs"), "eval.log_probs", into: &outputs)
        compare(trainLogProbabilities, try float(expected, "train.log_probs"), "train.log_probs", into: &outputs)
        compare(loss, try float(expected, "train.loss"), "train.loss", into: &outputs)

        // Gradients: the same parameters get one (torch leaves the rest None), and every value agrees.
        var gradientWorst = Worst()
        let expectedGradientKeys = expected.keys.filter { $0.hasPrefix("grad.") }.map { String($0.dropFirst("grad.".count)) }
        XCTAssertEqual(Set(gradients.keys), Set(expectedGradientKeys), "\(name): parameters with a gradient differ")
        for key in expectedGradientKeys {
            guard let gradient = gradients[key] else { continue }
            compare(gradient, try float(expected, "grad." + key), "grad." + key, into: &gradientWorst)
        }

        // Buffers after the train-mode forward.
        var bufferWorst = Worst()
        let parameterNames = Set(model.namedParameters().map(\.name))
        let state = model.stateDict()
        let bufferKeys = state.keys.filter { !parameterNames.contains($0) }
        XCTAssertEqual(Set(bufferKeys.map { "after." + $0 }), Set(expected.keys.filter { $0.hasPrefix("after.") }), name)
        for key in bufferKeys {
            switch (state[key], expected["after." + key]) {
            case (.int64(let ours)?, .int64(let reference)?): XCTAssertEqual(ours, reference, key)
            case (.float(let ours)?, .float(let reference)?): compare(ours, reference, key, into: &bufferWorst)
            default: XCTFail("\(name): buffer \(key) missing or of another dtype")
            }
        }
        return "outputs \(outputs); gradients (\(gradients.count)) \(gradientWorst); buffers \(bufferWorst)"
    }

    func checkParity(_ name: String) throws {
        // NFM_PARITY_REFERENCE_BACKEND=1 runs the model on the plain reference loops instead of oneDNN,
        // to tell a kernel's rounding from a model bug.
        let backend = Kernels.backend
        defer { Kernels.backend = backend }
        if ProcessInfo.processInfo.environment["NFM_PARITY_REFERENCE_BACKEND"] != nil { Kernels.backend = Kernels.reference }
        let expectedPath = try fixturePath("\(name).expected")
        let metadata = try StateDict.metadata(contentsOf: expectedPath)
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let configuration = try decoder.decode(Configuration.self, from: Data(try XCTUnwrap(metadata["config"]).utf8))
        let expected = try StateDict.load(contentsOf: expectedPath)
        let model = model(for: configuration)
        // The PyTorch state_dict, strictly: every key, shape and dtype must match.
        try model.load(contentsOf: try fixturePath("\(name).model"), strict: true)

        let images = try float(expected, "input.images")
        let questions = try float(expected, "input.questions")
        let answers = try float(expected, "input.answers").scalars.map { Int($0) }
        var generator = SeededGenerator(seed: 1)

        model.eval()
        let evalLogProbabilities = model(images: images, questions: questions, generator: &generator)
        model.train()
        var trainLogProbabilities = Tensor(0)
        let (loss, gradients) = valueAndGrad(model: model) { model in
            trainLogProbabilities = model(images: images, questions: questions, generator: &generator)
            return nllLoss(trainLogProbabilities, targets: answers)
        }
        let summary = try compareWithReference(
            model, name: name, expected: expected, evalLogProbabilities: evalLogProbabilities,
            trainLogProbabilities: trainLogProbabilities, loss: loss, gradients: gradients)
        let margins = configuration.margins.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value.map { "\($0)" } ?? "-")" }
        print("\(name) (margins: \(margins.joined(separator: ", "))): \(summary)")

        if let directory = ProcessInfo.processInfo.environment["NFM_PARITY_EXPORT"] {
            try model.save(to: directory + "/\(name).swift.safetensors", metadata: ["format": "pt"])
        }
    }

    func testTwoPassNFMWithTopK3MatchesPyTorch() throws { try checkParity("nfm_k3") }

    func testTwoPassNFMWithOneHeadAndTopK1MatchesPyTorch() throws { try checkParity("nfm_k1_heads1") }

    func testTwoPassNFMWithTopK5MatchesPyTorch() throws { try checkParity("nfm_k5") }

    func testBaselineMatchesPyTorch() throws { try checkParity("baseline") }

    /// The configuration of a PreActResNet fixture (`scripts/reference/make_resnet_fixtures.py`).
    struct ResNetConfiguration: Decodable {
        var kind: String
        var widths: [Int]
        var blocks: [Int]
        var classes: Int
        var heads: Int?
        var keySize: Int?
        var valueSize: Int?
        var topK: Int?
    }

    /// PreActResNet against its PyTorch reference: the same comparisons as `checkParity`.
    func checkResNetParity(_ name: String) throws {
        let expectedPath = try fixturePath("\(name).expected")
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let configuration = try decoder.decode(
            ResNetConfiguration.self, from: Data(try XCTUnwrap(try StateDict.metadata(contentsOf: expectedPath)["config"]).utf8))
        let expected = try StateDict.load(contentsOf: expectedPath)
        var generator = SeededGenerator(seed: 0)
        let nfm = configuration.kind == "nfm"
            ? NFMConfiguration(heads: configuration.heads!, keySize: configuration.keySize!, valueSize: configuration.valueSize!, topK: configuration.topK!)
            : nil
        let model = PreActResNet(
            inputChannels: 1, classes: configuration.classes, widths: configuration.widths, blocks: configuration.blocks, nfm: nfm,
            using: &generator)
        try model.load(contentsOf: try fixturePath("\(name).model"), strict: true)
        let images = try float(expected, "input.images")
        let labels = try float(expected, "input.labels").scalars.map { Int($0) }

        model.eval()
        let evalLogProbabilities = logSoftmax(model(images), alongAxis: 1)
        model.train()
        var trainLogProbabilities = Tensor(0)
        let (loss, gradients) = valueAndGrad(model: model) { model in
            trainLogProbabilities = logSoftmax(model(images), alongAxis: 1)
            return nllLoss(trainLogProbabilities, targets: labels)
        }
        let summary = try compareWithReference(
            model, name: name, expected: expected, evalLogProbabilities: evalLogProbabilities,
            trainLogProbabilities: trainLogProbabilities, loss: loss, gradients: gradients)
        print("\(name): \(summary)")
    }

    func testPreActResNetMatchesPyTorch() throws { try checkResNetParity("preact_baseline") }

    func testTwoPassPreActResNetWithNFMAfterEveryBlockMatchesPyTorch() throws { try checkResNetParity("preact_nfm") }

    func testStrictLoadRejectsAPyTorchFileForAnotherModel() throws {
        var generator = SeededGenerator(seed: 0)
        // The NFM file holds the baseline's keys and more: strict loading refuses it and changes nothing.
        let baseline = SortOfClevrModel(widths: [6, 8, 10, 12], nfm: nil, headChannels: 4, hiddenSize: 16, using: &generator)
        let before = baseline.namedParameters().flatMap { $0.tensor.scalars }
        XCTAssertThrowsError(try baseline.load(contentsOf: try fixturePath("nfm_k3.model"))) { error in
            XCTAssertTrue("\(error)".contains("unexpected keys"), "\(error)")
        }
        XCTAssertEqual(baseline.namedParameters().flatMap { $0.tensor.scalars }, before, "a refused load changed the model")
        XCTAssertNoThrow(try baseline.load(contentsOf: try fixturePath("nfm_k3.model"), strict: false))
        // A head of another size: a shape mismatch, strict or not.
        let wide = SortOfClevrModel(widths: [6, 8, 10, 12], nfm: nil, headChannels: 5, hiddenSize: 16, using: &generator)
        XCTAssertThrowsError(try wide.load(contentsOf: try fixturePath("baseline.model"), strict: false)) { error in
            XCTAssertTrue("\(error)".contains("shape mismatch for conv1.weight"), "\(error)")
        }
    }
}
