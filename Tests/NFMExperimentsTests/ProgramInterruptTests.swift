import Foundation
import Testing

@testable import NFMExperiments

/// A Ctrl-C during training, delivered through the fault hook `NFM_FAULTS=interrupt-step=2` (the
/// real SIGINT handler runs): every program checkpoints, says how to resume, and exits with 130, so
/// that a sweep records the run as unfinished rather than as a run that ended normally; resuming
/// then completes it.
@Suite(.serialized) struct ProgramInterruptTests {
    static let programs = ["nfm-classify", "nfm-generate", "nfm-rl"]

    /// A tiny run of `program` in `root`, resumable with `<program> train --resume RUN`.
    static func tinyRun(_ program: String, root: String) -> [String] {
        switch program {
        case "nfm-classify":
            ["train", "--model", "nfm", "--steps", "4", "--batch-size", "4", "--train-images", "24", "--test-images", "12",
             "--ood-images", "12", "--eval-every", "0", "--widths", "8,8,8,8"]
        case "nfm-generate":
            ["train", "--model", "gan", "--steps", "4", "--batch-size", "8", "--discriminator-steps", "1", "--fd-samples", "32",
             "--classifier-steps", "5", "--classifier-directory", root + "/classifier", "--samples-root", root + "/samples"]
        default:
            ["train", "--encoder", "nfm", "--frames", "120", "--replay-start", "40", "--replay-capacity", "100", "--evaluation-episodes", "1"]
        }
    }

    @Test(.enabled(if: programs.allSatisfy(programBuilt)), arguments: programs)
    func aCtrlCCheckpointsAndExitsWith130(program: String) throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let run = root + "/run"
        let arguments = Self.tinyRun(program, root: root) + ["--run-dir", run]
        let interrupted = try runProgram(productsDirectory + "/" + program, arguments, environment: ["NFM_FAULTS": "interrupt-step=2"])
        #expect(interrupted.status == 130, "\(interrupted.output)")
        #expect(interrupted.output.contains("interrupted at step 2"), "\(interrupted.output)")
        #expect(try String(contentsOfFile: run + "/checkpoints/latest", encoding: .utf8).contains("step-000000002"))
        #expect(!FileManager.default.fileExists(atPath: run + "/final_metrics.json"))

        var resume = ["train", "--resume", run]
        if program == "nfm-generate" { resume += ["--classifier-directory", root + "/classifier", "--samples-root", root + "/samples"] }
        let resumed = try runProgram(productsDirectory + "/" + program, resume)
        #expect(resumed.status == 0, "\(resumed.output)")
        #expect(FileManager.default.fileExists(atPath: run + "/final_metrics.json"), "\(resumed.output)")
    }
}
