import Foundation
import Testing

@testable import NFMExperiments

/// The values SciPy 1.17.1 gives (scripts/reference/make_statistics_fixtures.py).
struct StatisticsFixture: Decodable {
    struct TPoint: Decodable {
        var df: Double
        var t: Double?
        var cdf: Double?
        var two_sided_p: Double?
        var quantile_975: Double?
        var quantile_995: Double?
    }
    struct BetaPoint: Decodable {
        var a, b, x, value: Double
    }
    struct Sample: Decodable {
        var values: [Double]
        var mean, std, ci_low, ci_high: Double
    }
    struct Pair: Decodable {
        var treatment, control: [Double]
        var mean, ci_low, ci_high, t, p: Double
    }
    var t: [TPoint]
    var beta: [BetaPoint]
    var samples: [Sample]
    var paired: [Pair]

    static func load() throws -> StatisticsFixture {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/statistics", withExtension: "json"))
        return try JSONDecoder().decode(StatisticsFixture.self, from: Data(contentsOf: url))
    }
}

/// |actual − expected| within `relative` of |expected| (or `absolute` near 0).
func close(_ actual: Double, _ expected: Double, relative: Double = 1e-9, absolute: Double = 1e-12) -> Bool {
    abs(actual - expected) <= max(absolute, relative * abs(expected))
}

@Suite struct StudentTTests {
    @Test func cumulativeProbabilityAndPValuesMatchSciPy() throws {
        let fixture = try StatisticsFixture.load()
        var checked = 0
        for point in fixture.t {
            guard let t = point.t, let cdf = point.cdf, let p = point.two_sided_p else { continue }
            let distribution = StudentT(degreesOfFreedom: point.df)
            #expect(close(distribution.cumulativeProbability(t), cdf, relative: 1e-10), "df \(point.df), t \(t)")
            #expect(close(distribution.twoSidedPValue(t), p, relative: 1e-10), "df \(point.df), t \(t)")
            checked += 1
        }
        #expect(checked == 56)
    }

    @Test func quantilesMatchSciPy() throws {
        let fixture = try StatisticsFixture.load()
        for point in fixture.t {
            guard let q975 = point.quantile_975, let q995 = point.quantile_995 else { continue }
            let distribution = StudentT(degreesOfFreedom: point.df)
            #expect(close(distribution.quantile(0.975), q975, relative: 1e-10), "df \(point.df)")
            #expect(close(distribution.quantile(0.995), q995, relative: 1e-10), "df \(point.df)")
            #expect(close(distribution.quantile(0.025), -q975, relative: 1e-10), "df \(point.df)")
        }
    }

    /// The textbook table (e.g. Student's t table in any statistics text): t_{0.975} for 4 and 1
    /// degrees of freedom, and the exact closed form for ν = 1 (Cauchy) and ν = 2.
    @Test func handWorkedValues() {
        #expect(abs(StudentT(degreesOfFreedom: 4).quantile(0.975) - 2.776) < 5e-4)
        #expect(abs(StudentT(degreesOfFreedom: 1).quantile(0.975) - 12.706) < 5e-4)
        // ν = 1: F(t) = 1/2 + atan(t)/π.
        for t in [-2.0, 0.3, 5.0] {
            #expect(close(StudentT(degreesOfFreedom: 1).cumulativeProbability(t), 0.5 + atan(t) / Double.pi, relative: 1e-12))
        }
        // ν = 2: F(t) = 1/2 + t / (2 √(2 + t²)).
        for t in [-1.5, 0.7, 3.0] {
            #expect(close(StudentT(degreesOfFreedom: 2).cumulativeProbability(t), 0.5 + t / (2 * (2 + t * t).squareRoot()), relative: 1e-12))
        }
    }

    @Test func incompleteBetaMatchesSciPy() throws {
        for point in try StatisticsFixture.load().beta {
            #expect(close(regularizedIncompleteBeta(point.x, a: point.a, b: point.b), point.value, relative: 1e-11), "\(point)")
        }
        #expect(regularizedIncompleteBeta(0, a: 2, b: 3) == 0)
        #expect(regularizedIncompleteBeta(1, a: 2, b: 3) == 1)
    }
}

@Suite struct SampleStatisticsTests {
    @Test func summariesMatchSciPy() throws {
        for sample in try StatisticsFixture.load().samples {
            let summary = SampleSummary(sample.values)
            #expect(summary.count == sample.values.count)
            #expect(close(summary.mean, sample.mean))
            #expect(close(summary.standardDeviation, sample.std))
            #expect(close(summary.lower, sample.ci_low, relative: 1e-9))
            #expect(close(summary.upper, sample.ci_high, relative: 1e-9))
        }
    }

    /// Worked by hand: values 1, 2, 3 have mean 2, s = 1, and t_{0.975, 2} = 4.302653,
    /// so the interval is 2 ± 4.302653 / √3 = 2 ± 2.484138.
    @Test func handWorkedInterval() {
        let summary = SampleSummary([1, 2, 3])
        #expect(summary.mean == 2)
        #expect(summary.standardDeviation == 1)
        #expect(abs(summary.halfWidth - 2.484138) < 1e-6)
    }

    @Test func fewerThanTwoValuesHaveNoInterval() {
        #expect(SampleSummary([]).mean.isNaN)
        let one = SampleSummary([0.7])
        #expect(one.mean == 0.7 && one.standardDeviation.isNaN && one.halfWidth.isNaN)
    }

    @Test func pairedDifferencesMatchSciPyTTestRel() throws {
        for pair in try StatisticsFixture.load().paired {
            let paired = PairedDifference(treatment: pair.treatment, control: pair.control)
            #expect(close(paired.difference.mean, pair.mean, relative: 1e-9, absolute: 1e-12))
            #expect(close(paired.difference.lower, pair.ci_low, relative: 1e-9))
            #expect(close(paired.difference.upper, pair.ci_high, relative: 1e-9))
            #expect(close(paired.t, pair.t, relative: 1e-9))
            #expect(close(paired.pValue, pair.p, relative: 1e-9))
        }
    }

    @Test func identicalDifferences() {
        #expect(PairedDifference(treatment: [1, 2, 3], control: [1, 2, 3]).pValue == 1)
        let shifted = PairedDifference(treatment: [2, 3, 4], control: [1, 2, 3])
        #expect(shifted.pValue == 0 && shifted.t == .infinity)
    }
}

@Suite struct SeedListTests {
    @Test func parsesCountsAndLists() throws {
        #expect(try SeedList(parsing: "5").seeds == [1, 2, 3, 4, 5])
        #expect(try SeedList(parsing: "1,2,3").seeds == [1, 2, 3])
        #expect(try SeedList(parsing: " 7, 11 ").seeds == [7, 11])
        #expect(try SeedList(parsing: "3").description == "1,2,3")
    }

    /// Each refusal says what is wrong with the value.
    @Test func rejectsBadInput() {
        let reasons = [
            "0": "a count of seeds must be at least 1, got 0", "-2": "a count of seeds must be at least 1, got -2",
            "": "\"\" is neither a count of seeds nor a list such as 1,2,3", "a": "\"a\" is neither a count of seeds nor a list such as 1,2,3",
            "1,,2": "\"\" in the list is not a seed (a whole number ≥ 0)", "1,x": "\"x\" in the list is not a seed (a whole number ≥ 0)",
            "1,-1": "\"-1\" in the list is not a seed (a whole number ≥ 0)", "1,2,1": "seed 1 is listed twice",
        ]
        for (bad, reason) in reasons {
            #expect(throws: SeedListError.self, "\(bad)") { try SeedList(parsing: bad) }
            do { _ = try SeedList(parsing: bad) } catch { #expect(error.description == reason, "\(bad)") }
        }
    }

    @Test func removesOptionsFromACommandLine() {
        let arguments = ["train", "--seeds", "3", "--steps=40", "--run-dir", "R", "--nfm", "--seed-jobs=2", "--widths", "8,16"]
        #expect(
            SweepPlan.removing(options: ["--seeds", "--run-dir", "--seed-jobs"], flags: ["--nfm"], from: arguments)
                == ["train", "--steps=40", "--widths", "8,16"])
    }
}
