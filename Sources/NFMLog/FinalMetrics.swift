// The numbers a finished run ends with, in one small file beside its metrics: what a comparison
// over seeds (NFMExperiments) summarises, and what a person greps for.

import Foundation
import NFMIO

/// `final_metrics.json`: a flat JSON object of metric name → number (`{"eval/accuracy": 0.61, ...}`),
/// written atomically when a run completes and only then, so that its presence marks a finished
/// run. Names follow the metrics files' namespaces (`eval/…`, `ood/…`, `parameters/…`).
public enum FinalMetrics {
    /// The file name inside a run directory.
    public static let fileName = "final_metrics.json"

    /// Writes `values` into `run` as ``fileName`` and records it as an output.
    @discardableResult
    public static func write(_ values: [String: Double], to run: RunDirectory) throws -> String {
        let path = run.file(fileName)
        try AtomicFile.write(encode(values), to: path)
        run.record(output: path, description: "final metrics")
        return path
    }

    /// The JSON text of `values`: keys sorted, non-finite numbers as the strings "nan", "inf", "-inf".
    public static func encode(_ values: [String: Double]) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try encoder.encode(values)
    }

    /// The final metrics of the run in `directory`, or nil if it has none (the run has not finished).
    ///
    /// - Throws: ``MetricsError/corruptLine(path:line:reason:)`` when the file exists but is not such an object.
    public static func read(directory: String) throws -> [String: Double]? {
        let path = directory + "/" + fileName
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        do {
            return try decoder.decode([String: Double].self, from: data)
        } catch {
            throw MetricsError.corruptLine(path: path, line: 1, reason: "not a JSON object of metric names and numbers (\(error))")
        }
    }
}
