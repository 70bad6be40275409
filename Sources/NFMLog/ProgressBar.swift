// Progress for long loops. On a terminal it redraws one line in place (bar, step/total, rate, ETA,
// metrics); in a log file or CI it prints a plain line every few seconds instead, because carriage
// returns turn a log into one unreadable line.

import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Reports the progress of a loop: step, total, rate, estimated time left and a few metrics.
///
/// ```swift
/// let progress = ProgressBar(total: 1000, label: "train")
/// for step in 1...1000 {
///     let loss = trainStep()
///     progress.update(step: step, metrics: ["loss": loss])
/// }
/// progress.finish()
/// ```
///
/// The rate is the average since the bar was created, and the ETA is the remaining steps at
/// that rate. Not thread-safe: update it from the loop that owns it.
public final class ProgressBar {
    /// How progress is shown.
    public enum Style: Sendable {
        /// Interactive on a terminal (standard error is a TTY), plain otherwise.
        case automatic
        /// One line redrawn in place with a carriage return.
        case interactive
        /// A complete line every `interval` seconds and at the end; never a carriage return.
        case plain
    }

    /// The label shown first on each line (e.g. "train" or "epoch 3").
    public let label: String
    /// The number of steps, if known.
    public let total: Int?
    /// Whether lines are redrawn in place (resolved from ``Style/automatic`` at creation).
    public let isInteractive: Bool
    /// Seconds between plain lines.
    public let interval: Double

    private let output: (String) -> Void
    private let clock: () -> Double
    private let startTime: Double
    private let initialStep: Int
    private var step: Int
    private var metrics: [(name: String, value: Double)] = []
    private var lastPrint: Double
    private var finished = false

    /// Creates a progress reporter.
    ///
    /// - Parameters:
    ///   - total: the number of steps, or nil when unknown (no bar, percentage or ETA).
    ///   - initialStep: the step the loop starts from (a resumed run), which the rate does not count.
    ///   - interval: seconds between plain lines; interactive redraws happen at most every 0.1 s.
    ///   - output: where text goes; by default standard error, unbuffered.
    ///   - clock: monotonic seconds; inject a fake for tests.
    public init(
        total: Int?, label: String = "", initialStep: Int = 0, style: Style = .automatic, interval: Double = 10,
        output: @escaping (String) -> Void = ProgressBar.writeToStandardError,
        clock: @escaping () -> Double = ProgressBar.monotonicSeconds
    ) {
        self.total = total
        self.label = label
        self.interval = interval
        self.output = output
        self.clock = clock
        switch style {
        case .automatic: isInteractive = isatty(STDERR_FILENO) == 1
        case .interactive: isInteractive = true
        case .plain: isInteractive = false
        }
        startTime = clock()
        lastPrint = isInteractive ? -Double.infinity : startTime
        self.initialStep = initialStep
        step = initialStep
    }

    /// Records that `step` steps are done, with the latest `metrics` (shown in the given order),
    /// and prints if it is time to.
    public func update(step: Int, metrics: KeyValuePairs<String, Double> = [:]) {
        update(step: step, metricList: metrics.map { (name: $0.key, value: $0.value) })
    }

    /// Like ``update(step:metrics:)``, with metrics computed at run time (shown in the given order).
    public func update(step: Int, metricList metrics: [(name: String, value: Double)]) {
        self.step = step
        if !metrics.isEmpty { self.metrics = metrics }
        let now = clock()
        if isInteractive {
            // Redrawing a terminal line costs a system call; 10 redraws a second are plenty.
            if now - lastPrint >= 0.1 || step == total {
                output("\r" + interactiveLine(now: now, columns: Self.terminalColumns()) + "\u{1B}[K")
                lastPrint = now
            }
        } else if now - lastPrint >= interval {
            output(plainLine(now: now) + "\n")
            lastPrint = now
        }
    }

    /// Advances by `count` steps (see ``update(step:metrics:)``).
    public func advance(by count: Int = 1, metrics: KeyValuePairs<String, Double> = [:]) {
        update(step: step + count, metrics: metrics)
    }

    /// Prints the final state and ends the line. Later calls do nothing.
    public func finish(metrics: KeyValuePairs<String, Double> = [:]) {
        guard !finished else { return }
        finished = true
        if !metrics.isEmpty { self.metrics = metrics.map { (name: $0.key, value: $0.value) } }
        let now = clock()
        if isInteractive {
            output("\r" + interactiveLine(now: now, columns: Self.terminalColumns()) + "\u{1B}[K\n")
        } else {
            output(summaryLine(now: now) + "\n")
        }
    }

    // MARK: Line formats

    private func measure(now: Double) -> (elapsed: Double, stepsPerSecond: Double, remaining: Double?) {
        let elapsed = max(now - startTime, 0)
        let done = step - initialStep
        let stepsPerSecond = elapsed > 0 ? Double(done) / elapsed : 0
        var remaining: Double? = nil
        if let total, stepsPerSecond > 0 { remaining = Double(max(total - step, 0)) / stepsPerSecond }
        return (elapsed, stepsPerSecond, remaining)
    }

    private var metricsText: String {
        metrics.map { "\($0.name)=\(Self.formatMetric($0.value))" }.joined(separator: " ")
    }

    private var prefix: String { label.isEmpty ? "" : label + " " }

    /// `train  42%|████▏     | 420/1000 [00:12<00:16, 33.1 it/s] loss=0.1230`, cut to `columns`.
    func interactiveLine(now: Double, columns: Int) -> String {
        let (elapsed, stepsPerSecond, remaining) = measure(now: now)
        var text = prefix
        if let total, total > 0 {
            let fraction = min(max(Double(step) / Double(total), 0), 1)
            text += String(format: "%3ld%%", Int(fraction * 100)) + "|" + Self.bar(fraction: fraction, width: 20) + "| "
            text += "\(step)/\(total) "
        } else {
            text += "\(step) "
        }
        text += "[\(Self.formatDuration(elapsed))"
        if total != nil { text += "<" + (remaining.map(Self.formatDuration) ?? "?") }
        text += ", " + Self.formatRate(stepsPerSecond) + "]"
        if !metrics.isEmpty { text += " " + metricsText }
        // A line longer than the terminal wraps, and the carriage return then redraws only the
        // last part, leaving a trail of stale lines.
        if text.count > columns - 1 { text = String(text.prefix(max(columns - 1, 0))) }
        return text
    }

    /// `train step 420/1000 (42%) | 33.1 it/s | elapsed 12s | eta 16s | loss=0.1230`.
    func plainLine(now: Double) -> String {
        let (elapsed, stepsPerSecond, remaining) = measure(now: now)
        var parts: [String] = []
        if let total, total > 0 {
            let percent = Int(min(max(Double(step) / Double(total), 0), 1) * 100)
            parts.append("\(prefix)step \(step)/\(total) (\(percent)%)")
        } else {
            parts.append("\(prefix)step \(step)")
        }
        parts.append(Self.formatRate(stepsPerSecond))
        parts.append("elapsed " + Self.formatDuration(elapsed))
        if total != nil { parts.append("eta " + (remaining.map(Self.formatDuration) ?? "?")) }
        if !metrics.isEmpty { parts.append(metricsText) }
        return parts.joined(separator: " | ")
    }

    /// `train done: 1000 steps in 30s (33.3 it/s) | loss=0.1000`.
    func summaryLine(now: Double) -> String {
        let (elapsed, stepsPerSecond, _) = measure(now: now)
        var text = "\(prefix)done: \(step - initialStep) steps in \(Self.formatDuration(elapsed)) (\(Self.formatRate(stepsPerSecond)))"
        if !metrics.isEmpty { text += " | " + metricsText }
        return text
    }

    // MARK: Formatting helpers

    /// A duration as "45s", "1m05s" or "2h03m07s"; "?" when unknown or infinite.
    public static func formatDuration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0, seconds < 1e9 else { return "?" }
        let total = Int(seconds.rounded())
        let (hours, minutes, rest) = (total / 3600, total / 60 % 60, total % 60)
        if hours > 0 { return String(format: "%ldh%02ldm%02lds", hours, minutes, rest) }
        if minutes > 0 { return String(format: "%ldm%02lds", minutes, rest) }
        return "\(rest)s"
    }

    /// A rate as "33.1 it/s", or "4.50 s/it" when slower than one step a second.
    public static func formatRate(_ stepsPerSecond: Double) -> String {
        guard stepsPerSecond.isFinite, stepsPerSecond > 0 else { return "? it/s" }
        if stepsPerSecond >= 1 {
            return String(format: stepsPerSecond >= 100 ? "%.0f it/s" : "%.1f it/s", stepsPerSecond)
        }
        return String(format: "%.2f s/it", 1 / stepsPerSecond)
    }

    /// A metric value with 4 significant digits ("0.1235", "12.5", "1.235e+05").
    public static func formatMetric(_ value: Double) -> String {
        String(format: "%.4g", value)
    }

    /// A bar of `width` cells with eighth-cell resolution (Unicode block elements).
    static func bar(fraction: Double, width: Int) -> String {
        let eighths = Int((min(max(fraction, 0), 1) * Double(width * 8)).rounded(.down))
        let partials = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"]
        var text = String(repeating: "█", count: eighths / 8)
        if eighths / 8 < width {
            text += partials[eighths % 8]
            text += String(repeating: " ", count: width - eighths / 8 - (eighths % 8 > 0 ? 1 : 0))
        }
        return text
    }

    // MARK: System

    /// Writes `text` to standard error without buffering, so progress appears immediately.
    public static func writeToStandardError(_ text: String) {
        // A closed or broken standard error is not worth failing a training run over.
        _ = writeFully(STDERR_FILENO, text)
    }

    /// Seconds from an arbitrary start on a clock that never jumps (CLOCK_MONOTONIC).
    public static func monotonicSeconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }

    /// The terminal's width in columns (from the TTY, then $COLUMNS, then 80).
    static func terminalColumns() -> Int {
        var size = winsize()
        if ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0 && size.ws_col > 0 { return Int(size.ws_col) }
        if let columns = ProcessInfo.processInfo.environment["COLUMNS"].flatMap(Int.init), columns > 0 { return columns }
        return 80
    }
}

/// Writes a line to standard output at once (unbuffered), so that it interleaves in order with the
/// progress lines on standard error even when both go to one file.
public func consoleLog(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
