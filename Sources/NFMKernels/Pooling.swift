// Pooling for the oneDNN backend, in Swift, parallel over (n, c) planes.
//
// Max: oneDNN's max-pooling backward reads a workspace whose layout is private to the implementation,
// while the protocol (like PyTorch) saves flat argmax indices; computing those indices means scanning
// every window, which already yields the max, so one Swift pass does the whole forward.
//
// Average: for plain NCHW buffers oneDNN 2.6 picks its non-JIT `simple_nchw` implementation. Measured
// on this 2-core machine (64×96×38×38, 2×2 stride 2, forward): oneDNN on NCHW 148 ms; oneDNN on
// nChw8c including the two reorders 48 ms; this loop 54 ms. The loop is as fast as the blocked path
// without its two tensor-sized temporaries, so average pooling is done here too.

import Dispatch
import Foundation

/// Max pooling with PyTorch's indices (flat h·W + w within each (n, c) plane), and average pooling.
enum Pooling {
    /// input [N, C, H, W] → output, indices [N, C, Ho, Wo]. Padding never wins; ties go to the first
    /// maximum in row-major window order and NaN always wins, as in PyTorch's CPU kernel.
    static func maxForward(
        _ g: Pool2dGeometry, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
        indices: UnsafeMutablePointer<Int32>
    ) {
        // Sizes hoisted into locals: the geometry's output sizes are computed properties (a division
        // each), too slow to evaluate per element.
        let (inputHeight, inputWidth) = (g.inputHeight, g.inputWidth)
        let (outputHeight, outputWidth) = (g.outputHeight, g.outputWidth)
        let (kernelHeight, kernelWidth) = (g.kernelHeight, g.kernelWidth)
        let (strideHeight, strideWidth) = (g.strideHeight, g.strideWidth)
        let (paddingHeight, paddingWidth) = (g.paddingHeight, g.paddingWidth)
        // Each plane reads and writes only its own slices, so sharing the pointers across threads is safe.
        nonisolated(unsafe) let input = input, output = output, indices = indices
        forEachPlane(g) { plane in
            let source = input + plane * inputHeight * inputWidth
            let destination = output + plane * outputHeight * outputWidth
            let destinationIndices = indices + plane * outputHeight * outputWidth
            for y in 0..<outputHeight {
                // The window's in-bounds rows and columns; padding is never read, so it never wins.
                let top = y * strideHeight - paddingHeight
                let rowStart = max(top, 0)
                let rowEnd = min(top + kernelHeight, inputHeight)
                for x in 0..<outputWidth {
                    let left = x * strideWidth - paddingWidth
                    let columnStart = max(left, 0)
                    let columnEnd = min(left + kernelWidth, inputWidth)
                    var best = -Float.infinity
                    var bestPosition = rowStart * inputWidth + columnStart
                    var row = rowStart
                    while row < rowEnd {
                        var position = row * inputWidth + columnStart
                        let rowEndPosition = row * inputWidth + columnEnd
                        while position < rowEndPosition {
                            let value = source[position]
                            if value > best || value.isNaN {
                                best = value
                                bestPosition = position
                            }
                            position += 1
                        }
                        row += 1
                    }
                    destination[y * outputWidth + x] = best
                    destinationIndices[y * outputWidth + x] = Int32(truncatingIfNeeded: bestPosition)
                }
            }
        }
    }

    /// gradOutput, indices [N, C, Ho, Wo] → gradInput [N, C, H, W]: zero, then add each gradient at
    /// its saved position (windows overlap when stride < kernel, so positions can repeat).
    static func maxBackward(
        _ g: Pool2dGeometry, gradOutput: UnsafePointer<Float>, indices: UnsafePointer<Int32>,
        gradInput: UnsafeMutablePointer<Float>
    ) {
        let inputPlaneSize = g.inputHeight * g.inputWidth
        let outputPlaneSize = g.outputHeight * g.outputWidth
        // Each plane reads and writes only its own slices, so sharing the pointers across threads is safe.
        nonisolated(unsafe) let gradOutput = gradOutput, indices = indices, gradInput = gradInput
        forEachPlane(g) { plane in
            let destination = gradInput + plane * inputPlaneSize
            let source = gradOutput + plane * outputPlaneSize
            let sourceIndices = indices + plane * outputPlaneSize
            destination.update(repeating: 0, count: inputPlaneSize)
            for position in 0..<outputPlaneSize {
                let inputPosition = Int(sourceIndices[position])
                precondition(
                    0 <= inputPosition && inputPosition < inputPlaneSize,
                    "pool2dBackward: index \(inputPosition) outside the \(g.inputHeight)×\(g.inputWidth) plane")
                destination[inputPosition] += source[position]
            }
        }
    }

    /// input [N, C, H, W] → output [N, C, Ho, Wo]: window sums over the in-bounds positions, divided
    /// by kh·kw (padding counted) or by the in-bounds count.
    static func averageForward(
        _ g: Pool2dGeometry, countIncludePadding: Bool, input: UnsafePointer<Float>,
        output: UnsafeMutablePointer<Float>
    ) {
        let inputWidth = g.inputWidth
        // Each plane reads and writes only its own slices, so sharing the pointers across threads is safe.
        nonisolated(unsafe) let input = input, output = output
        forEachPlane(g) { plane in
            let source = input + plane * g.inputHeight * inputWidth
            let destination = output + plane * g.outputHeight * g.outputWidth
            forEachAverageWindow(g, countIncludePadding: countIncludePadding) { position, rows, columns, divisor in
                var sum: Float = 0
                for row in rows {
                    for column in columns { sum += source[row * inputWidth + column] }
                }
                destination[position] = sum / divisor
            }
        }
    }

    /// gradOutput [N, C, Ho, Wo] → gradInput [N, C, H, W]: each gradient, divided as in the forward,
    /// is added to every in-bounds position of its window (windows overlap when stride < kernel).
    static func averageBackward(
        _ g: Pool2dGeometry, countIncludePadding: Bool, gradOutput: UnsafePointer<Float>,
        gradInput: UnsafeMutablePointer<Float>
    ) {
        let inputWidth = g.inputWidth
        // Each plane reads and writes only its own slices, so sharing the pointers across threads is safe.
        nonisolated(unsafe) let gradOutput = gradOutput, gradInput = gradInput
        forEachPlane(g) { plane in
            let source = gradOutput + plane * g.outputHeight * g.outputWidth
            let destination = gradInput + plane * g.inputHeight * inputWidth
            destination.update(repeating: 0, count: g.inputHeight * inputWidth)
            forEachAverageWindow(g, countIncludePadding: countIncludePadding) { position, rows, columns, divisor in
                let share = source[position] / divisor
                for row in rows {
                    for column in columns { destination[row * inputWidth + column] += share }
                }
            }
        }
    }

    /// Calls `body` for each output position of a plane, in row-major order, with its offset in the
    /// output plane, the in-bounds input rows and columns of its window, and the average's divisor
    /// (kh·kw with padding counted, else the in-bounds count).
    @inline(__always)
    private static func forEachAverageWindow(
        _ g: Pool2dGeometry, countIncludePadding: Bool,
        _ body: (_ position: Int, _ rows: Range<Int>, _ columns: Range<Int>, _ divisor: Float) -> Void
    ) {
        for y in 0..<g.outputHeight {
            let top = y * g.strideHeight - g.paddingHeight
            let rows = max(top, 0)..<min(top + g.kernelHeight, g.inputHeight)
            for x in 0..<g.outputWidth {
                let left = x * g.strideWidth - g.paddingWidth
                let columns = max(left, 0)..<min(left + g.kernelWidth, g.inputWidth)
                let divisor = countIncludePadding ? g.kernelHeight * g.kernelWidth : rows.count * columns.count
                body(y * g.outputWidth + x, rows, columns, Float(divisor))
            }
        }
    }

    /// Runs `body` for every (n, c) plane, spread over the cores when there is enough work to repay
    /// the hand-off (small inputs stay on the calling thread).
    private static func forEachPlane(_ g: Pool2dGeometry, _ body: @Sendable (Int) -> Void) {
        let planes = g.batch * g.channels
        let work = planes * g.inputHeight * g.inputWidth
        let chunks = min(planes, 4 * ComputeThreads.cores)
        if work < 1 << 16 || chunks < 2 {
            for plane in 0..<planes { body(plane) }
            return
        }
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            for plane in (chunk * planes / chunks)..<((chunk + 1) * planes / chunks) { body(plane) }
        }
    }
}
