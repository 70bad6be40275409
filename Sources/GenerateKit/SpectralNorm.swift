import NFMNN
import NFMTensor

/// Spectral normalisation (Miyato et al. 2018, "Spectral Normalization for Generative Adversarial
/// Networks") with the semantics of `torch.nn.utils.spectral_norm`.
///
/// The weight W is reshaped to a matrix [h, w] (output channels × the rest). Two buffers hold the
/// estimates of its first left and right singular vectors, u [h] and v [w]. In training mode every
/// forward call first runs one power-iteration step outside the tape,
/// v ← normalize(Wᵀu), u ← normalize(Wv), and stores u and v; eval mode uses them as they are.
/// The layer then uses W/σ with σ = uᵀWv, differentiated in W with u and v held constant, as torch does.
public enum SpectralNormalization {
    /// torch's `eps` for `normalize`: x / max(‖x‖, eps).
    public static let epsilon: Double = 1e-12

    /// A random unit vector of length `count` (torch's initial u and v: normalize(randn(count))).
    public static func randomUnitVector(_ count: Int, using generator: inout SeededGenerator) -> Tensor {
        Tensor(unit(Tensor.randomNormal([count], using: &generator).scalars.map(Double.init)).map(Float.init))
    }

    /// `iterations` steps of power iteration on `weight` viewed as [h, w]: v ← normalize(Wᵀu),
    /// u ← normalize(Wv). Runs outside the tape, accumulating in Double.
    public static func powerIteration(weight: Tensor, u: Tensor, v: Tensor, iterations: Int = 1) -> (u: Tensor, v: Tensor) {
        let rows = weight.shape[0]
        let columns = weight.scalarCount / rows
        precondition(
            u.shape == [rows] && v.shape == [columns],
            "SpectralNormalization: u \(u.shape) and v \(v.shape) do not fit weight \(weight.shape) as a [\(rows), \(columns)] matrix")
        var left = u.scalars.map(Double.init)
        var right = v.scalars.map(Double.init)
        weight.withHostCopy { matrix in
            for _ in 0..<iterations {
                var next = [Double](repeating: 0, count: columns)
                for row in 0..<rows {
                    let scale = left[row]
                    let base = row * columns
                    for column in 0..<columns { next[column] += Double(matrix[base + column]) * scale }
                }
                right = unit(next)
                var product = [Double](repeating: 0, count: rows)
                for row in 0..<rows {
                    var sum = 0.0
                    let base = row * columns
                    for column in 0..<columns { sum += Double(matrix[base + column]) * right[column] }
                    product[row] = sum
                }
                left = unit(product)
            }
        }
        return (Tensor(left.map(Float.init)), Tensor(right.map(Float.init)))
    }

    /// W / σ with σ = uᵀ W v, differentiable in `weight` (u and v are constants).
    public static func normalized(weight: Tensor, u: Tensor, v: Tensor) -> Tensor {
        let rows = weight.shape[0]
        let matrix = weight.reshaped(to: [rows, weight.scalarCount / rows])
        let sigma = matmul(matmul(u.detached().reshaped(to: [1, rows]), matrix), v.detached().reshaped(to: [v.scalarCount, 1]))
        return weight / sigma.reshaped(to: [])
    }

    /// σ = uᵀ W v, the current estimate of the largest singular value (for logging).
    public static func sigma(weight: Tensor, u: Tensor, v: Tensor) -> Float {
        withoutGradient {
            let rows = weight.shape[0]
            let matrix = weight.detached().reshaped(to: [rows, weight.scalarCount / rows])
            return matmul(matmul(u.reshaped(to: [1, rows]), matrix), v.reshaped(to: [v.scalarCount, 1])).item
        }
    }

    /// torch's `normalize(x, dim=0, eps)`: x / max(‖x‖, eps).
    private static func unit(_ values: [Double]) -> [Double] {
        let norm = values.reduce(0) { $0 + $1 * $1 }.squareRoot()
        let divisor = Swift.max(norm, epsilon)
        return values.map { $0 / divisor }
    }
}

/// A 2-D convolution with spectral normalisation, as `spectral_norm(nn.Conv2d(...))`: its state dict
/// holds `bias`, `weight_orig` (the trained, unnormalised weight), `weight_u` and `weight_v`, in
/// torch's order, so checkpoints load into the PyTorch module.
public final class SpectralNormConv2d: Module, UnaryLayer {
    /// [outputChannels], or nil without bias.
    @ParameterInfo public var bias: Tensor?
    /// The unnormalised weight W, [outputChannels, inputChannels, kernelSize, kernelSize].
    @ParameterInfo(key: "weight_orig") public var weightOriginal: Tensor
    /// u, the left singular-vector estimate, [outputChannels].
    @BufferInfo(key: "weight_u") public var leftVector: Tensor
    /// v, the right singular-vector estimate, [inputChannels · kernelSize²].
    @BufferInfo(key: "weight_v") public var rightVector: Tensor
    /// Step between windows.
    public let stride: Int
    /// Zero padding on each side.
    public let padding: Int

    /// A convolution with torch's default initialisation and random unit u, v, drawn from `generator`.
    public init(
        _ inputChannels: Int, _ outputChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
        bias: Bool = true, using generator: inout SeededGenerator
    ) {
        self.stride = stride
        self.padding = padding
        super.init()
        let shape = [outputChannels, inputChannels, kernelSize, kernelSize]
        self.weightOriginal = Initializer.kaimingUniform(shape, using: &generator)
        self.bias = bias ? Initializer.defaultBias(count: outputChannels, fanIn: Initializer.fanIn(shape), using: &generator) : nil
        self.leftVector = SpectralNormalization.randomUnitVector(outputChannels, using: &generator)
        self.rightVector = SpectralNormalization.randomUnitVector(inputChannels * kernelSize * kernelSize, using: &generator)
    }

    /// The weight the layer uses, W/σ.
    public var normalizedWeight: Tensor {
        SpectralNormalization.normalized(weight: weightOriginal, u: leftVector, v: rightVector)
    }

    /// In training mode runs one power-iteration step, then convolves [N, C, H, W] with W/σ.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        if isTraining {
            (leftVector, rightVector) = SpectralNormalization.powerIteration(weight: weightOriginal, u: leftVector, v: rightVector)
        }
        return conv2d(x, weight: normalizedWeight, bias: bias, stride: stride, padding: padding)
    }
}

/// A fully connected layer with spectral normalisation, as `spectral_norm(nn.Linear(...))` (state dict
/// `bias`, `weight_orig`, `weight_u`, `weight_v`).
public final class SpectralNormLinear: Module, UnaryLayer {
    /// [outputFeatures], or nil without bias.
    @ParameterInfo public var bias: Tensor?
    /// The unnormalised weight W, [outputFeatures, inputFeatures].
    @ParameterInfo(key: "weight_orig") public var weightOriginal: Tensor
    /// u, [outputFeatures].
    @BufferInfo(key: "weight_u") public var leftVector: Tensor
    /// v, [inputFeatures].
    @BufferInfo(key: "weight_v") public var rightVector: Tensor

    /// A layer with torch's default initialisation and random unit u, v, drawn from `generator`.
    public init(_ inputFeatures: Int, _ outputFeatures: Int, bias: Bool = true, using generator: inout SeededGenerator) {
        super.init()
        self.weightOriginal = Initializer.kaimingUniform([outputFeatures, inputFeatures], using: &generator)
        self.bias = bias ? Initializer.defaultBias(count: outputFeatures, fanIn: inputFeatures, using: &generator) : nil
        self.leftVector = SpectralNormalization.randomUnitVector(outputFeatures, using: &generator)
        self.rightVector = SpectralNormalization.randomUnitVector(inputFeatures, using: &generator)
    }

    /// The weight the layer uses, W/σ.
    public var normalizedWeight: Tensor {
        SpectralNormalization.normalized(weight: weightOriginal, u: leftVector, v: rightVector)
    }

    /// In training mode runs one power-iteration step, then applies x·(W/σ)ᵀ + b.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        if isTraining {
            (leftVector, rightVector) = SpectralNormalization.powerIteration(weight: weightOriginal, u: leftVector, v: rightVector)
        }
        return linear(x, weight: normalizedWeight, bias: bias)
    }
}
