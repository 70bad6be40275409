import NFMTensor

/// Inverted dropout, as torch.nn.Dropout: active in training mode only. The mask's randomness is
/// passed in, so a seed reproduces a run.
public final class Dropout: Module {
    /// The probability of zeroing an element.
    public let probability: Float

    /// A dropout layer with drop probability `probability`.
    public init(probability: Float = 0.5) {
        precondition(probability >= 0 && probability < 1, "Dropout: probability \(probability) must be in [0, 1)")
        self.probability = probability
        super.init()
    }

    /// Drops elements in training mode; the identity in eval mode.
    public func callAsFunction(_ x: Tensor, using generator: inout SeededGenerator) -> Tensor {
        isTraining ? dropout(x, probability: probability, using: &generator) : x
    }
}

/// A chain of unary layers, keyed `0`, `1`, … as torch.nn.Sequential.
public final class Sequential: Module, UnaryLayer {
    /// The layers, applied in order.
    public let layers: [any UnaryLayer]

    /// A chain of `layers`.
    public init(_ layers: [any UnaryLayer]) {
        self.layers = layers
        super.init()
    }

    /// Sequential's children are keyed by bare index, as in torch.
    public override func children() -> [(key: String, module: Module)] {
        layers.enumerated().map { ("\($0.offset)", $0.element) }
    }

    /// Applies every layer in order.
    public func callAsFunction(_ x: Tensor) -> Tensor { layers.reduce(x) { $1($0) } }
}

/// torch.nn.ReLU.
public final class ReLU: Module, UnaryLayer {
    /// A ReLU activation.
    public override init() {}
    /// max(x, 0).
    public func callAsFunction(_ x: Tensor) -> Tensor { relu(x) }
}

/// torch.nn.LeakyReLU.
public final class LeakyReLU: Module, UnaryLayer {
    /// The slope for negative inputs.
    public let negativeSlope: Float
    /// A leaky ReLU with the given slope (torch's default 0.01).
    public init(negativeSlope: Float = 0.01) {
        self.negativeSlope = negativeSlope
        super.init()
    }
    /// x for x > 0, slope·x otherwise.
    public func callAsFunction(_ x: Tensor) -> Tensor { leakyRelu(x, negativeSlope: negativeSlope) }
}

/// torch.nn.Sigmoid.
public final class Sigmoid: Module, UnaryLayer {
    /// A sigmoid activation.
    public override init() {}
    /// 1 / (1 + e⁻ˣ).
    public func callAsFunction(_ x: Tensor) -> Tensor { sigmoid(x) }
}

/// torch.nn.Tanh.
public final class Tanh: Module, UnaryLayer {
    /// A tanh activation.
    public override init() {}
    /// tanh(x).
    public func callAsFunction(_ x: Tensor) -> Tensor { tanh(x) }
}

/// torch.nn.Flatten (from axis 1).
public final class Flatten: Module, UnaryLayer {
    /// A flatten layer.
    public override init() {}
    /// [N, …] → [N, product of the rest].
    public func callAsFunction(_ x: Tensor) -> Tensor { x.flattened(fromAxis: 1) }
}

/// Parameters keyed by bare index `0`, `1`, …, as torch.nn.ParameterList.
public final class ParameterList: Module {
    private let slots: [ParameterInfo<Tensor>]

    /// A list holding `parameters`.
    public init(_ parameters: [Tensor]) {
        slots = parameters.map { ParameterInfo(wrappedValue: $0) }
        super.init()
    }

    override func ownSlots() -> [(key: String, slot: TensorSlot)] {
        slots.enumerated().map { ("\($0.offset)", $0.element) }
    }

    /// The number of parameters.
    public var count: Int { slots.count }

    /// The parameter at `index`.
    public subscript(index: Int) -> Tensor {
        get { slots[index].wrappedValue }
        set { slots[index].wrappedValue = newValue }
    }
}
