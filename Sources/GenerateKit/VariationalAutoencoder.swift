import Foundation
import NFMModels
import NFMNN
import NFMTensor

/// How the VAE's decoder scores pixels.
public enum PixelLikelihood: String, Codable, Sendable, CaseIterable {
    /// One Bernoulli logit per pixel, grey levels as soft targets (Fashion-MNIST).
    case bernoulli
    /// A discretised logistic per sub-pixel over the 256 levels, with a mean and a log-scale per
    /// sub-pixel (RGB Sort-of-CLEVR).
    case discretizedLogistic = "discretized-logistic"

    /// Decoder output channels per image channel.
    public var parametersPerChannel: Int { self == .bernoulli ? 1 : 2 }
}

/// The shape of the VAE.
public struct VAEConfiguration: Codable, Sendable, Equatable {
    /// Channels of the images.
    public var imageChannels: Int
    /// The side of the square images (divisible by 4).
    public var imageSize: Int
    /// The size of z.
    public var latentSize: Int
    /// Channels of the encoder's two stride-2 convolutions.
    public var encoderWidths: [Int]
    /// Units of the encoder's hidden layer.
    public var encoderHidden: Int
    /// The pixel likelihood.
    public var likelihood: PixelLikelihood
    /// The decoder (its `outputChannels` must be imageChannels · likelihood.parametersPerChannel).
    public var decoder: DecoderConfiguration

    /// A configuration.
    public init(
        imageChannels: Int, imageSize: Int, latentSize: Int, encoderWidths: [Int], encoderHidden: Int,
        likelihood: PixelLikelihood, decoder: DecoderConfiguration
    ) {
        precondition(encoderWidths.count == 2, "VAEConfiguration: the encoder has two convolutions, got widths \(encoderWidths)")
        precondition(
            decoder.outputChannels == imageChannels * likelihood.parametersPerChannel && decoder.latentSize == latentSize
                && decoder.imageSize == imageSize,
            "VAEConfiguration: decoder \(decoder) does not fit \(imageChannels)×\(imageSize)² images with \(likelihood) and latent \(latentSize)")
        self.imageChannels = imageChannels
        self.imageSize = imageSize
        self.latentSize = latentSize
        self.encoderWidths = encoderWidths
        self.encoderHidden = encoderHidden
        self.likelihood = likelihood
        self.decoder = decoder
    }
}

/// The VAE's encoder: Conv4×4/2 → ReLU → Conv4×4/2 → ReLU → Linear → ReLU → Linear to (μ, log σ²).
public final class ConvolutionalEncoder: Module {
    /// Image → w0 channels at half size.
    public let conv1: Conv2d
    /// → w1 channels at quarter size.
    public let conv2: Conv2d
    /// Flattened map → hidden units.
    public let hidden: Linear
    /// Hidden → 2 · latent (μ, then log σ²).
    public let posterior: Linear
    let latentSize: Int

    /// An encoder for `configuration`.
    public init(_ configuration: VAEConfiguration, using generator: inout SeededGenerator) {
        let w = configuration.encoderWidths
        let side = configuration.imageSize / 4
        latentSize = configuration.latentSize
        conv1 = Conv2d(configuration.imageChannels, w[0], kernelSize: 4, stride: 2, padding: 1, using: &generator)
        conv2 = Conv2d(w[0], w[1], kernelSize: 4, stride: 2, padding: 1, using: &generator)
        hidden = Linear(w[1] * side * side, configuration.encoderHidden, using: &generator)
        posterior = Linear(configuration.encoderHidden, 2 * configuration.latentSize, using: &generator)
        super.init()
    }

    /// The posterior q(z | x) = N(μ, diag(exp(log σ²))) of images in [0, 1].
    public func callAsFunction(_ images: Tensor) -> (mean: Tensor, logVariance: Tensor) {
        let x = relu(conv2(relu(conv1(2 * images - 1))))
        let parameters = posterior(relu(hidden(x.flattened(fromAxis: 1))))
        return (
            parameters.sliced(alongAxis: 1, from: 0, to: latentSize),
            parameters.sliced(alongAxis: 1, from: latentSize, to: 2 * latentSize)
        )
    }
}

/// A variational autoencoder (Kingma & Welling 2014) with a convolutional encoder, a Gaussian
/// posterior, the reparameterisation z = μ + σ·ε, a standard normal prior and the
/// `ConvolutionalDecoder` (optionally with NFM) as the likelihood network.
public final class VariationalAutoencoder: Module {
    /// q(z | x).
    public let encoder: ConvolutionalEncoder
    /// p(x | z)'s parameters.
    public let decoder: ConvolutionalDecoder
    /// The configuration it was built from.
    public let configuration: VAEConfiguration

    /// A VAE for `configuration`.
    public init(_ configuration: VAEConfiguration, using generator: inout SeededGenerator) {
        self.configuration = configuration
        encoder = ConvolutionalEncoder(configuration, using: &generator)
        decoder = ConvolutionalDecoder(configuration.decoder, using: &generator)
        super.init()
    }

    /// log p(x | z) per image from the decoder's output for z. [N].
    public func logLikelihood(_ images: Tensor, decoded: Tensor) -> Tensor {
        switch configuration.likelihood {
        case .bernoulli:
            return bernoulliLogLikelihood(logits: decoded, targets: images)
        case .discretizedLogistic:
            let channels = configuration.imageChannels
            return discretizedLogisticLogLikelihood(
                images, mean: decoded.sliced(alongAxis: 1, from: 0, to: channels),
                logScale: decoded.sliced(alongAxis: 1, from: channels, to: 2 * channels))
        }
    }

    /// The mean image in [0, 1] of p(x | z) from the decoder's output (what pictures show).
    public func meanImage(decoded: Tensor) -> Tensor {
        switch configuration.likelihood {
        case .bernoulli:
            return sigmoid(decoded)
        case .discretizedLogistic:
            let mean = decoded.sliced(alongAxis: 1, from: 0, to: configuration.imageChannels)
            return clamp((mean + 1) * 0.5, min: 0, max: 1)
        }
    }

    /// The terms of the ELBO for one draw of ε ~ N(0, I) [N, latent]: the reconstruction term
    /// log p(x | z) at z = μ + σ·ε, the analytic KL(q(z | x) ‖ p(z)), and their difference. [N] each.
    public func evidenceLowerBound(_ images: Tensor, noise: Tensor) -> (elbo: Tensor, reconstruction: Tensor, kl: Tensor) {
        let (mean, logVariance) = encoder(images)
        let z = mean + exp(0.5 * logVariance) * noise
        let reconstruction = logLikelihood(images, decoded: decoder(z))
        let kl = gaussianKLToStandardNormal(mean: mean, logVariance: logVariance)
        return (reconstruction - kl, reconstruction, kl)
    }

    /// log w = log p(x | z) + log p(z) − log q(z | x) for z = μ + σ·ε, one ε [N, latent] per image:
    /// the single-sample Monte Carlo ELBO, whose log-mean-exp over K draws is the IWAE bound. [N].
    public func logImportanceWeights(_ images: Tensor, noise: Tensor) -> Tensor {
        let (mean, logVariance) = encoder(images)
        let z = mean + exp(0.5 * logVariance) * noise
        return logLikelihood(images, decoded: decoder(z)) + standardNormalLogDensity(z)
            - gaussianLogDensity(z, mean: mean, logVariance: logVariance)
    }

    /// The importance-weighted bound (Burda et al. 2016) with `samples` draws per image,
    /// log (1/K) Σₖ wₖ, an estimate of log p(x) from below that tightens as K grows. Draws the
    /// noise from `generator`; decodes at most `chunk` images at once. Runs without gradients. [N].
    public func importanceWeightedBound(
        _ images: Tensor, samples: Int, chunk: Int = 400, using generator: inout SeededGenerator
    ) -> Tensor {
        precondition(samples >= 1, "importanceWeightedBound: needs at least one sample")
        return withoutGradient {
            let count = images.shape[0]
            let (mean, logVariance) = encoder(images)
            var bounds: [Float] = []
            bounds.reserveCapacity(count)
            let imagesPerChunk = Swift.max(1, chunk / samples)
            var start = 0
            while start < count {
                let end = Swift.min(count, start + imagesPerChunk)
                let n = end - start
                // Rows are sample-major: row k·n + i is draw k of image i.
                let repeatedImages = Tensor.concatenate(
                    Array(repeating: images.sliced(alongAxis: 0, from: start, to: end), count: samples), alongAxis: 0)
                let repeatedMean = Tensor.concatenate(
                    Array(repeating: mean.sliced(alongAxis: 0, from: start, to: end), count: samples), alongAxis: 0)
                let repeatedLogVariance = Tensor.concatenate(
                    Array(repeating: logVariance.sliced(alongAxis: 0, from: start, to: end), count: samples), alongAxis: 0)
                let noise = Tensor.randomNormal([samples * n, configuration.latentSize], using: &generator)
                let z = repeatedMean + exp(0.5 * repeatedLogVariance) * noise
                let logWeights = logLikelihood(repeatedImages, decoded: decoder(z)) + standardNormalLogDensity(z)
                    - gaussianLogDensity(z, mean: repeatedMean, logVariance: repeatedLogVariance)
                let bound = logSumExp(logWeights.reshaped(to: [samples, n]), alongAxis: 0) - Float(log(Double(samples)))
                bounds.append(contentsOf: bound.scalars)
                start = end
            }
            return Tensor(bounds)
        }
    }
}
