// The statistics of a comparison over seeds (STYLE.md: "results as a table with error bars"):
// per model, n, mean, standard deviation and a Student-t 95% confidence interval; between two
// models run on the same seeds, the paired difference with its interval and a paired t-test.

import Foundation

/// n, mean, sample standard deviation and a two-sided Student-t confidence interval of the mean.
public struct SampleSummary: Sendable, Equatable {
    /// The number of values.
    public let count: Int
    /// Their mean (NaN when there are none).
    public let mean: Double
    /// The sample standard deviation, with n − 1 in the denominator (NaN for fewer than 2 values).
    public let standardDeviation: Double
    /// The confidence level of the interval, e.g. 0.95.
    public let confidence: Double
    /// Half the width of the interval: t_{(1+confidence)/2, n−1} · s / √n (NaN for fewer than 2 values).
    public let halfWidth: Double

    /// The summary of `values` with a `confidence` interval (0.95 by default).
    public init(_ values: [Double], confidence: Double = 0.95) {
        precondition(confidence > 0 && confidence < 1, "SampleSummary: confidence must be in (0, 1), got \(confidence)")
        count = values.count
        self.confidence = confidence
        mean = values.isEmpty ? .nan : values.reduce(0, +) / Double(values.count)
        guard values.count >= 2 else {
            standardDeviation = .nan
            halfWidth = .nan
            return
        }
        let mean = self.mean
        standardDeviation = (values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1)).squareRoot()
        let t = StudentT(degreesOfFreedom: Double(values.count - 1)).quantile((1 + confidence) / 2)
        halfWidth = t * standardDeviation / Double(values.count).squareRoot()
    }

    /// The interval's lower end.
    public var lower: Double { mean - halfWidth }
    /// The interval's upper end.
    public var upper: Double { mean + halfWidth }
}

/// The paired comparison of a treatment against a control measured on the same seeds (same data,
/// same batches): the differences treatment − control, their summary, and a two-sided paired
/// t-test of "no difference".
public struct PairedDifference: Sendable, Equatable {
    /// The summary of the per-seed differences.
    public let difference: SampleSummary
    /// The t statistic, mean / (s / √n); ±infinity when every difference is the same non-zero
    /// value, NaN for fewer than 2 pairs or when every difference is 0.
    public let t: Double
    /// The two-sided p-value of the paired t-test (1 when every difference is 0; NaN for fewer than 2 pairs).
    public let pValue: Double

    /// The comparison of `treatment[i]` against `control[i]` (equal counts, paired by index).
    public init(treatment: [Double], control: [Double], confidence: Double = 0.95) {
        precondition(treatment.count == control.count, "PairedDifference: \(treatment.count) treatment values but \(control.count) control values")
        difference = SampleSummary(zip(treatment, control).map { $0 - $1 }, confidence: confidence)
        guard difference.count >= 2 else {
            (t, pValue) = (.nan, .nan)
            return
        }
        if difference.standardDeviation == 0 {
            // Identical differences: no spread to test against.
            (t, pValue) = difference.mean == 0 ? (.nan, 1) : (difference.mean > 0 ? .infinity : -.infinity, 0)
            return
        }
        t = difference.mean / (difference.standardDeviation / Double(difference.count).squareRoot())
        pValue = StudentT(degreesOfFreedom: Double(difference.count - 1)).twoSidedPValue(t)
    }
}
