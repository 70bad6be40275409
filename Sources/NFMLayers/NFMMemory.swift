import NFMTensor

/// The keys and values written so far in one forward run of an NFM network (DESIGN.md §2).
///
/// The caller owns it as an explicit value: it starts empty for each input batch, is passed
/// `inout` through every NFM slot of every pass, and holds entries from this pass and earlier
/// ones. There is no hidden state to reset between batches.
public struct NFMMemory {
    /// One written slot: its index and its key [N, heads·dk, H, W] and value [N, heads·dv, H, W].
    public struct Entry {
        /// The slot that wrote it (pass · positions + position).
        public let slot: Int
        /// Keys at the writer's resolution.
        public let key: Tensor
        /// Values at the writer's resolution.
        public let value: Tensor
    }

    /// Entries in the order they were written.
    public private(set) var entries: [Entry] = []

    /// An empty memory.
    public init() {}

    /// Appends a slot's key and value.
    public mutating func write(slot: Int, key: Tensor, value: Tensor) {
        precondition(
            key.rank == 4 && value.rank == 4 && Array(key.shape[2...]) == Array(value.shape[2...]) && key.shape[0] == value.shape[0],
            "NFMMemory.write: key \(key.shape) and value \(value.shape) must be [N, C, H, W] of one size")
        entries.append(Entry(slot: slot, key: key, value: value))
    }

    /// The slots written so far, in order (the columns of an attention map).
    public var writtenSlots: [Int] { entries.map(\.slot) }
}
