import Foundation

// The portable implementation of the primitives that both CPU backends share: elementwise maps,
// data movement, reductions, softmax, the NFM attention and the optimizer steps, as Swift loops
// (split over the cores where the work repays it, `parallelRanges`). They were NFMTensor's and
// NFMOptimizers' own loops before the boundary; the arithmetic, and its order, is unchanged, so
// results are bit-identical to what they were. Where `Kernels.vectorISA` names a compiled path
// (VectorISA.swift), the hottest loops call their AVX2 or AVX-512 twin in CVectorKernels instead,
// with the same results; the Swift loops are the portable path.

/// A tensor seen around one axis as [outer, extent, inner]: line (o, i) starts at o·extent·inner + i
/// and its k-th element is `inner`·k further on.
public struct AxisLayout: Hashable, Sendable {
    /// The product of the extents before the axis.
    public var outer: Int
    /// The extent of the axis.
    public var extent: Int
    /// The product of the extents after the axis.
    public var inner: Int

    /// Memberwise initialiser.
    public init(outer: Int, extent: Int, inner: Int) {
        self.outer = outer
        self.extent = extent
        self.inner = inner
    }

    /// Calls `body` with each line's start and stride.
    @inline(__always)
    func forEachLine(_ body: (_ base: Int, _ stride: Int) -> Void) {
        for o in 0..<outer {
            for i in 0..<inner { body(o * extent * inner + i, inner) }
        }
    }
}

/// Row-major strides of `shape`, in elements.
public func rowMajorStrides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    var running = 1
    for axis in stride(from: shape.count - 1, through: 0, by: -1) {
        strides[axis] = running
        running *= shape[axis]
    }
    return strides
}

/// Strides that read a tensor of `shape` as if it had `target` shape (0 on stretched axes).
public func broadcastStrides(of shape: [Int], to target: [Int]) -> [Int] {
    let own = rowMajorStrides(shape)
    let offset = target.count - shape.count
    return (0..<target.count).map { i in
        i < offset || shape[i - offset] == 1 ? 0 : own[i - offset]
    }
}

/// Walks an index space of `shape` one innermost row at a time, tracking the element offset of
/// up to three operands with their own strides. `body(row, offsetA, offsetB, offsetC)` runs once
/// per row; the row's extent is `shape.last` and the caller steps by the operands' last strides.
@inline(__always)
func forEachRow(
    shape: [Int], stridesA: [Int], stridesB: [Int] = [], stridesC: [Int] = [],
    _ body: (_ row: Int, _ offsetA: Int, _ offsetB: Int, _ offsetC: Int) -> Void
) {
    let rank = shape.count
    if rank == 0 { body(0, 0, 0, 0); return }
    if shape.contains(0) { return }
    let sb = stridesB.isEmpty ? [Int](repeating: 0, count: rank) : stridesB
    let sc = stridesC.isEmpty ? [Int](repeating: 0, count: rank) : stridesC
    let rows = shape.dropLast().reduce(1, *)
    var index = [Int](repeating: 0, count: rank)
    var offsetA = 0, offsetB = 0, offsetC = 0
    for row in 0..<rows {
        body(row, offsetA, offsetB, offsetC)
        // Odometer increment over the outer axes.
        var axis = rank - 2
        while axis >= 0 {
            index[axis] += 1
            offsetA += stridesA[axis]
            offsetB += sb[axis]
            offsetC += sc[axis]
            if index[axis] < shape[axis] { break }
            offsetA -= stridesA[axis] * shape[axis]
            offsetB -= sb[axis] * shape[axis]
            offsetC -= sc[axis] * shape[axis]
            index[axis] = 0
            axis -= 1
        }
    }
}

// MARK: Elementwise

extension ComputeBackend {
    /// Portable `fill`.
    public func fill(_ output: TensorBuffer, with value: Float) {
        output.pointer.update(repeating: value, count: output.count)
    }

    /// Portable `unary`: one specialised loop per operation.
    public func unary(_ operation: UnaryOperation, _ input: TensorBuffer, output: TensorBuffer) {
        precondition(input.count == output.count, "unary: \(input.count) inputs for \(output.count) outputs")
        let source: UnsafeMutablePointer<Float>, destination: UnsafeMutablePointer<Float>
        if input !== output, let copy = input.denseLayoutCopy {
            // The input lives in a backend's dense layout (a convolution's blocked output): the result
            // stays in it, for the next convolution (TensorLayout).
            source = copy.memory.assumingMemoryBound(to: Float.self)
            destination = output.replaceValues(inLayout: copy.layout).bindMemory(to: Float.self, capacity: output.count)
        } else {
            (source, destination) = (input.pointer, output.pointer)
        }
        defer { withExtendedLifetime((input, output)) {} }
        if let vector = Kernels.vectorKernels, let compiled = operation.vectorKernel {
            parallelRanges(output.count) { range in
                vector.unary(
                    compiled.kernel, compiled.parameter0, compiled.parameter1, source + range.lowerBound,
                    destination + range.lowerBound, range.count)
            }
            return
        }
        parallelRanges(output.count) { range in
            withScalarFunction(operation) { f in
                for i in range { destination[i] = f(source[i]) }
            }
        }
    }

    /// Portable `binary`: flat passes for equal shapes and for a scalar on either side (γ · out in
    /// the NFM residual), the strided row walker otherwise; one specialised loop per operation.
    public func binary(
        _ operation: BinaryOperation, _ a: TensorBuffer, shape shapeA: [Int], _ b: TensorBuffer, shape shapeB: [Int],
        output: TensorBuffer, shape: [Int]
    ) {
        defer { withExtendedLifetime((a, b, output)) {} }
        let count = output.count
        let pa: UnsafeMutablePointer<Float>, pb: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>
        if let (layoutA, layoutB, layout) = Self.denseLayoutOperands(a, shapeA, b, shapeB, output: output, shape: shape) {
            // Operands in a backend's dense layout (TensorLayout): the flat passes below run on it as
            // they are, and the result stays in it (in place when the output is an operand, as in
            // gradient accumulation).
            pa = layoutA ?? a.pointer
            pb = layoutB ?? b.pointer
            out = output === a ? pa : output === b ? pb : output.replaceValues(inLayout: layout).bindMemory(to: Float.self, capacity: count)
        } else {
            (pa, pb, out) = (a.pointer, b.pointer, output.pointer)
        }
        // The compiled loop of `Kernels.vectorISA` over a run of `count` outputs, each operand contiguous
        // (stride 1) or one scalar (stride 0); nil on the portable path or for an operation without one.
        var vectorLoop: ((UnsafePointer<Float>, Int, UnsafePointer<Float>, Int, UnsafeMutablePointer<Float>, Int) -> Void)?
        if let vector = Kernels.vectorKernels, let compiled = operation.vectorKernel {
            vectorLoop = { vector.binary(compiled.kernel, compiled.parameter, $0, $1, $2, $3, $4, $5) }
        }
        // The operation is chosen inside each worker's range, so that its loop is compiled with the
        // scalar function inlined: a closure called per element made gradient accumulation and
        // ReLU's pullback a third slower (perf on the NFM train step).
        if shapeA == shapeB {
            parallelRanges(count) { range in
                if let vectorLoop {
                    let start = range.lowerBound
                    return vectorLoop(pa + start, 1, pb + start, 1, out + start, range.count)
                }
                withScalarFunction(operation) { f in
                    for i in range { out[i] = f(pa[i], pb[i]) }
                }
            }
            return
        }
        if b.count == 1 {
            let scalar = pb[0]
            if a.count == count {
                parallelRanges(count) { range in
                    if let vectorLoop {
                        let start = range.lowerBound
                        return vectorLoop(pa + start, 1, pb, 0, out + start, range.count)
                    }
                    withScalarFunction(operation) { f in
                        for i in range { out[i] = f(pa[i], scalar) }
                    }
                }
            } else {
                for i in 0..<count { out[i] = operation.apply(pa[0], scalar) }
            }
            return
        }
        if a.count == 1 && b.count == count {
            let scalar = pa[0]
            parallelRanges(count) { range in
                if let vectorLoop {
                    let start = range.lowerBound
                    return vectorLoop(pa, 0, pb + start, 1, out + start, range.count)
                }
                withScalarFunction(operation) { f in
                    for i in range { out[i] = f(scalar, pb[i]) }
                }
            }
            return
        }
        let sa = broadcastStrides(of: shapeA, to: shape)
        let sb = broadcastStrides(of: shapeB, to: shape)
        let inner = shape.last ?? 1
        let stepA = sa.last ?? 0, stepB = sb.last ?? 0
        // Rows whose operands are contiguous or a repeated scalar (a bias over H·W) take the
        // compiled loop too.
        if let vectorLoop, stepA <= 1, stepB <= 1, stepA + stepB > 0 {
            forEachRow(shape: shape, stridesA: sa, stridesB: sb) { row, offsetA, offsetB, _ in
                vectorLoop(pa + offsetA, stepA, pb + offsetB, stepB, out + row * inner, inner)
            }
            return
        }
        withScalarFunction(operation) { f in
            forEachRow(shape: shape, stridesA: sa, stridesB: sb) { row, offsetA, offsetB, _ in
                let o = out + row * inner
                let rowA = pa + offsetA, rowB = pb + offsetB
                for j in 0..<inner { o[j] = f(rowA[j * stepA], rowB[j * stepB]) }
            }
        }
    }

    /// For `binary`: the operands' memory when the result can be computed in a backend's dense
    /// layout, because every operand of the output's shape has its values only in that one layout
    /// and any other operand is a scalar; nil for a scalar operand (read from its plain memory).
    /// Nil when the plain layout must be used. The output may be an operand of the output's shape.
    private static func denseLayoutOperands(
        _ a: TensorBuffer, _ shapeA: [Int], _ b: TensorBuffer, _ shapeB: [Int], output: TensorBuffer, shape: [Int]
    ) -> (UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Float>?, any TensorLayout)? {
        guard (output !== a || shapeA == shape) && (output !== b || shapeB == shape) else { return nil }
        let copyA = shapeA == shape ? a.denseLayoutCopy : nil, copyB = shapeB == shape ? b.denseLayoutCopy : nil
        func values(_ copy: TensorBuffer.LayoutCopy) -> UnsafeMutablePointer<Float> { copy.memory.assumingMemoryBound(to: Float.self) }
        switch (copyA, copyB) {
        case (let copyA?, let copyB?) where copyA.layout.isSame(as: copyB.layout):
            return (values(copyA), values(copyB), copyA.layout)
        case (let copyA?, nil) where b.count == 1:
            return (values(copyA), nil, copyA.layout)
        case (nil, let copyB?) where a.count == 1:
            return (nil, values(copyB), copyB.layout)
        default:
            return nil
        }
    }

    /// Portable `ternary`.
    public func ternary(
        _ operation: TernaryOperation, _ a: TensorBuffer, shape shapeA: [Int], _ b: TensorBuffer, shape shapeB: [Int],
        _ c: TensorBuffer, shape shapeC: [Int], output: TensorBuffer, shape: [Int]
    ) {
        let sa = broadcastStrides(of: shapeA, to: shape)
        let sb = broadcastStrides(of: shapeB, to: shape)
        let sc = broadcastStrides(of: shapeC, to: shape)
        let inner = shape.last ?? 1
        let stepA = sa.last ?? 0, stepB = sb.last ?? 0, stepC = sc.last ?? 0
        let base = output.pointer
        forEachRow(shape: shape, stridesA: sa, stridesB: sb, stridesC: sc) { row, offsetA, offsetB, offsetC in
            let o = base + row * inner
            let pa = a.pointer + offsetA, pb = b.pointer + offsetB, pc = c.pointer + offsetC
            for j in 0..<inner { o[j] = operation.apply(pa[j * stepA], pb[j * stepB], pc[j * stepC]) }
        }
        withExtendedLifetime((a, b, c, output)) {}
    }
}

/// Calls `body` with the scalar function of `operation` as a closure literal. Inlined, so that the
/// loop in `body` is compiled once per operation with the function inside it (the switch runs once
/// per call, not per element; each case passes a constant operation, so `apply` folds to its formula).
@inline(__always)
func withScalarFunction(_ operation: UnaryOperation, _ body: ((Float) -> Float) -> Void) {
    switch operation {
    case .negate: body { UnaryOperation.negate.apply($0) }
    case .exp: body { UnaryOperation.exp.apply($0) }
    case .log: body { UnaryOperation.log.apply($0) }
    case .sqrt: body { UnaryOperation.sqrt.apply($0) }
    case .power(let p) where p == 2: body { UnaryOperation.power(2).apply($0) }
    case .power(let p): body { Foundation.pow($0, p) }
    case .abs: body { UnaryOperation.abs.apply($0) }
    case .clamp(let lower, let upper): body { UnaryOperation.clamp(lower: lower, upper: upper).apply($0) }
    case .relu: body { UnaryOperation.relu.apply($0) }
    case .leakyRelu(let slope): body { UnaryOperation.leakyRelu(slope: slope).apply($0) }
    case .sigmoid: body { UnaryOperation.sigmoid.apply($0) }
    case .tanh: body { UnaryOperation.tanh.apply($0) }
    case .softplus(let beta, let threshold): body { UnaryOperation.softplus(beta: beta, threshold: threshold).apply($0) }
    case .keepMask(let probability, let scale): body { UnaryOperation.keepMask(probability: probability, scale: scale).apply($0) }
    }
}

/// `withScalarFunction` for the two-operand operations.
@inline(__always)
func withScalarFunction(_ operation: BinaryOperation, _ body: ((Float, Float) -> Float) -> Void) {
    switch operation {
    case .add: body { BinaryOperation.add.apply($0, $1) }
    case .subtract: body { BinaryOperation.subtract.apply($0, $1) }
    case .multiply: body { BinaryOperation.multiply.apply($0, $1) }
    case .divide: body { BinaryOperation.divide.apply($0, $1) }
    case .power: body { BinaryOperation.power.apply($0, $1) }
    case .greater: body { BinaryOperation.greater.apply($0, $1) }
    case .less: body { BinaryOperation.less.apply($0, $1) }
    case .greaterEqual: body { BinaryOperation.greaterEqual.apply($0, $1) }
    case .lessEqual: body { BinaryOperation.lessEqual.apply($0, $1) }
    case .equal: body { BinaryOperation.equal.apply($0, $1) }
    case .sqrtBackward: body { BinaryOperation.sqrtBackward.apply($0, $1) }
    case .absBackward: body { BinaryOperation.absBackward.apply($0, $1) }
    case .reluBackward: body { BinaryOperation.reluBackward.apply($0, $1) }
    case .sigmoidBackward: body { BinaryOperation.sigmoidBackward.apply($0, $1) }
    case .tanhBackward: body { BinaryOperation.tanhBackward.apply($0, $1) }
    case .keepWhereTrue: body { BinaryOperation.keepWhereTrue.apply($0, $1) }
    case .keepWhereFalse: body { BinaryOperation.keepWhereFalse.apply($0, $1) }
    case .powerBackward(let p): body { BinaryOperation.powerBackward(p).apply($0, $1) }
    case .clampBackward(let lower, let upper): body { BinaryOperation.clampBackward(lower: lower, upper: upper).apply($0, $1) }
    case .leakyReluBackward(let slope): body { BinaryOperation.leakyReluBackward(slope: slope).apply($0, $1) }
    case .softplusBackward(let beta, let threshold):
        body { BinaryOperation.softplusBackward(beta: beta, threshold: threshold).apply($0, $1) }
    }
}

// MARK: Data movement

extension ComputeBackend {
    /// Portable `copy`: contiguous runs when both innermost strides are 1, element by element otherwise.
    public func copy(
        extents: [Int], from source: TensorBuffer, offset sourceOffset: Int, strides sourceStrides: [Int],
        to destination: TensorBuffer, offset destinationOffset: Int, strides destinationStrides: [Int]
    ) {
        defer { withExtendedLifetime((source, destination)) {} }
        let inner = extents.last ?? 1
        let readStep = sourceStrides.last ?? 0, writeStep = destinationStrides.last ?? 0
        let read = source.pointer + sourceOffset, write = destination.pointer + destinationOffset
        forEachRow(shape: extents, stridesA: sourceStrides, stridesB: destinationStrides) { _, readOffset, writeOffset, _ in
            let from = read + readOffset, to = write + writeOffset
            if readStep == 1 && writeStep == 1 {
                to.update(from: from, count: inner)
            } else {
                for j in 0..<inner { to[j * writeStep] = from[j * readStep] }
            }
        }
    }

    /// Portable `gather`.
    public func gather(_ source: TensorBuffer, indices: [Int], blockLength: Int, output: TensorBuffer) {
        let from = source.pointer, to = output.pointer
        if blockLength == 1 {
            for (i, index) in indices.enumerated() { to[i] = from[index] }
        } else {
            for (i, index) in indices.enumerated() {
                (to + i * blockLength).update(from: from + index * blockLength, count: blockLength)
            }
        }
        withExtendedLifetime((source, output)) {}
    }

    /// Portable `scatterAdd`.
    public func scatterAdd(_ source: TensorBuffer, indices: [Int], blockLength: Int, output: TensorBuffer) {
        let from = source.pointer, to = output.pointer
        to.update(repeating: 0, count: output.count)
        for (i, index) in indices.enumerated() {
            let target = to + index * blockLength, values = from + i * blockLength
            for j in 0..<blockLength { target[j] += values[j] }
        }
        withExtendedLifetime((source, output)) {}
    }
}

// MARK: Reductions and softmax

extension ComputeBackend {
    /// Portable `sum`: accumulates in Double, row by row in memory order.
    public func sum(_ input: TensorBuffer, shape: [Int], output: TensorBuffer, reducedShape: [Int]) {
        var accumulator = [Double](repeating: 0, count: output.count)
        let outStrides = broadcastStrides(of: reducedShape, to: shape)
        let inner = shape.last ?? 1
        let step = outStrides.last ?? 0
        accumulator.withUnsafeMutableBufferPointer { acc in
            let values = input.pointer
            forEachRow(shape: shape, stridesA: outStrides) { row, offset, _, _ in
                let source = values + row * inner
                if step == 0 {
                    var total = 0.0
                    for j in 0..<inner { total += Double(source[j]) }
                    acc[offset] += total
                } else {
                    for j in 0..<inner { acc[offset + j * step] += Double(source[j]) }
                }
            }
        }
        let out = output.pointer
        for i in 0..<output.count { out[i] = Float(accumulator[i]) }
        withExtendedLifetime(input) {}
    }

    /// Portable `maximum`.
    public func maximum(_ input: TensorBuffer, layout: AxisLayout, values: TensorBuffer) -> [Int] {
        let (outer, extent, inner) = (layout.outer, layout.extent, layout.inner)
        var indices = [Int](repeating: 0, count: outer * inner)
        let source = input.pointer, best = values.pointer
        for o in 0..<outer {
            for i in 0..<inner {
                var largest = source[o * extent * inner + i], largestIndex = 0
                for k in 1..<extent {
                    let v = source[(o * extent + k) * inner + i]
                    // NaN wins, as in PyTorch, so that a NaN is never hidden by max.
                    if v > largest || (v.isNaN && !largest.isNaN) { largest = v; largestIndex = k }
                }
                best[o * inner + i] = largest
                indices[o * inner + i] = largestIndex
            }
        }
        withExtendedLifetime((input, values)) {}
        return indices
    }

    /// Portable `softmax`.
    public func softmax(_ input: TensorBuffer, layout: AxisLayout, logarithmic: Bool, output: TensorBuffer) {
        let x = input.pointer, out = output.pointer, extent = layout.extent
        layout.forEachLine { base, inner in
            var largest = -Float.infinity
            for k in 0..<extent { largest = Swift.max(largest, x[base + k * inner]) }
            var total: Float = 0
            if logarithmic {
                for k in 0..<extent { total += Foundation.exp(x[base + k * inner] - largest) }
                let logTotal = largest + Foundation.log(total)
                for k in 0..<extent { out[base + k * inner] = x[base + k * inner] - logTotal }
            } else {
                for k in 0..<extent {
                    let e = Foundation.exp(x[base + k * inner] - largest)
                    out[base + k * inner] = e
                    total += e
                }
                for k in 0..<extent { out[base + k * inner] /= total }
            }
        }
        withExtendedLifetime((input, output)) {}
    }

    /// Portable `softmaxBackward`.
    public func softmaxBackward(
        gradOutput: TensorBuffer, output: TensorBuffer, layout: AxisLayout, logarithmic: Bool, gradInput: TensorBuffer
    ) {
        let g = gradOutput.pointer, y = output.pointer, out = gradInput.pointer, extent = layout.extent
        layout.forEachLine { base, inner in
            if logarithmic {
                var total: Float = 0
                for k in 0..<extent { total += g[base + k * inner] }
                for k in 0..<extent { out[base + k * inner] = g[base + k * inner] - Foundation.exp(y[base + k * inner]) * total }
            } else {
                var dot: Float = 0
                for k in 0..<extent { dot += g[base + k * inner] * y[base + k * inner] }
                for k in 0..<extent { out[base + k * inner] = y[base + k * inner] * (g[base + k * inner] - dot) }
            }
        }
        withExtendedLifetime((gradOutput, output, gradInput)) {}
    }

    /// Portable `sumOfSquares`: four independent partial sums, so that the additions overlap
    /// instead of waiting on one another (6.9M float32 squares summed in float would lose digits).
    public func sumOfSquares(_ input: TensorBuffer) -> Double {
        let values = input.buffer
        var partial: (Double, Double, Double, Double) = (0, 0, 0, 0)
        let blocked = values.count & ~3
        var i = 0
        while i < blocked {
            let a = Double(values[i]), b = Double(values[i + 1]), c = Double(values[i + 2]), d = Double(values[i + 3])
            partial.0 += a * a
            partial.1 += b * b
            partial.2 += c * c
            partial.3 += d * d
            i += 4
        }
        for j in blocked..<values.count { partial.0 += Double(values[j]) * Double(values[j]) }
        withExtendedLifetime(input) {}
        return (partial.0 + partial.1) + (partial.2 + partial.3)
    }

    /// Portable `allFinite`.
    public func allFinite(_ input: TensorBuffer) -> Bool {
        input.withHostCopy { $0.allSatisfy { $0.isFinite } }
    }
}

// MARK: The fused NFM attention

/// What the NFM attention's forward saves for its backward (layouts in NFMAttentionKernel.swift):
/// the softmax weights a, the threshold slot of each pixel and head, and 1 / (Σ a' + 1e-7).
/// Opaque above NFMKernels; the pullback only holds it.
public final class NFMAttentionCaches: @unchecked Sendable {
    let softmaxWeights: TensorBuffer
    let thresholdSlots: [Int32]
    let inverseDenominators: TensorBuffer

    init(softmaxWeights: TensorBuffer, thresholdSlots: [Int32], inverseDenominators: TensorBuffer) {
        self.softmaxWeights = softmaxWeights
        self.thresholdSlots = thresholdSlots
        self.inverseDenominators = inverseDenominators
    }
}

extension ComputeBackend {
    /// Portable `nfmAttentionForward`: `NFMAttentionKernel.forward`.
    public func nfmAttentionForward(
        _ geometry: NFMAttentionGeometry, query: TensorBuffer, keys: [TensorBuffer], values: [TensorBuffer],
        output: TensorBuffer, weights: TensorBuffer
    ) -> NFMAttentionCaches {
        let softmaxWeights = TensorBuffer(uninitializedCount: geometry.weightCount)
        let inverseDenominators = TensorBuffer(uninitializedCount: geometry.pixelCacheCount)
        let thresholdSlots = [Int32](unsafeUninitializedCapacity: geometry.pixelCacheCount) { thresholds, count in
            NFMAttentionKernel.forward(
                geometry, query: query.pointer, keys: keys.map { UnsafePointer($0.pointer) },
                values: values.map { UnsafePointer($0.pointer) }, output: output.pointer, weights: weights.pointer,
                softmaxWeights: softmaxWeights.pointer, thresholdSlots: thresholds.baseAddress!,
                inverseDenominators: inverseDenominators.pointer)
            count = geometry.pixelCacheCount
        }
        withExtendedLifetime((query, keys, values, output, weights)) {}
        return NFMAttentionCaches(
            softmaxWeights: softmaxWeights, thresholdSlots: thresholdSlots, inverseDenominators: inverseDenominators)
    }

    /// Portable `nfmAttentionBackward`: `NFMAttentionKernel.backward`.
    public func nfmAttentionBackward(
        _ geometry: NFMAttentionGeometry, query: TensorBuffer, keys: [TensorBuffer], values: [TensorBuffer],
        weights: TensorBuffer, caches: NFMAttentionCaches, gradOutput: TensorBuffer,
        gradQuery: TensorBuffer, gradKeys: [TensorBuffer], gradValues: [TensorBuffer]
    ) {
        caches.thresholdSlots.withUnsafeBufferPointer { thresholds in
            NFMAttentionKernel.backward(
                geometry, query: query.pointer, keys: keys.map { UnsafePointer($0.pointer) },
                values: values.map { UnsafePointer($0.pointer) }, weights: weights.pointer,
                softmaxWeights: caches.softmaxWeights.pointer, thresholdSlots: thresholds.baseAddress!,
                inverseDenominators: caches.inverseDenominators.pointer, gradOutput: gradOutput.pointer,
                gradQuery: gradQuery.pointer, gradKeys: gradKeys.map(\.pointer), gradValues: gradValues.map(\.pointer))
        }
        withExtendedLifetime((query, keys, values, weights, caches, gradOutput, gradQuery, gradKeys, gradValues)) {}
    }
}
