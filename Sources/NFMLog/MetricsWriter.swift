// Metrics of a run, written as they happen to two files in the run directory:
//   metrics.csv    long format, one row per value: step,name,value,wall_time_s (for pandas, R, spreadsheets)
//   metrics.jsonl  one JSON object per log call: {"step": 10, "train/loss": 0.5, "wall_time_s": ...}
// Each call appends with one write(2) per file, so a crash loses nothing that was logged. Metric
// names are namespaced as in cleanrl ("train/loss", "eval/accuracy", "rollout/episodic_return").

import Foundation
import NFMIO

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// One logged value of a metric.
public struct MetricPoint: Sendable, Equatable {
    /// The training step the value belongs to.
    public var step: Int
    /// The value (NaN when a non-finite value was logged and reloaded from JSON).
    public var value: Double
    /// Seconds since the Unix epoch when it was logged.
    public var wallTime: Double

    /// A point of a metric series.
    public init(step: Int, value: Double, wallTime: Double) {
        self.step = step
        self.value = value
        self.wallTime = wallTime
    }
}

/// What went wrong writing or reloading metrics, with the file and the reason.
public enum MetricsError: Error, CustomStringConvertible, LocalizedError, Sendable, Equatable {
    /// A metrics file could not be opened or created.
    case cannotOpen(path: String, reason: String)
    /// Appending to a metrics file failed (e.g. the disk is full).
    case writeFailed(path: String, reason: String)
    /// A line of metrics.jsonl or metrics.csv (1-based `line`) is not a valid record.
    case corruptLine(path: String, line: Int, reason: String)
    /// Resuming found both metrics files damaged, so neither can rebuild the other.
    case bothDamaged(jsonl: String, csv: String, directory: String)

    /// A sentence naming the file and the reason.
    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason): return "cannot open metrics file \(path): \(reason)"
        case .writeFailed(let path, let reason): return "cannot append to metrics file \(path): \(reason)"
        case .corruptLine(let path, let line, let reason): return "\(path), line \(line): \(reason)"
        case .bothDamaged(let jsonl, let csv, let directory):
            return "both metrics files of \(directory) are damaged, so neither can rebuild the other: \(jsonl); \(csv). "
                + "Repair one of them, or move both aside to resume without the metrics logged so far"
        }
    }

    /// Same as ``description``, for `localizedDescription`.
    public var errorDescription: String? { description }
}

/// Writes metrics to `metrics.csv` and `metrics.jsonl` in a directory, and keeps every series in
/// memory for plotting.
///
/// The names `step` and `wall_time_s` are reserved (they are columns and JSON keys). Values are
/// written with full precision; in JSON a non-finite value is written as `null` (JSON has no NaN)
/// and reloads as NaN, while the CSV keeps `nan`, `inf` and `-inf`. Not thread-safe.
public final class MetricsWriter {
    /// The directory holding the two files.
    public let directory: String
    /// Every metric's points in logging order, by name.
    public private(set) var series: [String: [MetricPoint]] = [:]
    /// The step of the latest log call (or of the last reloaded record), nil if none.
    public private(set) var lastStep: Int?

    private let clock: () -> Double
    private var csvFile: AppendFile
    private var jsonlFile: AppendFile

    /// The CSV file's path.
    public var csvPath: String { directory + "/metrics.csv" }
    /// The JSONL file's path.
    public var jsonlPath: String { directory + "/metrics.jsonl" }
    /// The metric names, sorted.
    public var names: [String] { series.keys.sorted() }

    /// The CSV header line.
    public static let csvHeader = "step,name,value,wall_time_s\n"

    /// Opens the metrics files in `directory`, creating the directory if needed.
    ///
    /// - Parameters:
    ///   - resume: false starts both files afresh (replacing any there). True reloads the series
    ///     from the existing files and appends after them, for a resumed run: from metrics.jsonl,
    ///     or from metrics.csv when that holds more of the run (the JSONL file was damaged or
    ///     truncated); see ``checkResume(directory:discardingStepsAfter:)``.
    ///   - discardingStepsAfter: with `resume`, drops records with a larger step, e.g. those
    ///     logged after the checkpoint the run resumes from, so that they are not logged twice.
    ///   - clock: seconds since the Unix epoch, for `wall_time_s`; inject a fake for tests.
    public init(
        directory: String, resume: Bool = false, discardingStepsAfter: Int? = nil,
        clock: @escaping () -> Double = { Date().timeIntervalSince1970 }
    ) throws {
        self.directory = directory
        self.clock = clock
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw MetricsError.cannotOpen(path: directory, reason: "\(error.localizedDescription)")
        }
        let csvPath = directory + "/metrics.csv"
        let jsonlPath = directory + "/metrics.jsonl"

        let records = resume ? try Self.loadForResume(directory: directory, discardingStepsAfter: discardingStepsAfter).records : []
        // Start from a clean state: on resume both files are rewritten from the reloaded records
        // (atomically), which also drops a line torn by a crash and any discarded steps, and
        // regenerates the CSV so that the two files agree.
        var csv = Self.csvHeader
        var jsonl = ""
        for record in records {
            csv += Self.csvRows(record)
            jsonl += Self.jsonLine(record)
        }
        try AtomicFile.write(csv, to: csvPath)
        try AtomicFile.write(jsonl, to: jsonlPath)
        csvFile = try AppendFile(path: csvPath)
        jsonlFile = try AppendFile(path: jsonlPath)
        for record in records { remember(record) }
    }

    /// Logs `values` (metric name → value) for `step`: appends to both files and to ``series``.
    /// An empty dictionary does nothing.
    public func log(step: Int, values: [String: Double]) throws {
        guard !values.isEmpty else { return }
        for name in values.keys {
            precondition(!name.isEmpty && name != "step" && name != "wall_time_s", "MetricsWriter: metric name \"\(name)\" is reserved or empty")
        }
        let record = Record(step: step, wallTime: clock(), values: values.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
        try csvFile.append(Self.csvRows(record))
        try jsonlFile.append(Self.jsonLine(record))
        remember(record)
    }

    /// The points of the metric called `name` (empty if never logged).
    public func points(of name: String) -> [MetricPoint] { series[name] ?? [] }

    private func remember(_ record: Record) {
        for (name, value) in record.values {
            series[name, default: []].append(MetricPoint(step: record.step, value: value, wallTime: record.wallTime))
        }
        lastStep = record.step
    }

    // MARK: Plots

    /// Metrics grouped for plotting: metrics whose names end in the same last component share a
    /// chart (`train/loss` and `eval/loss` → "loss"), so that training and evaluation curves of one
    /// quantity can be compared. Groups are sorted by name, and so are their members.
    public func plotGroups() -> [(name: String, metrics: [String])] {
        var groups: [String: [String]] = [:]
        for name in names {
            let leaf = name.split(separator: "/").last.map(String.init) ?? name
            groups[leaf, default: []].append(name)
        }
        return groups.keys.sorted().map { (name: $0, metrics: groups[$0]!) }
    }

    /// Writes one PNG line chart per group of ``plotGroups()`` into `directory` (by default the
    /// `plots` folder beside the metrics files), named after the group (`loss.png`), and returns
    /// the paths written.
    @discardableResult
    public func writePlots(to directory: String? = nil) throws -> [String] {
        let target = directory ?? self.directory + "/plots"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        var written: [String] = []
        for group in plotGroups() {
            let lines = group.metrics.map { name in
                PlotSeries(name: name, points: points(of: name).map { (x: Double($0.step), y: $0.value) })
            }
            let plot = LinePlot(title: group.name, xLabel: "step", yLabel: group.name, series: lines)
            let path = target + "/" + Self.fileName(for: group.name) + ".png"
            try plot.write(to: path)
            written.append(path)
        }
        return written
    }

    /// A file-system-safe name: letters, digits, '.', '-' and '_' kept, anything else '_'.
    static func fileName(for name: String) -> String {
        let safe = String(name.map { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) ? $0 : "_" })
        return safe.isEmpty || safe.hasPrefix(".") ? "_" + safe : safe
    }

    // MARK: Reloading

    /// Reloads every series of the run in `directory`, without opening its files for writing: from
    /// `metrics.jsonl`, or from `metrics.csv` where that is the only one or holds more of the run (a
    /// run restored from committed results keeps only the CSV; see scripts/results/restore.sh).
    /// A run with neither file has no series.
    public static func load(directory: String) throws -> [String: [MetricPoint]] {
        var series: [String: [MetricPoint]] = [:]
        for record in try loadForResume(directory: directory, discardingStepsAfter: nil).records {
            for (name, value) in record.values {
                series[name, default: []].append(MetricPoint(step: record.step, value: value, wallTime: record.wallTime))
            }
        }
        return series
    }

    /// Reads the metrics files of `directory` as a resume would, without writing anything, so
    /// that a resume can check them before it changes the run.
    ///
    /// Both files hold the same records. A file that is missing, damaged (a line that does not
    /// parse) or truncated is rebuilt from the other one, which holds more of the run up to
    /// `discardingStepsAfter`; the returned note says so (nil when nothing needed repair). A run
    /// with neither file has no metrics yet.
    ///
    /// - Throws: ``MetricsError`` naming each damaged file when neither can be read.
    public static func checkResume(directory: String, discardingStepsAfter: Int?) throws -> String? {
        try loadForResume(directory: directory, discardingStepsAfter: discardingStepsAfter).note
    }

    static func loadForResume(directory: String, discardingStepsAfter limit: Int?) throws -> (records: [Record], note: String?) {
        let csvPath = directory + "/metrics.csv", jsonlPath = directory + "/metrics.jsonl"
        let manager = FileManager.default
        func load(_ path: String, _ parse: (String) throws -> [Record]) -> Result<[Record], Error>? {
            guard manager.fileExists(atPath: path) else { return nil }
            return Result { try parse(path).filter { limit == nil || $0.step <= limit! } }
        }
        let jsonl = load(jsonlPath, loadRecords), csv = load(csvPath, loadCSVRecords)
        func valueCount(_ records: [Record]) -> Int { records.reduce(0) { $0 + $1.values.count } }
        switch (jsonl, csv) {
        case (nil, nil):
            return ([], nil)
        case (.success(let records), nil):
            return (records, records.isEmpty ? nil : "metrics.csv was missing; rebuilt from \(jsonlPath)")
        case (nil, .success(let records)):
            return (records, records.isEmpty ? nil : "metrics.jsonl was missing; rebuilt from \(csvPath)")
        case (.success(let fromJSONL), .success(let fromCSV)):
            // A crash between the two appends of one log call leaves the CSV one record ahead; a
            // truncated file is behind. Either way the file holding more of the run is right.
            if valueCount(fromCSV) > valueCount(fromJSONL) {
                return (fromCSV, "\(jsonlPath) held fewer rows than \(csvPath) (truncated?); rebuilt from the CSV")
            }
            return (fromJSONL, nil)
        case (.success(let records), .failure(let error)):
            return (records, "\(error); rebuilt from \(jsonlPath)")
        case (.failure(let error), .success(let records)):
            return (records, "\(error); rebuilt from \(csvPath)")
        case (.failure(let error), nil), (nil, .failure(let error)):
            throw error
        case (.failure(let jsonlError), .failure(let csvError)):
            throw MetricsError.bothDamaged(jsonl: "\(jsonlError)", csv: "\(csvError)", directory: directory)
        }
    }

    /// Parses metrics.csv (`step,name,value,wall_time_s`, names quoted as RFC 4180) into records:
    /// consecutive rows of one step and wall time are one log call. A last line without its
    /// newline was torn by a crash and is dropped.
    static func loadCSVRecords(path: String) throws -> [Record] {
        let bytes = try readFile(path)
        let scalars = Array(String(decoding: bytes, as: UTF8.self).unicodeScalars)
        var rows: [[String]] = []
        var row: [String] = [], field = "", quoted = false, atFieldStart = true
        var index = 0
        while index < scalars.count {
            let scalar = scalars[index]
            index += 1
            if quoted {
                if scalar != "\"" {
                    field.unicodeScalars.append(scalar)
                } else if index < scalars.count && scalars[index] == "\"" {
                    field.unicodeScalars.append("\"")  // "" inside quotes is one quote
                    index += 1
                } else {
                    quoted = false
                }
                continue
            }
            switch scalar {
            case "\"" where atFieldStart:
                quoted = true
                atFieldStart = false
            case ",":
                row.append(field)
                (field, atFieldStart) = ("", true)
            case "\n":
                row.append(field)
                rows.append(row)
                (row, field, atFieldStart) = ([], "", true)
            default:
                field.unicodeScalars.append(scalar)
                atFieldStart = false
            }
        }
        guard let header = rows.first, header == ["step", "name", "value", "wall_time_s"] else {
            throw MetricsError.corruptLine(path: path, line: 1, reason: "the header is not \"step,name,value,wall_time_s\"")
        }
        var records: [Record] = []
        var lastWallText = ""
        for (index, fields) in rows.enumerated().dropFirst() {
            func corrupt(_ reason: String) -> MetricsError { .corruptLine(path: path, line: index + 1, reason: reason) }
            guard fields.count == 4 else { throw corrupt("expected 4 fields, found \(fields.count)") }
            guard let step = Int(fields[0]) else { throw corrupt("the step \"\(fields[0])\" is not an integer") }
            guard let value = Double(fields[2]) else { throw corrupt("the value \"\(fields[2])\" is not a number") }
            guard let wallTime = Double(fields[3]) else { throw corrupt("the wall time \"\(fields[3])\" is not a number") }
            if let last = records.last, last.step == step, lastWallText == fields[3], !last.values.contains(where: { $0.0 == fields[1] }) {
                records[records.count - 1].values.append((fields[1], value))
            } else {
                records.append(Record(step: step, wallTime: wallTime, values: [(fields[1], value)]))
            }
            lastWallText = fields[3]
        }
        return records
    }

    /// One log call.
    struct Record {
        var step: Int
        var wallTime: Double
        var values: [(String, Double)]
    }

    /// The bytes of a metrics file, or ``MetricsError/cannotOpen(path:reason:)``.
    static func readFile(_ path: String) throws -> [UInt8] {
        do {
            return try AtomicFile.readBytes(contentsOf: path)
        } catch {
            throw MetricsError.cannotOpen(path: path, reason: "\(error)")
        }
    }

    /// Parses metrics.jsonl. A last line without its newline was torn by a crash mid-write and is
    /// dropped; any other invalid line is an error, since silently losing data is worse.
    static func loadRecords(path: String) throws -> [Record] {
        let bytes = try readFile(path)
        var lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true {
            lines.removeLast()
        } else if !lines.isEmpty {
            lines.removeLast()  // torn final line
        }
        var records: [Record] = []
        let decoder = JSONDecoder()
        for (index, line) in lines.enumerated() where !line.isEmpty {
            func corrupt(_ reason: String) -> MetricsError { .corruptLine(path: path, line: index + 1, reason: reason) }
            // JSONDecoder parses numbers exactly (JSONSerialization on Linux can be off in the last
            // bit), so that a resumed run's reloaded metrics equal a straight run's bit for bit.
            let object: [String: Double?]
            do {
                object = try decoder.decode([String: Double?].self, from: Data(line))
            } catch {
                // Say what is wrong: not an object at all, or which value is not a number.
                guard let loose = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else { throw corrupt("not a JSON object") }
                let key = loose.keys.sorted().first { !(loose[$0] is NSNumber || loose[$0] is NSNull) } ?? "?"
                throw corrupt("value of \"\(key)\" is not a number")
            }
            guard let stepValue = object["step"] ?? nil, let step = Int(exactly: stepValue) else { throw corrupt("no integer \"step\"") }
            let wallTime = (object["wall_time_s"] ?? nil) ?? .nan
            var values: [(String, Double)] = []
            for (key, value) in object where key != "step" && key != "wall_time_s" {
                values.append((key, value ?? .nan))
            }
            records.append(Record(step: step, wallTime: wallTime, values: values.sorted { $0.0 < $1.0 }))
        }
        return records
    }

    // MARK: Formats

    /// The CSV rows of a record, one per value.
    static func csvRows(_ record: Record) -> String {
        let wallTime = String(format: "%.3f", record.wallTime)
        return record.values.map { name, value in "\(record.step),\(csvField(name)),\(value),\(wallTime)\n" }.joined()
    }

    /// A record as one line of JSON: step first, then the metrics by name, then wall_time_s.
    static func jsonLine(_ record: Record) -> String {
        var parts = ["\"step\": \(record.step)"]
        for (name, value) in record.values { parts.append("\(jsonString(name)): \(value.isFinite ? "\(value)" : "null")") }
        parts.append("\"wall_time_s\": " + String(format: "%.3f", record.wallTime))
        return "{" + parts.joined(separator: ", ") + "}\n"
    }

    /// A CSV field, quoted (RFC 4180) only when it contains a comma, quote or line break.
    static func csvField(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0.isNewline }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// `text` as a JSON string literal.
    static func jsonString(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20: result += String(format: "\\u%04x", scalar.value)
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}

/// A file opened for appending; each ``append(_:)`` is one write(2), so nothing waits in a buffer.
final class AppendFile {
    let path: String
    private let descriptor: Int32

    init(path: String) throws {
        self.path = path
        descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        if descriptor < 0 { throw MetricsError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
    }

    deinit { close(descriptor) }

    func append(_ text: String) throws {
        if let code = writeFully(descriptor, text) {
            throw MetricsError.writeFailed(path: path, reason: String(cString: strerror(code)))
        }
    }
}

/// Writes all of `text` to `descriptor`, retrying short writes and interruptions. Returns nil on
/// success or the `errno` of the failure.
func writeFully(_ descriptor: Int32, _ text: String) -> Int32? {
    let bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
        if written < 0 {
            if errno == EINTR { continue }
            return errno
        }
        offset += written
    }
    return nil
}
