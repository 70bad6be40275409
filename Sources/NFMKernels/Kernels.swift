// TEMPORARY (not committed): lets NFMTensor compile against the reference loops until the oneDNN backend lands.
public enum Kernels {
    public static let reference = ReferenceBackend()
    nonisolated(unsafe) public static var backend: any ComputeBackend = reference
}
