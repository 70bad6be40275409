// Helpers shared by the kernel tests: a seeded generator, owned Float buffers, and a tolerance check.

import XCTest

@testable import NFMKernels

/// SplitMix64 (Steele, Lea & Flood 2014): tiny, seedable, and good enough for test data.
struct SplitMix64 {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [-1, 1), from the top 24 bits (exactly representable as Float).
    mutating func nextFloat() -> Float { Float(next() >> 40) / Float(1 << 23) - 1 }

    /// `count` uniform values in [-1, 1).
    mutating func floats(_ count: Int) -> [Float] { (0..<count).map { _ in nextFloat() } }

    /// `count` values in {-1, 0, 1}: many exact ties, to test max-pooling tie-breaking.
    mutating func ternary(_ count: Int) -> [Float] { (0..<count).map { _ in Float(Int(next() % 3) - 1) } }
}

/// A heap buffer of Floats that a kernel can read or write through a pointer.
final class Buffer {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int

    init(_ values: [Float]) {
        count = values.count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(from: values, count: count)
    }

    /// An output buffer filled with NaN, so that any element a kernel forgets to write shows up.
    convenience init(count: Int) { self.init([Float](repeating: .nan, count: count)) }

    deinit { pointer.deallocate() }

    var values: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
    var readOnly: UnsafePointer<Float> { UnsafePointer(pointer) }
}

/// A heap buffer of Int32 pooling indices.
final class IndexBuffer {
    let pointer: UnsafeMutablePointer<Int32>
    let count: Int

    init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: -1, count: count)
    }

    deinit { pointer.deallocate() }

    var values: [Int32] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
}

/// Asserts |actual − expected| ≤ tolerance · max(1, max |expected|) element-wise: relative to the
/// scale of the result, so that sums which cancel to near zero do not demand impossible precision.
func assertClose(
    _ actual: [Float], _ expected: [Float], tolerance: Float = 1e-4, _ message: @autoclosure () -> String,
    file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertEqual(actual.count, expected.count, "\(message()): lengths differ", file: file, line: line)
    let scale = max(1, expected.map(abs).max() ?? 1)
    var mismatches = 0
    var worst = (index: -1, error: Float(0))
    for index in 0..<min(actual.count, expected.count) {
        let error = abs(actual[index] - expected[index])
        if !(error <= tolerance * scale) {  // written so that NaN counts as a mismatch
            mismatches += 1
            if error > worst.error || error.isNaN && worst.index < 0 { worst = (index, error) }
        }
    }
    if mismatches > 0 {
        let index = worst.index
        XCTFail(
            "\(message()): \(mismatches) of \(expected.count) differ; worst at \(index): "
                + "\(actual[index]) vs expected \(expected[index]) (scale \(scale))",
            file: file, line: line)
    }
}

/// Σ aᵢ·bᵢ in Double, for adjoint (dot-product) identities.
func dot(_ a: [Float], _ b: [Float]) -> Double {
    zip(a, b).reduce(0) { $0 + Double($1.0) * Double($1.1) }
}
