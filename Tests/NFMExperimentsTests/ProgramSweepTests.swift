import Foundation
import Testing

@testable import NFMExperiments

/// Whether `swift build` put the program `name` beside this test binary.
func programBuilt(_ name: String) -> Bool { FileManager.default.isExecutableFile(atPath: productsDirectory + "/" + name) }

/// `--seeds` on each program, end to end on tiny settings: both models on both seeds, each run's
/// final metrics, the summary with the paired difference, and band plots.
@Suite(.serialized) struct ProgramSweepTests {
    func checkSweep(_ directory: String, metric: String, output: String) throws {
        let plan = try SeedSweep.savedPlan(in: directory)
        let report = try SweepReport.load(plan: plan, sweep: SeedSweep(plan: plan, directory: directory, concurrentRuns: 1))
        #expect(report.runs.count == 4 && report.runs.allSatisfy { $0.finalMetrics != nil }, "\(output)")
        #expect(report.values(of: metric, arm: "baseline").count == 2 && report.values(of: metric, arm: "nfm").count == 2)
        #expect(report.pairedDifference(of: metric)?.seeds == [1, 2])
        // The NFM model has idle parameters (its first pass only writes); the baseline has none.
        let nfmTotal = try #require(report.values(of: "parameters/total", arm: "nfm").first?.value)
        let nfmTrained = try #require(report.values(of: "parameters/trained", arm: "nfm").first?.value)
        #expect(nfmTrained < nfmTotal)
        for file in ["summary.md", "summary.csv", "seeds.csv", "curves.csv", "timings.csv"] {
            #expect(FileManager.default.fileExists(atPath: directory + "/" + file), "\(file)")
        }
        #expect(!(try FileManager.default.contentsOfDirectory(atPath: directory + "/plots")).isEmpty)
    }

    @Test(.enabled(if: programBuilt("nfm-rl"))) func reinforcementLearning() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let result = try runProgram(
            productsDirectory + "/nfm-rl",
            ["--seeds", "2", "--frames", "300", "--replay-start", "100", "--evaluation-episodes", "1", "--seed-jobs", "1", "--run-dir", root + "/sweep"])
        #expect(result.status == 0, "\(result.output)")
        try checkSweep(root + "/sweep", metric: "eval/mean_return", output: result.output)
        let plan = try SeedSweep.savedPlan(in: root + "/sweep")
        // MinAtar's published return is drawn beside the curve of the training return.
        #expect(plan.references?.first?.value == 10)
        // A DQN run uses one thread (--threads 1) however many go at once, and the plan says so: a
        // sweep started one run at a time continues one per core.
        #expect(plan.runThreads == .one)
    }

    /// Refused settings stop a sweep (or a single run) before anything starts, saying what is wrong:
    /// no run directory is made, and nfm-generate trains no feature classifier first.
    @Test(.enabled(if: programBuilt("nfm-rl") && programBuilt("nfm-generate"))) func badFlagsAreRefusedBeforeAnyRun() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let classifier = ["--classifier-directory", root + "/classifier"]
        let refusals = [
            ("nfm-rl", ["--seeds", "2", "--encoders", "baseline,nfn"], "unknown encoder \"nfn\" in --encoders; valid encoders are baseline, nfm, two-layer"),
            ("nfm-rl", ["--seeds", "2", "--threads", "0"], "--threads must be at least 1, got 0"),
            ("nfm-rl", ["--seeds", "1,2,1"], "invalid for '--seeds <seeds>': seed 1 is listed twice"),
            ("nfm-rl", ["--seeds", "2", "--replay-capacity", "10"], "the replay capacity (10) must hold at least one batch (32)"),
            ("nfm-rl", ["--replay-capacity", "10"], "the replay capacity (10) must hold at least one batch (32)"),
            ("nfm-generate", ["--seeds", "2", "--steps", "0"] + classifier, "--steps must be at least 1 (got 0)"),
            ("nfm-generate", ["--learning-rate", "nan"] + classifier, "--learning-rate must be positive and finite (got nan)"),
        ]
        for (program, flags, message) in refusals {
            let result = try runProgram(productsDirectory + "/" + program, flags + ["--run-dir", root + "/run"])
            #expect(result.status != 0, "\(program) \(flags)")
            #expect(result.output.contains(message), "\(result.output)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: root).isEmpty, "\(program) \(flags) left files behind")
        }
    }

    @Test(.enabled(if: programBuilt("nfm-generate"))) func generativeModels() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let result = try runProgram(
            productsDirectory + "/nfm-generate",
            ["--model", "gan", "--seeds", "2", "--steps", "2", "--batch-size", "8", "--discriminator-steps", "1", "--fd-samples", "32",
             "--classifier-steps", "5", "--classifier-directory", root + "/classifier", "--run-dir", root + "/sweep"])
        #expect(result.status == 0, "\(result.output)")
        try checkSweep(root + "/sweep", metric: "eval/fd", output: result.output)
        // Each run's pictures stay inside its own run directory.
        #expect(FileManager.default.fileExists(atPath: root + "/sweep/seed-2/nfm/samples"))
    }
}
