import Foundation
import NFMIO
import XCTest

@testable import NFMLog

/// A clock that tests set by hand.
final class FakeClock {
    var now: Double
    init(_ start: Double) { now = start }
    func read() -> Double { now }
}

/// The rows of a CSV file without quoted fields, split at commas.
func csvRows(_ path: String) throws -> [[String]] {
    let text = String(decoding: try AtomicFile.readBytes(contentsOf: path), as: UTF8.self)
    XCTAssertTrue(text.hasSuffix("\n"))
    return text.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
}

/// The lines of a text file.
func lines(_ path: String) throws -> [String] {
    String(decoding: try AtomicFile.readBytes(contentsOf: path), as: UTF8.self).split(separator: "\n").map(String.init)
}

final class MetricsWriterTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = try makeTemporaryDirectory()
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    func testWritesLongCSVAndJSONLines() throws {
        let clock = FakeClock(1_700_000_000.25)
        let writer = try MetricsWriter(directory: directory, clock: clock.read)
        try writer.log(step: 10, values: ["train/loss": 0.5, "eval/accuracy": 0.75])
        clock.now += 2.5
        try writer.log(step: 20, values: ["train/loss": 0.25])
        try writer.log(step: 30, values: [:])  // nothing to log, nothing written

        // Flushed on each call: the files are complete while the writer is still open.
        XCTAssertEqual(
            try csvRows(writer.csvPath),
            [
                ["step", "name", "value", "wall_time_s"],
                ["10", "eval/accuracy", "0.75", "1700000000.250"],
                ["10", "train/loss", "0.5", "1700000000.250"],
                ["20", "train/loss", "0.25", "1700000002.750"],
            ])
        XCTAssertEqual(
            try lines(writer.jsonlPath),
            [
                "{\"step\": 10, \"eval/accuracy\": 0.75, \"train/loss\": 0.5, \"wall_time_s\": 1700000000.250}",
                "{\"step\": 20, \"train/loss\": 0.25, \"wall_time_s\": 1700000002.750}",
            ])
        // Each line is valid JSON.
        for line in try lines(writer.jsonlPath) {
            XCTAssertNotNil(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
        XCTAssertEqual(writer.names, ["eval/accuracy", "train/loss"])
        XCTAssertEqual(
            writer.points(of: "train/loss"),
            [MetricPoint(step: 10, value: 0.5, wallTime: 1_700_000_000.25), MetricPoint(step: 20, value: 0.25, wallTime: 1_700_000_002.75)])
        XCTAssertEqual(writer.lastStep, 20)
    }

    func testNonFiniteValuesAndOddNames() throws {
        let writer = try MetricsWriter(directory: directory, clock: { 0 })
        try writer.log(step: 1, values: ["loss": .nan, "grad,norm": .infinity, "say \"hi\"": -1e-5])
        let csv = String(decoding: try AtomicFile.readBytes(contentsOf: writer.csvPath), as: UTF8.self)
        XCTAssertEqual(
            csv,
            "step,name,value,wall_time_s\n1,\"grad,norm\",inf,0.000\n1,loss,nan,0.000\n1,\"say \"\"hi\"\"\",-1e-05,0.000\n")
        XCTAssertEqual(
            try lines(writer.jsonlPath),
            ["{\"step\": 1, \"grad,norm\": null, \"loss\": null, \"say \\\"hi\\\"\": -1e-05, \"wall_time_s\": 0.000}"])
        let reloaded = try MetricsWriter.load(directory: directory)
        XCTAssertTrue(reloaded["loss"]![0].value.isNaN)
        XCTAssertTrue(reloaded["grad,norm"]![0].value.isNaN)
        XCTAssertEqual(reloaded["say \"hi\""]![0].value, -1e-5)
    }

    func testLoadReadsTheCSVWhenTheJSONLinesFileIsGone() throws {
        // A run restored from committed results (scripts/results/restore.sh) keeps only metrics.csv.
        let clock = FakeClock(100)
        let writer = try MetricsWriter(directory: directory, clock: clock.read)
        for step in [1, 5, 9] {
            clock.now += 0.5
            try writer.log(step: step, values: ["train/loss": 1 / Double(step), "eval/return": Double(step) * 1.25])
        }
        let expected = writer.series
        try FileManager.default.removeItem(atPath: writer.jsonlPath)
        XCTAssertEqual(try MetricsWriter.load(directory: directory), expected)
        XCTAssertEqual(try MetricsWriter.load(directory: directory)["eval/return"]?.map(\.value), [1.25, 6.25, 11.25])
        try FileManager.default.removeItem(atPath: writer.csvPath)
        XCTAssertEqual(try MetricsWriter.load(directory: directory), [:], "a run that never logged has no series")
    }

    func testResumeReloadsDropsTornLineAndDiscardsLaterSteps() throws {
        let clock = FakeClock(100)
        do {
            let writer = try MetricsWriter(directory: directory, clock: clock.read)
            for step in 1...5 {
                clock.now += 1
                try writer.log(step: step, values: ["train/loss": 1 / Double(step), "train/step_time": 0.1])
            }
        }
        // A crash in the middle of a write leaves a partial last line.
        let jsonl = directory + "/metrics.jsonl"
        try AtomicFile.write(try AtomicFile.readBytes(contentsOf: jsonl) + Array("{\"step\": 6, \"train/lo".utf8), to: jsonl)

        let resumed = try MetricsWriter(directory: directory, resume: true, discardingStepsAfter: 3, clock: clock.read)
        XCTAssertEqual(resumed.points(of: "train/loss").map(\.step), [1, 2, 3])
        XCTAssertEqual(resumed.points(of: "train/loss").map(\.value), [1, 0.5, 1.0 / 3])
        XCTAssertEqual(resumed.points(of: "train/loss").map(\.wallTime), [101, 102, 103])
        XCTAssertEqual(resumed.lastStep, 3)
        clock.now = 200
        try resumed.log(step: 4, values: ["train/loss": 0.2])

        let rows = try csvRows(resumed.csvPath)
        XCTAssertEqual(rows.count, 1 + 3 * 2 + 1)
        XCTAssertEqual(rows.last, ["4", "train/loss", "0.2", "200.000"])
        XCTAssertEqual(rows.filter { $0[0] == "5" }, [])
        let jsonLines = try lines(jsonl)
        XCTAssertEqual(jsonLines.count, 4)
        XCTAssertEqual(jsonLines.last, "{\"step\": 4, \"train/loss\": 0.2, \"wall_time_s\": 200.000}")
        XCTAssertEqual(try MetricsWriter.load(directory: directory), resumed.series)

        // Resuming without discarding keeps everything; a fresh writer starts over.
        XCTAssertEqual(try MetricsWriter(directory: directory, resume: true).points(of: "train/loss").count, 4)
        let fresh = try MetricsWriter(directory: directory)
        XCTAssertTrue(fresh.series.isEmpty)
        XCTAssertEqual(try lines(fresh.csvPath), ["step,name,value,wall_time_s"])
    }

    func testCorruptMiddleLineIsAnError() throws {
        try AtomicFile.write("{\"step\": 1, \"a\": 1}\nnot json\n{\"step\": 3, \"a\": 3}\n", to: directory + "/metrics.jsonl")
        XCTAssertThrowsError(try MetricsWriter(directory: directory, resume: true)) { error in
            XCTAssertEqual(
                error as? MetricsError, .corruptLine(path: directory + "/metrics.jsonl", line: 2, reason: "not a JSON object"))
        }
        try AtomicFile.write("{\"step\": 1, \"a\": \"x\"}\n", to: directory + "/metrics.jsonl")
        XCTAssertThrowsError(try MetricsWriter.load(directory: directory)) { error in
            XCTAssertEqual("\(error)", "\(directory)/metrics.jsonl, line 1: value of \"a\" is not a number")
        }
    }

    func testWriteFailureNamesTheFile() throws {
        XCTAssertThrowsError(try MetricsWriter(directory: "/proc/nfm-cannot-create-here")) { error in
            XCTAssertTrue("\(error)".contains("/proc/nfm-cannot-create-here"), "\(error)")
        }
    }

    func testPlotGroupsAndPNGs() throws {
        let writer = try MetricsWriter(directory: directory, clock: { 0 })
        for step in stride(from: 0, through: 1000, by: 10) {
            var values = ["train/loss": 2 * exp(-Double(step) / 300) + 0.1, "lr": 1e-4]
            if step % 200 == 0 {
                values["eval/loss"] = 2.2 * exp(-Double(step) / 300) + 0.2
                values["eval/accuracy"] = 1 - exp(-Double(step) / 250)
            }
            try writer.log(step: step, values: values)
        }
        XCTAssertTrue(
            writer.plotGroups().elementsEqual(
                [("accuracy", ["eval/accuracy"]), ("loss", ["eval/loss", "train/loss"]), ("lr", ["lr"])],
                by: { $0.name == $1.0 && $0.metrics == $1.1 }))
        let paths = try writer.writePlots()
        XCTAssertEqual(paths, ["accuracy", "loss", "lr"].map { directory + "/plots/\($0).png" })
        let loss = try PNGImage.read(contentsOf: directory + "/plots/loss.png")
        try keepSample(loss, name: "loss.png")
        try keepSample(try PNGImage.read(contentsOf: directory + "/plots/lr.png"), name: "lr.png")
        XCTAssertEqual(loss.width, 800)
        XCTAssertEqual(loss.height, 500)
        XCTAssertEqual(loss.channels, 3)
        // Both series are drawn: eval/loss in the first palette colour, train/loss in the second.
        XCTAssertGreaterThan(loss.count(of: LinePlot.palette[0]), 200)
        XCTAssertGreaterThan(loss.count(of: LinePlot.palette[1]), 500)
        XCTAssertEqual(MetricsWriter.fileName(for: "episodic return/x"), "episodic_return_x")
        XCTAssertEqual(MetricsWriter.fileName(for: ".hidden"), "_.hidden")
    }
}

/// Resuming from damaged, truncated or missing metrics files (issue 14).
extension MetricsWriterTests {
    /// Logs steps 1...6 with values whose decimal forms need all 17 digits.
    private func logSixSteps() throws -> [String: [MetricPoint]] {
        let clock = FakeClock(100)
        let writer = try MetricsWriter(directory: directory, clock: clock.read)
        for step in 1...6 {
            clock.now += 1
            try writer.log(step: step, values: ["train/loss": 1 / Double(step * 7), "train/name, \"quoted\"": Double(step) * 0.1])
            if step % 3 == 0 { try writer.log(step: step, values: ["eval/accuracy": 0.3 + 1e-17 * Double(step)]) }
        }
        return writer.series
    }

    private func expectedSeries(_ series: [String: [MetricPoint]], upTo step: Int) -> [String: [MetricPoint]] {
        series.mapValues { $0.filter { $0.step <= step } }.filter { !$0.value.isEmpty }
    }

    func testReloadIsExactFromEitherFile() throws {
        let series = try logSixSteps()
        XCTAssertEqual(try MetricsWriter(directory: directory, resume: true).series, series)
        try FileManager.default.removeItem(atPath: directory + "/metrics.jsonl")
        XCTAssertEqual(try MetricsWriter.checkResume(directory: directory, discardingStepsAfter: 4), "metrics.jsonl was missing; rebuilt from \(directory)/metrics.csv")
        XCTAssertEqual(try MetricsWriter(directory: directory, resume: true, discardingStepsAfter: 4).series, expectedSeries(series, upTo: 4))
        XCTAssertEqual(try MetricsWriter.load(directory: directory), expectedSeries(series, upTo: 4), "the JSONL file is written back")
    }

    func testDamagedJSONLIsRebuiltFromCSVAndTruncatedFileFromTheOther() throws {
        let series = try logSixSteps()
        let jsonl = directory + "/metrics.jsonl", csv = directory + "/metrics.csv"
        var damaged = try lines(jsonl)
        damaged[2] = "{\"step\": 3, garbage"
        try AtomicFile.write(damaged.joined(separator: "\n") + "\n", to: jsonl)
        let note = try XCTUnwrap(try MetricsWriter.checkResume(directory: directory, discardingStepsAfter: 5))
        XCTAssertTrue(note.contains("line 3") && note.contains("rebuilt from \(csv)"), note)
        XCTAssertEqual(try MetricsWriter(directory: directory, resume: true, discardingStepsAfter: 5).series, expectedSeries(series, upTo: 5))

        // A CSV cut in the middle of a row: the JSONL file holds more and wins.
        let bytes = try AtomicFile.readBytes(contentsOf: csv)
        try AtomicFile.write(Array(bytes.prefix(bytes.count / 3)), to: csv)
        XCTAssertNil(try MetricsWriter.checkResume(directory: directory, discardingStepsAfter: 5))
        XCTAssertEqual(try MetricsWriter(directory: directory, resume: true, discardingStepsAfter: 5).series, expectedSeries(series, upTo: 5))
        // A JSONL file cut at a line boundary: the CSV holds more and wins.
        try AtomicFile.write(try lines(jsonl).prefix(2).joined(separator: "\n") + "\n", to: jsonl)
        XCTAssertNotNil(try MetricsWriter.checkResume(directory: directory, discardingStepsAfter: 5))
        XCTAssertEqual(try MetricsWriter(directory: directory, resume: true, discardingStepsAfter: 5).series, expectedSeries(series, upTo: 5))
    }

    func testBothFilesDamagedIsAnErrorAndNothingIsWritten() throws {
        _ = try logSixSteps()
        try AtomicFile.write("{\"step\": 1}\nnot json\n{\"step\": 2}\n", to: directory + "/metrics.jsonl")
        try AtomicFile.write("step,name,value\n", to: directory + "/metrics.csv")
        XCTAssertThrowsError(try MetricsWriter(directory: directory, resume: true)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("metrics.jsonl, line 2") && message.contains("metrics.csv, line 1"), message)
        }
        XCTAssertEqual(try lines(directory + "/metrics.csv"), ["step,name,value"], "a failed resume leaves the files as they were")
    }
}
