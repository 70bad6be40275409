// Max pooling for the oneDNN backend, in Swift. oneDNN's max-pooling backward reads a workspace
// whose layout is private to the implementation, while the protocol (like PyTorch) saves flat argmax
// indices; computing those indices means scanning every window, which already yields the max, so one
// Swift pass does the whole forward. Planes are independent, so both passes split them across cores.

import Dispatch
import Foundation

/// Max pooling with PyTorch's indices (flat h·W + w within each (n, c) plane).
enum MaxPooling {
    /// input [N, C, H, W] → output, indices [N, C, Ho, Wo]. Padding never wins; ties go to the first
    /// maximum in row-major window order and NaN always wins, as in PyTorch's CPU kernel.
    static func forward(
        _ g: Pool2dGeometry, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
        indices: UnsafeMutablePointer<Int32>
    ) {
        let inputPlaneSize = g.inputHeight * g.inputWidth
        let outputPlaneSize = g.outputHeight * g.outputWidth
        // Each plane reads and writes only its own slices, so sharing the pointers across threads is safe.
        nonisolated(unsafe) let input = input, output = output, indices = indices
        forEachPlane(g) { plane in
            let source = input + plane * inputPlaneSize
            let destination = output + plane * outputPlaneSize
            let destinationIndices = indices + plane * outputPlaneSize
            for y in 0..<g.outputHeight {
                for x in 0..<g.outputWidth {
                    let window = PoolWindow(g, y, x)
                    var best = -Float.infinity
                    var bestPosition = window.rows.lowerBound * g.inputWidth + window.columns.lowerBound
                    for h in window.rows {
                        let row = h * g.inputWidth
                        for w in window.columns {
                            let value = source[row + w]
                            if value > best || value.isNaN {
                                best = value
                                bestPosition = row + w
                            }
                        }
                    }
                    destination[y * g.outputWidth + x] = best
                    destinationIndices[y * g.outputWidth + x] = Int32(truncatingIfNeeded: bestPosition)
                }
            }
        }
    }

    /// gradOutput, indices [N, C, Ho, Wo] → gradInput [N, C, H, W]: zero, then add each gradient at
    /// its saved position (windows overlap when stride < kernel, so positions can repeat).
    static func backward(
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

    /// Runs `body` for every (n, c) plane, spread over the cores when there is enough work to repay
    /// the hand-off (small inputs stay on the calling thread).
    private static func forEachPlane(_ g: Pool2dGeometry, _ body: @Sendable (Int) -> Void) {
        let planes = g.batch * g.channels
        let work = planes * g.inputHeight * g.inputWidth
        let chunks = min(planes, 4 * ProcessInfo.processInfo.activeProcessorCount)
        if work < 1 << 16 || chunks < 2 {
            for plane in 0..<planes { body(plane) }
            return
        }
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            for plane in (chunk * planes / chunks)..<((chunk + 1) * planes / chunks) { body(plane) }
        }
    }
}
