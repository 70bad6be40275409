import NFMLayers
import NFMModels
import NFMNN
import NFMTensor

/// The shape of a `ConvolutionalDecoder`: the GAN's generator and the VAE's decoder.
public struct DecoderConfiguration: Codable, Sendable, Equatable {
    /// The size of the latent vector z.
    public var latentSize: Int
    /// The side of the square output (28 for Fashion-MNIST, 32 for downscaled Sort-of-CLEVR).
    public var imageSize: Int
    /// Channels of the output (image channels, or twice that for a mean and a scale per pixel).
    public var outputChannels: Int
    /// Channels of each resolution, lowest first: `widths[0]` at imageSize / 2^(n−1) right after the
    /// projection of z, each next one at twice the side. All but the last are the stages the passes
    /// run (and the NFM slots); the last is the output head's, at the image size.
    public var widths: [Int]
    /// The NFM layers (two passes over the stages), or nil for a single pass without NFM.
    public var nfm: NFMConfiguration?

    /// A configuration; `widths` needs at least two entries and 2^(n−1) must divide `imageSize`.
    public init(latentSize: Int, imageSize: Int, outputChannels: Int, widths: [Int], nfm: NFMConfiguration?) {
        precondition(widths.count >= 2 && widths.allSatisfy { $0 > 0 }, "DecoderConfiguration: needs at least two positive widths, got \(widths)")
        precondition(
            imageSize % (1 << (widths.count - 1)) == 0,
            "DecoderConfiguration: image size \(imageSize) is not divisible by 2^\(widths.count - 1) for \(widths.count) widths")
        self.latentSize = latentSize
        self.imageSize = imageSize
        self.outputChannels = outputChannels
        self.widths = widths
        self.nfm = nfm
    }

    /// The side of the first stage.
    public var baseSize: Int { imageSize >> (widths.count - 1) }
    /// The widths of the stages inside the passes (every width but the head's).
    public var stageWidths: [Int] { Array(widths.dropLast()) }
    /// Passes over the stages: 2 with NFM (pass 1 writes, pass 2 reads every stage of both passes), else 1.
    public var passes: Int { nfm == nil ? 1 : 2 }

    /// The number of parameters of a decoder with this configuration, computed without building it.
    public var parameterCount: Int {
        func block(_ input: Int, _ output: Int) -> Int { input * output * 16 + output + 2 * output }
        let base = baseSize * baseSize
        let stages = stageWidths
        var pass = latentSize * stages[0] * base + stages[0] * base + 2 * stages[0]
        for (input, output) in zip(stages, stages.dropFirst()) { pass += block(input, output) }
        let head = block(stages.last!, widths.last!) + widths.last! * outputChannels * 9 + outputChannels
        let slots = nfm.map { nfm in stages.map { Self.slotParameters(channels: $0, nfm) } } ?? []
        return passes * pass + head + passes * slots.reduce(0) { $0 + $1.read + $1.write }
    }

    /// The parameters that get gradients: all but the query layers, out blocks and gates of the
    /// first pass's NFM slots, which only write (DESIGN.md §2). A capacity-matched baseline is
    /// matched to this count: the idle parameters add no capacity.
    public var trainedParameterCount: Int {
        guard let nfm else { return parameterCount }
        return parameterCount - stageWidths.reduce(0) { $0 + Self.slotParameters(channels: $1, nfm).read }
    }

    /// One NFM slot's parameters on `channels` channels: those a write uses (key and value 1×1
    /// convolutions) and those only a read uses (query 1×1 convolution, the out block
    /// Conv3×3 → BatchNorm2d → ReLU → Conv3×3, and the gate γ).
    static func slotParameters(channels: Int, _ nfm: NFMConfiguration) -> (write: Int, read: Int) {
        let keyOrQuery = channels * nfm.heads * nfm.keySize + nfm.heads * nfm.keySize
        let value = channels * nfm.heads * nfm.valueSize + nfm.heads * nfm.valueSize
        let out = nfm.heads * nfm.valueSize * channels * 9 + channels + 2 * channels + channels * channels * 9 + channels
        return (keyOrQuery + value, keyOrQuery + out + 1)
    }

    /// The same decoder without NFM, widened so that its parameter count is as close as possible to
    /// `target` (the capacity-matched baseline: the extra capacity NFM adds goes into wider
    /// convolutions and projection instead). Every stage width is scaled by one common factor.
    public func capacityMatched(to target: Int) -> DecoderConfiguration {
        var best = DecoderConfiguration(latentSize: latentSize, imageSize: imageSize, outputChannels: outputChannels, widths: widths, nfm: nil)
        var bestGap = abs(best.parameterCount - target)
        var scale = 1.0
        while scale <= 8 {
            let candidate = DecoderConfiguration(
                latentSize: latentSize, imageSize: imageSize, outputChannels: outputChannels,
                widths: widths.map { Swift.max(1, Int((Double($0) * scale).rounded())) }, nfm: nil)
            let gap = abs(candidate.parameterCount - target)
            if gap < bestGap { (best, bestGap) = (candidate, gap) }
            if candidate.parameterCount > target + bestGap { break }
            scale += 0.002
        }
        return best
    }
}

/// One upsampling stage: ConvTranspose2d(4×4, stride 2, padding 1) → BatchNorm2d → ReLU (DCGAN).
public final class UpsamplingBlock: Module, UnaryLayer {
    /// Doubles the side and maps the channels.
    public let deconv: ConvTranspose2d
    /// Normalises the result.
    public let norm: BatchNorm2d

    /// A block from `inputChannels` to `outputChannels`.
    public init(_ inputChannels: Int, _ outputChannels: Int, using generator: inout SeededGenerator) {
        deconv = ConvTranspose2d(inputChannels, outputChannels, kernelSize: 4, stride: 2, padding: 1, using: &generator)
        norm = BatchNorm2d(outputChannels)
        super.init()
    }

    /// [N, Cin, H, W] → [N, Cout, 2H, 2W].
    public func callAsFunction(_ x: Tensor) -> Tensor { relu(norm(deconv(x))) }
}

/// One pass over the decoder's stages, with its own weights: the projection of z to the first stage
/// (Linear → reshape → BatchNorm2d → ReLU), then the upsampling blocks up to the last stage.
public final class DecoderPass: Module {
    /// z → widths[0]·base² values.
    public let project: Linear
    /// Normalises the projected feature map.
    public let norm: BatchNorm2d
    /// The upsampling stages after the first.
    public let blocks: [UpsamplingBlock]
    let baseSize: Int
    let baseChannels: Int

    /// A pass for `configuration`.
    public init(_ configuration: DecoderConfiguration, using generator: inout SeededGenerator) {
        baseSize = configuration.baseSize
        let stages = configuration.stageWidths
        baseChannels = stages[0]
        project = Linear(configuration.latentSize, baseChannels * baseSize * baseSize, using: &generator)
        norm = BatchNorm2d(baseChannels)
        var blocks: [UpsamplingBlock] = []
        for (input, output) in zip(stages, stages.dropFirst()) { blocks.append(UpsamplingBlock(input, output, using: &generator)) }
        self.blocks = blocks
        super.init()
    }

    /// The number of stages (the projection counts as the first).
    public var stageCount: Int { blocks.count + 1 }

    /// Runs stage `stage`: stage 0 reads z [N, latent], later stages the previous stage's map.
    public func stage(_ stage: Int, _ x: Tensor) -> Tensor {
        if stage == 0 {
            let projected = project(x).reshaped(to: [x.shape[0], baseChannels, baseSize, baseSize])
            return relu(norm(projected))
        }
        return blocks[stage - 1](x)
    }
}

/// A DCGAN-style convolutional decoder from a latent vector (the GAN generator and the VAE decoder),
/// optionally with Neural Function Modules (Lamb et al. 2021; DESIGN.md §2 and §6).
///
/// Without NFM it runs one pass over its stages: project z to the first stage, upsample stage by
/// stage (ConvTranspose2d 4×4 / 2 → BatchNorm2d → ReLU); then the output head, one more
/// upsampling block to the image size and a 3×3 convolution to the output channels (as SNGAN's
/// generator ends). With NFM it runs two passes over the stages, each with its own weights, both
/// starting from z: pass 1 only writes keys and values after each stage; pass 2 reads, after each
/// stage, from every stage written so far (all of pass 1, and pass 2 up to this stage) and writes
/// too. The head reads pass 2's last stage. The NFM gates start at 0, so a fresh NFM decoder
/// computes exactly a one-pass decoder with pass 2's weights.
///
/// The head sits outside the passes so that the NFM slots (and their 3×3 out blocks) run at the
/// lower resolutions: on 2 CPU cores the full-resolution maps cost most of the time (measured).
public final class ConvolutionalDecoder: Module {
    /// The passes (one without NFM, two with).
    public let passes: [DecoderPass]
    /// The NFM layers (slot = pass · stages + stage), or nil.
    public let nfm: NeuralFunctionModules?
    /// The head's upsampling block, from the last stage to the image size.
    public let head: UpsamplingBlock
    /// The final 3×3 convolution to the output channels (no activation: tanh or the likelihood follows).
    public let output: Conv2d
    /// The configuration it was built from.
    public let configuration: DecoderConfiguration

    /// A decoder for `configuration`, initialised from `generator`.
    public init(_ configuration: DecoderConfiguration, using generator: inout SeededGenerator) {
        self.configuration = configuration
        var passes: [DecoderPass] = []
        for _ in 0..<configuration.passes { passes.append(DecoderPass(configuration, using: &generator)) }
        self.passes = passes
        self.nfm = configuration.nfm.map { settings in
            NeuralFunctionModules(
                slotChannels: Array(repeating: configuration.stageWidths, count: configuration.passes).flatMap { $0 },
                configuration: settings, using: &generator)
        }
        self.head = UpsamplingBlock(configuration.stageWidths.last!, configuration.widths.last!, using: &generator)
        self.output = Conv2d(configuration.widths.last!, configuration.outputChannels, kernelSize: 3, padding: 1, using: &generator)
        super.init()
    }

    /// Decodes z [N, latent] to [N, outputChannels, imageSize, imageSize] (pre-activation).
    public func callAsFunction(_ z: Tensor) -> Tensor {
        precondition(
            z.rank == 2 && z.shape[1] == configuration.latentSize,
            "ConvolutionalDecoder: z must be [N, \(configuration.latentSize)], got \(z.shape)")
        var memory = NFMMemory()
        var x = z
        for (passIndex, pass) in passes.enumerated() {
            x = z
            for stage in 0..<pass.stageCount {
                x = pass.stage(stage, x)
                if let nfm {
                    // Pass 1 writes only; pass 2 reads every stage written so far, then writes.
                    x = nfm(x, slot: passIndex * pass.stageCount + stage, read: passIndex > 0, write: true, memory: &memory)
                }
            }
        }
        return output(head(x))
    }
}
