import Foundation
import XCTest

@testable import NFMLog

/// Collects what a progress bar prints.
final class OutputRecorder {
    var chunks: [String] = []
    func write(_ text: String) { chunks.append(text) }
    var text: String { chunks.joined() }
}

final class ProgressBarTests: XCTestCase {
    func testDurationFormatting() {
        XCTAssertEqual(ProgressBar.formatDuration(0), "0s")
        XCTAssertEqual(ProgressBar.formatDuration(5.4), "5s")
        XCTAssertEqual(ProgressBar.formatDuration(59.4), "59s")
        XCTAssertEqual(ProgressBar.formatDuration(65), "1m05s")
        XCTAssertEqual(ProgressBar.formatDuration(600), "10m00s")
        XCTAssertEqual(ProgressBar.formatDuration(3600), "1h00m00s")
        XCTAssertEqual(ProgressBar.formatDuration(3725), "1h02m05s")
        XCTAssertEqual(ProgressBar.formatDuration(.infinity), "?")
        XCTAssertEqual(ProgressBar.formatDuration(.nan), "?")
        XCTAssertEqual(ProgressBar.formatDuration(-1), "?")
    }

    func testRateAndMetricFormatting() {
        XCTAssertEqual(ProgressBar.formatRate(33.14), "33.1 it/s")
        XCTAssertEqual(ProgressBar.formatRate(250.4), "250 it/s")
        XCTAssertEqual(ProgressBar.formatRate(1), "1.0 it/s")
        XCTAssertEqual(ProgressBar.formatRate(0.5), "2.00 s/it")
        XCTAssertEqual(ProgressBar.formatRate(0), "? it/s")
        XCTAssertEqual(ProgressBar.formatMetric(0.123456), "0.1235")
        XCTAssertEqual(ProgressBar.formatMetric(12.5), "12.5")
        XCTAssertEqual(ProgressBar.formatMetric(123456), "1.235e+05")
        XCTAssertEqual(ProgressBar.formatMetric(.nan), "nan")
    }

    func testBarDrawsEighths() {
        XCTAssertEqual(ProgressBar.bar(fraction: 0, width: 4), "    ")
        XCTAssertEqual(ProgressBar.bar(fraction: 0.5, width: 4), "██  ")
        XCTAssertEqual(ProgressBar.bar(fraction: 1, width: 4), "████")
        XCTAssertEqual(ProgressBar.bar(fraction: 0.53, width: 10), "█████▎    ")
        XCTAssertEqual(ProgressBar.bar(fraction: 2, width: 3), "███")
    }

    func testPlainOutputPrintsEveryIntervalWithoutCarriageReturns() {
        let output = OutputRecorder()
        let clock = FakeClock(1000)
        let progress = ProgressBar(total: 100, label: "train", style: .plain, interval: 10, output: output.write, clock: clock.read)
        for step in 1...100 {
            clock.now = 1000 + Double(step)  // one step per second
            progress.update(step: step, metrics: ["loss": 1 / Double(step), "acc": 0.5])
        }
        progress.finish()
        progress.finish()  // a second finish prints nothing
        XCTAssertFalse(output.text.contains("\r"))
        let printed = output.text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        XCTAssertEqual(printed.count, 10 + 1 + 1)  // every 10 s, the summary, and the final newline's empty tail
        XCTAssertEqual(printed[0], "train step 10/100 (10%) | 1.0 it/s | elapsed 10s | eta 1m30s | loss=0.1 acc=0.5")
        XCTAssertEqual(printed[1], "train step 20/100 (20%) | 1.0 it/s | elapsed 20s | eta 1m20s | loss=0.05 acc=0.5")
        XCTAssertEqual(printed[9], "train step 100/100 (100%) | 1.0 it/s | elapsed 1m40s | eta 0s | loss=0.01 acc=0.5")
        XCTAssertEqual(printed[10], "train done: 100 steps in 1m40s (1.0 it/s) | loss=0.01 acc=0.5")
        XCTAssertEqual(printed[11], "")
    }

    func testUnknownTotalAndResumedStart() {
        let output = OutputRecorder()
        let clock = FakeClock(0)
        let progress = ProgressBar(total: nil, initialStep: 500, style: .plain, interval: 5, output: output.write, clock: clock.read)
        clock.now = 5
        progress.update(step: 510)
        XCTAssertEqual(output.text, "step 510 | 2.0 it/s | elapsed 5s\n")
        clock.now = 8
        progress.advance(by: 2, metrics: ["reward": 3])
        XCTAssertEqual(output.chunks.count, 1)  // within the interval: nothing printed
        progress.finish()
        XCTAssertEqual(output.chunks.last, "done: 12 steps in 8s (1.5 it/s) | reward=3\n")
    }

    func testInteractiveRedrawsOneLine() {
        let output = OutputRecorder()
        let clock = FakeClock(0)
        let progress = ProgressBar(total: 1000, label: "train", style: .interactive, output: output.write, clock: clock.read)
        XCTAssertTrue(progress.isInteractive)
        clock.now = 12
        progress.update(step: 420, metrics: ["loss": 0.123])
        XCTAssertEqual(progress.interactiveLine(now: 12, columns: 200), "train  42%|████████▍           | 420/1000 [12s<17s, 35.0 it/s] loss=0.123")
        XCTAssertTrue(output.text.hasPrefix("\rtrain  42%|"))
        XCTAssertTrue(output.text.hasSuffix("\u{1B}[K"))
        // Redraws are throttled to 10 a second.
        clock.now = 12.05
        progress.update(step: 421)
        XCTAssertEqual(output.chunks.count, 1)
        clock.now = 12.2
        progress.update(step: 422)
        XCTAssertEqual(output.chunks.count, 2)
        // The line is cut to the terminal width so that it never wraps.
        XCTAssertEqual(progress.interactiveLine(now: 12.2, columns: 30).count, 29)
        progress.finish()
        XCTAssertTrue(output.chunks.last!.hasSuffix("\n"))
        XCTAssertEqual(output.chunks.filter { $0.contains("\n") }.count, 1)
    }
}
