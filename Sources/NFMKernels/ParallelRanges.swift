import Dispatch
import Foundation

/// The cores that elementwise loops split over.
let processorCount = ComputeThreads.cores

/// Runs `body` over 0..<count, split into one contiguous range per core when there is enough work
/// to repay the hand-off, else on the calling thread. Each range is written by one thread only, so
/// bodies that write `out[range]` need no synchronisation.
///
/// Why: elementwise ops (ReLU and its pullback, the residual adds, gradient accumulation) ran on one
/// of the two cores while the other idled. The threshold of 2¹⁵ elements is where a
/// `concurrentPerform` hand-off (a few microseconds) is under a tenth of the loop's own time.
@inline(__always)
func parallelRanges(_ count: Int, minimumPerThread: Int = 1 << 15, _ body: (Range<Int>) -> Void) {
    let workers = Swift.min(processorCount, count / minimumPerThread)
    if workers <= 1 {
        body(0..<count)
        return
    }
    withoutActuallyEscaping(body) { body in
        // The ranges are disjoint and each is run by one thread, so sharing `body` is safe even
        // though the compiler cannot prove it.
        let shared = UncheckedSendable(body)
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            shared.value((count * worker / workers)..<(count * (worker + 1) / workers))
        }
    }
}

/// Hands a value to `concurrentPerform` workers where the caller guarantees they use it safely.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
