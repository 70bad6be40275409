import Foundation

/// The mean and covariance of a set of feature vectors, in Double.
public struct GaussianStatistics: Sendable, Equatable {
    /// The feature size d.
    public let dimension: Int
    /// The number of vectors the statistics came from.
    public let count: Int
    /// μ, [d].
    public let mean: [Double]
    /// Σ, [d, d] row-major, with the unbiased N − 1 normalisation (as `np.cov`).
    public let covariance: [Double]

    /// Statistics given directly.
    public init(dimension: Int, count: Int, mean: [Double], covariance: [Double]) {
        precondition(
            mean.count == dimension && covariance.count == dimension * dimension,
            "GaussianStatistics: mean [\(mean.count)] and covariance [\(covariance.count)] do not fit dimension \(dimension)")
        self.dimension = dimension
        self.count = count
        self.mean = mean
        self.covariance = covariance
    }

    /// The sample mean and covariance of `count` vectors of size `dimension`, row-major in `features`.
    public init(features: [Float], count: Int, dimension: Int) {
        precondition(count >= 2, "GaussianStatistics: a covariance needs at least 2 vectors, got \(count)")
        precondition(features.count == count * dimension, "GaussianStatistics: \(features.count) values are not \(count) × \(dimension)")
        var mean = [Double](repeating: 0, count: dimension)
        for row in 0..<count {
            for column in 0..<dimension { mean[column] += Double(features[row * dimension + column]) }
        }
        for column in 0..<dimension { mean[column] /= Double(count) }
        var covariance = [Double](repeating: 0, count: dimension * dimension)
        var centered = [Double](repeating: 0, count: dimension)
        for row in 0..<count {
            for column in 0..<dimension { centered[column] = Double(features[row * dimension + column]) - mean[column] }
            for i in 0..<dimension {
                let value = centered[i]
                if value == 0 { continue }
                for j in i..<dimension { covariance[i * dimension + j] += value * centered[j] }
            }
        }
        let normaliser = 1 / Double(count - 1)
        for i in 0..<dimension {
            for j in i..<dimension {
                let value = covariance[i * dimension + j] * normaliser
                covariance[i * dimension + j] = value
                covariance[j * dimension + i] = value
            }
        }
        self.init(dimension: dimension, count: count, mean: mean, covariance: covariance)
    }
}

/// The Fréchet distance between Gaussians (Dowson & Landau 1982), the quantity FID reports
/// (Heusel et al. 2017) for Inception features:
/// d² = ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁^½ Σ₂ Σ₁^½)^½.
///
/// The trace term is computed through symmetric eigen-decompositions only (cyclic Jacobi, in
/// Double): Σ₁^½ = V diag(√λ) Vᵀ, then the eigenvalues of the symmetric PSD matrix Σ₁^½ Σ₂ Σ₁^½,
/// whose square roots sum to tr (Σ₁Σ₂)^½. Tiny negative eigenvalues from rounding are clamped to 0.
public enum FrechetDistance {
    /// The distance between two sets of statistics of the same dimension.
    public static func distance(_ first: GaussianStatistics, _ second: GaussianStatistics) -> Double {
        precondition(first.dimension == second.dimension, "FrechetDistance: dimensions \(first.dimension) and \(second.dimension) differ")
        return distance(
            mean1: first.mean, covariance1: first.covariance, mean2: second.mean, covariance2: second.covariance,
            dimension: first.dimension)
    }

    /// The distance between N(mean1, covariance1) and N(mean2, covariance2); covariances are
    /// symmetric positive semi-definite, [d, d] row-major. NaN if any input is not finite.
    public static func distance(mean1: [Double], covariance1: [Double], mean2: [Double], covariance2: [Double], dimension: Int) -> Double {
        let d = dimension
        precondition(
            mean1.count == d && mean2.count == d && covariance1.count == d * d && covariance2.count == d * d,
            "FrechetDistance: inputs do not fit dimension \(d)")
        guard (mean1 + mean2 + covariance1 + covariance2).allSatisfy(\.isFinite) else { return .nan }
        var meanTerm = 0.0
        for i in 0..<d { meanTerm += (mean1[i] - mean2[i]) * (mean1[i] - mean2[i]) }
        var traces = 0.0
        for i in 0..<d { traces += covariance1[i * d + i] + covariance2[i * d + i] }
        let root = symmetricSquareRoot(covariance1, dimension: d)
        let product = multiply(multiply(root, covariance2, d), root, d)
        let eigenvalues = symmetricEigen(symmetrized(product, d), dimension: d).values
        let traceOfRoot = eigenvalues.reduce(0) { $0 + Swift.max($1, 0).squareRoot() }
        return meanTerm + traces - 2 * traceOfRoot
    }

    /// The PSD square root V diag(√max(λ, 0)) Vᵀ of a symmetric matrix.
    public static func symmetricSquareRoot(_ matrix: [Double], dimension: Int) -> [Double] {
        let d = dimension
        let (values, vectors) = symmetricEigen(matrix, dimension: d)
        let roots = values.map { Swift.max($0, 0).squareRoot() }
        var result = [Double](repeating: 0, count: d * d)
        for i in 0..<d {
            for j in i..<d {
                var sum = 0.0
                for k in 0..<d { sum += vectors[i * d + k] * roots[k] * vectors[j * d + k] }
                result[i * d + j] = sum
                result[j * d + i] = sum
            }
        }
        return result
    }

    /// Eigenvalues and eigenvectors of a symmetric matrix by the cyclic Jacobi method (Jacobi 1846;
    /// Rutishauser's rotation formulas as in Numerical Recipes §11.1). Returns the eigenvalues and
    /// the eigenvectors as the columns of a row-major [d, d] matrix V, with A = V diag(λ) Vᵀ.
    /// Sweeps until the off-diagonal mass is below 1e-24 of the total, at most 100 sweeps.
    public static func symmetricEigen(_ matrix: [Double], dimension: Int) -> (values: [Double], vectors: [Double]) {
        let d = dimension
        precondition(matrix.count == d * d, "symmetricEigen: \(matrix.count) values are not \(d) × \(d)")
        var a = symmetrized(matrix, d)
        var v = [Double](repeating: 0, count: d * d)
        for i in 0..<d { v[i * d + i] = 1 }
        let total = a.reduce(0) { $0 + $1 * $1 }
        for _ in 0..<100 {
            var offDiagonal = 0.0
            for p in 0..<d {
                for q in (p + 1)..<Swift.max(p + 1, d) { offDiagonal += a[p * d + q] * a[p * d + q] }
            }
            if offDiagonal <= 1e-24 * total || offDiagonal == 0 { break }
            for p in 0..<d {
                for q in (p + 1)..<Swift.max(p + 1, d) {
                    let apq = a[p * d + q]
                    if apq == 0 { continue }
                    let theta = (a[q * d + q] - a[p * d + p]) / (2 * apq)
                    let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot()
                    let s = t * c
                    // A ← Pᵀ A P with P the rotation in the (p, q) plane: columns, then rows.
                    for k in 0..<d {
                        let (akp, akq) = (a[k * d + p], a[k * d + q])
                        a[k * d + p] = c * akp - s * akq
                        a[k * d + q] = s * akp + c * akq
                    }
                    for k in 0..<d {
                        let (apk, aqk) = (a[p * d + k], a[q * d + k])
                        a[p * d + k] = c * apk - s * aqk
                        a[q * d + k] = s * apk + c * aqk
                    }
                    a[p * d + q] = 0
                    a[q * d + p] = 0
                    for k in 0..<d {
                        let (vkp, vkq) = (v[k * d + p], v[k * d + q])
                        v[k * d + p] = c * vkp - s * vkq
                        v[k * d + q] = s * vkp + c * vkq
                    }
                }
            }
        }
        return ((0..<d).map { a[$0 * d + $0] }, v)
    }

    static func multiply(_ a: [Double], _ b: [Double], _ d: Int) -> [Double] {
        var result = [Double](repeating: 0, count: d * d)
        for i in 0..<d {
            for k in 0..<d {
                let aik = a[i * d + k]
                if aik == 0 { continue }
                for j in 0..<d { result[i * d + j] += aik * b[k * d + j] }
            }
        }
        return result
    }

    static func symmetrized(_ a: [Double], _ d: Int) -> [Double] {
        var result = a
        for i in 0..<d {
            for j in (i + 1)..<Swift.max(i + 1, d) {
                let value = 0.5 * (a[i * d + j] + a[j * d + i])
                result[i * d + j] = value
                result[j * d + i] = value
            }
        }
        return result
    }
}
