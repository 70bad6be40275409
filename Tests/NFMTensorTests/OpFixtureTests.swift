import Foundation
import XCTest

@testable import NFMTensor

/// One PyTorch reference case from Fixtures/ops.json (written by scripts/reference/make_fixtures.py).
struct OpCase {
    let op: String
    let name: String
    let params: [String: Any]
    let inputs: [Tensor]
    let output: Tensor
    let seed: Tensor?
    let gradients: [Tensor?]

    nonisolated(unsafe) static let all: [OpCase] = {
        let url = Bundle.module.url(forResource: "ops", withExtension: "json", subdirectory: "Fixtures")!
        let root = try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        return (root["cases"] as! [[String: Any]]).map(OpCase.init)
    }()

    init(_ json: [String: Any]) {
        func tensor(_ value: Any?) -> Tensor? {
            guard let dict = value as? [String: Any] else { return nil }
            let shape = dict["shape"] as! [Int]
            return Tensor(shape: shape, scalars: (dict["data"] as! [NSNumber]).map { $0.floatValue })
        }
        op = json["op"] as! String
        name = json["name"] as! String
        params = json["params"] as? [String: Any] ?? [:]
        inputs = (json["inputs"] as! [Any]).map { tensor($0)! }
        output = tensor(json["output"])!
        seed = tensor(json["seed"])
        gradients = (json["gradients"] as? [Any] ?? []).map { tensor($0) }
    }

    func int(_ key: String) -> Int { (params[key] as! NSNumber).intValue }
    func float(_ key: String) -> Float { (params[key] as! NSNumber).floatValue }
    func bool(_ key: String, default value: Bool = false) -> Bool { (params[key] as? Bool) ?? value }
    func ints(_ key: String) -> [Int]? { params[key] as? [Int] }
    var reduction: Reduction {
        switch params["reduction"] as? String {
        case "sum": return .sum
        case "none": return .none
        default: return .mean
        }
    }

    /// Runs our op on `x` (the inputs, possibly made differentiable).
    func apply(_ x: [Tensor]) -> Tensor {
        switch op {
        case "add": return x[0] + x[1]
        case "subtract": return x[0] - x[1]
        case "multiply": return x[0] * x[1]
        case "divide": return x[0] / x[1]
        case "negate": return -x[0]
        case "exp": return exp(x[0])
        case "log": return log(x[0])
        case "sqrt": return sqrt(x[0])
        case "pow": return pow(x[0], float("exponent"))
        case "powTensor": return pow(x[0], x[1])
        case "abs": return abs(x[0])
        case "clamp": return clamp(x[0], min: float("min"), max: float("max"))
        case "relu": return relu(x[0])
        case "leakyRelu": return leakyRelu(x[0], negativeSlope: float("slope"))
        case "sigmoid": return sigmoid(x[0])
        case "tanh": return tanh(x[0])
        case "softplus": return softplus(x[0], beta: float("beta"), threshold: float("threshold"))
        case "where": return `where`(x[0], x[1], x[2])
        case "maximum": return maximum(x[0], x[1])
        case "minimum": return minimum(x[0], x[1])
        case "sum": return x[0].sum(alongAxes: ints("axes"), keepDims: bool("keepDims"))
        case "mean": return x[0].mean(alongAxes: ints("axes"), keepDims: bool("keepDims"))
        case "max": return x[0].max(alongAxis: int("axis"), keepDims: bool("keepDims"))
        case "argmax": return x[0].argmax(alongAxis: int("axis"))
        case "variance": return x[0].variance(alongAxes: ints("axes"), correction: int("correction"), keepDims: bool("keepDims"))
        case "reshape": return x[0].reshaped(to: ints("shape")!)
        case "permute": return x[0].permuted(ints("axes")!)
        case "transpose": return x[0].transposed(int("first"), int("second"))
        case "squeeze": return x[0].squeezed(axis: int("axis"))
        case "unsqueeze": return x[0].unsqueezed(axis: int("axis"))
        case "expand": return x[0].expanded(to: ints("shape")!)
        case "flatten": return x[0].flattened(fromAxis: int("axis"))
        case "concatenate": return Tensor.concatenate(x, alongAxis: int("axis"))
        case "stack": return Tensor.stack(x, alongAxis: int("axis"))
        case "slice": return x[0].sliced(alongAxis: int("axis"), from: int("start"), to: int("end"), step: int("step"))
        case "indexSelect": return x[0].indexSelect(alongAxis: int("axis"), indices: ints("indices")!)
        case "gather":
            let indices = Tensor(shape: ints("indexShape")!, scalars: ints("indices")!.map(Float.init))
            return x[0].gathering(alongAxis: int("axis"), indices: indices)
        case "pad":
            let pairs = (params["padding"] as! [[Int]]).map { (before: $0[0], after: $0[1]) }
            return x[0].padded(pairs, value: float("value"))
        case "matmul": return matmul(x[0], x[1])
        case "linear": return linear(x[0], weight: x[1], bias: x.count > 2 ? x[2] : nil)
        case "conv2d":
            return conv2d(x[0], weight: x[1], bias: x.count > 2 ? x[2] : nil, stride: int("stride"), padding: int("padding"))
        case "convTranspose2d":
            return convTranspose2d(
                x[0], weight: x[1], bias: x.count > 2 ? x[2] : nil, stride: int("stride"), padding: int("padding"),
                outputPadding: int("outputPadding"))
        case "maxPool2d": return maxPool2d(x[0], kernelSize: int("kernel"), stride: int("stride"), padding: int("padding"))
        case "avgPool2d":
            return avgPool2d(
                x[0], kernelSize: int("kernel"), stride: int("stride"), padding: int("padding"),
                countIncludePadding: bool("countIncludePadding"))
        case "resizeNearest": return resizeNearest(x[0], height: int("height"), width: int("width"))
        case "batchNorm": return batchNormTraining(x[0], weight: x[1], bias: x[2], epsilon: float("epsilon")).output
        case "batchNormInference":
            return batchNormInference(
                x[0], weight: x[1], bias: x[2], runningMean: x[3], runningVariance: x[4], epsilon: float("epsilon"))
        case "softmax": return softmax(x[0], alongAxis: int("axis"))
        case "logSoftmax": return logSoftmax(x[0], alongAxis: int("axis"))
        case "topK": return topK(x[0], k: int("k"), alongAxis: int("axis")).values
        case "nfmAttention":
            // Inputs are [query, key_1, value_1, key_2, value_2, …]; the weights are checked in NFMAttentionTests.
            let memory = x.dropFirst()
            return nfmAttention(
                query: x[0], keys: memory.enumerated().filter { $0.offset % 2 == 0 }.map(\.element),
                values: memory.enumerated().filter { $0.offset % 2 == 1 }.map(\.element), heads: int("heads"),
                keySize: int("keySize"), valueSize: int("valueSize"), topK: int("topK"),
                temperature: (params["temperature"] as? NSNumber)?.floatValue
            ).output
        case "oneHot": return oneHot(x[0].scalars.map { Int($0) }, depth: int("depth"))
        case "nllLoss": return nllLoss(x[0], targets: ints("targets")!, reduction: reduction)
        case "crossEntropy": return crossEntropy(logits: x[0], targets: ints("targets")!, reduction: reduction)
        case "mseLoss": return mseLoss(x[0], x[1], reduction: reduction)
        case "binaryCrossEntropyWithLogits": return binaryCrossEntropyWithLogits(logits: x[0], targets: x[1], reduction: reduction)
        case "huberLoss": return huberLoss(x[0], x[1], delta: float("delta"), reduction: reduction)
        case "smoothL1Loss": return smoothL1Loss(x[0], x[1], beta: float("beta"), reduction: reduction)
        default: fatalError("no Swift mapping for fixture op '\(op)'")
        }
    }

    /// Which inputs get a gradient in the reference (the others are masks, statistics or targets).
    var differentiableInputs: [Int] { gradients.indices.filter { gradients[$0] != nil } }
}

/// Asserts two tensors have the same shape and agree within |a − b| ≤ absolute + relative·|b|.
func assertClose(
    _ actual: Tensor, _ expected: Tensor, absolute: Float = 1e-4, relative: Float = 1e-3, _ message: String,
    file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertEqual(actual.shape, expected.shape, "\(message): shape", file: file, line: line)
    guard actual.shape == expected.shape else { return }
    let (a, b) = (actual.scalars, expected.scalars)
    var worst = 0, worstExcess: Float = 0
    for i in a.indices {
        let excess = Swift.abs(a[i] - b[i]) - (absolute + relative * Swift.abs(b[i]))
        if excess > worstExcess || a[i].isNaN != b[i].isNaN { worst = i; worstExcess = max(excess, .infinity * (a[i].isNaN ? 1 : 0)) }
    }
    XCTAssertLessThanOrEqual(
        worstExcess, 0, "\(message): element \(worst) is \(a.isEmpty ? 0 : a[worst]), expected \(b.isEmpty ? 0 : b[worst])",
        file: file, line: line)
}

final class OpFixtureTests: XCTestCase {
    func testEveryOpInTheCatalogHasAFixtureCase() {
        let covered = Set(OpCase.all.map(\.op))
        for op in OpCatalog.differentiable + OpCatalog.nonDifferentiable {
            XCTAssertTrue(covered.contains(op), "op '\(op)' has no PyTorch fixture case in ops.json")
        }
        for op in OpCatalog.differentiable {
            XCTAssertTrue(
                OpCase.all.contains { $0.op == op && !$0.differentiableInputs.isEmpty },
                "op '\(op)' has no gradient case")
        }
    }

    func testForwardMatchesPyTorch() {
        for testCase in OpCase.all {
            assertClose(testCase.apply(testCase.inputs), testCase.output, "\(testCase.name) forward")
        }
    }

    func testGradientsMatchPyTorch() {
        for testCase in OpCase.all where testCase.seed != nil {
            let differentiable = testCase.differentiableInputs
            var inputs = testCase.inputs
            for i in differentiable { inputs[i] = inputs[i].requiringGradient() }
            let output = testCase.apply(inputs)
            let loss = (output * testCase.seed!).sum()
            let grads = gradients(of: loss, withRespectTo: differentiable.map { inputs[$0] })
            for (i, gradient) in zip(differentiable, grads) {
                guard let gradient else {
                    XCTFail("\(testCase.name): no gradient for input \(i)")
                    continue
                }
                assertClose(gradient, testCase.gradients[i]!, "\(testCase.name) ∂input\(i)")
            }
        }
    }

    /// Central finite differences in Float32 against the analytic gradient, for every case.
    func testGradientsMatchFiniteDifferences() {
        let step: Float = 5e-3
        for testCase in OpCase.all where testCase.seed != nil {
            let seed = testCase.seed!
            func loss(_ inputs: [Tensor]) -> Double {
                let product = (testCase.apply(inputs) * seed).scalars
                return product.reduce(0.0) { $0 + Double($1) }
            }
            for i in testCase.differentiableInputs {
                let analytic = valueWithGradient(at: [testCase.inputs[i]]) { x in
                    var inputs = testCase.inputs
                    inputs[i] = x[0]
                    return (testCase.apply(inputs) * seed).sum()
                }.gradients[0].scalars
                // Check at most 64 evenly spread elements per input: enough to catch a wrong
                // pullback, and it keeps the test fast on large inputs (a 38×38 resize).
                let checked = Array(Set(stride(from: 0, to: analytic.count, by: max(1, analytic.count / 64)))).sorted()
                var numeric = analytic
                for j in checked {
                    var plus = testCase.inputs, minus = testCase.inputs
                    var (above, below) = (plus[i].scalars, minus[i].scalars)
                    above[j] += step
                    below[j] -= step
                    plus[i] = Tensor(shape: plus[i].shape, scalars: above)
                    minus[i] = Tensor(shape: minus[i].shape, scalars: below)
                    numeric[j] = Float((loss(plus) - loss(minus)) / Double(2 * step))
                }
                let scale = max(1, analytic.map { Swift.abs($0) }.max() ?? 1)
                let worst = zip(analytic, numeric).map { Swift.abs($0 - $1) }.max() ?? 0
                XCTAssertLessThanOrEqual(worst / scale, 2e-2, "\(testCase.name) ∂input\(i): finite differences disagree by \(worst)")
            }
        }
    }
}
