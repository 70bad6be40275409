import NFMKernels

/// Define-by-run reverse-mode automatic differentiation (DESIGN.md §1: a tape of pullbacks owned
/// by the result tensors, not the language's `_Differentiation`, because NFM graphs are dynamic).
///
/// Every op that has a differentiated input gives its result a `GradientNode` holding the input
/// nodes and a pullback closure: given ∂L/∂result, it returns ∂L/∂input for each input. Backward
/// walks the nodes in reverse topological order with an explicit stack (no recursion, so a
/// 100,000-node graph cannot overflow the stack), accumulates gradients of tensors used more than
/// once, and frees each node's pullback, and the intermediates it holds, as soon as it has run.
final class GradientNode {
    let shape: [Int]
    /// The nodes of the op's inputs, `nil` where an input is a constant.
    var inputs: [GradientNode?]
    /// ∂L/∂output ↦ ∂L/∂input for each input (`nil` for inputs that get no gradient).
    var pullback: ((Tensor) -> [Tensor?])?
    /// The gradient accumulated so far during a backward pass.
    var gradient: Tensor?
    /// The op that made this node, for error messages.
    let op: String
    /// Set once backward has run through this node and freed its pullback.
    var consumed = false

    init(shape: [Int], op: String, inputs: [GradientNode?] = [], pullback: ((Tensor) -> [Tensor?])? = nil) {
        self.shape = shape
        self.op = op
        self.inputs = inputs
        self.pullback = pullback
    }

    // A long chain of nodes released at once would otherwise deinit recursively and overflow the
    // stack. Unlink uniquely held inputs iteratively instead.
    // A pullback may capture its inputs' nodes too, so it is released only after they are on the
    // pending list.
    deinit {
        var pending = inputs.compactMap { $0 }
        pullback = nil
        inputs = []
        while var next = pending.popLast() {
            if isKnownUniquelyReferenced(&next) {
                pending.append(contentsOf: next.inputs.compactMap { $0 })
                next.pullback = nil
                next.inputs = []
            }
        }
    }
}

/// Whether ops record on the tape. Task-local, so a no-gradient scope on one thread or task does
/// not switch off recording elsewhere.
public enum GradientRecording {
    @TaskLocal static var isEnabled = true

    /// True when ops executed here record pullbacks.
    public static var isActive: Bool { isEnabled }
}

/// Runs `body` without recording anything on the tape (torch.no_grad): results are constants.
public func withoutGradient<Result>(_ body: () throws -> Result) rethrows -> Result {
    try GradientRecording.$isEnabled.withValue(false) { try body() }
}

extension Tensor {
    /// True if this tensor is differentiated through (a leaf that requires a gradient, or a
    /// result computed from one while recording).
    public var requiresGradient: Bool { node != nil }

    /// The same values as a new leaf of the tape: gradients with respect to it can be asked for.
    public func requiringGradient() -> Tensor {
        Tensor(shape: shape, storage: storage, node: GradientNode(shape: shape, op: "leaf"))
    }

    /// The same values cut off from the tape: no gradient flows through it (stop-gradient, torch's detach).
    public func detached() -> Tensor { Tensor(shape: shape, storage: storage) }

    /// True when an op with these inputs must record a pullback.
    static func isRecording(_ inputs: Tensor...) -> Bool {
        GradientRecording.isEnabled && inputs.contains { $0.node != nil }
    }

    /// Attaches a pullback for `inputs` to this freshly computed result if recording is needed.
    /// The pullback receives ∂L/∂self and returns one gradient (or `nil`) per input, each of that
    /// input's shape. It must not capture `self` (that would make a cycle); capture values instead.
    func recorded(_ op: String, inputs: [Tensor], pullback: @escaping (Tensor) -> [Tensor?]) -> Tensor {
        guard GradientRecording.isEnabled, inputs.contains(where: { $0.node != nil }) else { return self }
        var result = self
        result.node = GradientNode(shape: shape, op: op, inputs: inputs.map(\.node), pullback: pullback)
        return result
    }

    /// Unary form of `recorded(_:inputs:pullback:)`.
    func recorded(_ op: String, input: Tensor, pullback: @escaping (Tensor) -> Tensor) -> Tensor {
        recorded(op, inputs: [input]) { [pullback($0)] }
    }
}

/// Reverse mode: the gradients of `output` (∂ output · seed) with respect to each of `inputs`,
/// `nil` where an input does not affect the output. `seed` defaults to ones (so a scalar loss
/// gives its plain gradient). The graph between them is freed as it is walked: as in PyTorch
/// without `retain_graph`, running backward through the same intermediate twice is an error.
public func gradients(of output: Tensor, withRespectTo inputs: [Tensor], seed: Tensor? = nil) -> [Tensor?] {
    guard let root = output.node else { return inputs.map { _ in nil } }
    if let seed {
        precondition(seed.shape == output.shape, "gradients: seed shape \(seed.shape) differs from output shape \(output.shape)")
    }
    let targets = Set(inputs.compactMap { $0.node.map(ObjectIdentifier.init) })

    // Reverse topological order by an iterative depth-first search.
    var order: [GradientNode] = []
    var visited: Set<ObjectIdentifier> = [ObjectIdentifier(root)]
    var stack: [(node: GradientNode, nextInput: Int)] = [(root, 0)]
    while !stack.isEmpty {
        let (node, index) = stack[stack.count - 1]
        if index < node.inputs.count {
            stack[stack.count - 1].nextInput += 1
            if let input = node.inputs[index], visited.insert(ObjectIdentifier(input)).inserted {
                stack.append((input, 0))
            }
        } else {
            stack.removeLast()
            order.append(node)
        }
    }

    root.gradient = seed?.detached() ?? Tensor(ones: output.shape)
    withoutGradient {
        for node in order.reversed() {
            precondition(
                !node.consumed,
                "gradients: backward reached the output of '\(node.op)' a second time; its graph was freed by an earlier backward")
            guard let gradient = node.gradient else { continue }
            if let pullback = node.pullback {
                let inputGradients = pullback(gradient)
                for (input, inputGradient) in zip(node.inputs, inputGradients) {
                    guard let input, let inputGradient else { continue }
                    precondition(
                        inputGradient.shape == input.shape,
                        "gradients: pullback of '\(node.op)' returned shape \(inputGradient.shape) for an input of shape \(input.shape)")
                    if var sum = input.gradient {
                        // Drop the node's reference first, so that the sum can be updated in place.
                        input.gradient = nil
                        sum.accumulate(inputGradient)
                        input.gradient = sum
                    } else {
                        input.gradient = inputGradient
                    }
                }
                node.pullback = nil
                node.inputs = []
                node.consumed = true
            }
            if !targets.contains(ObjectIdentifier(node)) { node.gradient = nil }
        }
    }
    // Read every result before clearing, so that an input listed twice gets its gradient twice.
    let results = inputs.map { $0.node?.gradient }
    for input in inputs { input.node?.gradient = nil }
    return results
}

/// Evaluates `function` at `points` made differentiable and returns its (scalar) value together
/// with the gradient for each point; points that do not affect the value get zeros.
public func valueWithGradient(
    at points: [Tensor], in function: ([Tensor]) -> Tensor
) -> (value: Tensor, gradients: [Tensor]) {
    let leaves = points.map { $0.requiringGradient() }
    let value = function(leaves)
    precondition(value.scalarCount == 1, "valueWithGradient: the function must return a scalar, got shape \(value.shape)")
    let grads = gradients(of: value, withRespectTo: leaves)
    return (value.detached(), zip(grads, points).map { $0 ?? Tensor(zeros: $1.shape) })
}

extension Tensor {
    /// self += other (same shape), in place when this tensor's storage is not shared, as PyTorch
    /// accumulates `.grad`: a tensor read by several ops (an NFM slot's hidden state feeds its key,
    /// value and query convolutions and the residual) then costs no new buffer per extra reader.
    /// Not recorded on the tape (backward runs without gradient).
    mutating func accumulate(_ other: Tensor) {
        guard shape == other.shape, isKnownUniquelyReferenced(&storage) else {
            self = self + other
            return
        }
        Kernels.backend.binary(.add, storage, shape: shape, other.storage, shape: shape, output: storage, shape: shape)
    }
}
