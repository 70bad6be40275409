import Foundation
import NFMKernels

// Elementwise ops with broadcasting. Each op's forward and pullback sit together; pullbacks are
// fused single-pass primitives (`BinaryOperation.reluBackward` and its kind, defined beside their
// forward operations in NFMKernels/ElementwiseOperations.swift) rather than chains of ops.

extension Tensor {
    /// `operation` on every element (no gradient recorded).
    func applying(_ operation: UnaryOperation) -> Tensor {
        Tensor.computed(shape) { Kernels.backend.unary(operation, storage, output: $0) }
    }

    /// `operation` on a and b broadcast together (no gradient recorded); `op` names the op in errors.
    static func applying(_ operation: BinaryOperation, _ a: Tensor, _ b: Tensor, op: String) -> Tensor {
        let shape = a.shape == b.shape ? a.shape : broadcastShape(a.shape, b.shape, op: op)
        return computed(shape) {
            Kernels.backend.binary(operation, a.storage, shape: a.shape, b.storage, shape: b.shape, output: $0, shape: shape)
        }
    }

    /// `operation` on a, b and c broadcast together (no gradient recorded).
    static func applying(_ operation: TernaryOperation, _ a: Tensor, _ b: Tensor, _ c: Tensor, op: String) -> Tensor {
        let shape = broadcastShape(broadcastShape(a.shape, b.shape, op: op), c.shape, op: op)
        return computed(shape) {
            Kernels.backend.ternary(
                operation, a.storage, shape: a.shape, b.storage, shape: b.shape, c.storage, shape: c.shape, output: $0, shape: shape)
        }
    }

    // MARK: Arithmetic

    /// Elementwise sum with broadcasting.
    public static func + (a: Tensor, b: Tensor) -> Tensor {
        let (shapeA, shapeB) = (a.shape, b.shape)
        return applying(.add, a, b, op: "add").recorded("add", inputs: [a, b]) { g in
            [g.summed(toShape: shapeA), g.summed(toShape: shapeB)]
        }
    }

    /// Elementwise difference with broadcasting.
    public static func - (a: Tensor, b: Tensor) -> Tensor {
        let (shapeA, shapeB) = (a.shape, b.shape)
        return applying(.subtract, a, b, op: "subtract").recorded("subtract", inputs: [a, b]) { g in
            [g.summed(toShape: shapeA), g.applying(.negate).summed(toShape: shapeB)]
        }
    }

    /// Elementwise product with broadcasting.
    public static func * (a: Tensor, b: Tensor) -> Tensor {
        let (x, y) = (a.detached(), b.detached())
        let (needA, needB) = (a.requiresGradient, b.requiresGradient)
        return applying(.multiply, a, b, op: "multiply").recorded("multiply", inputs: [a, b]) { g in
            [
                needA ? applying(.multiply, g, y, op: "multiply").summed(toShape: x.shape) : nil,
                needB ? applying(.multiply, g, x, op: "multiply").summed(toShape: y.shape) : nil,
            ]
        }
    }

    /// Elementwise quotient with broadcasting.
    public static func / (a: Tensor, b: Tensor) -> Tensor {
        let (x, y) = (a.detached(), b.detached())
        let (needA, needB) = (a.requiresGradient, b.requiresGradient)
        return applying(.divide, a, b, op: "divide").recorded("divide", inputs: [a, b]) { g in
            [
                needA ? applying(.divide, g, y, op: "divide").summed(toShape: x.shape) : nil,
                needB
                    ? applying(.divideBackwardDivisor, g, x, y, op: "divide").summed(toShape: y.shape) : nil,
            ]
        }
    }

    /// Elementwise negation.
    public static prefix func - (a: Tensor) -> Tensor {
        a.applying(.negate).recorded("negate", input: a) { g in g.applying(.negate) }
    }

    /// Adds a scalar to every element.
    public static func + (a: Tensor, b: Float) -> Tensor { a + Tensor(b) }
    /// Adds a scalar to every element.
    public static func + (a: Float, b: Tensor) -> Tensor { Tensor(a) + b }
    /// Subtracts a scalar from every element.
    public static func - (a: Tensor, b: Float) -> Tensor { a - Tensor(b) }
    /// Subtracts every element from a scalar.
    public static func - (a: Float, b: Tensor) -> Tensor { Tensor(a) - b }
    /// Multiplies every element by a scalar.
    public static func * (a: Tensor, b: Float) -> Tensor { a * Tensor(b) }
    /// Multiplies every element by a scalar.
    public static func * (a: Float, b: Tensor) -> Tensor { Tensor(a) * b }
    /// Divides every element by a scalar.
    public static func / (a: Tensor, b: Float) -> Tensor { a / Tensor(b) }
    /// Divides a scalar by every element.
    public static func / (a: Float, b: Tensor) -> Tensor { Tensor(a) / b }

    /// In-place sum; copies first if the storage is shared.
    public static func += (a: inout Tensor, b: Tensor) { a = a + b }
    /// In-place difference.
    public static func -= (a: inout Tensor, b: Tensor) { a = a - b }
    /// In-place product.
    public static func *= (a: inout Tensor, b: Tensor) { a = a * b }
}

// MARK: Unary math (free functions, as in MLX Swift and Swift for TensorFlow)

/// eˣ elementwise.
public func exp(_ x: Tensor) -> Tensor {
    let y = x.applying(.exp)
    let saved = y.detached()
    return y.recorded("exp", input: x) { g in Tensor.applying(.multiply, g, saved, op: "exp") }
}

/// Natural logarithm elementwise.
public func log(_ x: Tensor) -> Tensor {
    let saved = x.detached()
    return x.applying(.log).recorded("log", input: x) { g in Tensor.applying(.divide, g, saved, op: "log") }
}

/// Square root elementwise.
public func sqrt(_ x: Tensor) -> Tensor {
    let y = x.applying(.sqrt)
    let saved = y.detached()
    return y.recorded("sqrt", input: x) { g in Tensor.applying(.sqrtBackward, g, saved, op: "sqrt") }
}

/// xᵖ elementwise for a scalar exponent.
public func pow(_ x: Tensor, _ exponent: Float) -> Tensor {
    let saved = x.detached()
    return x.applying(.power(exponent)).recorded("pow", input: x) { g in
        Tensor.applying(.powerBackward(exponent), g, saved, op: "pow")
    }
}

/// xʸ elementwise with broadcasting; both operands differentiable.
public func pow(_ x: Tensor, _ y: Tensor) -> Tensor {
    let (base, exponent) = (x.detached(), y.detached())
    let result = Tensor.applying(.power, x, y, op: "pow")
    let saved = result.detached()
    let (needBase, needExponent) = (x.requiresGradient, y.requiresGradient)
    return result.recorded("pow", inputs: [x, y]) { g in
        [
            needBase
                ? Tensor.applying(.powerBackwardBase, g, base, exponent, op: "pow").summed(toShape: base.shape) : nil,
            needExponent
                ? Tensor.applying(.powerBackwardExponent, g, saved, base, op: "pow").summed(toShape: exponent.shape) : nil,
        ]
    }
}

/// |x| elementwise (gradient 0 at 0, as PyTorch).
public func abs(_ x: Tensor) -> Tensor {
    let saved = x.detached()
    return x.applying(.abs).recorded("abs", input: x) { g in Tensor.applying(.absBackward, g, saved, op: "abs") }
}

/// Clamps to [min, max]; the gradient passes where min ≤ x ≤ max (torch.clamp).
public func clamp(_ x: Tensor, min lower: Float = -.infinity, max upper: Float = .infinity) -> Tensor {
    let saved = x.detached()
    return x.applying(.clamp(lower: lower, upper: upper)).recorded("clamp", input: x) { g in
        Tensor.applying(.clampBackward(lower: lower, upper: upper), g, saved, op: "clamp")
    }
}

/// max(x, 0) elementwise.
public func relu(_ x: Tensor) -> Tensor {
    // The pullback keeps the output, not the input (y > 0 exactly where x > 0): the output is what
    // the next layer saves anyway (batch norm after ReLU in the Sort-of-CLEVR trunk), so the input
    // can be freed. Measured: one activation fewer per trunk layer held until backward.
    let y = x.applying(.relu)
    let saved = y.detached()
    return y.recorded("relu", input: x) { g in Tensor.applying(.reluBackward, g, saved, op: "relu") }
}

/// x for x > 0, slope · x otherwise (torch.nn.functional.leaky_relu, default slope 0.01).
public func leakyRelu(_ x: Tensor, negativeSlope: Float = 0.01) -> Tensor {
    let saved = x.detached()
    return x.applying(.leakyRelu(slope: negativeSlope)).recorded("leakyRelu", input: x) { g in
        Tensor.applying(.leakyReluBackward(slope: negativeSlope), g, saved, op: "leakyRelu")
    }
}

/// 1 / (1 + e⁻ˣ) elementwise, computed without overflow for large |x|.
public func sigmoid(_ x: Tensor) -> Tensor {
    let y = x.applying(.sigmoid)
    let saved = y.detached()
    return y.recorded("sigmoid", input: x) { g in Tensor.applying(.sigmoidBackward, g, saved, op: "sigmoid") }
}

/// Hyperbolic tangent elementwise.
public func tanh(_ x: Tensor) -> Tensor {
    let y = x.applying(.tanh)
    let saved = y.detached()
    return y.recorded("tanh", input: x) { g in Tensor.applying(.tanhBackward, g, saved, op: "tanh") }
}

/// log(1 + e^(βx)) / β, linear where βx > threshold (torch.nn.functional.softplus).
public func softplus(_ x: Tensor, beta: Float = 1, threshold: Float = 20) -> Tensor {
    let saved = x.detached()
    return x.applying(.softplus(beta: beta, threshold: threshold)).recorded("softplus", input: x) { g in
        Tensor.applying(.softplusBackward(beta: beta, threshold: threshold), g, saved, op: "softplus")
    }
}

/// Chooses `a` where `condition` is non-zero and `b` elsewhere, broadcasting all three (torch.where).
/// The condition is a mask and gets no gradient.
public func `where`(_ condition: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
    let mask = condition.detached()
    let (shapeA, shapeB) = (a.shape, b.shape)
    let result = Tensor.applying(.select, condition, a, b, op: "where")
    return result.recorded("where", inputs: [a, b]) { g in
        [
            Tensor.applying(.keepWhereTrue, mask, g, op: "where").summed(toShape: shapeA),
            Tensor.applying(.keepWhereFalse, mask, g, op: "where").summed(toShape: shapeB),
        ]
    }
}

/// Elementwise maximum with broadcasting; at ties the gradient goes to `a`.
public func maximum(_ a: Tensor, _ b: Tensor) -> Tensor {
    `where`(Tensor.applying(.greaterEqual, a, b, op: "maximum"), a, b)
}

/// Elementwise minimum with broadcasting; at ties the gradient goes to `a`.
public func minimum(_ a: Tensor, _ b: Tensor) -> Tensor {
    `where`(Tensor.applying(.lessEqual, a, b, op: "minimum"), a, b)
}

// MARK: Comparisons (masks of 0 and 1; not differentiable)

infix operator .> : ComparisonPrecedence
infix operator .< : ComparisonPrecedence
infix operator .>= : ComparisonPrecedence
infix operator .<= : ComparisonPrecedence
infix operator .== : ComparisonPrecedence

extension Tensor {
    /// 1 where a > b, else 0 (broadcasting).
    public static func .> (a: Tensor, b: Tensor) -> Tensor { applying(.greater, a, b, op: "greater") }
    /// 1 where a < b, else 0 (broadcasting).
    public static func .< (a: Tensor, b: Tensor) -> Tensor { applying(.less, a, b, op: "less") }
    /// 1 where a ≥ b, else 0 (broadcasting).
    public static func .>= (a: Tensor, b: Tensor) -> Tensor { applying(.greaterEqual, a, b, op: "greaterEqual") }
    /// 1 where a ≤ b, else 0 (broadcasting).
    public static func .<= (a: Tensor, b: Tensor) -> Tensor { applying(.lessEqual, a, b, op: "lessEqual") }
    /// 1 where a = b, else 0 (broadcasting).
    public static func .== (a: Tensor, b: Tensor) -> Tensor { applying(.equal, a, b, op: "equal") }
    /// 1 where a > b, else 0.
    public static func .> (a: Tensor, b: Float) -> Tensor { a .> Tensor(b) }
    /// 1 where a < b, else 0.
    public static func .< (a: Tensor, b: Float) -> Tensor { a .< Tensor(b) }

    /// True if every element is finite (no NaN or ±Inf).
    public var isFinite: Bool { Kernels.backend.allFinite(storage) }
}
