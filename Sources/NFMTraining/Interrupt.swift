import Foundation
import Synchronization

/// Ctrl-C handling: the first SIGINT sets a flag that a long loop polls (the trainer between steps,
/// the seeds harness between runs), so that it can write a checkpoint and exit cleanly; a second
/// SIGINT exits at once.
public enum Interrupt {
    static let requested = Atomic<Bool>(false)

    /// Clears the flag and routes SIGINT to it.
    public static func install() {
        requested.store(false, ordering: .relaxed)
        signal(SIGINT) { _ in
            if Interrupt.requested.exchange(true, ordering: .relaxed) { _exit(130) }
        }
    }

    /// Restores SIGINT's default action.
    public static func uninstall() { signal(SIGINT, SIG_DFL) }

    /// Whether SIGINT arrived since ``install()``.
    public static var isRequested: Bool { requested.load(ordering: .relaxed) }
}
