import Foundation
import GenerateKit
import XCTest

/// The Fréchet distance against closed forms and against an independent NumPy computation.
final class FrechetDistanceTests: XCTestCase {
    private func diagonal(_ values: [Double]) -> [Double] {
        var matrix = [Double](repeating: 0, count: values.count * values.count)
        for (index, value) in values.enumerated() { matrix[index * values.count + index] = value }
        return matrix
    }

    func testDiagonalCovariancesMatchClosedForm() {
        // d² = ‖μ₁ − μ₂‖² + Σ (√a − √b)² for diagonal covariances.
        let mean1 = [0.5, -1.0, 2.0, 0.0]
        let mean2 = [1.5, 1.0, 2.0, -3.0]
        let a = [1.0, 4.0, 0.25, 9.0]
        let b = [4.0, 1.0, 0.25, 2.0]
        var expected = 0.0
        for i in 0..<4 {
            expected += (mean1[i] - mean2[i]) * (mean1[i] - mean2[i])
            expected += (a[i].squareRoot() - b[i].squareRoot()) * (a[i].squareRoot() - b[i].squareRoot())
        }
        let distance = FrechetDistance.distance(
            mean1: mean1, covariance1: diagonal(a), mean2: mean2, covariance2: diagonal(b), dimension: 4)
        XCTAssertEqual(distance, expected, accuracy: 1e-10)
        // Equal Gaussians are at distance 0; the distance is symmetric.
        XCTAssertEqual(FrechetDistance.distance(mean1: mean1, covariance1: diagonal(a), mean2: mean1, covariance2: diagonal(a), dimension: 4), 0, accuracy: 1e-10)
        let reversed = FrechetDistance.distance(mean1: mean2, covariance1: diagonal(b), mean2: mean1, covariance2: diagonal(a), dimension: 4)
        XCTAssertEqual(reversed, expected, accuracy: 1e-10)
    }

    func testTwoByTwoFullCovariancesMatchClosedForm() {
        // For 2×2 SPD matrices, tr (S₁S₂)^½ = √(tr(S₁S₂) + 2√(det S₁ det S₂)) (the square root of a
        // 2×2 matrix with real non-negative eigenvalues, whatever its eigenvectors).
        let s1 = [2.0, 0.8, 0.8, 1.0]
        let s2 = [1.0, -0.4, -0.4, 3.0]
        let product = [s1[0] * s2[0] + s1[1] * s2[2], 0, 0, s1[2] * s2[1] + s1[3] * s2[3]]
        let traceProduct = product[0] + product[3]
        let determinants = (s1[0] * s1[3] - s1[1] * s1[2]) * (s2[0] * s2[3] - s2[1] * s2[2])
        let traceRoot = (traceProduct + 2 * determinants.squareRoot()).squareRoot()
        let mean1 = [1.0, 2.0], mean2 = [0.0, -1.0]
        let expected = 1 + 9 + (s1[0] + s1[3]) + (s2[0] + s2[3]) - 2 * traceRoot
        let distance = FrechetDistance.distance(mean1: mean1, covariance1: s1, mean2: mean2, covariance2: s2, dimension: 2)
        XCTAssertEqual(distance, expected, accuracy: 1e-10)
    }

    func testRotatedCommutingCovariancesMatchClosedForm() {
        // Σ₁ = R diag(a) Rᵀ and Σ₂ = R diag(b) Rᵀ share eigenvectors: d² = ‖Δμ‖² + Σ (√a − √b)².
        let angle = 0.7
        let (c, s) = (cos(angle), sin(angle))
        let rotation = [c, -s, 0, s, c, 0, 0, 0, 1]
        func rotated(_ values: [Double]) -> [Double] {
            var result = [Double](repeating: 0, count: 9)
            for i in 0..<3 { for j in 0..<3 { for k in 0..<3 { result[i * 3 + j] += rotation[i * 3 + k] * values[k] * rotation[j * 3 + k] } } }
            return result
        }
        let a = [3.0, 0.5, 1.0], b = [1.0, 2.0, 0.1]
        let expected = zip(a, b).reduce(0.0) { $0 + ($1.0.squareRoot() - $1.1.squareRoot()) * ($1.0.squareRoot() - $1.1.squareRoot()) }
        let distance = FrechetDistance.distance(
            mean1: [0, 0, 0], covariance1: rotated(a), mean2: [0, 0, 0], covariance2: rotated(b), dimension: 3)
        XCTAssertEqual(distance, expected, accuracy: 1e-10)
    }

    func testFullCovariancesMatchNumPy() throws {
        let fixture = try Fixture.load("frechet")
        for entry in fixture["gaussians"] as! [[String: Any]] {
            let dimension = entry["dimension"] as! Int
            let distance = FrechetDistance.distance(
                mean1: Fixture.doubles(entry["mean1"]), covariance1: Fixture.doubles(entry["covariance1"]),
                mean2: Fixture.doubles(entry["mean2"]), covariance2: Fixture.doubles(entry["covariance2"]), dimension: dimension)
            let expected = (entry["distance"] as! NSNumber).doubleValue
            XCTAssertEqual(distance, expected, accuracy: 1e-9 * Swift.max(1, abs(expected)), "dimension \(dimension)")
        }
    }

    func testSampleStatisticsMatchNumPy() throws {
        let fixture = try Fixture.load("frechet")
        for entry in fixture["samples"] as! [[String: Any]] {
            let dimension = entry["dimension"] as! Int
            let first = GaussianStatistics(
                features: Fixture.doubles(entry["features1"]).map(Float.init), count: entry["count1"] as! Int, dimension: dimension)
            let second = GaussianStatistics(
                features: Fixture.doubles(entry["features2"]).map(Float.init), count: entry["count2"] as! Int, dimension: dimension)
            for (value, expected) in zip(first.mean, Fixture.doubles(entry["mean1"])) { XCTAssertEqual(value, expected, accuracy: 1e-9) }
            for (value, expected) in zip(first.covariance, Fixture.doubles(entry["covariance1"])) { XCTAssertEqual(value, expected, accuracy: 1e-9) }
            let expected = (entry["distance"] as! NSNumber).doubleValue
            XCTAssertEqual(FrechetDistance.distance(first, second), expected, accuracy: 1e-8 * Swift.max(1, abs(expected)))
        }
    }

    func testJacobiEigenDecompositionReconstructsTheMatrix() {
        let d = 6
        var matrix = [Double](repeating: 0, count: d * d)
        for i in 0..<d { for j in 0..<d { matrix[i * d + j] = 1 / Double(i + j + 1) } }  // Hilbert: ill-conditioned
        let (values, vectors) = FrechetDistance.symmetricEigen(matrix, dimension: d)
        for i in 0..<d {
            for j in 0..<d {
                var sum = 0.0
                for k in 0..<d { sum += vectors[i * d + k] * values[k] * vectors[j * d + k] }
                XCTAssertEqual(sum, matrix[i * d + j], accuracy: 1e-13)
                var dot = 0.0
                for k in 0..<d { dot += vectors[k * d + i] * vectors[k * d + j] }
                XCTAssertEqual(dot, i == j ? 1 : 0, accuracy: 1e-13)
            }
        }
        let root = FrechetDistance.symmetricSquareRoot(matrix, dimension: d)
        for i in 0..<d {
            for j in 0..<d {
                var sum = 0.0
                for k in 0..<d { sum += root[i * d + k] * root[k * d + j] }
                XCTAssertEqual(sum, matrix[i * d + j], accuracy: 1e-12)
            }
        }
    }
}
