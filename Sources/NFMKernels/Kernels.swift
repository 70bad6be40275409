import Foundation

/// The backends, and the one that every op in NFMTensor calls.
///
/// Ops write `Kernels.backend.conv2dForward(...)`; they never name a backend. One setting chooses
/// it: the environment variable `NFM_BACKEND` (`onednn`, the default, or `reference`), read at the
/// first op, or an assignment to `Kernels.backend` before any op runs (what the backend-parity
/// tests do). The programs print `backend: <name>` in their run header.
public enum Kernels {
    /// The production backend: oneDNN 2.6 on the CPU, with primitives cached per shape.
    /// (De)convolutions run in oneDNN's blocked layouts unless the environment sets
    /// `NFM_ONEDNN_PLAIN_LAYOUTS=1`, and activations stay in them between ops unless it sets
    /// `NFM_ONEDNN_KEEP_LAYOUTS=0` (both for measuring the difference; see `OneDNNBackend.init`).
    public static let oneDNN = OneDNNBackend(
        choosingLayouts: ProcessInfo.processInfo.environment["NFM_ONEDNN_PLAIN_LAYOUTS"] != "1",
        keepingLayouts: ProcessInfo.processInfo.environment["NFM_ONEDNN_KEEP_LAYOUTS"] != "0")

    /// Plain Swift loops straight from each op's definition; slow, for checking other backends. It
    /// runs whole models (`NFM_BACKEND=reference`): what it does not define itself, the portable
    /// primitives of PortablePrimitives.swift, it shares with oneDNN.
    public static let reference = ReferenceBackend()

    /// The backend all ops use: the one `NFM_BACKEND` names, oneDNN when it is unset.
    ///
    /// Set it once, at start-up or at the top of a test, before any op runs: it is a plain global
    /// (hence `nonisolated(unsafe)`), read on every op, and swapping it while ops run on other
    /// threads is a data race. Tensors made on one backend may be used on the other: both CPU
    /// backends own the same host-memory `TensorBuffer`.
    nonisolated(unsafe) public static var backend: any ComputeBackend = named(ProcessInfo.processInfo.environment["NFM_BACKEND"])

    /// The backend called `name` ("onednn" or "reference"; nil or empty means oneDNN). An unknown
    /// name stops the program with the choices, rather than silently running the default.
    public static func named(_ name: String?) -> any ComputeBackend {
        switch name?.lowercased() {
        case nil, "", "onednn": return oneDNN
        case "reference": return reference
        case let other?: fatalError("NFM_BACKEND=\(other) is not a backend: use onednn (the default) or reference")
        }
    }

    /// Writes `backend: <name>` and `vector ISA: <path>` to standard error, so that every run's log
    /// says which backend and which compiled loops ran (the programs call it at start-up; standard
    /// output stays for results, such as nfm-bench's JSON).
    public static func announceBackend() {
        let supported = VectorISA.supported.map(\.rawValue).joined(separator: ", ")
        FileHandle.standardError.write(Data("""
            backend: \(backend.name) (NFM_BACKEND=onednn|reference)
            vector ISA: \(vectorISA.rawValue) (NFM_ISA=auto|portable|avx2|avx512; this CPU runs \(supported))

            """.utf8))
    }

    /// Makes oneDNN's OpenMP threads sleep, rather than spin, between parallel regions: if the
    /// environment does not set `OMP_WAIT_POLICY`, sets it to `passive` and re-executes the program
    /// (libgomp reads it once, when it is loaded, before any Swift code runs). Programs call this
    /// first thing in `main`; it returns only when the policy is already set (or the re-exec failed).
    ///
    /// Why: with the default policy each OpenMP thread spins for a while after every primitive,
    /// competing for the cores with this process's own Dispatch workers (attention, pooling) and
    /// with any other process. Measured on the shared 2-core machine (load average 8): the DQN
    /// benchmark's training frames went from 10 to 177 per second, where 82% of the time had been
    /// libgomp spinning. A passive wait costs one futex wake-up per parallel region.
    ///
    /// It also applies ``ComputeThreads/cores`` to OpenMP: when `NFM_THREADS` is set and
    /// `OMP_NUM_THREADS` is not, it sets `OMP_NUM_THREADS` to the same count before the re-exec, so
    /// that one variable limits every thread the process runs.
    public static func requirePassiveOpenMPWaiting() {
        let environment = ProcessInfo.processInfo.environment
        var changed = false
        if environment["OMP_WAIT_POLICY"] == nil {
            setenv("OMP_WAIT_POLICY", "passive", 1)
            changed = true
        }
        if let threads = ComputeThreads.requested, environment["OMP_NUM_THREADS"] == nil {
            setenv("OMP_NUM_THREADS", String(threads), 1)
            changed = true
        }
        guard changed else { return }
        execv("/proc/self/exe", CommandLine.unsafeArgv)
    }
}
