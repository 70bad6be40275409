import Foundation
import Synchronization

/// Ctrl-C handling: the first SIGINT sets a flag that a long loop polls (the trainer between steps,
/// the seeds harness between runs), so that it can write a checkpoint and exit cleanly; a second
/// SIGINT exits at once.
///
/// The handler runs on an alternate signal stack. Found by scripts/faults.sh: with the handler on
/// the thread's own stack, one SIGINT in five during nfm-rl's release-build training corrupted the
/// heap (a no-op handler did the same), because a kernel in the step keeps data below the stack
/// pointer, beyond the red zone that a signal frame skips.
public enum Interrupt {
    static let requested = Atomic<Bool>(false)

    /// Clears the flag and routes SIGINT to it, on this thread too.
    public static func install() {
        requested.store(false, ordering: .relaxed)
        // One alternate stack per thread that trains (sigaltstack is per thread), kept for the
        // thread's life: a handler may still run on it after uninstall.
        var current = stack_t()
        if sigaltstack(nil, &current) == 0 && current.ss_flags & Int32(SS_DISABLE) != 0 {
            let size = 1 << 16
            var stack = stack_t()
            stack.ss_sp = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
            stack.ss_size = size
            stack.ss_flags = 0
            sigaltstack(&stack, nil)
        }
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in
            if Interrupt.requested.exchange(true, ordering: .relaxed) { _exit(130) }
        }
        action.sa_flags = SA_ONSTACK | SA_RESTART
        sigemptyset(&action.sa_mask)
        sigaction(SIGINT, &action, nil)
        // A parent may have started this process with SIGINT blocked: Foundation's Process passes on
        // the mask of the thread that spawns, and a test harness's worker threads block every
        // signal. Blocked, a Ctrl-C would stay pending and never reach the handler.
        var interrupt = sigset_t()
        sigemptyset(&interrupt)
        sigaddset(&interrupt, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &interrupt, nil)
    }

    /// Restores SIGINT's default action.
    public static func uninstall() { signal(SIGINT, SIG_DFL) }

    /// Whether SIGINT arrived since ``install()``.
    public static var isRequested: Bool { requested.load(ordering: .relaxed) }
}
