import NFMNN
import NFMTensor

/// The shape of the discriminator.
public struct DiscriminatorConfiguration: Codable, Sendable, Equatable {
    /// Channels of the input images.
    public var imageChannels: Int
    /// The side of the square input (divisible by 4).
    public var imageSize: Int
    /// Channels at full, half and quarter resolution.
    public var widths: [Int]

    /// A configuration with three widths.
    public init(imageChannels: Int, imageSize: Int, widths: [Int]) {
        precondition(widths.count == 3 && widths.allSatisfy { $0 > 0 }, "DiscriminatorConfiguration: needs three positive widths, got \(widths)")
        precondition(imageSize % 4 == 0, "DiscriminatorConfiguration: image size \(imageSize) must be divisible by 4")
        self.imageChannels = imageChannels
        self.imageSize = imageSize
        self.widths = widths
    }
}

/// SNGAN's "standard CNN" discriminator (Miyato et al. 2018, Table 3), scaled to small images:
/// every layer spectrally normalised, LeakyReLU(0.1) between them, no batch norm.
///
/// conv0 3×3 (C → w0) · conv1 4×4 stride 2 (w0 → w1) · conv2 3×3 (w1 → w1) · conv3 4×4 stride 2
/// (w1 → w2) · conv4 3×3 (w2 → w2) · linear (w2 · (size/4)² → 1). The output is one unbounded
/// score per image, for the hinge loss. The full-resolution first layer matters: without it the
/// generator fell into checkerboard patterns the discriminator did not punish (observed).
public final class Discriminator: Module {
    /// The convolutions, keyed `conv0` … `conv4`.
    public let convolutions: [SpectralNormConv2d]
    /// The final score.
    public let linear: SpectralNormLinear
    /// The configuration it was built from.
    public let configuration: DiscriminatorConfiguration

    /// A discriminator for `configuration`, initialised from `generator`.
    public init(_ configuration: DiscriminatorConfiguration, using generator: inout SeededGenerator) {
        self.configuration = configuration
        let (c, w) = (configuration.imageChannels, configuration.widths)
        convolutions = [
            SpectralNormConv2d(c, w[0], kernelSize: 3, padding: 1, using: &generator),
            SpectralNormConv2d(w[0], w[1], kernelSize: 4, stride: 2, padding: 1, using: &generator),
            SpectralNormConv2d(w[1], w[1], kernelSize: 3, padding: 1, using: &generator),
            SpectralNormConv2d(w[1], w[2], kernelSize: 4, stride: 2, padding: 1, using: &generator),
            SpectralNormConv2d(w[2], w[2], kernelSize: 3, padding: 1, using: &generator),
        ]
        let side = configuration.imageSize / 4
        linear = SpectralNormLinear(w[2] * side * side, 1, using: &generator)
        super.init()
    }

    /// `conv0` … `conv4`, then `linear`.
    public override func children() -> [(key: String, module: Module)] {
        convolutions.enumerated().map { ("conv\($0.offset)", $0.element as Module) } + [("linear", linear)]
    }

    /// Scores images [N, C, H, W] in [−1, 1]: [N].
    public func callAsFunction(_ images: Tensor) -> Tensor {
        var x = images
        for convolution in convolutions { x = leakyRelu(convolution(x), negativeSlope: 0.1) }
        return linear(x.flattened(fromAxis: 1)).reshaped(to: [images.shape[0]])
    }
}

/// The hinge loss of geometric GANs / SNGAN: the discriminator minimises
/// E[max(0, 1 − D(x))] + E[max(0, 1 + D(G(z)))].
public func discriminatorHingeLoss(realScores: Tensor, fakeScores: Tensor) -> Tensor {
    relu(1 - realScores).mean() + relu(1 + fakeScores).mean()
}

/// The generator's hinge-GAN loss: −E[D(G(z))].
public func generatorHingeLoss(fakeScores: Tensor) -> Tensor {
    -fakeScores.mean()
}
