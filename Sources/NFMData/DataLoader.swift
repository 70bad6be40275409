import Foundation
import NFMTensor

/// A data set whose examples are numbered `0..<count` and can be gathered into a batch by number.
public protocol IndexedDataset {
    /// What a batch of examples is (tensors plus labels, for example).
    associatedtype Batch
    /// The number of examples.
    var count: Int { get }
    /// The examples at `indices`, in that order, as one batch.
    func batch(indices: [Int]) -> Batch
}

/// Batches a data set deterministically, so that a run can resume at any step without saved loader state.
///
/// Epoch e visits the examples in the order of a Fisher–Yates shuffle seeded by (seed, e) (or in order,
/// with `shuffle` false). Global step s is batch `s % batchesPerEpoch` of epoch `s / batchesPerEpoch`, so
/// `batch(step:)` after a restart at step s returns exactly the batches the interrupted run would have seen.
public struct DataLoader<Dataset: IndexedDataset> {
    /// The data set batched.
    public let dataset: Dataset
    /// Examples per batch (the last batch of an epoch may be smaller when `dropLast` is false).
    public let batchSize: Int
    /// The seed of the per-epoch shuffles.
    public let seed: UInt64
    /// Whether each epoch is shuffled; false visits `0..<count` in order (for evaluation).
    public let shuffle: Bool
    /// Whether an epoch's final partial batch is skipped, so that every batch has `batchSize` examples.
    public let dropLast: Bool
    private let cache = PermutationCache()

    /// A loader over `dataset`; `dropLast` defaults to true when shuffling (training) and false otherwise.
    public init(dataset: Dataset, batchSize: Int, seed: UInt64, shuffle: Bool = true, dropLast: Bool? = nil) {
        precondition(batchSize > 0, "DataLoader: batchSize must be positive, got \(batchSize)")
        self.dataset = dataset
        self.batchSize = batchSize
        self.seed = seed
        self.shuffle = shuffle
        self.dropLast = dropLast ?? shuffle
        precondition(
            batchesPerEpoch > 0,
            "DataLoader: \(dataset.count) examples make no batch of \(batchSize) with dropLast")
    }

    /// Batches per epoch.
    public var batchesPerEpoch: Int {
        dropLast ? dataset.count / batchSize : (dataset.count + batchSize - 1) / batchSize
    }

    /// The epoch and the batch within it of a global step (both from 0).
    public func position(ofStep step: Int) -> (epoch: Int, batch: Int) {
        precondition(step >= 0, "DataLoader: step must be non-negative, got \(step)")
        return (step / batchesPerEpoch, step % batchesPerEpoch)
    }

    /// The global steps of `epoch`.
    public func steps(ofEpoch epoch: Int) -> Range<Int> {
        (epoch * batchesPerEpoch)..<((epoch + 1) * batchesPerEpoch)
    }

    /// The order in which `epoch` visits the examples: a shuffle seeded by (seed, epoch), or `0..<count`.
    public func permutation(epoch: Int) -> [Int] {
        precondition(epoch >= 0, "DataLoader: epoch must be non-negative, got \(epoch)")
        guard shuffle else { return Array(0..<dataset.count) }
        return cache.permutation(epoch: epoch) {
            var generator = SeededGenerator(seed: seed).split(stream: UInt64(epoch))
            return seededPermutation(count: dataset.count, using: &generator)
        }
    }

    /// The example indices of the batch at a global step.
    public func indices(step: Int) -> [Int] {
        let (epoch, batch) = position(ofStep: step)
        let order = permutation(epoch: epoch)
        let start = batch * batchSize
        return Array(order[start..<min(start + batchSize, order.count)])
    }

    /// The batch at a global step.
    public func batch(step: Int) -> Dataset.Batch { dataset.batch(indices: indices(step: step)) }
}

extension DataLoader: Sendable where Dataset: Sendable {}

/// Remembers the most recent epoch's permutation, since consecutive steps almost always share an epoch.
///
/// A class behind a lock, so that the loader can stay a value and `batch(step:)` stays non-mutating;
/// the cache never changes what is returned, only how fast.
private final class PermutationCache: @unchecked Sendable {
    private let lock = NSLock()
    private var epoch = -1
    private var order: [Int] = []

    func permutation(epoch: Int, make: () -> [Int]) -> [Int] {
        lock.lock()
        defer { lock.unlock() }
        if epoch != self.epoch {
            order = make()
            self.epoch = epoch
        }
        return order
    }
}
