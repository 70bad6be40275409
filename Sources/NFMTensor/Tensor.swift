import Foundation
import NFMKernels

/// An n-dimensional array of Float32, dense and row-major; image batches are NCHW by convention.
///
/// `Tensor` has value semantics: its storage is shared between copies and never changed in place
/// while shared. A tensor that takes part in differentiation carries a node of the autodiff tape
/// (see `Autodiff.swift`); ops record their pullback on the result's node, define-by-run.
///
/// The storage is a `TensorBuffer` that the backend owns (DESIGN.md §1): ops are written in the
/// backend's primitives and never touch the memory. Host code reads and writes elements only
/// through the named host-copy helpers: `init(shape:scalars:)`, `init(shape:fillingHost:)`,
/// `scalars`, `item`, `withHostCopy(_:)`.
public struct Tensor: @unchecked Sendable {
    /// The extent of each axis; `[]` for a scalar.
    public let shape: [Int]
    var storage: TensorBuffer
    /// The tape node, when this tensor is differentiated through; `nil` for constants.
    var node: GradientNode?

    init(shape: [Int], storage: TensorBuffer, node: GradientNode? = nil) {
        assert(storage.count == Tensor.elementCount(shape), "storage \(storage.count) does not fit shape \(shape)")
        self.shape = shape
        self.storage = storage
        self.node = node
    }

    /// Allocates an uninitialised tensor and lets `kernel` (backend primitives) write every element.
    static func computed(_ shape: [Int], _ kernel: (TensorBuffer) -> Void) -> Tensor {
        let storage = TensorBuffer(uninitializedCount: elementCount(shape))
        kernel(storage)
        return Tensor(shape: shape, storage: storage)
    }

    /// The tensor over an existing buffer, which must hold exactly the elements of `shape`. The
    /// buffer is shared, not copied: it must not be changed afterwards unless uniquely owned.
    public init(shape: [Int], buffer: TensorBuffer) {
        precondition(buffer.count == Tensor.elementCount(shape), "Tensor(shape:buffer:): \(buffer.count) elements do not fill shape \(shape)")
        self.init(shape: shape, storage: buffer)
    }

    /// Host-copy helper: a tensor of `shape` whose elements `fill` writes, every one, in host memory
    /// (data loaders, environments, random draws); they are then copied into the backend's buffer.
    public init(shape: [Int], fillingHost fill: (UnsafeMutableBufferPointer<Float>) throws -> Void) rethrows {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor(shape:fillingHost:): negative extent in \(shape)")
        self.init(shape: shape, storage: try TensorBuffer(count: Tensor.elementCount(shape), fillingHost: fill))
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
        self.storage = scalars.withUnsafeBufferPointer { TensorBuffer(copying: $0) }
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
        self.storage = TensorBuffer(uninitializedCount: Tensor.elementCount(shape))
        Kernels.backend.fill(storage, with: value)
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
        self.init(shape: [count]) { out in
            for i in 0..<count { out[i] = start + Float(i) * step }
        }
    }

    /// Samples from N(mean, std²) drawn from `generator` (torch.randn · std + mean).
    public static func randomNormal(
        _ shape: [Int], mean: Float = 0, std: Float = 1, using generator: inout SeededGenerator
    ) -> Tensor {
        var g = generator
        let t = Tensor(shape: shape) { out in
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
        let t = Tensor(shape: shape) { out in
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
    /// Host-copy helper: the elements in row-major order, copied to a host array.
    public var scalars: [Float] { storage.copyToHost() }
    /// Host-copy helper: the single element of a tensor with one element.
    public var item: Float {
        precondition(scalarCount == 1, "item: tensor of shape \(shape) has \(scalarCount) elements, not 1")
        return storage.withHostCopy { $0[0] }
    }

    /// Host-copy helper: lends `body` a read-only host copy of the elements, row-major (on the CPU
    /// backends the buffer itself, with no copy). `body` must not keep the pointer.
    public func withHostCopy<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try storage.withHostCopy(body)
    }

    /// The backend buffer behind this tensor, an opaque handle for backend primitives (the
    /// optimizers' fused steps). Shared: do not change it through the handle.
    public var buffer: TensorBuffer { storage }

    /// Lends `body` this tensor's buffer for an in-place primitive (an optimizer step). Copies first
    /// if the buffer is shared (copy on write), and detaches the tensor from the tape: an in-place
    /// edit is not differentiable.
    public mutating func withUniquelyOwnedBuffer<R>(_ body: (TensorBuffer) throws -> R) rethrows -> R {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
        node = nil
        return try body(storage)
    }

    /// Host-copy helper: the element at a multi-index (for tests and small reads; not a fast path).
    public subscript(_ index: Int...) -> Float {
        precondition(index.count == rank, "subscript: \(index.count) indices for shape \(shape)")
        var offset = 0
        for (axis, i) in index.enumerated() {
            precondition(i >= 0 && i < shape[axis], "subscript: index \(index) out of range for shape \(shape)")
            offset = offset * shape[axis] + i
        }
        return storage.withHostCopy { $0[offset] }
    }

    /// Row-major strides of `shape`, in elements.
    static func strides(of shape: [Int]) -> [Int] { rowMajorStrides(shape) }

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
