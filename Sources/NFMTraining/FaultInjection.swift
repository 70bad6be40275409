// Fault points for scripts/faults.sh, armed only by the environment variable NFM_FAULTS, so that
// the fault suite can hit moments that a timer rarely hits (the middle of a checkpoint) and
// inject a NaN loss into a real program. Unset, every point is one cached dictionary lookup.
//
//   NFM_FAULTS=kill-checkpoint-file=K   SIGKILL the process after the K-th checkpoint file it writes
//                                        (1-based, counted over the whole process; the directory
//                                        rename and `latest` count as files)
//   NFM_FAULTS=nan-step=N               the metrics of the first step from N on that logs any become
//                                        NaN (the NaN stop then fires)
//   NFM_FAULTS=interrupt-step=N         raise SIGINT once step N (1-based) is done, as a Ctrl-C
//                                        during it would (the real handler runs; the run checkpoints
//                                        and exits with 130)
// Several are separated by commas.

import Foundation
import Synchronization

enum FaultInjection {
    /// The armed fault points, parsed once.
    static let plan: [String: Int] = {
        guard let text = ProcessInfo.processInfo.environment["NFM_FAULTS"] else { return [:] }
        var plan: [String: Int] = [:]
        for item in text.split(separator: ",") {
            let parts = item.split(separator: "=", maxSplits: 1)
            if parts.count == 2, let value = Int(parts[1]) { plan[String(parts[0])] = value }
        }
        return plan
    }()

    private static let checkpointFiles = Atomic<Int>(0)

    /// Called after each file of a checkpoint is complete.
    static func checkpointFileWritten() {
        guard let target = plan["kill-checkpoint-file"] else { return }
        let count = checkpointFiles.add(1, ordering: .relaxed).newValue
        if count == target { kill(getpid(), SIGKILL) }
    }

    private static let poisoned = Atomic<Bool>(false)

    /// `values` with every metric NaN when step `step` (1-based) is the armed one, or the first
    /// after it with values (a DQN logs nothing on most frames).
    static func poison(_ values: [String: Double], step: Int) -> [String: Double] {
        guard let armed = plan["nan-step"], step >= armed, !values.isEmpty, !poisoned.exchange(true, ordering: .relaxed) else { return values }
        return values.mapValues { _ in .nan }
    }

    /// Raises SIGINT when `step` (1-based, just completed) is the armed one.
    static func interruptIfArmed(afterStep step: Int) {
        if plan["interrupt-step"] == step { raise(SIGINT) }
    }
}
