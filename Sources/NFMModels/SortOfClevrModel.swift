import NFMLayers
import NFMNN
import NFMTensor

/// How the trunk's 5×5 map reaches the head.
public enum HeadPooling: String, Codable, CaseIterable, Sendable {
    /// As the reference (DESIGN.md §2): avg-pool 4, then nearest-resize to 5×5. On the 5×5 map this
    /// averages its top-left 4×4 into one value per channel and repeats it, so the head sees no
    /// position except what the trunk encodes in its channels (through the zero padding), and nothing
    /// of the last row and column.
    case reference
    /// The 5×5 map as it is (Santoro et al. 2017's CNN-MLP): the head sees where things are. The same
    /// parameters and keys as `reference`; only the forward differs.
    case none
}

/// The reference relational-reasoning models (DESIGN.md §2): `CNN_MLP` (one pass, no NFM) and
/// `CNN_MLP_NFL` (two passes with NFM). After the trunk: avg-pool 4, nearest-resize to 5×5 (see
/// `HeadPooling`), a 1×1 conv (`conv1`, width → 64), flatten, concatenate the 11-d question, then `fc1` → ReLU →
/// `fcout.fc2` → ReLU → dropout 0.5 → `fcout.fc3` → log-softmax over the 10 answers.
/// Keys match `reference/sort_of_clevr_nfm_state_dict.tsv`; `scripts/reference/nfm_reference.py`
/// is the PyTorch reference it is tested against (Tests/NFMLayersTests/ModelParityTests.swift).
public final class SortOfClevrModel: Module {
    /// The convolutional trunk (key `conv`).
    public let conv: ConvolutionalTrunk
    /// 1×1 convolution from the trunk width to `headChannels` (64) (key `conv1`).
    public let conv1: Conv2d
    /// First fully connected layer, `headChannels`·5·5 + question → `hiddenSize` (64·5·5 + 11 → 256)
    /// (key `fc1`).
    public let fc1: Linear
    /// The output block (key `fcout`).
    public let fcout: OutputHead
    /// How the trunk's map reaches `conv1`.
    public let headPooling: HeadPooling

    /// A model; `nfm` nil gives the baseline (one pass). The defaults are the reference's; the head
    /// sizes `headChannels` (64) and `hiddenSize` (256) and the head's `dropout` (0.5) can be made
    /// smaller for tests and tiny runs, and `headPooling` `.none` keeps positions.
    public init(
        widths: [Int] = [48, 96, 192, 384], passes: Int = 2, nfm: NFMConfiguration? = NFMConfiguration(),
        questionSize: Int = 11, answers: Int = 10, headChannels: Int = 64, hiddenSize: Int = 256,
        dropout: Float = 0.5, headPooling: HeadPooling = .reference, using generator: inout SeededGenerator
    ) {
        self.headPooling = headPooling
        conv = ConvolutionalTrunk(inputChannels: 3, widths: widths, passes: nfm == nil ? 1 : passes, nfm: nfm, using: &generator)
        conv1 = Conv2d(widths.last!, headChannels, kernelSize: 1, using: &generator)
        fc1 = Linear(headChannels * 5 * 5 + questionSize, hiddenSize, using: &generator)
        fcout = OutputHead(hidden: hiddenSize, answers: answers, dropout: dropout, using: &generator)
        super.init()
    }

    /// Log-probabilities [N, answers] for images [N, 3, 75, 75] and questions [N, 11].
    public func callAsFunction(images: Tensor, questions: Tensor, generator: inout SeededGenerator) -> Tensor {
        answer(imageFeatures: imageFeatures(images), questions: questions, generator: &generator)
    }

    /// The image half of the forward pass: trunk, the head pooling and the 1×1 `conv1`, flattened to
    /// [N, 64·5·5]. It does not depend on the question, so a batch of whole images runs it once per
    /// image and shares it among the image's questions.
    public func imageFeatures(_ images: Tensor) -> Tensor {
        var memory = NFMMemory()
        let features = conv(images, memory: &memory)
        switch headPooling {
        case .reference: return conv1(resizeNearest(avgPool2d(features, kernelSize: 4), height: 5, width: 5)).flattened()
        case .none: return conv1(features).flattened()
        }
    }

    /// The question half: log-probabilities [Q, answers] for questions [Q, 11] about the images whose
    /// ``imageFeatures(_:)`` rows are `features` [Q, 64·5·5].
    public func answer(imageFeatures features: Tensor, questions: Tensor, generator: inout SeededGenerator) -> Tensor {
        let hidden = relu(fc1(Tensor.concatenate([features, questions], alongAxis: 1)))
        return fcout(hidden, generator: &generator)
    }
}

/// `fc2` → ReLU → dropout 0.5 → `fc3` → log-softmax (the reference `FCOutputModel`). Dropout is
/// off in eval mode (the reference leaves it on, a bug; DESIGN.md §2).
public final class OutputHead: Module {
    /// Hidden layer.
    public let fc2: Linear
    /// Output layer.
    public let fc3: Linear
    let dropout: Dropout

    /// A head of width `hidden` over `answers` classes, dropping with probability `dropout` in
    /// training mode (the reference's 0.5).
    public init(hidden: Int, answers: Int, dropout: Float = 0.5, using generator: inout SeededGenerator) {
        fc2 = Linear(hidden, hidden, using: &generator)
        fc3 = Linear(hidden, answers, using: &generator)
        self.dropout = Dropout(probability: dropout)
        super.init()
    }

    /// Log-probabilities over the answers.
    public func callAsFunction(_ x: Tensor, generator: inout SeededGenerator) -> Tensor {
        logSoftmax(fc3(dropout(relu(fc2(x)), using: &generator)), alongAxis: 1)
    }
}
