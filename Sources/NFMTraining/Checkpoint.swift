import Foundation
import NFMIO
import NFMNN
import NFMOptimizers
import NFMTensor

/// A checkpoint is a directory `checkpoints/step-NNNNNNNNN/` holding one safetensors file per
/// module (`model.safetensors`: exactly the PyTorch `state_dict`, loadable with
/// `model.load_state_dict(safetensors.torch.load_file(...))`), one per optimizer (torch's state
/// names), and `trainer.safetensors` (step, random-generator state, program state such as the
/// data position or a replay buffer). It is written into a temporary directory, each file
/// atomically, then renamed into place; only then does `checkpoints/latest` (written atomically)
/// point at it. A crash or a full disk at any moment leaves the previous checkpoint complete and
/// `latest` pointing at it.
public enum Checkpoint {
    /// The file name of a module's weights inside a checkpoint directory.
    public static func moduleFile(_ name: String) -> String { "\(name).safetensors" }
    /// The file name of an optimizer's state inside a checkpoint directory.
    public static func optimizerFile(_ name: String) -> String { "\(name).safetensors" }
    /// Step, generator state and program state.
    public static let trainerFile = "trainer.safetensors"

    /// Resolves `path` (a run directory with `checkpoints/latest`, or a checkpoint directory) to a
    /// checkpoint directory.
    public static func resolve(_ path: String) throws -> String {
        let manager = FileManager.default
        if manager.fileExists(atPath: path + "/" + trainerFile) { return path }
        let latest = path + "/checkpoints/latest"
        if let name = try? String(contentsOfFile: latest, encoding: .utf8) {
            let directory = path + "/checkpoints/" + name.trimmingCharacters(in: .whitespacesAndNewlines)
            if manager.fileExists(atPath: directory + "/" + trainerFile) { return directory }
        }
        throw TrainingError.noCheckpoint(path: path)
    }

    /// Loads a module's weights from a checkpoint directory or directly from a `.safetensors` file.
    public static func loadModule(_ module: Module, named name: String = "model", from path: String) throws {
        let file = path.hasSuffix(".safetensors") ? path : try resolve(path) + "/" + moduleFile(name)
        try module.load(contentsOf: file)
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
        let name = String(format: "step-%09d", step)
        let final = root + "/" + name
        let temporary = root + "/." + name + ".tmp"
        let manager = FileManager.default
        try manager.createDirectory(atPath: temporary, withIntermediateDirectories: true)
        do {
            for (moduleName, module) in modules {
                try module.save(to: temporary + "/" + Checkpoint.moduleFile(moduleName), metadata: ["format": "pt"])
            }
            for entry in optimizers {
                var state = StateDict()
                for (key, tensor) in entry.optimizer.stateDict(for: entry.module) { state[key] = .float(tensor) }
                try state.save(to: temporary + "/" + Checkpoint.optimizerFile(entry.name))
            }
            var trainerState = StateDict()
            trainerState["step"] = .int64(Int64(step))
            for (index, word) in generator.state.enumerated() {
                trainerState["generator.\(index)"] = .int64(Int64(bitPattern: word))
            }
            for (key, tensor) in programState?.save() ?? [:] { trainerState["program." + key] = .float(tensor) }
            try trainerState.save(to: temporary + "/" + Checkpoint.trainerFile)
            if manager.fileExists(atPath: final) { try manager.removeItem(atPath: final) }
            try manager.moveItem(atPath: temporary, toPath: final)
            try AtomicFile.write(name + "\n", to: root + "/latest")
        } catch {
            try? manager.removeItem(atPath: temporary)
            throw error
        }
        pruneCheckpoints(in: root, keeping: name)
        lastCheckpoint = final
        return final
    }

    /// Keeps the newest `keptCheckpoints` step directories.
    private func pruneCheckpoints(in root: String, keeping current: String) {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
            .filter { $0.hasPrefix("step-") }.sorted()
        for name in names.dropLast(configuration.keptCheckpoints) where name != current {
            try? FileManager.default.removeItem(atPath: root + "/" + name)
        }
    }

    func restoreCheckpoint(from path: String) throws {
        let directory = try Checkpoint.resolve(path)
        do {
            for (moduleName, module) in modules {
                try module.load(contentsOf: directory + "/" + Checkpoint.moduleFile(moduleName))
            }
            for entry in optimizers {
                let state = try StateDict.load(contentsOf: directory + "/" + Checkpoint.optimizerFile(entry.name))
                var tensors: [String: Tensor] = [:]
                for (key, value) in state.entries {
                    if case .float(let tensor) = value { tensors[key] = tensor }
                }
                try entry.optimizer.load(stateDict: tensors, for: entry.module)
            }
            let trainerState = try StateDict.load(contentsOf: directory + "/" + Checkpoint.trainerFile)
            guard case .int64(let savedStep) = trainerState["step"] else {
                throw TrainingError.incompatibleCheckpoint(path: directory, reason: "trainer.safetensors has no step")
            }
            var words: [UInt64] = []
            for index in 0..<4 {
                guard case .int64(let word) = trainerState["generator.\(index)"] else {
                    throw TrainingError.incompatibleCheckpoint(path: directory, reason: "trainer.safetensors has no generator state")
                }
                words.append(UInt64(bitPattern: word))
            }
            var program: [String: Tensor] = [:]
            for (key, value) in trainerState.entries where key.hasPrefix("program.") {
                if case .float(let tensor) = value { program[String(key.dropFirst("program.".count))] = tensor }
            }
            try programState?.restore(program)
            step = Int(savedStep)
            generator = SeededGenerator(state: words)
            lastCheckpoint = directory
        } catch let error as TrainingError {
            throw error
        } catch {
            throw TrainingError.incompatibleCheckpoint(path: directory, reason: "\(error)")
        }
    }
}
