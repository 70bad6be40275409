import Foundation
import NFMOptimizers
import NFMTensor
import XCTest

/// Reads one of the JSON files written by scripts/reference/make_optimizer_fixtures.py.
func loadFixture(_ name: String) -> [String: Any] {
    let url = Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures")!
    return try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
}

/// A `{"shape": …, "data": …}` fixture entry as a tensor.
func fixtureTensor(_ value: Any?) -> Tensor {
    let dict = value as! [String: Any]
    return Tensor(shape: dict["shape"] as! [Int], scalars: (dict["data"] as! [NSNumber]).map(\.floatValue))
}

/// A `{name: tensor}` fixture object as a dictionary of tensors.
func fixtureTensors(_ value: Any?) -> [String: Tensor] {
    (value as! [String: Any]).mapValues(fixtureTensor)
}

/// The shared parameters and gradients of optimizers.json, and one optimizer configuration's trajectory.
struct OptimizerFixture {
    let parameterOrder: [String]
    let initialParameters: [String: Tensor]
    /// Per step; a parameter without a gradient that step is absent.
    let gradients: [[String: Tensor]]
    let cases: [OptimizerCase]

    nonisolated(unsafe) static let shared: OptimizerFixture = {
        let root = loadFixture("optimizers")
        return OptimizerFixture(
            parameterOrder: root["parameterOrder"] as! [String],
            initialParameters: fixtureTensors(root["initialParameters"]),
            gradients: (root["gradients"] as! [Any]).map(fixtureTensors),
            cases: (root["cases"] as! [[String: Any]]).map(OptimizerCase.init))
    }()

    /// The initial parameters as an ordered list, as a Module would give them.
    var initialList: [(name: String, tensor: Tensor)] { parameterOrder.map { ($0, initialParameters[$0]!) } }
}

struct OptimizerCase {
    let name: String
    let optimizer: String
    let hyperparameters: [String: Any]
    /// The parameters after each step (index 0: after step 1).
    let trajectory: [[String: Tensor]]
    /// The step after which `state` was taken.
    let stateStep: Int
    /// torch's flattened `optimizer.state_dict()["state"]` after `stateStep` steps.
    let state: [String: Tensor]

    init(_ json: [String: Any]) {
        name = json["name"] as! String
        optimizer = json["optimizer"] as! String
        hyperparameters = json["hyperparameters"] as! [String: Any]
        trajectory = (json["trajectory"] as! [Any]).map(fixtureTensors)
        stateStep = json["stateStep"] as! Int
        state = fixtureTensors(json["state"])
    }

    private func double(_ key: String, _ fallback: Double) -> Double {
        (hyperparameters[key] as? NSNumber)?.doubleValue ?? fallback
    }
    private func bool(_ key: String) -> Bool { hyperparameters[key] as? Bool ?? false }
    private var betas: (Double, Double) {
        let values = (hyperparameters["betas"] as? [NSNumber])?.map(\.doubleValue) ?? [0.9, 0.999]
        return (values[0], values[1])
    }

    /// A fresh optimizer configured as torch's was; unset keys take torch's defaults.
    func makeOptimizer() -> any Optimizer {
        let learningRate = double("lr", .nan)
        switch optimizer {
        case "SGD":
            return SGD(
                learningRate: learningRate, momentum: double("momentum", 0), dampening: double("dampening", 0),
                weightDecay: double("weight_decay", 0), nesterov: bool("nesterov"))
        case "Adam":
            return Adam(
                learningRate: learningRate, betas: betas, epsilon: double("eps", 1e-8),
                weightDecay: double("weight_decay", 0), amsgrad: bool("amsgrad"))
        case "AdamW":
            return AdamW(
                learningRate: learningRate, betas: betas, epsilon: double("eps", 1e-8),
                weightDecay: double("weight_decay", 1e-2), amsgrad: bool("amsgrad"))
        case "RMSprop":
            return RMSprop(
                learningRate: learningRate, alpha: double("alpha", 0.99), epsilon: double("eps", 1e-8),
                weightDecay: double("weight_decay", 0), momentum: double("momentum", 0), centered: bool("centered"))
        default:
            fatalError("unknown optimizer \(optimizer) in optimizers.json")
        }
    }
}

/// Asserts |actual − expected| ≤ absolute + relative·|expected| elementwise, reporting the worst element.
/// The defaults allow a few float32 roundings (torch's vectorised kernels fuse multiply-adds) and
/// nothing more: a hyper-parameter rounded to Float before computing 1 − β₂ already fails them.
func assertClose(
    _ actual: Tensor, _ expected: Tensor, relative: Float = 2e-6, absolute: Float = 2e-7, _ message: String,
    file: StaticString = #filePath, line: UInt = #line
) {
    guard actual.shape == expected.shape else {
        XCTFail("\(message): shape \(actual.shape), expected \(expected.shape)", file: file, line: line)
        return
    }
    var worst: (index: Int, excess: Float)?
    for (index, (a, e)) in zip(actual.scalars, expected.scalars).enumerated() {
        let excess = abs(a - e) - (absolute + relative * abs(e))
        if !(excess <= 0), worst == nil || !(excess <= worst!.excess) { worst = (index, excess) }
    }
    if let worst {
        XCTFail(
            "\(message): element \(worst.index) is \(actual.scalars[worst.index]), torch \(expected.scalars[worst.index])",
            file: file, line: line)
    }
}
