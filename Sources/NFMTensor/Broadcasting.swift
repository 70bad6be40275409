// Broadcasting (NumPy/PyTorch rules): the result shape, and the sum that takes a broadcast
// result's gradient back to an operand. Shapes are aligned at the trailing axis; an extent of 1
// stretches. The strided loops themselves are the backend's (`broadcastStrides` in NFMKernels).

extension Tensor {
    /// The broadcast shape of `a` and `b`, or a precondition failure naming `op` and both shapes.
    static func broadcastShape(_ a: [Int], _ b: [Int], op: String) -> [Int] {
        let rank = Swift.max(a.count, b.count)
        var out = [Int](repeating: 1, count: rank)
        for i in 0..<rank {
            let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
            let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
            precondition(da == db || da == 1 || db == 1, "\(op): shapes \(a) and \(b) do not broadcast")
            out[i] = da == 1 ? db : da
        }
        return out
    }

    /// Sums a gradient of a broadcast result back to an operand's `target` shape.
    func summed(toShape target: [Int]) -> Tensor {
        if shape == target { return self }
        let offset = rank - target.count
        var axes: [Int] = Array(0..<offset)
        for i in 0..<target.count where target[i] == 1 && shape[i + offset] != 1 { axes.append(i + offset) }
        return (axes.isEmpty ? self : sum(alongAxes: axes, keepDims: true)).reshaped(to: target)
    }
}
