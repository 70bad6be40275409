import Foundation

/// An n-dimensional array of Float32, dense and row-major; image batches are NCHW by convention.
///
/// `Tensor` has value semantics: its storage is shared between copies and never changed in place
/// while shared. A tensor that takes part in differentiation carries a node of the autodiff tape
/// (see `Autodiff.swift`); ops record their pullback on the result's node, define-by-run.
public struct Tensor: @unchecked Sendable {
    /// The extent of each axis; `[]` for a scalar.
    public let shape: [Int]
    var storage: TensorStorage
    /// The tape node, when this tensor is differentiated through; `nil` for constants.
    var node: GradientNode?

    init(shape: [Int], storage: TensorStorage, node: GradientNode? = nil) {
        assert(storage.count == Tensor.elementCount(shape), "storage \(storage.count) does not fit shape \(shape)")
        self.shape = shape
        self.storage = storage
        self.node = node
    }

    /// Allocates an uninitialised tensor and lets `body` fill every element.
    static func build(_ shape: [Int], _ body: (UnsafeMutableBufferPointer<Float>) -> Void) -> Tensor {
        let storage = TensorStorage(uninitializedCount: elementCount(shape))
        body(storage.mutableBuffer)
        return Tensor(shape: shape, storage: storage)
    }

    static func elementCount(_ shape: [Int]) -> Int { shape.reduce(1, *) }

    // MARK: Creation

    /// A tensor of the given shape holding `scalars` in row-major order.
    public init(shape: [Int], scalars: [Float]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor(shape:scalars:): negative extent in \(shape)")
        precondition(
            scalars.count == Tensor.elementCount(shape),
            "Tensor(shape:scalars:): \(scalars.count) scalars do not fill shape \(shape)")
        self.shape = shape
        self.storage = scalars.withUnsafeBufferPointer { TensorStorage(copying: $0) }
        self.node = nil
    }

    /// A rank-1 tensor holding `scalars`.
    public init(_ scalars: [Float]) { self.init(shape: [scalars.count], scalars: scalars) }

    /// A rank-0 (scalar) tensor.
    public init(_ scalar: Float) { self.init(shape: [], scalars: [scalar]) }

    /// A tensor of `shape` with every element equal to `value` (torch.full).
    public init(repeating value: Float, shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor(repeating:shape:): negative extent in \(shape)")
        self.shape = shape
        self.storage = TensorStorage(repeating: value, count: Tensor.elementCount(shape))
        self.node = nil
    }

    /// Zeros of `shape` (torch.zeros).
    public init(zeros shape: [Int]) { self.init(repeating: 0, shape: shape) }

    /// Ones of `shape` (torch.ones).
    public init(ones shape: [Int]) { self.init(repeating: 1, shape: shape) }

    /// `start, start + step, …` up to but excluding `end` (torch.arange).
    public init(rangeFrom start: Float, to end: Float, stride step: Float = 1) {
        precondition(step != 0, "Tensor(rangeFrom:to:stride:): stride must be non-zero")
        let count = Swift.max(0, Int(((end - start) / step).rounded(.up)))
        self = Tensor.build([count]) { out in
            for i in 0..<count { out[i] = start + Float(i) * step }
        }
    }

    /// Samples from N(mean, std²) drawn from `generator` (torch.randn · std + mean).
    public static func randomNormal(
        _ shape: [Int], mean: Float = 0, std: Float = 1, using generator: inout SeededGenerator
    ) -> Tensor {
        var g = generator
        let t = Tensor.build(shape) { out in
            for i in out.indices { out[i] = mean + std * Float(g.nextNormal()) }
        }
        generator = g
        return t
    }

    /// Samples from U[lowerBound, upperBound) drawn from `generator` (torch.rand scaled).
    public static func randomUniform(
        _ shape: [Int], lowerBound: Float = 0, upperBound: Float = 1, using generator: inout SeededGenerator
    ) -> Tensor {
        var g = generator
        let t = Tensor.build(shape) { out in
            let width = upperBound - lowerBound
            for i in out.indices { out[i] = lowerBound + width * g.nextUniform() }
        }
        generator = g
        return t
    }

    // MARK: Reading

    /// The number of axes.
    public var rank: Int { shape.count }
    /// The number of elements.
    public var scalarCount: Int { storage.count }
    /// The elements in row-major order.
    public var scalars: [Float] { Array(storage.buffer) }
    /// The single element of a tensor with one element.
    public var item: Float {
        precondition(scalarCount == 1, "item: tensor of shape \(shape) has \(scalarCount) elements, not 1")
        return storage.pointer[0]
    }

    /// Read-only access to the elements without copying.
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try withExtendedLifetime(storage) { try body(storage.buffer) }
    }

    /// Mutable access to the elements. Copies first if the storage is shared (copy on write),
    /// and detaches the tensor from the tape: an in-place edit is not differentiable.
    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        if !isKnownUniquelyReferenced(&storage) {
            storage = TensorStorage(copying: storage.buffer)
        }
        node = nil
        return try withExtendedLifetime(storage) { try body(storage.mutableBuffer) }
    }

    /// The element at a multi-index (for tests and small reads; not a fast path).
    public subscript(_ index: Int...) -> Float {
        precondition(index.count == rank, "subscript: \(index.count) indices for shape \(shape)")
        var offset = 0
        for (axis, i) in index.enumerated() {
            precondition(i >= 0 && i < shape[axis], "subscript: index \(index) out of range for shape \(shape)")
            offset = offset * shape[axis] + i
        }
        return storage.pointer[offset]
    }

    /// Row-major strides of `shape`, in elements.
    static func strides(of shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var running = 1
        for axis in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[axis] = running
            running *= shape[axis]
        }
        return strides
    }

    /// Resolves a possibly negative axis (−1 is the last) against `rank`.
    static func normalize(axis: Int, rank: Int, op: String) -> Int {
        let resolved = axis < 0 ? axis + rank : axis
        precondition(resolved >= 0 && resolved < Swift.max(rank, 1), "\(op): axis \(axis) out of range for rank \(rank)")
        return resolved
    }
}

extension Tensor: CustomStringConvertible {
    /// A short summary: the shape and the first few elements.
    public var description: String {
        let shown = scalars.prefix(8).map { String(format: "%.4g", $0) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(shown)\(scalarCount > 8 ? ", …" : "")])"
    }
}
