import NFMLayers
import NFMModels
import NFMNN
import NFMTensor

/// A classifier that nfm-classify trains: passes over the image, with or without NFM, and a head.
public protocol TrunkClassifier: Module {
    /// The NFM layers, whose reads record their attention, or nil for a baseline.
    var nfmLayers: NeuralFunctionModules? { get }
    /// Passes over the image.
    var passCount: Int { get }
    /// NFM slots (layers or blocks) per pass.
    var slotsPerPass: Int { get }
}

extension TrunkClassifier {
    /// Parameters that get gradients: all but the query layers, out blocks and gates of the first
    /// pass's NFM slots, which only write (the total, ``Module/parameterCount``, counts them, as the
    /// reference's state dict holds them).
    public var trainedParameterCount: Int {
        parameterCount - (nfmLayers?.readParameterCount(slots: 0..<slotsPerPass) ?? 0)
    }
}

/// A Fashion-MNIST classifier: log-probabilities [N, 10] for images [N, 1, 28, 28].
public protocol ImageClassifier: TrunkClassifier {
    func callAsFunction(_ images: Tensor, generator: inout SeededGenerator) -> Tensor
}

extension SortOfClevrModel: TrunkClassifier {
    public var nfmLayers: NeuralFunctionModules? { conv.nfm }
    public var passCount: Int { conv.passes }
    public var slotsPerPass: Int { conv.layers }
}

/// PreActResNet-18 with or without NFM after every block (the paper-scale Fashion-MNIST model).
extension PreActResNet: ImageClassifier {
    public var nfmLayers: NeuralFunctionModules? { nfm }
    public var passCount: Int { passes.count }
    public var slotsPerPass: Int { blocksPerPass }

    /// Log-probabilities [N, classes] (no dropout to draw for).
    public func callAsFunction(_ images: Tensor, generator: inout SeededGenerator) -> Tensor {
        logSoftmax(self(images), alongAxis: 1)
    }
}

/// A small CNN for Fashion-MNIST, with or without NFM: the Sort-of-CLEVR trunk on one-channel
/// 28×28 images (Conv3×3 stride 2 → ReLU → BatchNorm2d per layer, 28 → 14 → 7 → 4 with three
/// layers), flattened, then `fc1` → ReLU and the Sort-of-CLEVR output head (`fcout`: fc2 → ReLU →
/// dropout 0.5 → fc3 → log-softmax) over the 10 classes.
public final class FashionMNISTModel: Module, ImageClassifier {
    /// The convolutional trunk (key `conv`).
    public let conv: ConvolutionalTrunk
    /// Flattened features → hidden (key `fc1`).
    public let fc1: Linear
    /// The output block (key `fcout`).
    public let fcout: OutputHead

    /// The width of the hidden layers of the head.
    public static let hiddenSize = 256

    /// The side of the trunk's output for a 28×28 input after `layers` stride-2 convolutions.
    public static func featureSize(layers: Int) -> Int {
        (0..<layers).reduce(28) { size, _ in (size - 1) / 2 + 1 }
    }

    /// A model with the given trunk widths; `nfm` nil gives the baseline (one pass).
    public init(widths: [Int], passes: Int, nfm: NFMConfiguration?, using generator: inout SeededGenerator) {
        conv = ConvolutionalTrunk(inputChannels: 1, widths: widths, passes: nfm == nil ? 1 : passes, nfm: nfm, using: &generator)
        let side = FashionMNISTModel.featureSize(layers: widths.count)
        fc1 = Linear(widths.last! * side * side, FashionMNISTModel.hiddenSize, using: &generator)
        fcout = OutputHead(hidden: FashionMNISTModel.hiddenSize, answers: 10, using: &generator)
        super.init()
    }

    public var nfmLayers: NeuralFunctionModules? { conv.nfm }
    public var passCount: Int { conv.passes }
    public var slotsPerPass: Int { conv.layers }

    /// Log-probabilities [N, 10] for images [N, 1, 28, 28].
    public func callAsFunction(_ images: Tensor, generator: inout SeededGenerator) -> Tensor {
        var memory = NFMMemory()
        let features = conv(images, memory: &memory).flattened()
        return fcout(relu(fc1(features)), generator: &generator)
    }
}

/// Builds the model of `kind` for `configuration`, drawing its initial weights from `generator`.
public func makeClassifier(
    _ kind: ClassifyModelKind, configuration: ClassifyConfiguration, using generator: inout SeededGenerator
) -> TrunkClassifier {
    let nfm = configuration.nfmConfiguration(for: kind)
    switch configuration.dataset {
    case .sortOfCLEVR:
        return SortOfClevrModel(
            widths: configuration.widths, passes: configuration.passes, nfm: nfm, headPooling: configuration.headPooling, using: &generator)
    case .fashionMNIST:
        switch configuration.architecture {
        case .cnn:
            return FashionMNISTModel(widths: configuration.widths, passes: configuration.passes, nfm: nfm, using: &generator)
        case .preActResNet18:
            return PreActResNet(
                inputChannels: 1, classes: 10, widths: configuration.widths, passes: configuration.passes, nfm: nfm, using: &generator)
        }
    }
}
