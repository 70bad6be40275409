import Foundation
import NFMData
import NFMIO
import NFMLog
import NFMNN
import NFMTraining

/// What went wrong with a run's settings or files, said so that the user can act on it.
public enum ClassifyError: Error, CustomStringConvertible, LocalizedError {
    /// config.json is missing or unreadable.
    case configuration(path: String, reason: String)
    /// A resumed run was given flags that contradict its saved settings.
    case resumeMismatch(path: String, keys: [String])

    /// A sentence naming the file or flags.
    public var description: String {
        switch self {
        case .configuration(let path, let reason):
            return "cannot read the run configuration \(path): \(reason)"
        case .resumeMismatch(let path, let keys):
            return "the run \(path) was made with other settings for \(keys.map { "--" + $0.replacingOccurrences(of: "_", with: "-") }.joined(separator: ", ")); "
                + "a resumed run keeps its settings (only --steps, --eval-every and --checkpoint-every may change)"
        }
    }

    /// Same as ``description``.
    public var errorDescription: String? { description }
}

/// One invocation of `nfm-classify train`: the run directory, one or two models trained in it, the
/// comparison and the list of outputs.
///
/// With `--model both` the run directory holds `config.json` and `summary.csv` and one sub-run per
/// model (`baseline/`, `nfm/`), each with its own config, metrics, plots, checkpoints, accuracy table
/// and (NFM) attention map; with one model, the run directory is that model's.
public enum ClassifySession {
    /// The file name of the settings in every run directory.
    public static let configurationFile = "config.json"

    /// Reads a run's config.json.
    public static func readConfiguration(_ path: String) throws -> ClassifyConfiguration {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ClassifyError.configuration(path: path, reason: "no such file, or unreadable")
        }
        do {
            return try JSONDecoder().decode(ClassifyConfiguration.self, from: data)
        } catch {
            throw ClassifyError.configuration(path: path, reason: "\(error)")
        }
    }

    /// The JSON object of a configuration, for comparing settings key by key.
    static func jsonObject(_ configuration: ClassifyConfiguration) -> [String: String] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let data = (try? encoder.encode(configuration)) ?? Data()
        let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        return object.mapValues { "\($0)" }
    }

    /// The keys whose values differ between two configurations, ignoring those a resume may change.
    public static func resumeConflicts(saved: ClassifyConfiguration, requested: ClassifyConfiguration) -> [String] {
        let (old, new) = (jsonObject(saved), jsonObject(requested))
        return Set(old.keys).union(new.keys).subtracting(ClassifyConfiguration.keysChangeableOnResume)
            .filter { old[$0] != new[$0] }.sorted()
    }

    /// Trains every model of `configuration` in the run directory `path` (created, or with `resume`
    /// reopened) and prints the tables, the side-by-side comparison and the outputs. Returns the
    /// results (a model interrupted by Ctrl-C ends the session early, with its result last).
    ///
    /// With `dataParallel` this is rank 0 of a data-parallel run, and the other ranks run
    /// ``trainReplica(configuration:dataParallel:)``.
    public static func train(
        configuration: ClassifyConfiguration, runPath: String, resume: Bool, dataParallel: DataParallel? = nil,
        log: (String) -> Void = consoleLog
    ) throws -> [ModelResult] {
        // Data first: a missing or corrupt file stops the run before anything is created.
        let data = try ClassifyData.load(configuration)
        let configuration = data.adjusting(configuration)
        let parent = try RunDirectory(path: runPath, resume: resume)
        log("run directory: \(parent.path)")
        log(data.summary)
        var prior: AccuracyTable?
        if case .sortOfCLEVR(let train?, let test, let ood) = data {
            prior = QuestionPrior.table(train: train, test: test, outOfDistribution: ood)
            let metrics = prior!.metrics()
            log(
                "answering from the question alone (the training set's most common answer to each question): "
                    + ["eval/accuracy", "ood/accuracy"].compactMap { name in metrics[name].map { String(format: "\(name) %.1f%%", $0 * 100) } }
                    .joined(separator: ", "))
        }
        // A resumed run's files are written only after its checkpoints and metrics were checked
        // (in ClassifyTraining.train); the parent of a two-model run after its first model's.
        if !resume { try parent.writeConfig(configuration) }

        var results: [ModelResult] = []
        for kind in configuration.model.kinds {
            let run: RunDirectory
            let exists = FileManager.default.fileExists(atPath: parent.file(kind.rawValue))
            if configuration.model == .both {
                run = try RunDirectory(name: kind.rawValue, root: parent.path, resume: resume && exists)
            } else {
                run = parent
            }
            log("")
            log("== \(kind.rawValue) ==")
            let result = try ClassifyTraining.train(
                kind, configuration: configuration.single(kind), data: data, run: run, resume: resume && (run === parent || exists),
                dataParallel: dataParallel, log: log)
            if resume && configuration.model == .both && results.isEmpty { try parent.writeConfig(configuration) }
            results.append(result)
            if run !== parent {
                for output in run.outputs { parent.record(output: output.path, description: kind.rawValue + " " + output.description) }
            }
            guard case .completed = result.outcome, let evaluation = result.evaluation else { return results }
            log("")
            log("\(kind.rawValue): accuracy on the test set\(configuration.dataset == .sortOfCLEVR ? "s, by question type" : ", by class")")
            log(evaluation.table.formatted())
            if let step = result.stepMilliseconds {
                log(String(format: "\(kind.rawValue): %.0f ms per training step (median), %@ in all", step, ProgressBar.formatDuration(result.seconds)))
            }
        }
        if results.count > 1 {
            let comparison = Comparison(results: results, prior: prior)
            log("")
            log("== baseline vs NFM ==")
            log(comparison.formatted())
            let summary = parent.file("summary.csv")
            try AtomicFile.write(comparison.csv(), to: summary)
            parent.record(output: summary, description: "comparison")
        }
        log("")
        log(parent.summary())
        return results
    }
}

extension ClassifySession {
    /// A rank other than 0 of a data-parallel run: trains every model of `configuration` step for
    /// step with rank 0 and writes nothing. Returns the outcome of each model trained (an
    /// interrupted one last).
    public static func trainReplica(configuration: ClassifyConfiguration, dataParallel: DataParallel) throws -> [TrainingOutcome] {
        let data = try ClassifyData.load(configuration)
        let configuration = data.adjusting(configuration)
        var outcomes: [TrainingOutcome] = []
        for kind in configuration.model.kinds {
            outcomes.append(try ClassifyTraining.trainReplica(kind, configuration: configuration.single(kind), data: data, dataParallel: dataParallel))
            guard case .completed = outcomes.last! else { break }
        }
        return outcomes
    }
}

/// The side-by-side summary of the models of one run, beside the accuracy of answering from the
/// question alone (the level to beat).
public struct Comparison {
    /// The results compared, in order.
    public let results: [ModelResult]
    /// The question-only predictor's table (Sort-of-CLEVR), shown as the first column.
    public let prior: AccuracyTable?

    /// A comparison of `results`, with the question-only accuracies of `prior` if given.
    public init(results: [ModelResult], prior: AccuracyTable? = nil) {
        self.results = results
        self.prior = prior
    }

    /// The column titles.
    public var columns: [String] { (prior == nil ? [] : ["question only"]) + results.map(\.kind.rawValue) }

    /// The accuracy metric names, eval/… before ood/…, overall accuracy first.
    var accuracyNames: [String] {
        var names = Set<String>()
        for result in results { names.formUnion(result.evaluation?.table.metrics().keys.map { $0 } ?? []) }
        return names.sorted { first, second in
            func key(_ name: String) -> (Int, Int, String) {
                (name.hasPrefix("eval/") ? 0 : 1, name.hasSuffix("/accuracy") ? 0 : 1, name)
            }
            return key(first) < key(second)
        }
    }

    /// The compared rows: a name and one value per column.
    public var rows: [(name: String, values: [String])] {
        let priorMetrics = prior?.metrics()
        func percent(_ value: Double?) -> String { value.map { String(format: "%.1f%%", $0 * 100) } ?? "-" }
        let blank = prior == nil ? [] : ["-"]
        var rows = accuracyNames.map { name in
            (name, (prior == nil ? [] : [percent(priorMetrics?[name])]) + results.map { percent($0.evaluation?.table.metrics()[name]) })
        }
        rows.append(("eval/loss", blank + results.map { $0.evaluation.map { String(format: "%.4f", $0.loss) } ?? "-" }))
        rows.append(("parameters", blank + results.map { groupedThousands($0.parameterCount) }))
        rows.append(("parameters trained", blank + results.map { groupedThousands($0.trainedParameterCount) }))
        rows.append(("ms per step (median)", blank + results.map { $0.stepMilliseconds.map { String(format: "%.0f", $0) } ?? "-" }))
        rows.append(("time (train + eval)", blank + results.map { ProgressBar.formatDuration($0.seconds) }))
        return rows
    }

    /// An aligned text table, one column per model.
    public func formatted() -> String {
        let rows = rows
        let nameWidth = rows.map(\.name.count).max() ?? 0
        let columnWidth = max((rows.flatMap(\.values) + columns).map(\.count).max() ?? 0, 10)
        func pad(_ text: String, _ width: Int, right: Bool) -> String {
            let fill = String(repeating: " ", count: max(width - text.count, 0))
            return right ? fill + text : text + fill
        }
        var lines = [pad("", nameWidth, right: false) + columns.map { "  " + pad($0, columnWidth, right: true) }.joined()]
        for row in rows {
            lines.append(pad(row.name, nameWidth, right: false) + row.values.map { "  " + pad($0, columnWidth, right: true) }.joined())
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// CSV: `metric,[question_only,]<model>,…` with raw numbers (accuracies as fractions).
    public func csv() -> String {
        let priorMetrics = prior?.metrics()
        var text = "metric," + ((prior == nil ? [] : ["question_only"]) + results.map(\.kind.rawValue)).joined(separator: ",") + "\n"
        var names = Set<String>()
        for result in results { names.formUnion(result.evaluation?.metrics.keys.map { $0 } ?? []) }
        let blank = prior == nil ? [] : [""]
        for name in names.sorted() {
            let priorValue = prior == nil ? [] : [priorMetrics?[name].map { String($0) } ?? ""]
            text += ([name] + priorValue + results.map { $0.evaluation?.metrics[name].map { String($0) } ?? "" }).joined(separator: ",") + "\n"
        }
        text += (["parameters"] + blank + results.map { String($0.parameterCount) }).joined(separator: ",") + "\n"
        text += (["parameters_trained"] + blank + results.map { String($0.trainedParameterCount) }).joined(separator: ",") + "\n"
        text += (["step_ms_median"] + blank + results.map { $0.stepMilliseconds.map { String(format: "%.1f", $0) } ?? "" }).joined(separator: ",") + "\n"
        text += (["seconds"] + blank + results.map { String(format: "%.1f", $0.seconds) }).joined(separator: ",") + "\n"
        return text
    }
}

/// `nfm-classify eval`: evaluates saved models on the test split(s) of their configuration.
public enum ClassifyCheckpointEvaluation {
    /// The config.json nearest above `path` (a checkpoint file, a checkpoint directory or a run
    /// directory), looking at most four levels up; nil if there is none.
    public static func findConfiguration(near path: String) -> String? {
        var directory = URL(fileURLWithPath: path)
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent(ClassifySession.configurationFile).path
            if FileManager.default.fileExists(atPath: candidate) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return nil
    }

    /// The (model, checkpoint) pairs to evaluate at `path`: the checkpoint itself, or for a
    /// `--model both` run directory, each model's sub-run.
    public static func checkpoints(at path: String, configuration: ClassifyConfiguration) throws -> [(kind: ClassifyModelKind, path: String)] {
        if configuration.model == .both, (try? Checkpoint.resolve(path)) == nil, !path.hasSuffix(".safetensors") {
            return ClassifyModelChoice.both.kinds.map { ($0, path + "/" + $0.rawValue) }
        }
        guard let kind = configuration.model.kinds.first, configuration.model != .both else {
            throw ClassifyError.configuration(
                path: path, reason: "a checkpoint of a --model both run must be in its baseline/ or nfm/ folder; pass that folder")
        }
        return [(kind, path)]
    }

    /// Loads each model at `checkpoint` (with the settings of `configuration`), evaluates it, prints
    /// its table and writes the table and attention map into a run directory at `runPath` (one
    /// sub-folder per model when there are several). Returns the evaluations.
    public static func evaluate(
        checkpoint: String, configuration: ClassifyConfiguration, runPath: String, log: (String) -> Void = consoleLog
    ) throws -> [(kind: ClassifyModelKind, evaluation: Evaluation)] {
        // Models first, then data: a missing checkpoint stops before anything is generated or created.
        var models: [(kind: ClassifyModelKind, path: String, model: TrunkClassifier)] = []
        for (kind, path) in try checkpoints(at: checkpoint, configuration: configuration) {
            var generator = RunSeeds(seed: configuration.seed).initialisation
            let model = makeClassifier(kind, configuration: configuration, using: &generator)
            try Checkpoint.loadModule(model, from: path)
            models.append((kind, path, model))
        }
        let data = try ClassifyData.load(configuration, training: false)
        log(data.summary)
        let run = try RunDirectory(path: runPath)
        try run.writeConfig(data.adjusting(configuration))
        var results: [(kind: ClassifyModelKind, evaluation: Evaluation)] = []
        for (kind, path, model) in models {
            let evaluation = Evaluator.evaluate(model, data: data)
            let output = models.count == 1 ? run : try RunDirectory(name: kind.rawValue, root: run.path)
            try ClassifyTraining.writeOutputs(evaluation, dataset: configuration.dataset, run: output)
            if output !== run {
                for entry in output.outputs { run.record(output: entry.path, description: kind.rawValue + " " + entry.description) }
            }
            log("")
            log("\(kind.rawValue) (\(path)): accuracy by \(configuration.dataset == .sortOfCLEVR ? "question type" : "class")")
            log(evaluation.table.formatted())
            results.append((kind, evaluation))
        }
        log(run.summary())
        return results
    }
}
