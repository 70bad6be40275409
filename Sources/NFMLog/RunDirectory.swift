// One folder per run: its config, metrics, plots, checkpoints and samples side by side, so that a
// result can always be traced to the settings that produced it. The run lists what it wrote and
// prints that list at the end, so the user knows where to look.

import Foundation
import NFMIO

/// What went wrong creating or reopening a run directory.
public enum RunDirectoryError: Error, CustomStringConvertible, LocalizedError, Sendable, Equatable {
    /// A fresh run would overwrite an existing, non-empty directory.
    case alreadyExists(path: String)
    /// A resumed run's directory does not exist.
    case notFound(path: String)
    /// The directory could not be created.
    case cannotCreate(path: String, reason: String)
    /// The config could not be encoded as JSON.
    case configNotEncodable(reason: String)

    /// A sentence naming the directory and what to do.
    public var description: String {
        switch self {
        case .alreadyExists(let path):
            return "run directory \(path) already exists and is not empty; choose another name or resume the run"
        case .notFound(let path):
            return "cannot resume: run directory \(path) does not exist"
        case .cannotCreate(let path, let reason):
            return "cannot create run directory \(path): \(reason)"
        case .configNotEncodable(let reason):
            return "cannot encode the run's config as JSON: \(reason)"
        }
    }

    /// Same as ``description``, for `localizedDescription`.
    public var errorDescription: String? { description }
}

/// The directory of one run, `<root>/<name>` (by default `runs/<name>`), with its config and a
/// record of every output written into it (or elsewhere).
///
/// ```swift
/// let run = try RunDirectory(name: RunDirectory.timestampedName(program: "nfm-classify", model: "nfm"))
/// try run.writeConfig(["lr": "1e-4", "batch": "64"])
/// let metrics = try run.metricsWriter()
/// ...
/// run.printSummary()   // Outputs:\n  config   runs/nfm-classify-nfm-20250101-120000/config.json ...
/// ```
public final class RunDirectory {
    /// The run's name (the last path component).
    public let name: String
    /// The directory path, `root/name`.
    public let path: String
    /// Whether this run was reopened with `resume: true`.
    public let isResumed: Bool
    /// Every output recorded so far, in recording order.
    public private(set) var outputs: [(path: String, description: String)] = []
    /// The directory's lock, held while this object (or another of this process for the same
    /// directory) lives, so that no second process works in the run at the same time.
    public let lock: RunLock

    /// Creates `root/name` (and `root`), or with `resume` reopens it.
    ///
    /// A fresh run refuses a directory that exists and holds anything but a lock file, so that a
    /// second run never mixes its files with the first's. A resumed run requires the directory to exist. Either
    /// way the directory is locked (``RunLock``): a second process gets ``RunLockError/inUse(directory:owner:)``
    /// naming this one's pid and host, and a lock left by a killed process is taken over with a
    /// note on standard error.
    public init(name: String, root: String = "runs", resume: Bool = false) throws {
        precondition(!name.isEmpty && !name.contains("/") && name != "." && name != "..", "RunDirectory: invalid run name \"\(name)\"")
        self.name = name
        isResumed = resume
        path = root.isEmpty ? name : (root.hasSuffix("/") ? root + name : root + "/" + name)
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        let exists = manager.fileExists(atPath: path, isDirectory: &isDirectory)
        if resume {
            guard exists && isDirectory.boolValue else { throw RunDirectoryError.notFound(path: path) }
        } else {
            // A lone lock file is what a process killed before it wrote anything leaves behind.
            let contents = (try? manager.contentsOfDirectory(atPath: path))?.filter { $0 != RunLock.fileName }
            if exists && (!isDirectory.boolValue || !(contents?.isEmpty ?? false)) {
                throw RunDirectoryError.alreadyExists(path: path)
            }
            do {
                try manager.createDirectory(atPath: path, withIntermediateDirectories: true)
            } catch {
                throw RunDirectoryError.cannotCreate(path: path, reason: error.localizedDescription)
            }
        }
        lock = try RunLock.acquire(directory: path)
        if let previous = lock.takenOverFrom {
            FileHandle.standardError.write(Data("note: took over the lock of \(path) left by \(previous); that process is gone\n".utf8))
        }
    }

    /// The run directory at `path` (`runs/x`, `x`, `/tmp/x/`), as ``init(name:root:resume:)`` with
    /// the path's last component as the name and the rest as the root.
    public convenience init(path: String, resume: Bool = false) throws {
        var trimmed = path
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        guard let slash = trimmed.lastIndex(of: "/") else {
            try self.init(name: trimmed, root: "", resume: resume)
            return
        }
        let root = slash == trimmed.startIndex ? "/" : String(trimmed[..<slash])
        try self.init(name: String(trimmed[trimmed.index(after: slash)...]), root: root, resume: resume)
    }

    /// A run name `program-model-YYYYMMDD-HHMMSS` (in `timeZone`, by default local time),
    /// unique per second and sortable.
    public static func timestampedName(program: String, model: String, date: Date = Date(), timeZone: TimeZone = .current) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = timeZone
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        return "\(program)-\(model)-\(formatter.string(from: date))"
    }

    /// The path of `file` inside the run directory.
    public func file(_ file: String) -> String { path + "/" + file }

    /// Writes `config` as `config.json` (sorted keys, pretty-printed) through ``AtomicFile`` and
    /// records it; returns the path.
    @discardableResult
    public func writeConfig(_ config: [String: String]) throws -> String {
        try writeConfigJSON(config)
    }

    /// Writes an `Encodable` config as `config.json` (sorted keys, pretty-printed) through
    /// ``AtomicFile`` and records it; returns the path.
    @discardableResult
    public func writeConfig<Config: Encodable>(_ config: Config) throws -> String {
        try writeConfigJSON(config)
    }

    private func writeConfigJSON<Config: Encodable>(_ config: Config) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data: Data
        do {
            data = try encoder.encode(config)
        } catch {
            throw RunDirectoryError.configNotEncodable(reason: "\(error)")
        }
        let target = file("config.json")
        try AtomicFile.write(data + Data("\n".utf8), to: target)
        record(output: target, description: "config")
        return target
    }

    /// Opens the run's ``MetricsWriter`` in this directory and records both metrics files. A
    /// resumed run (``isResumed``) reloads and appends to its metrics; pass the checkpoint's step
    /// as `discardingStepsAfter` to drop values logged after it (see
    /// ``MetricsWriter/init(directory:resume:discardingStepsAfter:clock:)``).
    public func metricsWriter(
        discardingStepsAfter: Int? = nil, clock: @escaping () -> Double = { Date().timeIntervalSince1970 }
    ) throws -> MetricsWriter {
        let writer = try MetricsWriter(directory: path, resume: isResumed, discardingStepsAfter: discardingStepsAfter, clock: clock)
        record(output: writer.csvPath, description: "metrics")
        record(output: writer.jsonlPath, description: "metrics")
        return writer
    }

    /// Records that `output` was written, with a short description ("metrics", "checkpoint",
    /// "samples"). Recording the same path again replaces its description.
    public func record(output: String, description: String) {
        if let index = outputs.firstIndex(where: { $0.path == output }) {
            outputs[index].description = description
        } else {
            outputs.append((output, description))
        }
    }

    /// The outputs as a list, descriptions aligned:
    /// ```
    /// Outputs:
    ///   config   runs/x/config.json
    ///   metrics  runs/x/metrics.csv
    /// ```
    public func summary() -> String {
        guard !outputs.isEmpty else { return "Outputs: none\n" }
        let width = outputs.map(\.description.count).max() ?? 0
        var text = "Outputs:\n"
        for output in outputs {
            text += "  " + output.description + String(repeating: " ", count: width - output.description.count) + "  " + output.path + "\n"
        }
        return text
    }

    /// Prints ``summary()`` to standard output.
    public func printSummary() {
        print(summary(), terminator: "")
    }
}
