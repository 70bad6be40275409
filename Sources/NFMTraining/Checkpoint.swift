import Foundation
import NFMIO
import NFMNN
import NFMOptimizers
import NFMTensor

/// A checkpoint is a directory `checkpoints/step-NNNNNNNNN/` holding one safetensors file per
/// module (`model.safetensors`: exactly the PyTorch `state_dict`, loadable with
/// `model.load_state_dict(safetensors.torch.load_file(...))`), one per optimizer (torch's state
/// names), `trainer.safetensors` (step, random-generator state, program state such as the data
/// position or a replay buffer) and a copy of the run's `config.json` (`run-config.json`). It is
/// written into a temporary directory, each file atomically, then renamed into place; only then
/// does `checkpoints/latest` (written atomically) point at it. A crash or a full disk at any moment
/// leaves the previous checkpoint complete.
///
/// Resume does not trust `latest` alone: it tries the step directories newest first and takes the
/// newest that loads (see `Trainer`), so a damaged latest checkpoint falls back to the one before.
public enum Checkpoint {
    /// The file name of a module's weights inside a checkpoint directory.
    public static func moduleFile(_ name: String) -> String { "\(name).safetensors" }
    /// The file name of an optimizer's state inside a checkpoint directory.
    public static func optimizerFile(_ name: String) -> String { "\(name).safetensors" }
    /// Step, generator state and program state.
    public static let trainerFile = "trainer.safetensors"
    /// The copy of the run's `config.json` saved with each checkpoint (another name, so that the
    /// commands that look for the nearest `config.json` still find the run's).
    public static let configurationCopyFile = "run-config.json"
    /// The prefix of a damaged checkpoint that a resume set aside (never deleted).
    public static let setAsidePrefix = "damaged-"

    /// `step-NNNNNNNNN`, the directory name of the checkpoint at `step`.
    public static func directoryName(step: Int) -> String { String(format: "step-%09d", step) }

    /// The checkpoints of the run directory `path`, newest first: every `checkpoints/step-N`, and
    /// a `checkpoints/.step-N.old` (a complete checkpoint being replaced when the process died)
    /// whose `step-N` is missing.
    public static func stepDirectories(inRun path: String) -> [(step: Int, path: String)] {
        let root = path + "/checkpoints"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        func step(_ text: Substring) -> Int? { text.count == 9 && text.allSatisfy(\.isASCII) ? Int(text) : nil }
        var found: [Int: String] = [:]
        for name in names where name.hasPrefix("step-") {
            if let value = step(name.dropFirst(5)) { found[value] = root + "/" + name }
        }
        for name in names where name.hasPrefix(".step-") && name.hasSuffix(".old") {
            if let value = step(name.dropFirst(6).dropLast(4)), found[value] == nil { found[value] = root + "/" + name }
        }
        return found.sorted { $0.key > $1.key }.map { ($0.key, $0.value) }
    }

    /// Resolves `path` (a run directory, or a checkpoint directory) to a checkpoint directory: the
    /// one `checkpoints/latest` names when it holds `trainer.safetensors`, else the newest step
    /// directory that does.
    public static func resolve(_ path: String) throws -> String {
        let manager = FileManager.default
        if manager.fileExists(atPath: path + "/" + trainerFile) { return path }
        let latest = path + "/checkpoints/latest"
        if let name = try? String(contentsOfFile: latest, encoding: .utf8) {
            let directory = path + "/checkpoints/" + name.trimmingCharacters(in: .whitespacesAndNewlines)
            if manager.fileExists(atPath: directory + "/" + trainerFile) { return directory }
        }
        if let newest = stepDirectories(inRun: path).first(where: { manager.fileExists(atPath: $0.path + "/" + trainerFile) }) {
            return newest.path
        }
        throw TrainingError.noCheckpoint(path: path)
    }

    /// Loads a module's weights from a checkpoint directory or directly from a `.safetensors` file.
    public static func loadModule(_ module: Module, named name: String = "model", from path: String) throws {
        let file = path.hasSuffix(".safetensors") ? path : try resolve(path) + "/" + moduleFile(name)
        try module.load(contentsOf: file)
    }

    /// Decodes a run's `config.json` as `type`. When that file is missing or damaged, uses the
    /// copy saved with the newest checkpoint that has a readable one and says so through `log`
    /// (the program rewrites `config.json` once the resume has been checked).
    ///
    /// - Throws: the error of decoding the run's own file, with the path, when no copy helps.
    public static func loadConfiguration<Configuration: Decodable>(
        _ type: Configuration.Type, ofRun path: String, log: (String) -> Void
    ) throws -> Configuration {
        let file = path + "/config.json"
        let failure: String
        do {
            return try JSONDecoder().decode(type, from: Data(AtomicFile.readBytes(contentsOf: file)))
        } catch let error as AtomicFileError where error.code == ENOENT {
            failure = "it is missing"
        } catch let error as AtomicFileError {
            throw TrainingError.unreadableConfiguration(path: file, reason: error.description)
        } catch {
            failure = "it is not a valid configuration (\(error))"
        }
        for checkpoint in stepDirectories(inRun: path) {
            let copy = checkpoint.path + "/" + configurationCopyFile
            if let bytes = try? AtomicFile.readBytes(contentsOf: copy), let configuration = try? JSONDecoder().decode(type, from: Data(bytes)) {
                log("\(file): \(failure); using the copy saved with the checkpoint \(copy)")
                return configuration
            }
        }
        throw TrainingError.unreadableConfiguration(path: file, reason: failure + ", and no checkpoint holds a readable copy")
    }
}

/// What a trainer saves beyond modules and optimizers: extra program state as named tensors.
public struct ProgramState {
    /// Returns the state to save (e.g. `["replay.observations": …]`).
    public var save: () -> [String: Tensor]
    /// Restores from what `save` returned.
    public var restore: ([String: Tensor]) throws -> Void

    /// Program state with the given save and restore functions.
    public init(save: @escaping () -> [String: Tensor], restore: @escaping ([String: Tensor]) throws -> Void) {
        self.save = save
        self.restore = restore
    }
}

extension Trainer {
    func writeCheckpoint() throws -> String {
        let root = run.file("checkpoints")
        let name = Checkpoint.directoryName(step: step)
        let final = root + "/" + name
        let temporary = root + "/." + name + ".tmp"
        let manager = FileManager.default
        // A temporary directory left by a killed process is incomplete by definition.
        if manager.fileExists(atPath: temporary) { try manager.removeItem(atPath: temporary) }
        try manager.createDirectory(atPath: temporary, withIntermediateDirectories: true)
        do {
            for (moduleName, module) in modules {
                try module.save(to: temporary + "/" + Checkpoint.moduleFile(moduleName), metadata: ["format": "pt"])
                FaultInjection.checkpointFileWritten()
            }
            for entry in optimizers {
                var state = StateDict()
                for (key, tensor) in entry.optimizer.stateDict(for: entry.module) { state[key] = .float(tensor) }
                try state.save(to: temporary + "/" + Checkpoint.optimizerFile(entry.name))
                FaultInjection.checkpointFileWritten()
            }
            var trainerState = StateDict()
            trainerState["step"] = .int64(Int64(step))
            for (index, word) in generator.state.enumerated() {
                trainerState["generator.\(index)"] = .int64(Int64(bitPattern: word))
            }
            for (key, tensor) in programState?.save() ?? [:] { trainerState["program." + key] = .float(tensor) }
            try trainerState.save(to: temporary + "/" + Checkpoint.trainerFile)
            FaultInjection.checkpointFileWritten()
            if let configuration = try? AtomicFile.readBytes(contentsOf: run.file("config.json")) {
                try AtomicFile.write(configuration, to: temporary + "/" + Checkpoint.configurationCopyFile)
                FaultInjection.checkpointFileWritten()
            }
            try replace(final, with: temporary)
            FaultInjection.checkpointFileWritten()
            try AtomicFile.write(name + "\n", to: root + "/latest")
            FaultInjection.checkpointFileWritten()
        } catch {
            try? manager.removeItem(atPath: temporary)
            throw error
        }
        pruneCheckpoints(in: root, keeping: name)
        lastCheckpoint = final
        return final
    }

    /// Moves the complete checkpoint `temporary` to `final`. An existing `final` (a resume from an
    /// older checkpoint that reaches the step again) is renamed to `.step-N.old` first and
    /// removed only after the new one is in place; a crash in between leaves that complete copy,
    /// which resume finds (`Checkpoint.stepDirectories`).
    private func replace(_ final: String, with temporary: String) throws {
        let manager = FileManager.default
        let old = (final as NSString).deletingLastPathComponent + "/." + (final as NSString).lastPathComponent + ".old"
        guard manager.fileExists(atPath: final) else {
            try manager.moveItem(atPath: temporary, toPath: final)
            return
        }
        if manager.fileExists(atPath: old) { try manager.removeItem(atPath: old) }
        try manager.moveItem(atPath: final, toPath: old)
        try manager.moveItem(atPath: temporary, toPath: final)
        try? manager.removeItem(atPath: old)
    }

    /// Keeps the newest `keptCheckpoints` step directories.
    private func pruneCheckpoints(in root: String, keeping current: String) {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
            .filter { $0.hasPrefix("step-") }.sorted()
        for name in names.dropLast(configuration.keptCheckpoints) where name != current {
            try? FileManager.default.removeItem(atPath: root + "/" + name)
        }
    }
}
