// The Q-networks of nfm-rl: MinAtar's baseline (examples/dqn.py, `QNetwork`), a two-pass NFM
// encoder with the same head (Lamb et al. 2021; DESIGN.md §2), and the NFM encoder's two-layer trunk
// alone, the control that separates what NFM attention adds from what the second layer adds.

import NFMLayers
import NFMNN
import NFMTensor

/// A Q-network: [N, channels, 10, 10] observations → [N, actions] action values. Its parameters are
/// found and trained as any module's (`valueAndGrad(model:)`, `optimizer.update(model:gradients:)`).
public protocol QNetwork: UnaryLayer {
    /// The convolution, matrix-product and attention FLOPs of a forward and a backward pass over
    /// `examples` observations (for `nfm-rl speed` and nfm-bench: how much of the machine a frame uses).
    func work(examples: Int) -> FlopCount
}

/// MinAtar's head, which every Q-network here ends in: flatten → fc_hidden (1024 → 128) → ReLU → output.
protocol MinAtarHead {
    /// Linear 1024 → 128.
    var hidden: Linear { get }
    /// Linear 128 → actions.
    var output: Linear { get }
}

extension MinAtarHead {
    /// Q-values [N, actions] of the trunk's features [N, 16, 8, 8].
    func actionValues(features: Tensor) -> Tensor { output(relu(hidden(features.flattened(fromAxis: 1)))) }

    /// Adds the head's products for `examples` examples to `work`.
    func addHeadWork(to work: inout FlopCount, examples: Int) {
        work.linear(hidden.inputFeatures, hidden.outputFeatures, examples: examples)
        work.linear(output.inputFeatures, output.outputFeatures, examples: examples)
    }
}

/// The encoder in front of the 128-unit head.
public enum EncoderKind: String, Sendable, Codable, CaseIterable {
    /// MinAtar's one convolution.
    case baseline
    /// The two-pass NFM encoder.
    case nfm
    /// The NFM encoder's trunk run once, without attention: the baseline made two layers deep.
    case twoLayer = "two-layer"

    /// Every encoder's command-line name, for error messages.
    public static var validNames: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

/// MinAtar's DQN network (examples/dqn.py): Conv 16@3×3 (stride 1, no padding) → ReLU → flatten →
/// Linear(16·8·8 → 128) → ReLU → Linear(128 → actions).
///
/// Parameters are named as MinAtar's PyTorch module (`conv`, `fc_hidden`, `output`), so a saved
/// `model.safetensors` loads into it with `load_state_dict`. Breakout (4 channels, 6 actions):
/// 592 + 131,200 + 774 = 132,566 parameters.
public final class BaselineQNetwork: Module, QNetwork, MinAtarHead {
    /// Conv 16@3×3, stride 1, no padding: 10×10 → 8×8.
    public let conv: Conv2d
    /// Linear 1024 → 128.
    @ModuleInfo(key: "fc_hidden") public var hidden: Linear
    /// Linear 128 → actions.
    public let output: Linear

    /// The network for `inputChannels`-channel observations and `actionCount` actions, initialised as
    /// torch initialises the same layers, from `generator`.
    public init(inputChannels: Int, actionCount: Int, using generator: inout SeededGenerator) {
        conv = Conv2d(inputChannels, 16, kernelSize: 3, stride: 1, using: &generator)
        let hidden = Linear(16 * 8 * 8, 128, using: &generator)
        output = Linear(128, actionCount, using: &generator)
        super.init()
        self.hidden = hidden
    }

    /// Q-values [N, actions] of observations [N, channels, 10, 10].
    public func callAsFunction(_ x: Tensor) -> Tensor {
        actionValues(features: relu(conv(x)))
    }

    /// conv (reads the observations: no data gradient), fc_hidden, output.
    public func work(examples: Int) -> FlopCount {
        var work = FlopCount()
        work.convolution(
            conv.inputChannels, conv.outputChannels, kernel: conv.kernelSize, outputPixels: 8 * 8, examples: examples,
            needsDataGradient: false)
        addHeadWork(to: &work, examples: examples)
        return work
    }
}

/// The NFM encoder's two-layer trunk, one pass, no attention: Conv 16@3×3 pad 1 → ReLU → Conv 16@3×3
/// → ReLU → the baseline's head. `NFMQNetwork` with every gate γ at 0 computes exactly this (per pass),
/// so comparing NFM against it measures the attention rather than the extra layer, which MinAtar's
/// one-convolution baseline cannot tell apart. Breakout (4 channels, 6 actions): 592 + 2,320 + 131,200
/// + 774 = 134,886 parameters.
public final class TwoLayerQNetwork: Module, QNetwork, MinAtarHead {
    /// Conv 16@3×3, pad 1: 10×10 → 10×10.
    public let conv1: Conv2d
    /// Conv 16@3×3, no padding: 10×10 → 8×8.
    public let conv2: Conv2d
    /// Linear 1024 → 128.
    @ModuleInfo(key: "fc_hidden") public var hidden: Linear
    /// Linear 128 → actions.
    public let output: Linear

    /// The network for `inputChannels`-channel observations and `actionCount` actions, initialised as
    /// torch initialises the same layers, from `generator`.
    public init(inputChannels: Int, actionCount: Int, using generator: inout SeededGenerator) {
        conv1 = Conv2d(inputChannels, 16, kernelSize: 3, stride: 1, padding: 1, using: &generator)
        conv2 = Conv2d(16, 16, kernelSize: 3, stride: 1, using: &generator)
        let hidden = Linear(16 * 8 * 8, 128, using: &generator)
        output = Linear(128, actionCount, using: &generator)
        super.init()
        self.hidden = hidden
    }

    /// Q-values [N, actions] of observations [N, channels, 10, 10].
    public func callAsFunction(_ x: Tensor) -> Tensor {
        actionValues(features: relu(conv2(relu(conv1(x)))))
    }

    /// conv1 (reads the observations: no data gradient), conv2, fc_hidden, output.
    public func work(examples: Int) -> FlopCount {
        var work = FlopCount()
        work.convolution(
            conv1.inputChannels, conv1.outputChannels, kernel: conv1.kernelSize, outputPixels: 10 * 10, examples: examples,
            needsDataGradient: false)
        work.convolution(conv2.inputChannels, conv2.outputChannels, kernel: conv2.kernelSize, outputPixels: 8 * 8, examples: examples)
        addHeadWork(to: &work, examples: examples)
        return work
    }
}

extension NFMConfiguration {
    /// The NFM encoder's defaults (DESIGN.md §2): 2 heads, d_k = d_v = 8, k = 3, scaled down from the
    /// Sort-of-CLEVR model's 4 heads × 16 to suit 16-channel slots, so that the whole network stays
    /// comparable in size with the baseline (see `NFMQNetwork`).
    public static let minAtarEncoder = NFMConfiguration(heads: 2, keySize: 8, valueSize: 8, topK: 3)
}

/// The two-pass NFM Q-network: MinAtar's trunk made two layers deep and run twice, with NFM
/// attention between the passes, then the baseline's 128-unit head.
///
/// Shape, for C input channels (each pass has its own weights):
///
///     pass p ∈ {1, 2}:  x = obs [N, C, 10, 10]
///         conv1(p): Conv 16@3×3, pad 1 → ReLU → [N, 16, 10, 10]   slot (p, 1)
///         conv2(p): Conv 16@3×3        → ReLU → [N, 16, 8, 8]     slot (p, 2)
///     after each layer: pass 1 writes its key and value; pass 2 writes, then reads every slot written
///     so far (pass-1 slots 1 and 2 and its own pass-2 slots, resized to the reader's size by
///     nearest interpolation, plus the null slot) with top-k attention, and adds γ · out(attention).
///     head: flatten pass 2's [N, 16, 8, 8] → Linear 1024 → 128 → ReLU → Linear 128 → actions.
///
/// With the default 2 heads and d_k = d_v = 8, Breakout (4 channels, 6 actions) has 159,754
/// parameters, against the baseline's 132,566: trunk 5,824 (2 passes × (592 + 2,320)), NFM layers
/// 21,956 (4 slots × 5,489: query, key and value 272 each, out block 4,672, γ 1), head 131,974.
/// Pass 1's two slots only write, so their query, out block and γ (2 × 4,945) never run; they are
/// kept for the reference's names, and 149,864 parameters are trained. γ starts at 0, so a fresh
/// network computes exactly its (two-layer, two-pass) trunk without attention. Names: `conv1`, `conv2`
/// (pass 1), `conv1b`, `conv2b` (pass 2), `ad` (the NFM layers, reference names), `fc_hidden`, `output`.
public final class NFMQNetwork: Module, QNetwork, MinAtarHead {
    /// convolutions[pass][layer].
    public let convolutions: [[Conv2d]]
    /// The NFM layers of the four slots (slot = pass · 2 + layer).
    public let nfm: NeuralFunctionModules
    /// Linear 1024 → 128.
    public let hidden: Linear
    /// Linear 128 → actions.
    public let output: Linear
    /// The out blocks' batch norms.
    public let normalizationLayers: [Module]

    /// Passes over the observation.
    public static let passes = 2

    /// The network for `inputChannels`-channel observations and `actionCount` actions.
    public init(
        inputChannels: Int, actionCount: Int, configuration: NFMConfiguration = .minAtarEncoder,
        using generator: inout SeededGenerator
    ) {
        var convolutions: [[Conv2d]] = []
        for _ in 0..<Self.passes {
            convolutions.append([
                Conv2d(inputChannels, 16, kernelSize: 3, stride: 1, padding: 1, using: &generator),
                Conv2d(16, 16, kernelSize: 3, stride: 1, padding: 0, using: &generator),
            ])
        }
        self.convolutions = convolutions
        let nfm = NeuralFunctionModules(
            slotChannels: Array(repeating: 16, count: 2 * Self.passes), configuration: configuration, using: &generator)
        self.nfm = nfm
        hidden = Linear(16 * 8 * 8, 128, using: &generator)
        output = Linear(128, actionCount, using: &generator)
        normalizationLayers = nfm.outLayers.flatMap { block in block.layers.compactMap { $0 as? BatchNorm } }
        super.init()
    }

    /// Parameters that get gradients: all but the query layers, out blocks and gates of pass 1's slots,
    /// which only write and so never run them.
    public var trainedParameterCount: Int {
        // Pass 1's two slots only write (DESIGN.md §2), the rule every NFM network here shares.
        parameterCount - nfm.readParameterCount(slots: 0..<nfm.slotCount / Self.passes)
    }

    /// conv1, conv2, conv1b, conv2b, ad, fc_hidden, output.
    public override func children() -> [(key: String, module: Module)] {
        var result: [(String, Module)] = []
        for pass in convolutions.indices {
            let suffix = pass == 0 ? "" : String(UnicodeScalar(UInt8(ascii: "a") + UInt8(pass)))
            for layer in convolutions[pass].indices { result.append(("conv\(layer + 1)\(suffix)", convolutions[pass][layer])) }
        }
        result.append(("ad", nfm))
        result.append(("fc_hidden", hidden))
        result.append(("output", output))
        return result
    }

    /// Q-values [N, actions] of observations [N, channels, 10, 10].
    public func callAsFunction(_ observations: Tensor) -> Tensor {
        var memory = NFMMemory()
        var x = observations
        for pass in 0..<Self.passes {
            x = observations
            for layer in 0..<2 {
                x = relu(convolutions[pass][layer](x))
                // Pass 1 writes only; pass 2 writes, then reads every slot written so far.
                x = nfm(x, slot: pass * 2 + layer, read: pass > 0, write: true, memory: &memory)
            }
        }
        return actionValues(features: x)
    }

    /// Layer by layer as `callAsFunction` runs them. The attention's own products per read pixel and
    /// memory entry: q·k over heads·d_k and the weighted sum over heads·d_v, forward; twice that backward.
    public func work(examples: Int) -> FlopCount {
        var work = FlopCount()
        let pixels = [10 * 10, 8 * 8]
        let keyChannels = nfm.heads * nfm.keySize, valueChannels = nfm.heads * nfm.valueSize
        var entries = 0
        for pass in 0..<Self.passes {
            for layer in 0..<2 {
                let conv = convolutions[pass][layer]
                func convolution(_ input: Int, _ output: Int, kernel: Int, needsDataGradient: Bool = true) {
                    work.convolution(
                        input, output, kernel: kernel, outputPixels: pixels[layer], examples: examples,
                        needsDataGradient: needsDataGradient)
                }
                convolution(conv.inputChannels, conv.outputChannels, kernel: conv.kernelSize, needsDataGradient: layer > 0)
                convolution(conv.outputChannels, keyChannels, kernel: 1)
                convolution(conv.outputChannels, valueChannels, kernel: 1)
                entries += 1
                guard pass > 0 else { continue }
                convolution(conv.outputChannels, keyChannels, kernel: 1)
                convolution(valueChannels, conv.outputChannels, kernel: 3)
                convolution(conv.outputChannels, conv.outputChannels, kernel: 3)
                let attention = 2 * Double(examples * pixels[layer] * (keyChannels + valueChannels) * entries)
                work.add(forward: attention, backward: 2 * attention)
            }
        }
        addHeadWork(to: &work, examples: examples)
        return work
    }
}

/// Builds the Q-network for an encoder.
public func makeQNetwork(
    _ encoder: EncoderKind, inputChannels: Int, actionCount: Int, nfm: NFMConfiguration,
    using generator: inout SeededGenerator
) -> any QNetwork {
    switch encoder {
    case .baseline: return BaselineQNetwork(inputChannels: inputChannels, actionCount: actionCount, using: &generator)
    case .nfm: return NFMQNetwork(inputChannels: inputChannels, actionCount: actionCount, configuration: nfm, using: &generator)
    case .twoLayer: return TwoLayerQNetwork(inputChannels: inputChannels, actionCount: actionCount, using: &generator)
    }
}
