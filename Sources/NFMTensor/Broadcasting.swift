// Broadcasting (NumPy/PyTorch rules) and the strided row walker that elementwise, shape and
// reduction ops share. Shapes are aligned at the trailing axis; an extent of 1 stretches.

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

    /// Strides that read a tensor of `shape` as if it had `target` shape (0 on stretched axes).
    static func broadcastStrides(of shape: [Int], to target: [Int]) -> [Int] {
        let own = strides(of: shape)
        let offset = target.count - shape.count
        return (0..<target.count).map { i in
            i < offset || shape[i - offset] == 1 ? 0 : own[i - offset]
        }
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

/// Walks an index space of `shape` one innermost row at a time, tracking the element offset of
/// up to three operands with their own strides. `body(row, offsetA, offsetB, offsetC)` runs once
/// per row; the row's extent is `shape.last` and the caller steps by the operands' last strides.
@inline(__always)
func forEachRow(
    shape: [Int], stridesA: [Int], stridesB: [Int] = [], stridesC: [Int] = [],
    _ body: (_ row: Int, _ offsetA: Int, _ offsetB: Int, _ offsetC: Int) -> Void
) {
    let rank = shape.count
    if rank == 0 { body(0, 0, 0, 0); return }
    if shape.contains(0) { return }
    let sb = stridesB.isEmpty ? [Int](repeating: 0, count: rank) : stridesB
    let sc = stridesC.isEmpty ? [Int](repeating: 0, count: rank) : stridesC
    let rows = shape.dropLast().reduce(1, *)
    var index = [Int](repeating: 0, count: rank)
    var offsetA = 0, offsetB = 0, offsetC = 0
    for row in 0..<rows {
        body(row, offsetA, offsetB, offsetC)
        // Odometer increment over the outer axes.
        var axis = rank - 2
        while axis >= 0 {
            index[axis] += 1
            offsetA += stridesA[axis]
            offsetB += sb[axis]
            offsetC += sc[axis]
            if index[axis] < shape[axis] { break }
            offsetA -= stridesA[axis] * shape[axis]
            offsetB -= sb[axis] * shape[axis]
            offsetC -= sc[axis] * shape[axis]
            index[axis] = 0
            axis -= 1
        }
    }
}
