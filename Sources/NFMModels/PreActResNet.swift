import NFMLayers
import NFMNN
import NFMTensor

/// A pre-activation residual block (He et al. 2016, "Identity mappings in deep residual networks"):
/// BN → ReLU → Conv3×3 (stride s) → BN → ReLU → Conv3×3, added to the input, or to a 1×1 stride-s
/// convolution of the first activation where the shape changes. Convolutions have no bias (the batch
/// norms after them have one). Keys as the common PyTorch `PreActBlock`: `bn1`, `conv1`, `bn2`,
/// `conv2`, `shortcut.0`.
public final class PreActBlock: Module {
    /// Normalises the block's input.
    public let bn1: BatchNorm2d
    /// First 3×3 convolution (carries the stride).
    public let conv1: Conv2d
    /// Normalises between the convolutions.
    public let bn2: BatchNorm2d
    /// Second 3×3 convolution.
    public let conv2: Conv2d
    /// The projection shortcut where channels or size change, else nil (identity).
    public let shortcut: Sequential?

    /// A block from `input` to `output` channels, downsampling by `stride`.
    public init(_ input: Int, _ output: Int, stride: Int, using generator: inout SeededGenerator) {
        bn1 = BatchNorm2d(input)
        conv1 = Conv2d(input, output, kernelSize: 3, stride: stride, padding: 1, bias: false, using: &generator)
        bn2 = BatchNorm2d(output)
        conv2 = Conv2d(output, output, kernelSize: 3, padding: 1, bias: false, using: &generator)
        shortcut = stride != 1 || input != output
            ? Sequential([Conv2d(input, output, kernelSize: 1, stride: stride, bias: false, using: &generator)]) : nil
        super.init()
    }

    /// [N, input, H, W] → [N, output, H/stride, W/stride].
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let activated = relu(bn1(x))
        // As the reference PreActBlock: the projection reads the activated input, the identity the raw one.
        let skip = shortcut.map { $0(activated) } ?? x
        return conv2(relu(bn2(conv1(activated)))) + skip
    }
}

/// One pass of a PreActResNet: the 3×3 stem convolution and four stages of blocks.
public final class PreActResNetPass: Module {
    /// Stem: Conv3×3 (input channels → 64), stride 1, no bias.
    public let conv1: Conv2d
    /// Stage 1 (64 channels, stride 1).
    public let layer1: [PreActBlock]
    /// Stage 2 (128 channels, first block stride 2).
    public let layer2: [PreActBlock]
    /// Stage 3 (256 channels, first block stride 2).
    public let layer3: [PreActBlock]
    /// Stage 4 (512 channels, first block stride 2).
    public let layer4: [PreActBlock]

    /// A pass over `inputChannels`-channel images with `blocks[i]` blocks in stage i and stage widths
    /// `widths` (ResNet-18: [2, 2, 2, 2] and [64, 128, 256, 512]).
    public init(inputChannels: Int, widths: [Int], blocks: [Int], using generator: inout SeededGenerator) {
        precondition(widths.count == 4 && blocks.count == 4, "PreActResNetPass: four stages, got widths \(widths) and blocks \(blocks)")
        conv1 = Conv2d(inputChannels, widths[0], kernelSize: 3, padding: 1, bias: false, using: &generator)
        var stages: [[PreActBlock]] = []
        var channels = widths[0]
        for (stage, (width, count)) in zip(widths, blocks).enumerated() {
            var stageBlocks: [PreActBlock] = []
            for index in 0..<count {
                stageBlocks.append(PreActBlock(channels, width, stride: stage > 0 && index == 0 ? 2 : 1, using: &generator))
                channels = width
            }
            stages.append(stageBlocks)
        }
        (layer1, layer2, layer3, layer4) = (stages[0], stages[1], stages[2], stages[3])
        super.init()
    }

    /// Every block of the pass, in order.
    public var blocks: [PreActBlock] { layer1 + layer2 + layer3 + layer4 }
}

/// PreActResNet-18 (He et al. 2016) for small images, run for one pass, or for several with Neural
/// Function Modules after every residual block (Lamb et al. 2021 use it for image classification).
///
/// Each pass has its own weights, as the Sort-of-CLEVR trunk's (DESIGN.md §2): pass 1 writes a key
/// and value after each block; passes 2… read, after each block, from every block written so far
/// (all of pass 1 and this pass up to here) with top-k attention, and write. The head reads the
/// last pass: BN → ReLU → global average pool → Linear. Keys: pass 1 as the common PyTorch
/// `PreActResNet` (`conv1`, `layer1.0.bn1`, …), later passes under `pass2.`, `pass3.`, …; then `bn`,
/// `linear`, and `ad` for the NFM layers.
public final class PreActResNet: Module {
    /// passes[p] holds pass p + 1's stem and blocks.
    public let passes: [PreActResNetPass]
    /// Final batch norm before the pooling.
    public let bn: BatchNorm2d
    /// Classifier.
    public let linear: Linear
    /// The NFM layers (slot = pass · blocks + block), or nil for the baseline.
    public let nfm: NeuralFunctionModules?

    /// ResNet-18's stage widths.
    public static let resNet18Widths = [64, 128, 256, 512]
    /// ResNet-18's blocks per stage.
    public static let resNet18Blocks = [2, 2, 2, 2]

    /// A network over `inputChannels`-channel images with `classes` outputs, making `passes` passes
    /// with NFM; `nfm` nil gives the baseline, which makes one pass whatever `passes` says.
    public init(
        inputChannels: Int, classes: Int, widths: [Int] = PreActResNet.resNet18Widths, blocks: [Int] = PreActResNet.resNet18Blocks,
        passes: Int = 2, nfm configuration: NFMConfiguration?, using generator: inout SeededGenerator
    ) {
        precondition(passes >= 1, "PreActResNet: needs at least one pass, got \(passes)")
        let passCount = configuration == nil ? 1 : passes
        self.passes = (0..<passCount).map { _ in
            PreActResNetPass(inputChannels: inputChannels, widths: widths, blocks: blocks, using: &generator)
        }
        bn = BatchNorm2d(widths[3])
        linear = Linear(widths[3], classes, using: &generator)
        let slotChannels = zip(widths, blocks).flatMap { width, count in Array(repeating: width, count: count) }
        nfm = configuration.map { settings in
            NeuralFunctionModules(
                slotChannels: Array(repeating: slotChannels, count: passCount).flatMap { $0 }, configuration: settings, using: &generator)
        }
        super.init()
    }

    /// Pass 1's children under their usual names, later passes' under `passN.`.
    public override func children() -> [(key: String, module: Module)] {
        var result: [(key: String, module: Module)] = []
        for (index, pass) in passes.enumerated() {
            if index == 0 {
                result += pass.children()
            } else {
                result.append(("pass\(index + 1)", pass))
            }
        }
        result += [("bn", bn), ("linear", linear)]
        if let nfm { result.append(("ad", nfm)) }
        return result
    }

    /// Blocks per pass (the NFM slots of one pass).
    public var blocksPerPass: Int { passes[0].blocks.count }

    /// Logits [N, classes] for images [N, C, H, W].
    public func callAsFunction(_ images: Tensor) -> Tensor {
        var memory = NFMMemory()
        var x = images
        for (index, pass) in passes.enumerated() {
            x = pass.conv1(images)
            for (block, module) in pass.blocks.enumerated() {
                x = module(x)
                if let nfm {
                    // Pass 1 writes only; later passes read what every slot has written, then write.
                    x = nfm(x, slot: index * blocksPerPass + block, read: index > 0, write: true, memory: &memory)
                }
            }
        }
        return linear(relu(bn(x)).mean(alongAxes: [2, 3]))
    }
}
