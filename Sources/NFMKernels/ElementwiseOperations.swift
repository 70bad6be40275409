import Foundation

// The elementwise operations of the primitives `unary`, `binary` and `ternary` (ComputeBackend.swift).
// Each forward operation sits beside the fused pullback that NFMTensor's op records with it
// (`relu` beside `reluBackward`): changing an op means one edit here and one in NFMTensor.
// `apply` is the scalar definition; the backends switch on the case once per call, outside the loop.

/// A one-operand elementwise operation: output[i] = f(input[i]).
public enum UnaryOperation: Hashable, Sendable {
    /// −x.
    case negate
    /// eˣ (its pullback is `binary(.multiply)` by the output).
    case exp
    /// ln x (its pullback is `binary(.divide)` by the input).
    case log
    /// √x; pullback `BinaryOperation.sqrtBackward`.
    case sqrt
    /// xᵖ for a scalar p (x·x exactly when p = 2); pullback `BinaryOperation.powerBackward`.
    case power(Float)
    /// |x|; pullback `BinaryOperation.absBackward`.
    case abs
    /// min(max(x, lower), upper); pullback `BinaryOperation.clampBackward`.
    case clamp(lower: Float, upper: Float)
    /// max(x, 0); pullback `BinaryOperation.reluBackward`, on the output.
    case relu
    /// x for x > 0, slope·x otherwise; pullback `BinaryOperation.leakyReluBackward`.
    case leakyRelu(slope: Float)
    /// 1 / (1 + e⁻ˣ) without overflow; pullback `BinaryOperation.sigmoidBackward`, on the output.
    case sigmoid
    /// tanh x; pullback `BinaryOperation.tanhBackward`, on the output.
    case tanh
    /// log(1 + e^(βx)) / β, linear above the threshold (torch's softplus); pullback `BinaryOperation.softplusBackward`.
    case softplus(beta: Float, threshold: Float)
    /// The inverted-dropout mask from uniform draws u: `scale` where u ≥ probability, else 0.
    case keepMask(probability: Float, scale: Float)

    /// The operation on one element.
    @inline(__always)
    public func apply(_ x: Float) -> Float {
        switch self {
        case .negate: return -x
        case .exp: return Foundation.exp(x)
        case .log: return Foundation.log(x)
        case .sqrt: return x.squareRoot()
        case .power(let exponent): return exponent == 2 ? x * x : Foundation.pow(x, exponent)
        case .abs: return Swift.abs(x)
        case .clamp(let lower, let upper): return Swift.min(Swift.max(x, lower), upper)
        case .relu: return Swift.max(x, 0)
        case .leakyRelu(let slope): return x > 0 ? x : slope * x
        case .sigmoid: return stableSigmoid(x)
        case .tanh: return Foundation.tanh(x)
        case .softplus(let beta, let threshold):
            return x * beta > threshold ? x : (Swift.max(x * beta, 0) + Foundation.log1p(Foundation.exp(-Swift.abs(x * beta)))) / beta
        case .keepMask(let probability, let scale): return x >= probability ? scale : 0
        }
    }
}

/// A two-operand elementwise operation with broadcasting: output = f(a, b). The cases after the
/// comparisons are the fused pullbacks of the unary operations: a is the incoming gradient g
/// (or, for the masks, the condition) and b is what the forward saved.
public enum BinaryOperation: Hashable, Sendable {
    /// a + b.
    case add
    /// a − b.
    case subtract
    /// a · b.
    case multiply
    /// a / b.
    case divide
    /// aᵇ.
    case power
    /// 1 where a > b, else 0.
    case greater
    /// 1 where a < b, else 0.
    case less
    /// 1 where a ≥ b, else 0.
    case greaterEqual
    /// 1 where a ≤ b, else 0.
    case lessEqual
    /// 1 where a = b, else 0.
    case equal
    /// g / (2y), y = √x.
    case sqrtBackward
    /// g·p·x^(p−1) (0 for p = 0), on the input x.
    case powerBackward(Float)
    /// g·sign(x), 0 at 0 as PyTorch.
    case absBackward
    /// g where lower ≤ x ≤ upper, else 0.
    case clampBackward(lower: Float, upper: Float)
    /// g where the output y > 0, else 0.
    case reluBackward
    /// g for x > 0, slope·g otherwise.
    case leakyReluBackward(slope: Float)
    /// g·s·(1 − s), s the output.
    case sigmoidBackward
    /// g·(1 − t²), t the output.
    case tanhBackward
    /// g·sigmoid(βx), or g above the threshold, on the input x.
    case softplusBackward(beta: Float, threshold: Float)
    /// b where the mask a ≠ 0, else 0 (the pullback of `where` to its first choice).
    case keepWhereTrue
    /// b where the mask a = 0, else 0 (the pullback of `where` to its second choice).
    case keepWhereFalse

    /// The operation on one pair of elements.
    @inline(__always)
    public func apply(_ a: Float, _ b: Float) -> Float {
        switch self {
        case .add: return a + b
        case .subtract: return a - b
        case .multiply: return a * b
        case .divide: return a / b
        case .power: return Foundation.pow(a, b)
        case .greater: return a > b ? 1 : 0
        case .less: return a < b ? 1 : 0
        case .greaterEqual: return a >= b ? 1 : 0
        case .lessEqual: return a <= b ? 1 : 0
        case .equal: return a == b ? 1 : 0
        case .sqrtBackward: return a / (2 * b)
        case .powerBackward(let p): return p == 0 ? 0 : a * p * (p == 2 ? b : Foundation.pow(b, p - 1))
        case .absBackward: return b > 0 ? a : (b < 0 ? -a : 0)
        case .clampBackward(let lower, let upper): return b >= lower && b <= upper ? a : 0
        case .reluBackward: return b > 0 ? a : 0
        case .leakyReluBackward(let slope): return b > 0 ? a : slope * a
        case .sigmoidBackward: return a * b * (1 - b)
        case .tanhBackward: return a * (1 - b * b)
        case .softplusBackward(let beta, let threshold): return b * beta > threshold ? a : a * stableSigmoid(b * beta)
        case .keepWhereTrue: return a != 0 ? b : 0
        case .keepWhereFalse: return a != 0 ? 0 : b
        }
    }
}

/// A three-operand elementwise operation with broadcasting: output = f(a, b, c).
public enum TernaryOperation: Hashable, Sendable {
    /// b where a ≠ 0, else c (torch.where).
    case select
    /// −g·x / y², the pullback of x / y to y (a = g, b = x, c = y).
    case divideBackwardDivisor
    /// g·y·x^(y−1), the pullback of xʸ to the base (a = g, b = x, c = y).
    case powerBackwardBase
    /// g·z·ln x for x > 0, else 0: the pullback of xʸ to the exponent (a = g, b = z = xʸ, c = x).
    case powerBackwardExponent

    /// The operation on one triple of elements.
    @inline(__always)
    public func apply(_ a: Float, _ b: Float, _ c: Float) -> Float {
        switch self {
        case .select: return a != 0 ? b : c
        case .divideBackwardDivisor: return -a * b / (c * c)
        case .powerBackwardBase: return a * c * Foundation.pow(b, c - 1)
        case .powerBackwardExponent: return c > 0 ? a * b * Foundation.log(c) : 0
        }
    }
}

/// 1 / (1 + e⁻ˣ), computed without overflow for large |x|.
@inline(__always) func stableSigmoid(_ x: Float) -> Float {
    if x >= 0 { return 1 / (1 + Foundation.exp(-x)) }
    let e = Foundation.exp(x)
    return e / (1 + e)
}
