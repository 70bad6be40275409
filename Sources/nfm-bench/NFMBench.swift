// nfm-bench: speed and memory of the engine on the workloads that matter (issue 7). Prints a table and
// writes JSON. Each model configuration runs in a child process of this program, so that its peak
// resident set size is its own. scripts/bench/compare.sh runs it beside PyTorch and MinAtar.

import ArgumentParser
import Envs
import Foundation
import NFMKernels
import RLKit

/// How many iterations to time, shared by every subcommand.
struct IterationOptions: ParsableArguments {
    @Flag(help: "Fewer iterations (5 timed, 1 warm-up) for a quick look; the default is 20 timed after 3 warm-up.")
    var quick = false

    @Option(help: "Timed iterations per figure (overrides --quick).")
    var iterations: Int?

    @Option(help: "Untimed warm-up iterations per figure (overrides --quick).")
    var warmup: Int?

    var timedIterations: Int { iterations ?? (quick ? 5 : 20) }
    var warmupIterations: Int { warmup ?? (quick ? 1 : 3) }
}

extension EncoderKind: ExpressibleByArgument {}

@main
struct NFMBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nfm-bench",
        abstract: "Benchmarks NFM-Swift: train steps, inference, attention, games, DQN and GEMM throughput.",
        subcommands: [All.self, Model.self, Attention.self, VectorKernels.self, Games.self, DQN.self, Gemm.self],
        defaultSubcommand: All.self)

    /// Sets the OpenMP wait policy (which may re-execute the program), then runs the command.
    static func main() {
        Kernels.requirePassiveOpenMPWaiting()
        Kernels.announceBackend()
        main(nil)
    }
}

extension NFMBench {
    /// Everything, with a table and a JSON report.
    struct All: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run every benchmark; print a table and write JSON.")

        @OptionGroup var options: IterationOptions

        @Option(help: "Where to write the JSON report (default runs/bench-<timestamp>.json).")
        var json: String?

        @Option(help: "Batch sizes for the model benchmarks, comma-separated.")
        var batches = "32,64,128"

        @Option(help: "Models to benchmark, comma-separated: baseline, nfm.")
        var models = "baseline,nfm"

        @Option(help: "Sections to run, comma-separated: gemm, models, attention, vector-kernels, games, dqn.")
        var sections = "gemm,models,attention,vector-kernels,games,dqn"

        func run() throws {
            let wanted = Set(sections.split(separator: ",").map(String.init))
            var report = BenchmarkReport(
                machine: .current(), iterations: options.timedIterations, warmup: options.warmupIterations)
            let (warmup, iterations) = (options.warmupIterations, options.timedIterations)
            if wanted.contains("gemm") {
                report.gemm = runGemmBenchmark(size: 2048, warmup: warmup, iterations: iterations)
                report.printGemm()
            }
            if wanted.contains("models") {
                for model in models.split(separator: ",") {
                    guard let kind = ModelKind(rawValue: String(model)) else {
                        throw ValidationError("unknown model '\(model)'; use baseline or nfm")
                    }
                    for batch in batches.split(separator: ",").compactMap({ Int($0) }) {
                        let result = try runChildModelBenchmark(
                            model: kind, batch: batch, warmup: warmup, iterations: iterations)
                        report.models.append(result)
                        report.printModel(result)
                    }
                }
            }
            if wanted.contains("attention") {
                let result = runAttentionBenchmark(batch: 64, warmup: warmup, iterations: iterations)
                report.attention = result
                report.printAttention(result)
            }
            if wanted.contains("vector-kernels") {
                report.vectorKernels = runVectorKernelBenchmarks(warmup: warmup, iterations: iterations)
                report.vectorKernels.forEach(report.printVectorKernel)
            }
            if wanted.contains("games") {
                for game in Environment.gameNames {
                    let result = try runEnvironmentBenchmark(
                        game: game, stepsPerIteration: 20_000, warmup: warmup, iterations: iterations)
                    report.games.append(result)
                    report.printGame(result)
                }
            }
            if wanted.contains("dqn") {
                for encoder in EncoderKind.allCases {
                    let result = try runDQNBenchmark(
                        encoder: encoder, threads: 1, framesPerIteration: encoder == .nfm ? 20 : 100, warmup: warmup,
                        iterations: iterations)
                    report.dqn.append(result)
                    report.printDQN(result)
                }
            }
            report.printSummary()
            let path = json ?? "runs/bench-\(BenchmarkReport.timestamp()).json"
            try report.write(to: path)
            print("wrote \(path)")
        }
    }

    /// One model configuration in this process (run by `all` as a child), printed as one JSON line.
    struct Model: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Time one model's train step and inference in this process; print one JSON line.")

        @OptionGroup var options: IterationOptions

        @Option(help: "baseline or nfm.")
        var model: ModelKind = .nfm

        @Option(help: "Images per batch.")
        var batch = 64

        func run() throws {
            let result = runModelBenchmark(
                model: model, batch: batch, warmup: options.warmupIterations, iterations: options.timedIterations)
            try printJSONLine(result)
        }
    }

    /// The fused attention kernel alone.
    struct Attention: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Time the fused NFM attention kernel; print one JSON line.")

        @OptionGroup var options: IterationOptions

        @Option(help: "Images per batch.")
        var batch = 64

        func run() throws {
            let result = runAttentionBenchmark(
                batch: batch, warmup: options.warmupIterations, iterations: options.timedIterations)
            try printJSONLine(result)
        }
    }

    /// The Swift kernels with compiled vector paths (scripts/bench/compare.py's "kernels" section is
    /// another thing: the gemm and attention subcommands).
    struct VectorKernels: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "vector-kernels",
            abstract: "Time the kernels with AVX2/AVX-512 paths (elementwise, batch norm, Adam, RMSprop); print JSON lines.")

        @OptionGroup var options: IterationOptions

        func run() throws {
            for result in runVectorKernelBenchmarks(warmup: options.warmupIterations, iterations: options.timedIterations) {
                try printJSONLine(result)
            }
        }
    }

    /// Game throughput.
    struct Games: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Time each MinAtar game's steps; print JSON lines.")

        @OptionGroup var options: IterationOptions

        @Option(help: "Steps per timed iteration.")
        var steps = 20_000

        func run() throws {
            for game in Environment.gameNames {
                let result = try runEnvironmentBenchmark(
                    game: game, stepsPerIteration: steps, warmup: options.warmupIterations,
                    iterations: options.timedIterations)
                try printJSONLine(result)
            }
        }
    }

    /// DQN training throughput.
    struct DQN: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "dqn", abstract: "Time DQN training frames (Breakout, batch 32); print one JSON line.")

        @OptionGroup var options: IterationOptions

        @Option(help: "Frames per timed iteration.")
        var frames = 100

        @Option(help: "The Q-network's encoder: baseline (MinAtar's network), nfm or two-layer.")
        var encoder: EncoderKind = .baseline

        @Option(help: "oneDNN (OpenMP) threads; nfm-rl trains on 1.")
        var threads = 1

        func validate() throws {
            if threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
        }

        func run() throws {
            let result = try runDQNBenchmark(
                encoder: encoder, threads: threads, framesPerIteration: frames, warmup: options.warmupIterations,
                iterations: options.timedIterations)
            try printJSONLine(result)
        }
    }

    /// GEMM throughput.
    struct Gemm: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Time dnnl_sgemm on a square product; print one JSON line.")

        @OptionGroup var options: IterationOptions

        @Option(help: "Matrix size.")
        var size = 2048

        func run() throws {
            let result = runGemmBenchmark(size: size, warmup: options.warmupIterations, iterations: options.timedIterations)
            try printJSONLine(result)
        }
    }
}

extension ModelKind: ExpressibleByArgument {}

/// Prints `value` as one line of JSON with sorted keys: the child-process output compare.py reads.
func printJSONLine(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// Runs `nfm-bench model` in a child process (this same executable) and decodes its JSON line, so
/// that the configuration's peak RSS is measured alone.
func runChildModelBenchmark(model: ModelKind, batch: Int, warmup: Int, iterations: Int) throws -> ModelResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    process.arguments = [
        "model", "--model", model.rawValue, "--batch", "\(batch)", "--warmup", "\(warmup)", "--iterations", "\(iterations)",
    ]
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0, let line = data.split(separator: UInt8(ascii: "\n")).last else {
        throw ValidationError("nfm-bench model --model \(model.rawValue) --batch \(batch) failed (status \(process.terminationStatus))")
    }
    return try JSONDecoder().decode(ModelResult.self, from: Data(line))
}
