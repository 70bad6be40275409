/// The op list of NFMTensor, by the names its tests use. The test suite fails if any name here has
/// no PyTorch fixture case, and every differentiable one is also checked by finite differences.
/// Add a name here with every new op.
public enum OpCatalog {
    /// Ops with a pullback.
    public static let differentiable: [String] = [
        // elementwise
        "add", "subtract", "multiply", "divide", "negate", "exp", "log", "sqrt", "pow", "powTensor", "abs",
        "clamp", "relu", "leakyRelu", "sigmoid", "tanh", "softplus", "where", "maximum", "minimum",
        // reductions
        "sum", "mean", "max", "variance",
        // shape
        "reshape", "permute", "transpose", "squeeze", "unsqueeze", "expand", "flatten", "concatenate", "stack",
        "slice", "indexSelect", "gather", "pad",
        // network
        "matmul", "linear", "conv2d", "convTranspose2d", "maxPool2d", "avgPool2d", "resizeNearest",
        "batchNorm", "batchNormInference", "softmax", "logSoftmax", "topK",
        // the NFM attention core (DESIGN.md §2), one fused op
        "nfmAttention",
        // losses
        "nllLoss", "crossEntropy", "mseLoss", "binaryCrossEntropyWithLogits", "huberLoss", "smoothL1Loss",
    ]

    /// Ops without a gradient (indices and encodings); checked against PyTorch's forward values.
    public static let nonDifferentiable: [String] = ["argmax", "oneHot"]

    /// Random ops, checked statistically rather than against fixed values.
    public static let random: [String] = ["dropout"]
}
