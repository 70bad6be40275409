/// The backends, and the one that every op in NFMTensor calls.
///
/// Ops write `Kernels.backend.conv2dForward(...)`; they never name a backend. Tests (or a debugging
/// session) can set `Kernels.backend = Kernels.reference` to run a whole model on the plain loops.
public enum Kernels {
    /// The production backend: oneDNN 2.6 on the CPU, with primitives cached per shape.
    public static let oneDNN = OneDNNBackend()

    /// Plain Swift loops straight from each op's definition; slow, for checking other backends.
    public static let reference = ReferenceBackend()

    /// The backend all ops use; oneDNN unless changed.
    ///
    /// Set it once, at start-up or at the top of a test, before any op runs: it is a plain global
    /// (hence `nonisolated(unsafe)`), read on every op, and swapping it while ops run on other
    /// threads is a data race.
    nonisolated(unsafe) public static var backend: any ComputeBackend = oneDNN
}
