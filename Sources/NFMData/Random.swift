import NFMTensor

// Bounded integers and shuffles are written out here rather than taken from the standard library
// (`Int.random(in:using:)`, `shuffle(using:)`), whose algorithms are not specified and may change
// between Swift releases; a seed must give the same data set and the same batches on every toolchain.

extension SeededGenerator {
    /// A uniform integer in `0..<bound` (Lemire 2019, "Fast random integer generation in an interval"), unbiased.
    mutating func nextIndex(below bound: Int) -> Int {
        precondition(bound > 0, "nextIndex(below:): bound must be positive, got \(bound)")
        let range = UInt64(bound)
        var product = next().multipliedFullWidth(by: range)
        if product.low < range {
            // Reject the few low words that would make some results one more likely than others.
            let threshold = (0 &- range) % range
            while product.low < threshold {
                product = next().multipliedFullWidth(by: range)
            }
        }
        return Int(product.high)
    }
}

/// A permutation of `0..<count` by the Fisher–Yates shuffle, drawn from `generator`.
func seededPermutation(count: Int, using generator: inout SeededGenerator) -> [Int] {
    var permutation = Array(0..<count)
    var position = count - 1
    while position > 0 {
        let other = generator.nextIndex(below: position + 1)
        permutation.swapAt(position, other)
        position -= 1
    }
    return permutation
}
