// Student's t distribution: the cumulative distribution and its inverse, for confidence intervals
// and paired t-tests over a handful of seeds. Written from the textbook identities (the t CDF as a
// regularised incomplete beta function, evaluated by its continued fraction) rather than pulled in
// from a statistics package: the project runs without Python, and no Swift package on this machine
// provides them. Tests pin the values against SciPy (scripts/reference/make_statistics_fixtures.py).

import Foundation

/// Student's t distribution with `degreesOfFreedom` ν > 0.
public struct StudentT: Sendable {
    /// ν, the degrees of freedom (n − 1 for a sample of n).
    public let degreesOfFreedom: Double

    /// The distribution with ν degrees of freedom.
    public init(degreesOfFreedom: Double) {
        precondition(degreesOfFreedom > 0, "StudentT: degrees of freedom must be positive, got \(degreesOfFreedom)")
        self.degreesOfFreedom = degreesOfFreedom
    }

    /// P(T ≤ t). For t ≥ 0, F(t) = 1 − ½·I_x(ν/2, ½) with x = ν / (ν + t²); the distribution is
    /// symmetric about 0.
    public func cumulativeProbability(_ t: Double) -> Double {
        if t.isNaN { return .nan }
        if t.isInfinite { return t > 0 ? 1 : 0 }
        let nu = degreesOfFreedom
        let tail = 0.5 * regularizedIncompleteBeta(nu / (nu + t * t), a: nu / 2, b: 0.5)
        return t >= 0 ? 1 - tail : tail
    }

    /// The two-sided tail probability P(|T| ≥ |t|): the p-value of a two-sided t-test.
    public func twoSidedPValue(_ t: Double) -> Double {
        if t.isNaN { return .nan }
        if t.isInfinite { return 0 }
        let nu = degreesOfFreedom
        return Swift.min(1, regularizedIncompleteBeta(nu / (nu + t * t), a: nu / 2, b: 0.5))
    }

    /// The t with P(T ≤ t) = `probability`, for 0 < probability < 1: bisection on the CDF, which is
    /// monotone, to about 1e-12 relative (the quantiles a confidence interval needs are between
    /// 1.96 and 12.71 for 95%, so this is far below anything printed).
    public func quantile(_ probability: Double) -> Double {
        precondition(probability > 0 && probability < 1, "StudentT.quantile: probability must be in (0, 1), got \(probability)")
        if probability == 0.5 { return 0 }
        if probability < 0.5 { return -quantile(1 - probability) }
        var high = 1.0
        while cumulativeProbability(high) < probability { high *= 2 }
        var low = 0.0
        for _ in 0..<200 {
            let middle = 0.5 * (low + high)
            if cumulativeProbability(middle) < probability { low = middle } else { high = middle }
            if high - low <= 1e-13 * high { break }
        }
        return 0.5 * (low + high)
    }
}

/// I_x(a, b), the regularised incomplete beta function, for 0 ≤ x ≤ 1 and a, b > 0.
///
/// Evaluated by its continued fraction (Abramowitz & Stegun 26.5.8) with the modified Lentz
/// method, on whichever of x or 1 − x makes the fraction converge fast (x < (a + 1)/(a + b + 2)),
/// using I_x(a, b) = 1 − I_{1−x}(b, a) for the other side.
public func regularizedIncompleteBeta(_ x: Double, a: Double, b: Double) -> Double {
    precondition(a > 0 && b > 0, "regularizedIncompleteBeta: a and b must be positive, got \(a), \(b)")
    if x.isNaN { return .nan }
    if x <= 0 { return 0 }
    if x >= 1 { return 1 }
    // x^a (1−x)^b / (a B(a, b)), in logarithms to stay finite for large a and b.
    let logFront = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x)
    if x < (a + 1) / (a + b + 2) {
        return exp(logFront) * betaContinuedFraction(x, a: a, b: b) / a
    }
    return 1 - exp(logFront) * betaContinuedFraction(1 - x, a: b, b: a) / b
}

/// The continued fraction 1 / (1 + d₁ / (1 + d₂ / (1 + …))) of I_x(a, b), where
/// d_{2m+1} = −(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1)) and d_{2m} = m (b − m) x / ((a + 2m − 1)(a + 2m)),
/// by the modified Lentz method (Lentz 1976; Thompson & Barnett 1986).
func betaContinuedFraction(_ x: Double, a: Double, b: Double) -> Double {
    let tiny = 1e-300
    func guarded(_ value: Double) -> Double { abs(value) < tiny ? tiny : value }
    var c = 1.0
    var d = 1 / guarded(1 - (a + b) * x / (a + 1))
    var result = d
    for m in 1...10_000 {
        let m = Double(m)
        // The even term d_{2m}, then the odd term d_{2m+1}.
        let even = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        d = 1 / guarded(1 + even * d)
        c = guarded(1 + even / c)
        result *= d * c
        let odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1 / guarded(1 + odd * d)
        c = guarded(1 + odd / c)
        let change = d * c
        result *= change
        if abs(change - 1) < 1e-15 { break }
    }
    return result
}
