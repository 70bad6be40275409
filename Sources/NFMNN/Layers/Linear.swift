import NFMTensor

/// A fully connected layer, as torch.nn.Linear: y = x·Wᵀ + b with W [out, in].
public final class Linear: Module, UnaryLayer {
    /// W, [outputFeatures, inputFeatures].
    @ParameterInfo public var weight: Tensor
    /// b, [outputFeatures], or nil without bias.
    @ParameterInfo public var bias: Tensor?

    /// A layer with torch's default initialisation drawn from `generator`.
    public init(_ inputFeatures: Int, _ outputFeatures: Int, bias: Bool = true, using generator: inout SeededGenerator) {
        super.init()
        self.weight = Initializer.kaimingUniform([outputFeatures, inputFeatures], using: &generator)
        self.bias = bias ? Initializer.defaultBias(count: outputFeatures, fanIn: inputFeatures, using: &generator) : nil
    }

    /// Features read (torch's `in_features`).
    public var inputFeatures: Int { weight.shape[1] }
    /// Features written (torch's `out_features`).
    public var outputFeatures: Int { weight.shape[0] }

    /// Applies the affine map to the last axis of `x`.
    public func callAsFunction(_ x: Tensor) -> Tensor { linear(x, weight: weight, bias: bias) }
}
