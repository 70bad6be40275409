/// Floating-point work of a network's convolutions and matrix products, counted layer by layer as
/// 2 · multiply-adds per example, for benchmarks that report how much of the machine a step uses
/// (nfm-bench's model step, `nfm-rl speed`).
///
/// Backward counts, for each layer, the weight gradient (as many FLOPs as the forward) and the data
/// gradient (as many again), except for layers that read the input data, which need no data
/// gradient. Elementwise work, normalisation and softmax are not counted: they are memory-bound and
/// small beside the products.
public struct FlopCount: Sendable, Equatable {
    /// Forward FLOPs.
    public var forward = 0.0
    /// Backward FLOPs (data and weight gradients).
    public var backward = 0.0

    /// No work.
    public init() {}

    /// A training step's work: forward and backward.
    public var training: Double { forward + backward }

    /// A convolution of `input` → `output` channels with a `kernel`×`kernel` window producing
    /// `outputPixels` pixels, for `examples` examples.
    public mutating func convolution(
        _ input: Int, _ output: Int, kernel: Int, outputPixels: Int, examples: Int, needsDataGradient: Bool = true
    ) {
        product(Double(examples) * Double(outputPixels * output * input * kernel * kernel), needsDataGradient: needsDataGradient)
    }

    /// A linear layer `input` → `output` for `examples` examples.
    public mutating func linear(_ input: Int, _ output: Int, examples: Int, needsDataGradient: Bool = true) {
        product(Double(examples) * Double(input * output), needsDataGradient: needsDataGradient)
    }

    /// Work counted elsewhere (e.g. a fused kernel's products), forward and backward.
    public mutating func add(forward: Double, backward: Double) {
        self.forward += forward
        self.backward += backward
    }

    /// `multiplyAdds` multiply-adds forward; backward the weight gradient and, if needed, the data gradient.
    private mutating func product(_ multiplyAdds: Double, needsDataGradient: Bool) {
        forward += 2 * multiplyAdds
        backward += 2 * multiplyAdds * (needsDataGradient ? 2 : 1)
    }
}
