import Foundation

// Elementwise ops with broadcasting. Each op's forward and pullback sit together; pullbacks are
// fused single-pass maps rather than chains of ops.

extension Tensor {
    /// Applies `f` to every element (no gradient recorded).
    @inline(__always)
    func map(_ f: (Float) -> Float) -> Tensor {
        Tensor.build(shape) { out in
            let input = storage.pointer, output = out.baseAddress!
            parallelRanges(out.count) { range in
                for i in range { output[i] = f(input[i]) }
            }
        }
    }

    /// Combines two tensors elementwise with broadcasting (no gradient recorded).
    @inline(__always)
    static func zipMap(_ a: Tensor, _ b: Tensor, op: String, _ f: (Float, Float) -> Float) -> Tensor {
        if a.shape == b.shape {
            return Tensor.build(a.shape) { out in
                let pa = a.storage.pointer, pb = b.storage.pointer, output = out.baseAddress!
                parallelRanges(out.count) { range in
                    for i in range { output[i] = f(pa[i], pb[i]) }
                }
            }
        }
        let shape = broadcastShape(a.shape, b.shape, op: op)
        if b.scalarCount == 1 {
            let scalar = b.storage.pointer[0]
            return Tensor.build(shape) { out in
                let pa = a.storage.pointer, output = out.baseAddress!
                if a.scalarCount == out.count {
                    parallelRanges(out.count) { range in
                        for i in range { output[i] = f(pa[i], scalar) }
                    }
                } else {
                    for i in 0..<out.count { out[i] = f(pa[0], scalar) }
                }
            }
        }
        if a.scalarCount == 1 && b.scalarCount == Tensor.elementCount(shape) {
            // A scalar on the left (γ · out in the NFM residual): one flat pass instead of the row walker.
            let scalar = a.storage.pointer[0]
            return Tensor.build(shape) { out in
                let pb = b.storage.pointer, output = out.baseAddress!
                parallelRanges(out.count) { range in
                    for i in range { output[i] = f(scalar, pb[i]) }
                }
            }
        }
        let sa = broadcastStrides(of: a.shape, to: shape)
        let sb = broadcastStrides(of: b.shape, to: shape)
        let inner = shape.last ?? 1
        let stepA = sa.last ?? 0, stepB = sb.last ?? 0
        return Tensor.build(shape) { out in
            let base = out.baseAddress!
            forEachRow(shape: shape, stridesA: sa, stridesB: sb) { row, offsetA, offsetB, _ in
                let o = base + row * inner
                let pa = a.storage.pointer + offsetA, pb = b.storage.pointer + offsetB
                for j in 0..<inner { o[j] = f(pa[j * stepA], pb[j * stepB]) }
            }
        }
    }

    /// Elementwise with three operands broadcast together (no gradient recorded).
    static func zipMap3(
        _ a: Tensor, _ b: Tensor, _ c: Tensor, op: String, _ f: (Float, Float, Float) -> Float
    ) -> Tensor {
        let shape = broadcastShape(broadcastShape(a.shape, b.shape, op: op), c.shape, op: op)
        let sa = broadcastStrides(of: a.shape, to: shape)
        let sb = broadcastStrides(of: b.shape, to: shape)
        let sc = broadcastStrides(of: c.shape, to: shape)
        let inner = shape.last ?? 1
        let stepA = sa.last ?? 0, stepB = sb.last ?? 0, stepC = sc.last ?? 0
        return Tensor.build(shape) { out in
            let base = out.baseAddress!
            forEachRow(shape: shape, stridesA: sa, stridesB: sb, stridesC: sc) { row, offsetA, offsetB, offsetC in
                let o = base + row * inner
                let pa = a.storage.pointer + offsetA, pb = b.storage.pointer + offsetB, pc = c.storage.pointer + offsetC
                for j in 0..<inner { o[j] = f(pa[j * stepA], pb[j * stepB], pc[j * stepC]) }
            }
        }
    }

    // MARK: Arithmetic

    /// Elementwise sum with broadcasting.
    public static func + (a: Tensor, b: Tensor) -> Tensor {
        let (shapeA, shapeB) = (a.shape, b.shape)
        return zipMap(a, b, op: "add", +).recorded("add", inputs: [a, b]) { g in
            [g.summed(toShape: shapeA), g.summed(toShape: shapeB)]
        }
    }

    /// Elementwise difference with broadcasting.
    public static func - (a: Tensor, b: Tensor) -> Tensor {
        let (shapeA, shapeB) = (a.shape, b.shape)
        return zipMap(a, b, op: "subtract", -).recorded("subtract", inputs: [a, b]) { g in
            [g.summed(toShape: shapeA), g.map { -$0 }.summed(toShape: shapeB)]
        }
    }

    /// Elementwise product with broadcasting.
    public static func * (a: Tensor, b: Tensor) -> Tensor {
        let (x, y) = (a.detached(), b.detached())
        let (needA, needB) = (a.requiresGradient, b.requiresGradient)
        return zipMap(a, b, op: "multiply", *).recorded("multiply", inputs: [a, b]) { g in
            [
                needA ? zipMap(g, y, op: "multiply", *).summed(toShape: x.shape) : nil,
                needB ? zipMap(g, x, op: "multiply", *).summed(toShape: y.shape) : nil,
            ]
        }
    }

    /// Elementwise quotient with broadcasting.
    public static func / (a: Tensor, b: Tensor) -> Tensor {
        let (x, y) = (a.detached(), b.detached())
        let (needA, needB) = (a.requiresGradient, b.requiresGradient)
        return zipMap(a, b, op: "divide", /).recorded("divide", inputs: [a, b]) { g in
            [
                needA ? zipMap(g, y, op: "divide", /).summed(toShape: x.shape) : nil,
                needB
                    ? zipMap3(g, x, y, op: "divide") { g, x, y in -g * x / (y * y) }.summed(toShape: y.shape) : nil,
            ]
        }
    }

    /// Elementwise negation.
    public static prefix func - (a: Tensor) -> Tensor {
        a.map { -$0 }.recorded("negate", input: a) { g in g.map { -$0 } }
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
    let y = x.map { Foundation.exp($0) }
    let saved = y.detached()
    return y.recorded("exp", input: x) { g in Tensor.zipMap(g, saved, op: "exp", *) }
}

/// Natural logarithm elementwise.
public func log(_ x: Tensor) -> Tensor {
    let saved = x.detached()
    return x.map { Foundation.log($0) }.recorded("log", input: x) { g in Tensor.zipMap(g, saved, op: "log", /) }
}

/// Square root elementwise.
public func sqrt(_ x: Tensor) -> Tensor {
    let y = x.map { $0.squareRoot() }
    let saved = y.detached()
    return y.recorded("sqrt", input: x) { g in Tensor.zipMap(g, saved, op: "sqrt") { g, y in g / (2 * y) } }
}

/// xᵖ elementwise for a scalar exponent.
public func pow(_ x: Tensor, _ exponent: Float) -> Tensor {
    let saved = x.detached()
    let y: Tensor
    if exponent == 2 { y = x.map { $0 * $0 } } else { y = x.map { Foundation.pow($0, exponent) } }
    return y.recorded("pow", input: x) { g in
        Tensor.zipMap(g, saved, op: "pow") { g, x in
            exponent == 0 ? 0 : g * exponent * (exponent == 2 ? x : Foundation.pow(x, exponent - 1))
        }
    }
}

/// xʸ elementwise with broadcasting; both operands differentiable.
public func pow(_ x: Tensor, _ y: Tensor) -> Tensor {
    let (base, exponent) = (x.detached(), y.detached())
    let result = Tensor.zipMap(x, y, op: "pow") { Foundation.pow($0, $1) }
    let saved = result.detached()
    let (needBase, needExponent) = (x.requiresGradient, y.requiresGradient)
    return result.recorded("pow", inputs: [x, y]) { g in
        [
            needBase
                ? Tensor.zipMap3(g, base, exponent, op: "pow") { g, x, y in g * y * Foundation.pow(x, y - 1) }
                    .summed(toShape: base.shape) : nil,
            needExponent
                ? Tensor.zipMap3(g, saved, base, op: "pow") { g, z, x in x > 0 ? g * z * Foundation.log(x) : 0 }
                    .summed(toShape: exponent.shape) : nil,
        ]
    }
}

/// |x| elementwise (gradient 0 at 0, as PyTorch).
public func abs(_ x: Tensor) -> Tensor {
    let saved = x.detached()
    return x.map { Swift.abs($0) }.recorded("abs", input: x) { g in
        Tensor.zipMap(g, saved, op: "abs") { g, x in x > 0 ? g : (x < 0 ? -g : 0) }
    }
}

/// Clamps to [min, max]; the gradient passes where min ≤ x ≤ max (torch.clamp).
public func clamp(_ x: Tensor, min lower: Float = -.infinity, max upper: Float = .infinity) -> Tensor {
    let saved = x.detached()
    return x.map { Swift.min(Swift.max($0, lower), upper) }.recorded("clamp", input: x) { g in
        Tensor.zipMap(g, saved, op: "clamp") { g, x in x >= lower && x <= upper ? g : 0 }
    }
}

/// max(x, 0) elementwise.
public func relu(_ x: Tensor) -> Tensor {
    // The pullback keeps the output, not the input (y > 0 exactly where x > 0): the output is what
    // the next layer saves anyway (batch norm after ReLU in the Sort-of-CLEVR trunk), so the input
    // can be freed. Measured: one activation fewer per trunk layer held until backward.
    let y = x.map { Swift.max($0, 0) }
    let saved = y.detached()
    return y.recorded("relu", input: x) { g in
        Tensor.zipMap(g, saved, op: "relu") { g, y in y > 0 ? g : 0 }
    }
}

/// x for x > 0, slope · x otherwise (torch.nn.functional.leaky_relu, default slope 0.01).
public func leakyRelu(_ x: Tensor, negativeSlope: Float = 0.01) -> Tensor {
    let saved = x.detached()
    return x.map { $0 > 0 ? $0 : negativeSlope * $0 }.recorded("leakyRelu", input: x) { g in
        Tensor.zipMap(g, saved, op: "leakyRelu") { g, x in x > 0 ? g : negativeSlope * g }
    }
}

/// 1 / (1 + e⁻ˣ) elementwise, computed without overflow for large |x|.
public func sigmoid(_ x: Tensor) -> Tensor {
    let y = x.map(stableSigmoid)
    let saved = y.detached()
    return y.recorded("sigmoid", input: x) { g in Tensor.zipMap(g, saved, op: "sigmoid") { g, s in g * s * (1 - s) } }
}

@inline(__always) func stableSigmoid(_ x: Float) -> Float {
    if x >= 0 { return 1 / (1 + Foundation.exp(-x)) }
    let e = Foundation.exp(x)
    return e / (1 + e)
}

/// Hyperbolic tangent elementwise.
public func tanh(_ x: Tensor) -> Tensor {
    let y = x.map { Foundation.tanh($0) }
    let saved = y.detached()
    return y.recorded("tanh", input: x) { g in Tensor.zipMap(g, saved, op: "tanh") { g, t in g * (1 - t * t) } }
}

/// log(1 + e^(βx)) / β, linear where βx > threshold (torch.nn.functional.softplus).
public func softplus(_ x: Tensor, beta: Float = 1, threshold: Float = 20) -> Tensor {
    let saved = x.detached()
    let y = x.map { v in
        v * beta > threshold ? v : (Swift.max(v * beta, 0) + Foundation.log1p(Foundation.exp(-Swift.abs(v * beta)))) / beta
    }
    return y.recorded("softplus", input: x) { g in
        Tensor.zipMap(g, saved, op: "softplus") { g, v in v * beta > threshold ? g : g * stableSigmoid(v * beta) }
    }
}

/// Chooses `a` where `condition` is non-zero and `b` elsewhere, broadcasting all three (torch.where).
/// The condition is a mask and gets no gradient.
public func `where`(_ condition: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
    let mask = condition.detached()
    let (shapeA, shapeB) = (a.shape, b.shape)
    let result = Tensor.zipMap3(condition, a, b, op: "where") { c, x, y in c != 0 ? x : y }
    return result.recorded("where", inputs: [a, b]) { g in
        [
            Tensor.zipMap(mask, g, op: "where") { c, g in c != 0 ? g : 0 }.summed(toShape: shapeA),
            Tensor.zipMap(mask, g, op: "where") { c, g in c != 0 ? 0 : g }.summed(toShape: shapeB),
        ]
    }
}

/// Elementwise maximum with broadcasting; at ties the gradient goes to `a`.
public func maximum(_ a: Tensor, _ b: Tensor) -> Tensor {
    `where`(Tensor.zipMap(a, b, op: "maximum") { $0 >= $1 ? 1 : 0 }, a, b)
}

/// Elementwise minimum with broadcasting; at ties the gradient goes to `a`.
public func minimum(_ a: Tensor, _ b: Tensor) -> Tensor {
    `where`(Tensor.zipMap(a, b, op: "minimum") { $0 <= $1 ? 1 : 0 }, a, b)
}

// MARK: Comparisons (masks of 0 and 1; not differentiable)

infix operator .> : ComparisonPrecedence
infix operator .< : ComparisonPrecedence
infix operator .>= : ComparisonPrecedence
infix operator .<= : ComparisonPrecedence
infix operator .== : ComparisonPrecedence

extension Tensor {
    /// 1 where a > b, else 0 (broadcasting).
    public static func .> (a: Tensor, b: Tensor) -> Tensor { zipMap(a, b, op: "greater") { $0 > $1 ? 1 : 0 } }
    /// 1 where a < b, else 0 (broadcasting).
    public static func .< (a: Tensor, b: Tensor) -> Tensor { zipMap(a, b, op: "less") { $0 < $1 ? 1 : 0 } }
    /// 1 where a ≥ b, else 0 (broadcasting).
    public static func .>= (a: Tensor, b: Tensor) -> Tensor { zipMap(a, b, op: "greaterEqual") { $0 >= $1 ? 1 : 0 } }
    /// 1 where a ≤ b, else 0 (broadcasting).
    public static func .<= (a: Tensor, b: Tensor) -> Tensor { zipMap(a, b, op: "lessEqual") { $0 <= $1 ? 1 : 0 } }
    /// 1 where a = b, else 0 (broadcasting).
    public static func .== (a: Tensor, b: Tensor) -> Tensor { zipMap(a, b, op: "equal") { $0 == $1 ? 1 : 0 } }
    /// 1 where a > b, else 0.
    public static func .> (a: Tensor, b: Float) -> Tensor { a .> Tensor(b) }
    /// 1 where a < b, else 0.
    public static func .< (a: Tensor, b: Float) -> Tensor { a .< Tensor(b) }

    /// True if every element is finite (no NaN or ±Inf).
    public var isFinite: Bool { withUnsafeBufferPointer { $0.allSatisfy { $0.isFinite } } }
}
