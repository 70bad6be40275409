import NFMLayers
import NFMNN
import NFMTensor

/// The convolutional trunk of the Sort-of-CLEVR models (`ConvInputModel` / `ConvInputModelNFL` of
/// the reference), run for one or more passes over the image (DESIGN.md §2).
///
/// Each pass has its own weights: Conv3×3 (stride 2, padding 1) → ReLU → BatchNorm2d per layer.
/// Pass 1 only writes keys and values to the NFM memory; passes 2… read from every slot written so
/// far (bottom-up and top-down, this pass and earlier ones) and write too. With one pass and no
/// NFM this is the baseline CNN. Child keys follow the reference: `conv1`, `batchNorm1`, …,
/// then `conv1b`, `batchNorm1b`, … for pass 2 (`c`, `d`, … beyond), then `ad` for the NFM layers.
public final class ConvolutionalTrunk: Module {
    /// convolutions[pass][layer].
    public let convolutions: [[Conv2d]]
    /// norms[pass][layer].
    public let norms: [[BatchNorm2d]]
    /// The NFM layers (slot = pass · layers + layer), or nil for the baseline.
    public let nfm: NeuralFunctionModules?

    /// A trunk over `inputChannels`-channel images with the given layer widths and passes;
    /// `nfm` configures the NFM layers (nil: baseline, which must have one pass).
    public init(
        inputChannels: Int, widths: [Int], passes: Int, nfm configuration: NFMConfiguration?,
        using generator: inout SeededGenerator
    ) {
        precondition(passes >= 1 && !widths.isEmpty, "ConvolutionalTrunk: needs at least one pass and one layer")
        precondition(configuration != nil || passes == 1, "ConvolutionalTrunk: several passes need NFM layers to connect them")
        var convolutions: [[Conv2d]] = [], norms: [[BatchNorm2d]] = []
        for _ in 0..<passes {
            var channels = inputChannels
            var passConvolutions: [Conv2d] = [], passNorms: [BatchNorm2d] = []
            for width in widths {
                passConvolutions.append(Conv2d(channels, width, kernelSize: 3, stride: 2, padding: 1, using: &generator))
                passNorms.append(BatchNorm2d(width))
                channels = width
            }
            convolutions.append(passConvolutions)
            norms.append(passNorms)
        }
        self.convolutions = convolutions
        self.norms = norms
        self.nfm = configuration.map { configuration in
            NeuralFunctionModules(
                slotChannels: Array(repeating: widths, count: passes).flatMap { $0 }, configuration: configuration, using: &generator)
        }
        super.init()
    }

    /// The reference's names: conv1, batchNorm1, …, conv1b, batchNorm1b, …, ad.
    public override func children() -> [(key: String, module: Module)] {
        var result: [(String, Module)] = []
        for pass in convolutions.indices {
            let suffix = pass == 0 ? "" : String(UnicodeScalar(UInt8(ascii: "a") + UInt8(pass)))
            for layer in convolutions[pass].indices {
                result.append(("conv\(layer + 1)\(suffix)", convolutions[pass][layer]))
                result.append(("batchNorm\(layer + 1)\(suffix)", norms[pass][layer]))
            }
        }
        if let nfm { result.append(("ad", nfm)) }
        return result
    }

    /// The number of passes.
    public var passes: Int { convolutions.count }
    /// The number of layers per pass.
    public var layers: Int { convolutions[0].count }

    /// Runs every pass over `images` [N, C, H, W] and returns the last pass's final feature map.
    /// `memory` starts empty for each batch and is left holding every slot written.
    public func callAsFunction(_ images: Tensor, memory: inout NFMMemory) -> Tensor {
        var x = images
        for pass in 0..<passes {
            x = images
            for layer in 0..<layers {
                x = norms[pass][layer](relu(convolutions[pass][layer](x)))
                if let nfm {
                    // Pass 1 writes only; later passes read what every slot has written, then write.
                    x = nfm(x, slot: pass * layers + layer, read: pass > 0, write: true, memory: &memory)
                }
            }
        }
        return x
    }
}
