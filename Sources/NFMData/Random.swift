import NFMTensor

// Shuffles are written out here rather than taken from the standard library (`shuffle(using:)`),
// whose algorithm is not specified and may change between Swift releases; a seed must give the same
// data set and the same batches on every toolchain. Bounded draws are `SeededGenerator.nextIndex(below:)`.

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
