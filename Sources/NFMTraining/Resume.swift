// Resume in two phases, so that a resume that fails changes nothing in the run directory:
//   1. read: try the run's checkpoints newest first, reading every file of one into memory and
//      restoring it into the modules, optimizers and program state; read the metrics files too.
//      Nothing is opened for writing.
//   2. write (only when phase 1 succeeded): set aside the damaged checkpoints that were skipped
//      (renamed `damaged-step-N`, never deleted), point `latest` at the one used, and rewrite
//      the metrics without the rows past its step (atomically).

import Foundation
import NFMIO
import NFMLog
import NFMNN
import NFMOptimizers
import NFMTensor

/// What phase 1 found.
struct ResumePlan {
    /// The checkpoint restored, nil when the run has none yet (it starts at step 0).
    var checkpoint: String?
    /// Its step.
    var step: Int
    /// Its generator.
    var generator: SeededGenerator?
    /// Newer checkpoints that did not load, with the reason.
    var skipped: [(path: String, reason: String)]
    /// What the metrics check said (a damaged metrics file rebuilt from the other), if anything.
    var metricsNote: String?
}

extension Trainer {
    typealias Modules = [(name: String, module: Module)]
    typealias Optimizers = [(name: String, optimizer: any Optimizer, module: Module)]

    /// Phase 1: restores the newest checkpoint of `path` that loads and checks the metrics files
    /// of `run`. `path` is a run directory (every checkpoint is a candidate) or one checkpoint
    /// directory.
    static func prepareResume(
        from path: String, run: RunDirectory, modules: Modules, optimizers: Optimizers, programState: ProgramState?
    ) throws -> ResumePlan {
        let candidates: [String]
        if FileManager.default.fileExists(atPath: path + "/" + Checkpoint.trainerFile) {
            candidates = [path]
        } else {
            candidates = Checkpoint.stepDirectories(inRun: path).map(\.path)
        }
        var skipped: [(path: String, reason: String)] = []
        var restored: String?
        var state: (step: Int, generator: SeededGenerator)?
        for candidate in candidates {
            do {
                state = try restoreCheckpoint(from: candidate, modules: modules, optimizers: optimizers, programState: programState)
                restored = candidate
                break
            } catch {
                skipped.append((candidate, Self.reason(error)))
            }
        }
        if restored == nil && !candidates.isEmpty {
            throw TrainingError.noIntactCheckpoint(run: path, failures: skipped)
        }
        let step = state?.step ?? 0
        let metricsNote = try MetricsWriter.checkResume(directory: run.path, discardingStepsAfter: step)
        return ResumePlan(checkpoint: restored, step: step, generator: state?.generator, skipped: skipped, metricsNote: metricsNote)
    }

    /// Phase 2: the writes of a checked resume of `run`; returns the metrics writer, the
    /// checkpoint's final path and what to tell the user.
    static func commitResume(_ plan: ResumePlan, run: RunDirectory, totalSteps: Int) throws
        -> (metrics: MetricsWriter, checkpoint: String?, notes: [String])
    {
        var notes: [String] = []
        let metrics = try MetricsWriter(directory: run.path, resume: true, discardingStepsAfter: plan.step)
        if let note = plan.metricsNote { notes.append(note) }
        let manager = FileManager.default
        for (path, reason) in plan.skipped {
            let directory = (path as NSString).deletingLastPathComponent
            var name = (path as NSString).lastPathComponent
            if name.hasPrefix(".") { name = String(name.dropFirst().dropLast(".old".count)) }
            var target = directory + "/" + Checkpoint.setAsidePrefix + name
            var suffix = 2
            while manager.fileExists(atPath: target) {
                target = directory + "/" + Checkpoint.setAsidePrefix + name + "-\(suffix)"
                suffix += 1
            }
            try manager.moveItem(atPath: path, toPath: target)
            notes.append("skipped the damaged checkpoint \(path) (\(reason)); set aside as \(target)")
        }
        var checkpoint = plan.checkpoint
        if let restored = plan.checkpoint, restored.hasPrefix(run.path + "/checkpoints/") {
            var name = (restored as NSString).lastPathComponent
            if name.hasPrefix(".") {
                // A complete checkpoint a crash left mid-replacement: put it back under its name.
                name = String(name.dropFirst().dropLast(".old".count))
                let renamed = (restored as NSString).deletingLastPathComponent + "/" + name
                try manager.moveItem(atPath: restored, toPath: renamed)
                checkpoint = renamed
            }
            try AtomicFile.write(name + "\n", to: run.file("checkpoints/latest"))
        }
        if let checkpoint {
            notes.append("resuming from \(checkpoint) (step \(plan.step) of \(totalSteps))")
        } else {
            notes.append("no checkpoint in \(run.path) yet; starting from step 0")
        }
        return (metrics, checkpoint, notes)
    }

    /// Restores every piece of state from one checkpoint directory. Every file is read and parsed
    /// before anything is restored, and a module's load is all-or-nothing, so a damaged file is
    /// found before any state changes.
    static func restoreCheckpoint(
        from directory: String, modules: Modules, optimizers: Optimizers, programState: ProgramState?
    ) throws -> (step: Int, generator: SeededGenerator) {
        func read(_ file: String) throws -> StateDict {
            let path = directory + "/" + file
            do {
                return try StateDict.load(contentsOf: path)
            } catch {
                throw TrainingError.incompatibleCheckpoint(path: directory, reason: "\(file): \(reason(error))")
            }
        }
        let moduleStates = try modules.map { try read(Checkpoint.moduleFile($0.name)) }
        let optimizerStates = try optimizers.map { try read(Checkpoint.optimizerFile($0.name)) }
        let trainerState = try read(Checkpoint.trainerFile)
        guard case .int64(let savedStep) = trainerState["step"], savedStep >= 0 else {
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
        for ((name, module), state) in zip(modules, moduleStates) {
            do {
                try module.load(stateDict: state)
            } catch {
                throw TrainingError.incompatibleCheckpoint(path: directory, reason: "\(Checkpoint.moduleFile(name)): \(reason(error))")
            }
        }
        for (entry, state) in zip(optimizers, optimizerStates) {
            var tensors: [String: Tensor] = [:]
            for (key, value) in state.entries {
                if case .float(let tensor) = value { tensors[key] = tensor }
            }
            do {
                try entry.optimizer.load(stateDict: tensors, for: entry.module)
            } catch {
                throw TrainingError.incompatibleCheckpoint(path: directory, reason: "\(Checkpoint.optimizerFile(entry.name)): \(reason(error))")
            }
        }
        do {
            try programState?.restore(program)
        } catch {
            throw TrainingError.incompatibleCheckpoint(path: directory, reason: "program state in trainer.safetensors: \(reason(error))")
        }
        return (Int(savedStep), SeededGenerator(state: words))
    }

    /// An error's own sentence, without the wrapping of `incompatibleCheckpoint`.
    static func reason(_ error: Error) -> String {
        if case TrainingError.incompatibleCheckpoint(_, let reason) = error { return reason }
        return "\(error)"
    }
}
