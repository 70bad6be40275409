import Foundation
import Synchronization

/// Ctrl-C handling: the first SIGINT sets a flag that the training loop polls between steps, so
/// that it can write a checkpoint and exit cleanly; a second SIGINT exits at once.
enum Interrupt {
    static let requested = Atomic<Bool>(false)

    static func install() {
        requested.store(false, ordering: .relaxed)
        signal(SIGINT) { _ in
            if Interrupt.requested.exchange(true, ordering: .relaxed) { _exit(130) }
        }
    }

    static func uninstall() { signal(SIGINT, SIG_DFL) }

    static var isRequested: Bool { requested.load(ordering: .relaxed) }
}
