// The collective operations a data-parallel run needs, as PyTorch's torch.distributed names its
// process groups: an MPI job (``MPI``) is one, and a single process (``SingleProcess``) is the
// trivial one, so that a run with `--data-parallel` but without mpirun is a group of one rank.

import Foundation

/// The processes that train one model together: this one's rank, their number, and the collectives.
public protocol ProcessGroup: AnyObject, Sendable {
    /// This process's rank, 0..<size.
    var rank: Int { get }
    /// The number of processes.
    var size: Int { get }
    /// Replaces `values` on every rank by their elementwise sum over the ranks.
    func allReduceSum(_ values: inout [Float]) throws
    /// Replaces `values` on every rank by rank `root`'s; every rank passes the same count.
    func broadcast(_ values: inout [Float], from root: Int) throws
    /// `text` as rank `root` has it, on every rank.
    func broadcast(_ text: String, from root: Int) throws -> String
    /// Waits until every rank has called it, sleeping between polls (a waiting rank leaves its core
    /// to the ranks still working).
    func barrier(pollingEvery interval: Double) throws
    /// Ends every rank of the job with `code`: for an error after which the others would wait forever.
    func abort(code: Int32) -> Never
}

/// A process on its own: rank 0 of 1, where every collective leaves its input as it is.
public final class SingleProcess: ProcessGroup {
    /// Rank 0.
    public let rank = 0
    /// One process.
    public let size = 1

    /// The group of this process alone.
    public init() {}

    /// Leaves `values` as they are (the sum over one rank).
    public func allReduceSum(_ values: inout [Float]) throws {}
    /// Leaves `values` as they are.
    public func broadcast(_ values: inout [Float], from root: Int) throws {}
    /// Returns `text`.
    public func broadcast(_ text: String, from root: Int) throws -> String { text }
    /// Returns at once.
    public func barrier(pollingEvery interval: Double) throws {}
    /// Exits with `code`.
    public func abort(code: Int32) -> Never { exit(code) }
}
