import Foundation
import NFMTensor

/// PyTorch's default initialisations, drawn from an explicit generator so that a seed reproduces a model.
public enum Initializer {
    /// fan_in as torch computes it: dimension 1 times the receptive field (for conv-transpose
    /// weights [in, out, kh, kw] that is out·kh·kw, as in torch).
    public static func fanIn(_ shape: [Int]) -> Int {
        precondition(shape.count >= 2, "fanIn: shape \(shape) needs rank ≥ 2")
        return shape[1] * shape.dropFirst(2).reduce(1, *)
    }

    /// kaiming_uniform_(a = √5), torch's default for Linear and Conv weights: U(−b, b) with
    /// b = gain·√(3 / fan_in), gain = √(2 / (1 + a²)), which is 1/√fan_in.
    public static func kaimingUniform(_ shape: [Int], a: Float = Float(5).squareRoot(), using generator: inout SeededGenerator) -> Tensor {
        let gain = (2 / (1 + a * a)).squareRoot()
        let bound = gain * (3 / Float(fanIn(shape))).squareRoot()
        return Tensor.randomUniform(shape, lowerBound: -bound, upperBound: bound, using: &generator)
    }

    /// torch's default bias: U(−1/√fan_in, 1/√fan_in) with the weight's fan_in.
    public static func defaultBias(count: Int, fanIn: Int, using generator: inout SeededGenerator) -> Tensor {
        let bound = 1 / Float(max(fanIn, 1)).squareRoot()
        return Tensor.randomUniform([count], lowerBound: -bound, upperBound: bound, using: &generator)
    }
}
