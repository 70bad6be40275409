import Foundation
import NFMIO
import NFMLog
import XCTest

@testable import NFMTraining

/// Every file under `directory` (hidden ones included) with its bytes, to check that a failed
/// resume changed nothing.
func snapshot(_ directory: String) throws -> [String: [UInt8]] {
    var files: [String: [UInt8]] = [:]
    let enumerator = FileManager.default.enumerator(atPath: directory)
    while let relative = enumerator?.nextObject() as? String {
        var isDirectory: ObjCBool = false
        let path = directory + "/" + relative
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
            files[relative] = try AtomicFile.readBytes(contentsOf: path)
        } else {
            files[relative + "/"] = []
        }
    }
    return files
}

/// The fault cases of issue 14 that run in seconds; scripts/faults.sh runs the programs.
extension TrainerTests {
    private func checkpoints(_ name: String) -> String { root + "/" + name + "/checkpoints" }

    func testDamagedLatestCheckpointFallsBackToTheNewestIntactOneAndIsSetAside() throws {
        let straight = try train(name: "straight", steps: 20)
        _ = try train(name: "faulty", steps: 10)  // checkpoints at 5 and 10
        try AtomicFile.write("garbage\n", to: checkpoints("faulty") + "/step-000000010/trainer.safetensors")
        let resumed = try train(name: "faulty", steps: 20, resume: true)
        let notes = resumed.trainer.resumeNotes.joined(separator: "\n")
        XCTAssertTrue(notes.contains("skipped the damaged checkpoint \(checkpoints("faulty"))/step-000000010 (trainer.safetensors:"), notes)
        XCTAssertTrue(notes.contains("set aside as \(checkpoints("faulty"))/damaged-step-000000010"), notes)
        XCTAssertTrue(notes.contains("resuming from \(checkpoints("faulty"))/step-000000005 (step 5 of 20)"), notes)
        XCTAssertEqual(
            try AtomicFile.readBytes(contentsOf: checkpoints("faulty") + "/damaged-step-000000010/trainer.safetensors"), Array("garbage\n".utf8),
            "the damaged checkpoint is kept as it was")
        XCTAssertEqual(resumed.parameters, straight.parameters)
        XCTAssertEqual(resumed.losses, straight.losses, "metrics after the resume equal a straight run's, exactly")
    }

    func testAResumeThatFailsChangesNothing() throws {
        _ = try train(name: "broken", steps: 10)
        for step in ["000000005", "000000010"] {
            let file = checkpoints("broken") + "/step-\(step)/model.safetensors"
            let bytes = try AtomicFile.readBytes(contentsOf: file)
            try AtomicFile.write(Array(bytes.prefix(bytes.count - 7)), to: file)  // truncated
        }
        let before = try snapshot(root + "/broken")
        XCTAssertThrowsError(try train(name: "broken", steps: 20, resume: true)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("no checkpoint loads, and nothing in the run was changed"), message)
            XCTAssertTrue(message.contains("step-000000005: model.safetensors") && message.contains("step-000000010: model.safetensors"), message)
        }
        XCTAssertEqual(try snapshot(root + "/broken"), before)

        // Damaged metrics (both files) stop the resume before anything is written, too.
        _ = try train(name: "metrics", steps: 10)
        try AtomicFile.write("{\"step\": 1}\nnot json\n{\"step\": 2}\n", to: root + "/metrics/metrics.jsonl")
        try AtomicFile.write("step,name\n", to: root + "/metrics/metrics.csv")
        let metricsBefore = try snapshot(root + "/metrics")
        XCTAssertThrowsError(try train(name: "metrics", steps: 20, resume: true)) { error in
            XCTAssertTrue("\(error)".contains("both metrics files"), "\(error)")
        }
        XCTAssertEqual(try snapshot(root + "/metrics"), metricsBefore)
    }

    func testMetricsPastTheCheckpointAreDroppedAndADamagedFileIsRebuilt() throws {
        let straight = try train(name: "straight", steps: 20)
        XCTAssertThrowsError(try train(name: "killed", steps: 20, stopAfter: 13))  // rows to 13, checkpoint at 10
        var jsonl = String(decoding: try AtomicFile.readBytes(contentsOf: root + "/killed/metrics.jsonl"), as: UTF8.self)
        jsonl = jsonl.replacingOccurrences(of: "\"step\": 4,", with: "\"step\": 4 oops")
        try AtomicFile.write(jsonl, to: root + "/killed/metrics.jsonl")
        let resumed = try train(name: "killed", steps: 20, resume: true)
        XCTAssertTrue(resumed.trainer.resumeNotes.contains { $0.contains("metrics.jsonl, line 4") && $0.contains("rebuilt from") }, "\(resumed.trainer.resumeNotes)")
        XCTAssertEqual(resumed.losses, straight.losses)
        XCTAssertEqual(resumed.parameters, straight.parameters)
    }

    func testCrashWhileReplacingAStepDirectoryKeepsACompleteCopy() throws {
        let straight = try train(name: "straight", steps: 10)
        // Resuming from an older checkpoint reaches step 10 again and replaces its directory.
        _ = try train(name: "again", steps: 10)
        let trainer = try train(name: "again", steps: 10, resume: false, from: checkpoints("again") + "/step-000000005").trainer
        XCTAssertEqual(trainer.lastCheckpoint, checkpoints("again") + "/step-000000010")
        XCTAssertFalse(FileManager.default.fileExists(atPath: checkpoints("again") + "/.step-000000010.old"))
        XCTAssertEqual(
            try snapshot(checkpoints("again") + "/step-000000010").filter { $0.key != "run-config.json" },
            try snapshot(checkpoints("straight") + "/step-000000010").filter { $0.key != "run-config.json" })

        // A process killed between the two renames leaves `.step-N.old` and no `step-N`.
        try FileManager.default.moveItem(atPath: checkpoints("again") + "/step-000000010", toPath: checkpoints("again") + "/.step-000000010.old")
        try FileManager.default.removeItem(atPath: checkpoints("again") + "/step-000000005")
        let resumed = try train(name: "again", steps: 10, resume: true)
        XCTAssertEqual(resumed.trainer.step, 10)
        XCTAssertEqual(resumed.parameters, straight.parameters)
        XCTAssertEqual(try Checkpoint.resolve(root + "/again"), checkpoints("again") + "/step-000000010", "put back under its name")
    }

    func testNoCheckpointYetStartsAtStepZero() throws {
        let straight = try train(name: "straight", steps: 10)
        XCTAssertThrowsError(try train(name: "early", steps: 10, stopAfter: 3))  // killed before the first checkpoint
        let resumed = try train(name: "early", steps: 10, resume: true)
        XCTAssertEqual(resumed.trainer.resumeNotes.last, "no checkpoint in \(root)/early yet; starting from step 0")
        XCTAssertEqual(resumed.losses, straight.losses)
        XCTAssertEqual(resumed.parameters, straight.parameters)
    }

    func testDamagedConfigurationIsReadFromTheCheckpointCopy() throws {
        let run = try RunDirectory(name: "configured", root: root)
        try run.writeConfig(["learning_rate": "0.01"])
        let trainer = try Trainer(run: run, configuration: TrainingConfiguration(steps: 1), seed: 1, modules: [("model", TinyModel(seed: 1))])
        try trainer.run { _, _ in ["train/loss": 1] }
        try AtomicFile.write("{\"learning_rate\": ", to: run.file("config.json"))
        var said: [String] = []
        let configuration = try Checkpoint.loadConfiguration([String: String].self, ofRun: run.path) { said.append($0) }
        XCTAssertEqual(configuration, ["learning_rate": "0.01"])
        XCTAssertTrue(said.first?.contains("using the copy saved with the checkpoint \(run.path)/checkpoints/step-000000001/run-config.json") ?? false, "\(said)")
        try FileManager.default.removeItem(atPath: run.path + "/checkpoints")
        XCTAssertThrowsError(try Checkpoint.loadConfiguration([String: String].self, ofRun: run.path) { _ in }) { error in
            XCTAssertTrue("\(error)".contains("\(run.path)/config.json: it is not a valid configuration"), "\(error)")
        }
    }
}

final class InterruptTests: XCTestCase {
    /// The handler runs on an alternate stack (a handler frame on the thread's own stack corrupted
    /// nfm-rl's heap; see Interrupt.swift).
    func testTheSIGINTHandlerRunsOnAnAlternateStack() throws {
        Interrupt.install()
        defer { Interrupt.uninstall() }
        var stack = stack_t()
        XCTAssertEqual(sigaltstack(nil, &stack), 0)
        XCTAssertEqual(stack.ss_flags & Int32(SS_DISABLE), 0, "no alternate stack")
        XCTAssertGreaterThanOrEqual(stack.ss_size, 1 << 14)
        var action = sigaction()
        XCTAssertEqual(sigaction(SIGINT, nil, &action), 0)
        XCTAssertNotEqual(action.sa_flags & Int32(SA_ONSTACK), 0, "the SIGINT handler does not use the alternate stack")
    }
}
