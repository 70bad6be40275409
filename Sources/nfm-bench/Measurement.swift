import Foundation
import NFMKernels

/// Summary of repeated measurements of one figure: the median and the spread, in `unit`.
struct Summary: Codable, Sendable {
    /// The median over the timed iterations.
    var median: Double
    /// The smallest value seen.
    var minimum: Double
    /// The largest value seen.
    var maximum: Double
    /// The 25th percentile.
    var lowerQuartile: Double
    /// The 75th percentile.
    var upperQuartile: Double
    /// How many timed iterations (warm-up excluded).
    var iterations: Int
    /// "ms", "steps/s", "frames/s", "GFLOP/s".
    var unit: String

    /// Summarises `values` (at least one).
    init(_ values: [Double], unit: String) {
        precondition(!values.isEmpty, "Summary: no values")
        let sorted = values.sorted()
        func quantile(_ q: Double) -> Double {
            // Linear interpolation between closest ranks, as numpy.percentile's default.
            let position = q * Double(sorted.count - 1)
            let lower = Int(position.rounded(.down)), upper = Int(position.rounded(.up))
            return sorted[lower] + (sorted[upper] - sorted[lower]) * (position - Double(lower))
        }
        median = quantile(0.5)
        minimum = sorted.first!
        maximum = sorted.last!
        lowerQuartile = quantile(0.25)
        upperQuartile = quantile(0.75)
        iterations = values.count
        self.unit = unit
    }

    /// The same measurements expressed as a rate: `amount` per second for each millisecond value.
    func rate(amount: Double, unit: String) -> Summary {
        var rate = self
        rate.median = amount / median * 1e3
        rate.minimum = amount / maximum * 1e3
        rate.maximum = amount / minimum * 1e3
        rate.lowerQuartile = amount / upperQuartile * 1e3
        rate.upperQuartile = amount / lowerQuartile * 1e3
        rate.unit = unit
        return rate
    }

    /// "123.4 [118.0–131.2]".
    var formatted: String {
        "\(Summary.format(median)) [\(Summary.format(minimum))–\(Summary.format(maximum))]"
    }

    static func format(_ value: Double) -> String {
        if value >= 1000 { return String(format: "%.0f", value) }
        if value >= 100 { return String(format: "%.1f", value) }
        if value >= 10 { return String(format: "%.2f", value) }
        return String(format: "%.3f", value)
    }
}

/// Wall-clock milliseconds of each of `iterations` calls of `body`, after `warmup` untimed calls
/// (which build oneDNN primitives and grow caches).
func timeMilliseconds(warmup: Int, iterations: Int, _ body: () -> Void) -> [Double] {
    for _ in 0..<warmup { body() }
    var times: [Double] = []
    times.reserveCapacity(iterations)
    for _ in 0..<iterations {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
    }
    return times
}

/// Peak resident set size of this process in bytes (VmHWM from /proc/self/status: the same figure as
/// getrusage's ru_maxrss, which Python's resource module reports for the PyTorch side).
func peakResidentBytes() -> Int {
    let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
        let kilobytes = Int(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first ?? "")
    else { return 0 }
    return kilobytes * 1024
}

/// Prints `line` at once (stdout is block-buffered when piped, and figures should appear as they are measured).
func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// The machine, for the report: CPU model, cores, memory, load average and date.
struct MachineDescription: Codable, Sendable {
    var cpuModel: String
    var cores: Int
    var memoryGiB: Double
    var loadAverage: [Double]
    var date: String
    /// The path of the Swift kernels' hot loops (`NFM_ISA`); absent in reports written before it existed.
    var vectorISA: String?

    static func current() -> MachineDescription {
        let cpuInfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = cpuInfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { $0.split(separator: ":", maxSplits: 1).last!.trimmingCharacters(in: .whitespaces) } ?? "unknown"
        var load = [Double](repeating: 0, count: 3)
        _ = getloadavg(&load, 3)
        let formatter = ISO8601DateFormatter()
        return MachineDescription(
            cpuModel: model, cores: ProcessInfo.processInfo.activeProcessorCount,
            memoryGiB: Double(ProcessInfo.processInfo.physicalMemory) / Double(1 << 30),
            loadAverage: load, date: formatter.string(from: Date()), vectorISA: Kernels.vectorISA.rawValue)
    }
}
