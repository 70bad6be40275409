// Data-parallel training (issue 15): every rank of a process group holds the whole model, takes its
// contiguous share of each globally drawn batch, and the ranks sum their weighted gradients with one
// all-reduce, so that every rank applies the same optimizer step and the parameters stay identical.
//
// The gradients reach the process group as host copies (`Tensor.scalars`, `Tensor(shape:scalars:)`):
// the group works on plain [Float], and no memory below the tensor's backend is touched here.
//
// One bucket, after the backward pass: the gradients are flattened into one buffer (metrics and two
// control values ride at its end) and reduced with one call. Overlapping buckets with the backward
// pass could hide at most the all-reduce's own time, which BENCHMARKS.md measured at about 1% of the
// NFM step on one machine, so the simple form is kept.

import Foundation
import NFMDistributed
import NFMNN
import NFMOptimizers
import NFMTensor

/// Why a data-parallel run cannot start or go on, said so that the user can act on it.
public enum DataParallelError: Error, CustomStringConvertible, LocalizedError, Equatable {
    /// Fewer examples per batch than ranks: some rank would have nothing to train on.
    case batchSmallerThanRanks(batchSize: Int, ranks: Int)
    /// The ranks reduced different sets of gradients (the ranks run different programs or settings).
    case gradientsDiffer(rank: Int, expectedTotal: Int, foundTotal: Int)
    /// A metric became NaN or infinite; rank 0 stopped too and names the checkpoint kept.
    case nonFiniteMetric(rank: Int, step: Int, name: String)

    /// A sentence naming the numbers and what to do.
    public var description: String {
        switch self {
        case .batchSmallerThanRanks(let batchSize, let ranks):
            return "--data-parallel splits each batch over the ranks, but a batch of \(batchSize) cannot feed \(ranks) ranks; "
                + "give a --batch-size of at least \(ranks) or start fewer ranks"
        case .gradientsDiffer(let rank, let expectedTotal, let foundTotal):
            return "rank \(rank): the ranks reduced different gradient sets (\(foundTotal) tensors over all ranks, \(expectedTotal) expected); "
                + "every rank must run the same program with the same settings"
        case .nonFiniteMetric(let rank, let step, let name):
            return "rank \(rank): training stopped with rank 0: \(name) is not finite at step \(step) (rank 0 names the checkpoint kept)"
        }
    }

    /// Same as ``description``.
    public var errorDescription: String? { description }
}

/// One rank's side of data-parallel training over a ``ProcessGroup``: its share of each batch, its
/// own dropout stream, the averaging of gradients and metrics, and the loop of the ranks other than
/// rank 0, which write nothing (rank 0 alone runs the ``Trainer``, which writes checkpoints, metrics
/// and pictures).
public final class DataParallel {
    /// The ranks training together.
    public let group: any ProcessGroup
    /// Wall seconds of each step's all-reduce on this rank (waiting for the slowest rank included),
    /// for the measurement in BENCHMARKS.md.
    public private(set) var allReduceSeconds: [Double] = []
    /// Wall seconds of each step's whole averaging on this rank: the host copies in and out and the all-reduce.
    public private(set) var averagingSeconds: [Double] = []

    /// This rank's side of training over `group`.
    public init(group: any ProcessGroup) { self.group = group }

    /// This process's rank.
    public var rank: Int { group.rank }
    /// The number of ranks.
    public var size: Int { group.size }
    /// Whether this is rank 0, the one that writes the run's files.
    public var isPrimary: Bool { group.rank == 0 }

    /// Checks that a batch of `batchSize` examples gives every rank at least one.
    ///
    /// - Throws: ``DataParallelError/batchSmallerThanRanks(batchSize:ranks:)``.
    public func checkBatchSize(_ batchSize: Int) throws {
        if batchSize < size { throw DataParallelError.batchSmallerThanRanks(batchSize: batchSize, ranks: size) }
    }

    /// This rank's contiguous share of a global batch's rows: rank r of R takes rows
    /// r·N/R ..< (r+1)·N/R, so the shares of a batch that R does not divide differ by one row, and
    /// their concatenation in rank order is the batch.
    public func share<Row>(of rows: [Row]) -> [Row] {
        Array(rows[rank * rows.count / size..<(rank + 1) * rows.count / size])
    }

    /// Calls `body` with the generator this rank's step draws its noise (dropout) from. With one
    /// rank that is the trainer's `generator` itself, so a run of one rank equals a plain run. With
    /// several, every rank draws one seed from `generator` (so the trainer's generator advances
    /// alike on every rank and its checkpoint fits any rank count) and splits it by rank, so that
    /// the ranks' dropout masks are independent; they depend on the rank count.
    public func withRankGenerator<Result>(
        _ generator: inout SeededGenerator, _ body: (inout SeededGenerator) throws -> Result
    ) rethrows -> Result {
        guard size > 1 else { return try body(&generator) }
        var rankGenerator = SeededGenerator(seed: generator.next()).split(stream: UInt64(rank))
        return try body(&rankGenerator)
    }

    /// Replaces every parameter and buffer of `module` on every rank by rank 0's (one broadcast), so
    /// that all ranks start from the same weights whatever each loaded.
    public func broadcastState(of module: Module) throws {
        guard size > 1 else { return }
        let state = module.stateDict()
        var values: [Float] = []
        for (_, value) in state.entries {
            switch value {
            case .float(let tensor): values += tensor.scalars
            case .int64(let count): values.append(Float(count))
            }
        }
        try group.broadcast(&values, from: 0)
        var received = StateDict()
        var offset = 0
        for (key, value) in state.entries {
            switch value {
            case .float(let tensor):
                received[key] = .float(Tensor(shape: tensor.shape, scalars: Array(values[offset..<offset + tensor.scalarCount])))
                offset += tensor.scalarCount
            case .int64:
                received[key] = .int64(Int64(values[offset]))
                offset += 1
            }
        }
        try module.load(stateDict: received)
    }

    /// The gradients and metrics of the global batch from this rank's: each rank weighs its own by
    /// `weight` (its share of the rows the loss averages over; the weights of all ranks sum to 1)
    /// and one all-reduce sums them, so that a loss that is a mean over the global batch gets its
    /// exact gradient even when the shares differ. `metrics` must be means over the rows too
    /// (`train/loss`, `train/accuracy`). A Ctrl-C on any rank rides along, so that every rank
    /// stops after the same step.
    ///
    /// - Throws: ``DataParallelError/gradientsDiffer(rank:expectedTotal:foundTotal:)`` when the ranks
    ///   reduced different gradient sets, and the group's errors.
    public func average(
        gradients: [String: Tensor], metrics: [String: Double], weight: Double
    ) throws -> (gradients: [String: Tensor], metrics: [String: Double]) {
        guard size > 1 else { return (gradients, metrics) }
        let averagingStart = Date()
        defer { averagingSeconds.append(Date().timeIntervalSince(averagingStart)) }
        let names = gradients.keys.sorted()
        let metricNames = metrics.keys.sorted()
        let scale = Float(weight)
        var buffer: [Float] = []
        buffer.reserveCapacity(gradients.values.reduce(0) { $0 + $1.scalarCount } + metricNames.count + 2)
        // Each gradient is copied once, weighted on the way, straight into the buffer.
        for name in names {
            gradients[name]!.withHostCopy { values in
                for value in values { buffer.append(value * scale) }
            }
        }
        for name in metricNames { buffer.append(Float(metrics[name]! * weight)) }
        // Control values: the number of gradient tensors (summed, it checks that every rank sent the
        // same set) and whether Ctrl-C arrived here.
        buffer.append(Float(names.count))
        buffer.append(Interrupt.isRequested ? 1 : 0)
        let start = Date()
        try group.allReduceSum(&buffer)
        allReduceSeconds.append(Date().timeIntervalSince(start))
        let interrupted = buffer.removeLast()
        let tensorCount = Int(buffer.removeLast())
        if tensorCount != names.count * size {
            throw DataParallelError.gradientsDiffer(rank: rank, expectedTotal: names.count * size, foundTotal: tensorCount)
        }
        if interrupted > 0 { Interrupt.requested.store(true, ordering: .relaxed) }
        var averaged: [String: Tensor] = [:]
        var offset = 0
        for name in names {
            let shape = gradients[name]!.shape
            let count = gradients[name]!.scalarCount
            let start = offset
            averaged[name] = Tensor(shape: shape) { target in
                for index in 0..<count { target[index] = buffer[start + index] }
            }
            offset += count
        }
        var averagedMetrics: [String: Double] = [:]
        for (index, name) in metricNames.enumerated() { averagedMetrics[name] = Double(buffer[offset + index]) }
        return (averaged, averagedMetrics)
    }

    /// Waits for the other ranks at a polled barrier (rank 0 calls it after evaluating, the others
    /// wait there meanwhile without spinning).
    public func synchronize() throws { try group.barrier(pollingEvery: 0.05) }

    /// The checkpoint rank 0 resumed from, on every rank: rank 0 passes its path (nil for a fresh
    /// run), the others pass nil and read the answer.
    public func agreeOnCheckpoint(_ path: String?) throws -> String? {
        let chosen = try group.broadcast(isPrimary ? (path ?? "") : "", from: 0)
        return chosen.isEmpty ? nil : chosen
    }

    /// Loads the checkpoint rank 0 resumed from into this rank's modules and optimizers, reading only.
    /// Returns its step and generator.
    public func restore(
        from checkpoint: String, modules: [(name: String, module: Module)],
        optimizers: [(name: String, optimizer: any Optimizer, module: Module)]
    ) throws -> (step: Int, generator: SeededGenerator) {
        try Trainer.restoreCheckpoint(from: checkpoint, modules: modules, optimizers: optimizers, programState: nil)
    }

    /// The training loop of a rank other than 0, step for step with rank 0's ``Trainer/run(step:evaluate:)``:
    /// the same steps from `step`, the same stop on a non-finite metric and on Ctrl-C (agreed in
    /// ``average(gradients:metrics:weight:)``), and a wait at each of rank 0's evaluations
    /// (rank 0 calls ``synchronize()`` when it has evaluated). It writes nothing.
    public func followPrimary(
        configuration: TrainingConfiguration, from step: Int, generator: SeededGenerator, evaluates: Bool,
        step trainStep: (_ step: Int, _ generator: inout SeededGenerator) throws -> [String: Double]
    ) throws -> TrainingOutcome {
        Interrupt.install()
        defer { Interrupt.uninstall() }
        var generator = generator
        var step = step
        while step < configuration.steps {
            var stepGenerator = generator
            let values = FaultInjection.poison(try trainStep(step, &stepGenerator), step: step + 1)
            if let (name, _) = values.sorted(by: { $0.key < $1.key }).first(where: { !$0.value.isFinite }) {
                throw DataParallelError.nonFiniteMetric(rank: rank, step: step + 1, name: name)
            }
            generator = stepGenerator
            step += 1
            FaultInjection.interruptIfArmed(afterStep: step)
            if evaluates && configuration.evaluates(afterStep: step) { try synchronize() }
            if Interrupt.isRequested { return .interrupted(step: step) }
        }
        return .completed(steps: step)
    }
}
