import NFMKernels

/// The machine's measured single-precision GEMM throughput: `Kernels.backend.gemm` (dnnl_sgemm) on
/// one large square product, the ceiling that convolution and matrix-product work is compared with.
struct GemmResult: Codable, Sendable {
    var size: Int
    var gigaflopsPerSecond: Summary
}

/// Times C = A·B for `size`×`size` matrices.
func runGemmBenchmark(size: Int, warmup: Int, iterations: Int) -> GemmResult {
    let count = size * size
    let a = UnsafeMutablePointer<Float>.allocate(capacity: count)
    let b = UnsafeMutablePointer<Float>.allocate(capacity: count)
    let c = UnsafeMutablePointer<Float>.allocate(capacity: count)
    defer { a.deallocate(); b.deallocate(); c.deallocate() }
    for i in 0..<count {
        a[i] = Float(i % 17) * 0.01
        b[i] = Float(i % 13) * 0.01
    }
    let times = timeMilliseconds(warmup: warmup, iterations: iterations) {
        Kernels.backend.gemm(
            transposeA: false, transposeB: false, m: size, n: size, k: size, alpha: 1, a: a, lda: size, b: b,
            ldb: size, beta: 0, c: c, ldc: size)
    }
    let flops = 2 * Double(size) * Double(size) * Double(size)
    return GemmResult(
        size: size, gigaflopsPerSecond: Summary(times, unit: "ms").rate(amount: flops / 1e9, unit: "GFLOP/s"))
}
