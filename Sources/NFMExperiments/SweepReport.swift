// The summary of a sweep: every run's final metrics (seeds.csv), per model n, mean, standard
// deviation and 95% confidence interval, the paired difference treatment − control with its
// interval and paired t-test (summary.csv, summary.md), and learning curves as the mean across
// seeds with a shaded 95% band (curves.csv, plots/*.png). Every seed that ran is reported; a run
// that has not finished is listed as such, never dropped silently.

import Foundation
import NFMIO
import NFMLog

/// One run of a sweep as found on disk.
public struct SweepRun: Sendable {
    /// Its seed.
    public var seed: UInt64
    /// Its model (arm) name.
    public var arm: String
    /// Its final metrics, or nil if it has not finished.
    public var finalMetrics: [String: Double]?
    /// Its logged metrics (metrics.jsonl or metrics.csv), by name; empty if it never logged.
    public var curves: [String: [MetricPoint]]
}

/// A learning curve summarised across seeds: at each step (or step bin), how many seeds logged
/// it, their mean and the 95% interval of that mean.
public struct CurveSummary: Sendable {
    /// The model.
    public var arm: String
    /// The metric.
    public var metric: String
    /// The points: x (the step, or a bin's mean step), n, mean, and the interval's ends (NaN for n < 2).
    public var points: [(step: Double, count: Int, mean: Double, lower: Double, upper: Double)]
}

/// The summary of every run of a sweep.
public struct SweepReport: Sendable {
    /// What was compared.
    public let plan: SweepPlan
    /// Every run of the plan, finished or not, seed by seed.
    public let runs: [SweepRun]
    /// The confidence level of every interval.
    public static let confidence = 0.95
    /// Curves with more distinct steps than this are averaged into this many equal step bins
    /// (per seed first, then across seeds), so that steps logged at different frames (episode
    /// ends) still line up.
    public static let curveBins = 100

    /// A report of `runs`.
    public init(plan: SweepPlan, runs: [SweepRun]) {
        self.plan = plan
        self.runs = runs
    }

    /// Reads every run of `sweep`'s plan from disk.
    public static func load(plan: SweepPlan, sweep: SeedSweep) throws -> SweepReport {
        var runs: [SweepRun] = []
        for seed in plan.seeds {
            for arm in plan.arms {
                let path = sweep.runDirectory(seed: seed, arm: arm.name)
                let final = try FinalMetrics.read(directory: path)
                let curves = try MetricsWriter.load(directory: path)
                runs.append(SweepRun(seed: seed, arm: arm.name, finalMetrics: final, curves: curves))
            }
        }
        return SweepReport(plan: plan, runs: runs)
    }

    /// The arms' names, control first.
    public var armNames: [String] { plan.arms.map(\.name) }

    /// Every final metric of any finished run: `eval/…` first, then `ood/…`, then the rest, each alphabetically.
    public var metricNames: [String] {
        let names = Set(runs.flatMap { $0.finalMetrics?.keys.map { $0 } ?? [] })
        func rank(_ name: String) -> Int { name.hasPrefix("eval/") ? 0 : name.hasPrefix("ood/") ? 1 : 2 }
        return names.sorted { (rank($0), $0) < (rank($1), $1) }
    }

    /// The finished runs' values of `metric` for `arm`, with their seeds, in seed order.
    public func values(of metric: String, arm: String) -> [(seed: UInt64, value: Double)] {
        runs.compactMap { run in
            guard run.arm == arm, let value = run.finalMetrics?[metric] else { return nil }
            return (run.seed, value)
        }
    }

    /// n, mean, standard deviation and 95% interval of `metric` for `arm`.
    public func summary(of metric: String, arm: String) -> SampleSummary {
        SampleSummary(values(of: metric, arm: arm).map(\.value), confidence: Self.confidence)
    }

    /// With two arms: the paired difference treatment − control of `metric` over the seeds where
    /// both finished, and those seeds.
    public func pairedDifference(of metric: String) -> (test: PairedDifference, seeds: [UInt64])? {
        guard plan.arms.count == 2 else { return nil }
        let control = Dictionary(values(of: metric, arm: armNames[0]).map { ($0.seed, $0.value) }, uniquingKeysWith: { first, _ in first })
        let pairs = values(of: metric, arm: armNames[1]).compactMap { entry in control[entry.seed].map { (entry.seed, entry.value, $0) } }
        return (PairedDifference(treatment: pairs.map(\.1), control: pairs.map(\.2), confidence: Self.confidence), pairs.map(\.0))
    }

    // MARK: Tables

    /// seeds.csv: one row per run and final metric (`seed,model,status,metric,value`); an unfinished
    /// run has one row with status `unfinished` and no metric.
    public func seedsCSV() -> String {
        var text = "seed,model,status,metric,value\n"
        for run in runs {
            guard let metrics = run.finalMetrics else {
                text += "\(run.seed),\(run.arm),unfinished,,\n"
                continue
            }
            for name in metrics.keys.sorted() { text += "\(run.seed),\(run.arm),finished,\(name),\(metrics[name]!)\n" }
        }
        return text
    }

    /// summary.csv: per metric, one row per model (`n,mean,std,ci95_low,ci95_high`) and, with two
    /// models, one row for the paired difference (`model` = `nfm-baseline`) with `t` and `p`.
    public func summaryCSV() -> String {
        func number(_ value: Double) -> String { value.isNaN ? "" : String(value) }
        var text = "metric,model,n,mean,std,ci95_low,ci95_high,t,p\n"
        for metric in metricNames {
            for arm in armNames {
                let summary = summary(of: metric, arm: arm)
                guard summary.count > 0 else { continue }
                text += [metric, arm, String(summary.count), number(summary.mean), number(summary.standardDeviation),
                         number(summary.lower), number(summary.upper), "", ""].joined(separator: ",") + "\n"
            }
            if let (paired, _) = pairedDifference(of: metric), paired.difference.count > 0 {
                let difference = paired.difference
                text += [metric, "\(armNames[1])-\(armNames[0])", String(difference.count), number(difference.mean),
                         number(difference.standardDeviation), number(difference.lower), number(difference.upper),
                         number(paired.t), number(paired.pValue)].joined(separator: ",") + "\n"
            }
        }
        return text
    }

    /// `mean ± half-width` with the half-width to two significant digits and the mean to the same
    /// decimal place; just the mean (four significant digits) when there is no interval.
    public static func formatInterval(_ summary: SampleSummary) -> String {
        guard summary.count > 0 else { return "–" }
        guard summary.halfWidth.isFinite, summary.halfWidth > 0 else {
            // A count (parameters, episodes) reads best whole.
            if summary.mean == summary.mean.rounded(), abs(summary.mean) < 1e15 { return String(Int64(summary.mean)) }
            return String(format: "%.4g", summary.mean)
        }
        let decimals = Swift.max(0, 1 - Int(log10(summary.halfWidth).rounded(.down)))
        return String(format: "%.\(decimals)f ± %.\(decimals)f", summary.mean, summary.halfWidth)
    }

    /// A p-value for people: `0.003`, `0.41`, `< 0.001`.
    public static func formatP(_ p: Double) -> String {
        if p.isNaN { return "–" }
        return p < 0.001 ? "< 0.001" : String(format: p < 0.01 ? "%.3f" : "%.2f", p)
    }

    /// What the paired test says at the 5% level, in words: "nfm higher", "nfm lower" or "no
    /// significant difference" (which direction is better depends on the metric).
    public func verdict(of metric: String) -> String {
        guard let (paired, _) = pairedDifference(of: metric), paired.difference.count >= 2 else { return "too few pairs" }
        if isFixed(metric) { return "same value on every seed" }
        guard paired.pValue < 0.05 else { return "no significant difference" }
        return "\(armNames[1]) \(paired.difference.mean > 0 ? "higher" : "lower")"
    }

    /// Whether `metric` has one value per model on every seed (a parameter count): no test applies.
    public func isFixed(_ metric: String) -> Bool {
        armNames.allSatisfy { arm in Set(values(of: metric, arm: arm).map(\.value)).count <= 1 }
    }

    /// The rows of the summary table: metric, one `mean ± CI (n)` per model, and with two models the
    /// paired difference, its p-value and the verdict.
    public var tableRows: [[String]] {
        metricNames.map { metric in
            var row = [metric]
            for arm in armNames {
                let summary = summary(of: metric, arm: arm)
                row.append("\(Self.formatInterval(summary)) (\(summary.count))")
            }
            if let (paired, _) = pairedDifference(of: metric) {
                let p = isFixed(metric) ? "–" : Self.formatP(paired.pValue)
                row += ["\(Self.formatInterval(paired.difference)) (\(paired.difference.count))", p, verdict(of: metric)]
            }
            return row
        }
    }

    /// The table's column titles.
    public var tableHeader: [String] {
        ["metric"] + armNames + (plan.arms.count == 2 ? ["\(armNames[1]) − \(armNames[0]) (paired)", "p", "at 5%"] : [])
    }

    /// summary.md: what ran, the table, and every seed's status.
    public func markdown() -> String {
        let finished = armNames.map { arm in "\(arm) \(runs.filter { $0.arm == arm && $0.finalMetrics != nil }.count)/\(plan.seeds.count)" }
        var text = "# \(plan.program): \(armNames.joined(separator: " vs ")) over seeds \(plan.seeds.map(String.init).joined(separator: ", "))\n\n"
        text += plan.arguments.isEmpty
            ? "Every run used the program's defaults (no flags beyond the seed and the model).\n\n"
            : "Command flags common to every run: `\(plan.arguments.joined(separator: " "))`\n\n"
        text += "Finished runs: \(finished.joined(separator: ", ")). Each cell is the mean ± the half-width of its 95% "
            + "Student-t confidence interval (n runs)."
            + (armNames.count == 2
                ? " The paired column is \(armNames[1]) − \(armNames[0]) on the same seed (same data and batches), with the "
                    + "p-value of a two-sided paired t-test.\n\n"
                : "\n\n")
        text += "| " + tableHeader.joined(separator: " | ") + " |\n"
        text += "|" + tableHeader.enumerated().map { $0.offset == 0 ? " --- |" : " ---: |" }.joined() + "\n"
        for row in tableRows { text += "| " + row.joined(separator: " | ") + " |\n" }
        let unfinished = runs.filter { $0.finalMetrics == nil }
        if !unfinished.isEmpty {
            text += "\nNot finished: " + unfinished.map { "seed \($0.seed) \($0.arm)" }.joined(separator: ", ") + ".\n"
        }
        text += "\nEvery run's final metrics: seeds.csv. Learning curves (mean and 95% band): plots/, numbers in curves.csv.\n"
        return text
    }

    /// The table as aligned text, for the console.
    public func formatted() -> String {
        let rows = [tableHeader] + tableRows
        let widths = (0..<tableHeader.count).map { column in rows.map { $0.count > column ? $0[column].count : 0 }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { column, cell in
                let fill = String(repeating: " ", count: widths[column] - cell.count)
                return column == 0 ? cell + fill : fill + cell
            }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }

    // MARK: Curves

    /// Every metric logged by every run of at least one arm, summarised across seeds per arm.
    public func curves() -> [CurveSummary] {
        var result: [CurveSummary] = []
        for arm in armNames {
            let armRuns = runs.filter { $0.arm == arm && !$0.curves.isEmpty }
            guard let first = armRuns.first else { continue }
            let shared = armRuns.dropFirst().reduce(Set(first.curves.keys)) { $0.intersection($1.curves.keys) }
            for metric in shared.sorted() {
                let points = Self.summarise(armRuns.map { $0.curves[metric] ?? [] })
                if !points.isEmpty { result.append(CurveSummary(arm: arm, metric: metric, points: points)) }
            }
        }
        return result
    }

    /// Per-seed series → (x, n, mean, CI) points. With at most ``curveBins`` distinct steps, each
    /// step is its own point; otherwise steps are averaged into ``curveBins`` equal bins, per seed
    /// first, and a bin's x is the mean step of its values.
    static func summarise(_ seeds: [[MetricPoint]]) -> [(step: Double, count: Int, mean: Double, lower: Double, upper: Double)] {
        let steps = Set(seeds.flatMap { $0.map(\.step) }).sorted()
        guard let firstStep = steps.first, let lastStep = steps.last else { return [] }
        let binCount = Swift.min(steps.count, curveBins)
        func bin(_ step: Int) -> Int {
            if steps.count <= curveBins { return steps.firstIndex(of: step)! }
            return Swift.min(binCount - 1, (step - firstStep) * binCount / Swift.max(lastStep - firstStep + 1, 1))
        }
        // Per seed: the mean value and mean step of each bin it has points in.
        var values = [[Double]](repeating: [], count: binCount)
        var positions = [[Double]](repeating: [], count: binCount)
        for series in seeds {
            var sums = [Double](repeating: 0, count: binCount), stepSums = sums, counts = [Int](repeating: 0, count: binCount)
            for point in series where point.value.isFinite {
                let index = bin(point.step)
                sums[index] += point.value
                stepSums[index] += Double(point.step)
                counts[index] += 1
            }
            for index in 0..<binCount where counts[index] > 0 {
                values[index].append(sums[index] / Double(counts[index]))
                positions[index].append(stepSums[index] / Double(counts[index]))
            }
        }
        return (0..<binCount).compactMap { index in
            guard !values[index].isEmpty else { return nil }
            let summary = SampleSummary(values[index], confidence: confidence)
            let x = positions[index].reduce(0, +) / Double(positions[index].count)
            return (x, summary.count, summary.mean, summary.lower, summary.upper)
        }
    }

    /// curves.csv: `model,metric,step,n,mean,ci95_low,ci95_high`.
    public func curvesCSV(_ curves: [CurveSummary]) -> String {
        var text = "model,metric,step,n,mean,ci95_low,ci95_high\n"
        for curve in curves {
            for point in curve.points {
                let ends = point.count >= 2 ? "\(point.lower),\(point.upper)" : ","
                text += "\(curve.arm),\(curve.metric),\(point.step),\(point.count),\(point.mean),\(ends)\n"
            }
        }
        return text
    }

    /// Writes summary.md, summary.csv, seeds.csv, curves.csv and one PNG per metric in `plots/`
    /// (every model's mean across seeds, with its 95% band) into `directory`; returns the paths. A
    /// metric logged at one step only (a final evaluation) has no curve to draw, so it gets no plot:
    /// its figure is in the summary. PNGs already in `plots/` are replaced, stale ones removed.
    public func write(to directory: String) throws -> [String] {
        var written: [String] = []
        for (name, text) in [("summary.md", markdown()), ("summary.csv", summaryCSV()), ("seeds.csv", seedsCSV())] {
            try AtomicFile.write(text, to: directory + "/" + name)
            written.append(directory + "/" + name)
        }
        let curves = curves()
        try AtomicFile.write(curvesCSV(curves), to: directory + "/curves.csv")
        written.append(directory + "/curves.csv")
        let plots = directory + "/plots"
        try FileManager.default.createDirectory(atPath: plots, withIntermediateDirectories: true)
        // plots/ is the summary's own: pictures an earlier build drew and this one does not (a
        // one-dot "curve", a metric no longer logged) go, so that the folder shows what the summary says.
        for stale in try FileManager.default.contentsOfDirectory(atPath: plots) where stale.hasSuffix(".png") {
            try FileManager.default.removeItem(atPath: plots + "/" + stale)
        }
        for metric in Set(curves.map(\.metric)).sorted() where curves.contains(where: { $0.metric == metric && $0.points.count > 1 }) {
            let series = armNames.enumerated().compactMap { index, arm -> PlotSeries? in
                guard let curve = curves.first(where: { $0.arm == arm && $0.metric == metric }) else { return nil }
                let seedCount = curve.points.map(\.count).max() ?? 0
                return PlotSeries(
                    name: "\(arm) (\(seedCount) seeds)", points: curve.points.map { (x: $0.step, y: $0.mean) },
                    color: LinePlot.palette[index % LinePlot.palette.count],
                    band: curve.points.filter { $0.count >= 2 }.map { (x: $0.step, lower: $0.lower, upper: $0.upper) })
            }
            var lines = series
            let steps = curves.filter { $0.metric == metric }.flatMap { $0.points.map(\.step) }
            if let first = steps.min(), let last = steps.max() {
                for reference in plan.references ?? [] where reference.metric == metric {
                    lines.append(PlotSeries(
                        name: reference.label, points: [(x: first, y: reference.value), (x: last, y: reference.value)], color: RGBColor(gray: 110)))
                }
            }
            let plot = LinePlot(title: "\(metric): mean over seeds, 95% band", xLabel: "step", yLabel: metric, series: lines)
            let path = plots + "/" + metric.map { $0.isLetter || $0.isNumber || "-_.".contains($0) ? $0 : "_" }.map(String.init).joined() + ".png"
            try plot.write(to: path)
            written.append(path)
        }
        return written
    }
}
