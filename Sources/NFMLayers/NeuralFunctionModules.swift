import NFMNN
import NFMTensor

/// The NFM layers of a network (Lamb et al. 2021; DESIGN.md §2): for each layer slot s =
/// (pass, position), 1×1 key, query and value convolutions, an out block
/// Conv3×3 → BatchNorm2d → ReLU → Conv3×3, and a gate γ_s initialised to 0, so that a fresh
/// model computes exactly its baseline.
///
/// Parameter names follow the reference PyTorch module (`query_layers.s`, `key_layers.s`,
/// `val_layers.s`, `out_layers.s.{0,1,3}`, `gammas.s`), so checkpoints load in both directions.
/// Slots that never read keep their (unused) query and out layers for name compatibility; they
/// get no gradient, and optimizers skip them as torch skips parameters whose grad is None.
public final class NeuralFunctionModules: Module {
    /// Per-slot 1×1 query convolutions, C_s → heads·dk.
    @ModuleInfo(key: "query_layers") public var queryLayers: [Conv2d]
    /// Per-slot 1×1 key convolutions, C_s → heads·dk.
    @ModuleInfo(key: "key_layers") public var keyLayers: [Conv2d]
    /// Per-slot 1×1 value convolutions, C_s → heads·dv.
    @ModuleInfo(key: "val_layers") public var valueLayers: [Conv2d]
    /// Per-slot out blocks, heads·dv → C_s.
    @ModuleInfo(key: "out_layers") public var outLayers: [Sequential]
    /// Per-slot residual gates γ_s (scalars, initialised to 0).
    public let gammas: ParameterList

    /// Attention heads.
    public let heads: Int
    /// Key (and query) size per head, dk.
    public let keySize: Int
    /// Value size per head, dv.
    public let valueSize: Int
    /// How many memory entries each read keeps (top-k sparsity). The reference asks for 5 but a
    /// bug makes it run with 3, so 3 is our default (DESIGN.md §2).
    public let topK: Int
    /// Softmax temperature τ; the reference uses dk^0.5.
    public let temperature: Float

    /// The attention weights of the most recent read at each slot, [N, heads, M+1, H, W]
    /// (the last column is the null slot), with the slots they attended over. For drawing which
    /// arguments each module reads; detached from the tape.
    public private(set) var lastAttention: [Int: (weights: Tensor, slots: [Int])] = [:]

    /// NFM layers for slots with `slotChannels[s]` channels each (all passes, in slot order).
    public init(
        slotChannels: [Int], heads: Int = 4, keySize: Int = 16, valueSize: Int = 16, topK: Int = 3,
        temperature: Float? = nil, using generator: inout SeededGenerator
    ) {
        precondition(heads > 0 && keySize > 0 && valueSize > 0 && topK > 0, "NeuralFunctionModules: heads, sizes and topK must be positive")
        self.heads = heads
        self.keySize = keySize
        self.valueSize = valueSize
        self.topK = topK
        self.temperature = temperature ?? Float(keySize).squareRoot()
        // Creation order (queries, keys, values, out blocks) follows the reference so that a seed
        // gives the same draw order as its registration order.
        var queries: [Conv2d] = [], keys: [Conv2d] = [], values: [Conv2d] = [], outs: [Sequential] = []
        for channels in slotChannels { queries.append(Conv2d(channels, heads * keySize, kernelSize: 1, using: &generator)) }
        for channels in slotChannels { keys.append(Conv2d(channels, heads * keySize, kernelSize: 1, using: &generator)) }
        for channels in slotChannels { values.append(Conv2d(channels, heads * valueSize, kernelSize: 1, using: &generator)) }
        for channels in slotChannels {
            outs.append(Sequential([
                Conv2d(heads * valueSize, channels, kernelSize: 3, padding: 1, using: &generator),
                BatchNorm2d(channels),
                ReLU(),
                Conv2d(channels, channels, kernelSize: 3, padding: 1, using: &generator),
            ]))
        }
        self.gammas = ParameterList(slotChannels.map { _ in Tensor(0) })
        super.init()
        self.queryLayers = queries
        self.keyLayers = keys
        self.valueLayers = values
        self.outLayers = outs
    }

    /// The number of slots.
    public var slotCount: Int { keyLayers.count }

    /// The parameters only a read uses at `slots` (their query layers, out blocks and gates γ):
    /// in a network whose first pass only writes (DESIGN.md §2), those of the first pass's slots
    /// never get a gradient, and a count of trained parameters leaves them out.
    public func readParameterCount(slots: some Sequence<Int>) -> Int {
        slots.reduce(0) { total, slot in
            total + queryLayers[slot].parameterCount + outLayers[slot].parameterCount + gammas[slot].scalarCount
        }
    }

    /// Runs slot `slot` on hidden state x [N, C_s, H, W]: if `write`, appends its key and value to
    /// `memory`; if `read`, attends over every entry written so far (this slot's included) and
    /// returns x + γ_s · out_s(attention); otherwise returns x unchanged.
    public func callAsFunction(_ x: Tensor, slot: Int, read: Bool, write: Bool, memory: inout NFMMemory) -> Tensor {
        precondition(slot >= 0 && slot < slotCount, "NeuralFunctionModules: slot \(slot) out of range 0..<\(slotCount)")
        if write {
            memory.write(slot: slot, key: keyLayers[slot](x), value: valueLayers[slot](x))
        }
        guard read, !memory.entries.isEmpty else { return x }
        let query = queryLayers[slot](x)
        let (attended, weights) = nfmAttention(
            query: query, keys: memory.entries.map(\.key), values: memory.entries.map(\.value),
            heads: heads, keySize: keySize, valueSize: valueSize, topK: topK, temperature: temperature)
        lastAttention[slot] = (weights.detached(), memory.writtenSlots)
        return x + gammas[slot] * outLayers[slot](attended)
    }
}
