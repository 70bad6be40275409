// Timings of the oneDNN backend on shapes from the NFM model. Skipped unless NFM_BENCHMARK=1; run in
// release mode (testable import needs -enable-testing):
//   NFM_BENCHMARK=1 swift test -c release -Xswiftc -enable-testing --filter BenchmarkTests

import Foundation
import XCTest

@testable import NFMKernels

final class BenchmarkTests: XCTestCase {
    override func setUpWithError() throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["NFM_BENCHMARK"] == "1", "set NFM_BENCHMARK=1")
    }

    /// Median wall time of `body` in milliseconds, after one warm-up call (which builds primitives).
    private func medianMilliseconds(repetitions: Int = 9, _ body: () -> Void) -> Double {
        body()
        var times: [Double] = []
        for _ in 0..<repetitions {
            let start = DispatchTime.now().uptimeNanoseconds
            body()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
        return times.sorted()[repetitions / 2]
    }

    /// 64 × (48 → 96 channels, 38×38 → 19×19, 3×3, stride 2, padding 1): forward with bias, backward
    /// data, backward weights with bias.
    func testConvolutionStep() {
        let backend = Kernels.oneDNN
        let g = Conv2dGeometry(
            batch: 64, inputChannels: 48, inputHeight: 38, inputWidth: 38, outputChannels: 96,
            kernelHeight: 3, kernelWidth: 3, strideHeight: 2, strideWidth: 2, paddingHeight: 1, paddingWidth: 1)
        var random = SplitMix64(seed: 99)
        let input = Buffer(random.floats(64 * 48 * 38 * 38))
        let weight = Buffer(random.floats(96 * 48 * 9))
        let bias = Buffer(random.floats(96))
        let output = Buffer(count: 64 * 96 * 19 * 19)
        let gradInput = Buffer(count: input.count)
        let gradWeight = Buffer(count: weight.count)
        let gradBias = Buffer(count: 96)
        let forward = medianMilliseconds {
            backend.conv2dForward(
                g, input: input.readOnly, weight: weight.readOnly, bias: bias.readOnly, output: output.pointer)
        }
        let backwardData = medianMilliseconds {
            backend.conv2dBackwardData(g, gradOutput: output.readOnly, weight: weight.readOnly, gradInput: gradInput.pointer)
        }
        let backwardWeights = medianMilliseconds {
            backend.conv2dBackwardWeights(
                g, input: input.readOnly, gradOutput: output.readOnly, gradWeight: gradWeight.pointer,
                gradBias: gradBias.pointer)
        }
        let gigaflops = 2.0 * 64 * 96 * 19 * 19 * 48 * 9 / 1e9
        print(
            String(
                format: "conv 64×(48→96, 38×38→19×19, 3×3, s2): forward %.1f ms (%.0f GFLOP/s), "
                    + "backward data %.1f ms, backward weights %.1f ms, total %.1f ms",
                forward, gigaflops / forward * 1e3, backwardData, backwardWeights,
                forward + backwardData + backwardWeights))
        for (key, name) in backend.cachedImplementationNames.sorted(by: { $0.key < $1.key })
        where key.contains("inputChannels: 48") {
            print("  \(name)  ←  \(key.prefix(60))")
        }
    }

    /// Many small products (the NFM attention's shape class): per-product cost of the sgemm loop.
    func testBatchedGemmOfSmallMatrices() {
        let (count, m, n, k) = (64 * 36, 16, 16, 32)
        var random = SplitMix64(seed: 98)
        let a = Buffer(random.floats(count * m * k))
        let b = Buffer(random.floats(count * k * n))
        let c = Buffer(count: count * m * n)
        let time = medianMilliseconds {
            Kernels.oneDNN.batchedGemm(
                count: count, transposeA: false, transposeB: true, m: m, n: n, k: k, alpha: 1,
                a: a.readOnly, lda: k, strideA: m * k, b: b.readOnly, ldb: k, strideB: n * k,
                beta: 0, c: c.pointer, ldc: n, strideC: m * n)
        }
        let gigaflops = 2.0 * Double(count * m * n * k) / 1e9
        print(
            String(
                format: "batchedGemm %d × (%d×%d·%d): %.2f ms, %.1f µs per product, %.0f GFLOP/s",
                count, m, n, k, time, time * 1e3 / Double(count), gigaflops / time * 1e3))
    }

    /// Max and average pooling (Swift loops) on a 64×96×38×38 batch, 2×2 stride 2.
    func testPooling() {
        let g = Pool2dGeometry(
            batch: 64, channels: 96, inputHeight: 38, inputWidth: 38, kernelHeight: 2, kernelWidth: 2,
            strideHeight: 2, strideWidth: 2)
        var random = SplitMix64(seed: 97)
        let input = Buffer(random.floats(64 * 96 * 38 * 38))
        let output = Buffer(count: 64 * 96 * 19 * 19)
        let indices = IndexBuffer(count: output.count)
        let gradInput = Buffer(count: input.count)
        for kind in [PoolKind.max, .average(countIncludePadding: true)] {
            let forward = medianMilliseconds {
                Kernels.oneDNN.pool2dForward(
                    g, kind: kind, input: input.readOnly, output: output.pointer, indices: indices.pointer)
            }
            let backward = medianMilliseconds {
                Kernels.oneDNN.pool2dBackward(
                    g, kind: kind, gradOutput: output.readOnly, indices: indices.pointer, gradInput: gradInput.pointer)
            }
            print(String(format: "pool %@ 64×96×38×38: forward %.2f ms, backward %.2f ms", "\(kind)", forward, backward))
        }
        // Calibration: one pass of plain reads over the same input on one thread.
        var sum: Float = 0
        let read = medianMilliseconds {
            for index in 0..<input.count { sum += input.pointer[index] }
        }
        print(String(format: "  (one-thread read of the input: %.2f ms; sum %.1f)", read, sum))
    }
}
