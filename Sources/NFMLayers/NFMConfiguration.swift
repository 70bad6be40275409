import NFMTensor

/// The NFM hyperparameters of a network (DESIGN.md §2; reference: 4 heads, dk = dv = 16, k = 3): one
/// value shared by every model, configuration file and command line that sets them.
public struct NFMConfiguration: Sendable, Codable, Equatable {
    /// Attention heads.
    public var heads: Int
    /// Key and query size per head.
    public var keySize: Int
    /// Value size per head.
    public var valueSize: Int
    /// Entries kept by top-k sparsity.
    public var topK: Int

    /// A configuration; the defaults are the reference Sort-of-CLEVR model's.
    public init(heads: Int = 4, keySize: Int = 16, valueSize: Int = 16, topK: Int = 3) {
        self.heads = heads
        self.keySize = keySize
        self.valueSize = valueSize
        self.topK = topK
    }
}

extension NeuralFunctionModules {
    /// NFM layers for slots with `slotChannels[s]` channels each, with `configuration`'s heads, sizes and k.
    public convenience init(slotChannels: [Int], configuration: NFMConfiguration, using generator: inout SeededGenerator) {
        self.init(
            slotChannels: slotChannels, heads: configuration.heads, keySize: configuration.keySize,
            valueSize: configuration.valueSize, topK: configuration.topK, using: &generator)
    }
}
