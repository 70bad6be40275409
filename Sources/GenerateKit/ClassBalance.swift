import Foundation

/// How samples spread over a data set's classes, as the feature classifier labels them, and how far
/// a generator's spread is from the real one's: a measure of dropped modes. FD folds mode dropping
/// and poor images into one number; a generator that draws only tops and trousers, however well,
/// shows here as a divergence well above 0 (Metz et al. 2017, "Unrolled Generative Adversarial
/// Networks", report the same KL over the 1,000 modes of stacked MNIST).
public enum ClassBalance {
    /// The share of `labels` in each of `classCount` classes; sums to 1 (all zeros for no labels).
    public static func shares(of labels: [Int], classCount: Int) -> [Double] {
        var counts = [Double](repeating: 0, count: classCount)
        for label in labels {
            precondition((0..<classCount).contains(label), "ClassBalance: label \(label) is outside 0..<\(classCount)")
            counts[label] += 1
        }
        return labels.isEmpty ? counts : counts.map { $0 / Double(labels.count) }
    }

    /// KL(p ‖ q) = Σ p log(p / q) in nats: 0 when the shares agree, log 10 ≈ 2.30 for a generator
    /// that draws one of ten equally common classes only. Terms with p = 0 add nothing; a class with
    /// p > 0 and q = 0 makes it infinite. The generated shares go first, so that every class the
    /// real data has (q > 0) keeps it finite however many of them the generator drops.
    public static func divergence(_ p: [Double], from q: [Double]) -> Double {
        precondition(p.count == q.count, "ClassBalance.divergence: \(p.count) and \(q.count) classes")
        var sum = 0.0
        for (pi, qi) in zip(p, q) where pi > 0 {
            if qi <= 0 { return .infinity }
            sum += pi * Foundation.log(pi / qi)
        }
        return sum
    }
}
