// The number of OpenMP threads oneDNN's kernels run on.

import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// libgomp's thread-count calls, found at run time (oneDNN 2.6 from Debian runs on libgomp, which
/// is loaded with it), so that small primitives can run on the calling thread alone.
///
/// Why: every multi-threaded primitive opens an OpenMP parallel region, and with passive waiting
/// (see `Kernels.requirePassiveOpenMPWaiting`) each region wakes a sleeping thread, tens of
/// microseconds, and far longer when the other core is busy. Problems under `parallelWork`
/// operations (the DQN network's layers, the NFM head) finish sooner on one thread. oneDNN fixes a
/// primitive's thread count when it is created, so the limit is applied to creation and runs alike.
public enum ComputeThreads {
    /// The thread count asked for by the environment variable `NFM_THREADS` (a positive integer), or nil.
    public static let requested: Int? = ProcessInfo.processInfo.environment["NFM_THREADS"].flatMap { Int($0) }.flatMap { $0 > 0 ? $0 : nil }

    /// The threads this process's own parallel loops (batch norm, pooling, the NFM attention
    /// kernel, elementwise ops) split their work over: `NFM_THREADS` if set, else every active core.
    ///
    /// Why a setting: the seeds harness runs two trainings at once on the 2 cores, one thread each
    /// (NFMExperiments), and each must keep to its core; `Kernels.requirePassiveOpenMPWaiting`
    /// gives OpenMP (oneDNN) the same count.
    public static let cores: Int = requested ?? ProcessInfo.processInfo.activeProcessorCount

    /// Below this many operations a primitive runs on one thread.
    static let parallelWork = 1 << 23

    private static let getMaximumThreads: (@convention(c) () -> Int32)? = symbol("omp_get_max_threads")
    private static let setThreads: (@convention(c) (Int32) -> Void)? = symbol("omp_set_num_threads")

    private static func symbol<Function>(_ name: String) -> Function? {
        guard let address = dlsym(nil, name) else { return nil }  // nil is glibc's RTLD_DEFAULT
        return unsafeBitCast(address, to: Function.self)
    }

    /// Sets the number of threads later kernels use (`omp_set_num_threads`; the `OMP_NUM_THREADS`
    /// variable is read only when the library loads). Returns false if no OpenMP runtime is loaded.
    @discardableResult
    public static func set(_ count: Int) -> Bool {
        guard count > 0, let setThreads else { return false }
        setThreads(Int32(count))
        return true
    }

    /// The number of threads kernels will use, or nil without an OpenMP runtime.
    public static var current: Int? { getMaximumThreads.map { Int($0()) } }

    /// Runs `body` with OpenMP limited to the calling thread when `work` is small, else as it is.
    static func withThreads<Result>(forWork work: Int, _ body: () -> Result) -> Result {
        guard work < parallelWork, let getMaximumThreads, let setThreads else { return body() }
        let previous = getMaximumThreads()
        guard previous > 1 else { return body() }
        setThreads(1)
        defer { setThreads(previous) }
        return body()
    }
}
