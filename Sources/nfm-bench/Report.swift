import Foundation

/// Everything one `nfm-bench` run measured, as written to JSON.
struct BenchmarkReport: Codable {
    var machine: MachineDescription
    var iterations: Int
    var warmup: Int
    var gemm: GemmResult?
    var models: [ModelResult] = []
    var attention: AttentionResult?
    var vectorKernels: [VectorKernelResult] = []
    var games: [EnvironmentResult] = []
    var dqn: [DQNResult] = []

    init(machine: MachineDescription, iterations: Int, warmup: Int) {
        self.machine = machine
        self.iterations = iterations
        self.warmup = warmup
    }

    static func timestamp() -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        return formatter.string(from: Date())
    }

    func write(to path: String) throws {
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: url)
    }

    // MARK: Table

    /// Figures are printed as they arrive, as rows of one table: what, median [min–max], unit, notes.
    private func row(_ what: String, _ summary: Summary, _ note: String = "") {
        let name = what.padding(toLength: 34, withPad: " ", startingAt: 0)
        let value = summary.formatted.padding(toLength: 30, withPad: " ", startingAt: 0)
        let unit = summary.unit.padding(toLength: 9, withPad: " ", startingAt: 0)
        emit("\(name) \(value) \(unit) \(note)")
    }

    func printGemm() {
        printHeader()
        guard let gemm else { return }
        row("gemm \(gemm.size)³ (dnnl_sgemm)", gemm.gigaflopsPerSecond)
    }

    func printModel(_ result: ModelResult) {
        let name = "\(result.model.rawValue) batch \(result.batch)"
        let memory = String(format: "peak RSS %.2f GiB", Double(result.peakResidentBytes) / Double(1 << 30))
        var trainNote = String(format: "%.2f ms/image, %.0f GFLOP", result.trainStep.median / Double(result.batch), result.trainFlops / 1e9)
        if let gemm {
            let reached = result.trainFlops / (result.trainStep.median / 1e3) / 1e9
            trainNote += String(format: ", %.0f GFLOP/s = %.0f%% of gemm", reached, 100 * reached / gemm.gigaflopsPerSecond.median)
        }
        row("\(name) train step", result.trainStep, trainNote + ", " + memory)
        row("\(name) inference", result.inference, String(format: "%.2f ms/image", result.inference.median / Double(result.batch)))
    }

    func printAttention(_ result: AttentionResult) {
        row("attention kernel batch \(result.batch) forward", result.forward, "4 reads (38², 19², 10², 5²)")
        row("attention kernel batch \(result.batch) backward", result.backward)
    }

    func printVectorKernel(_ result: VectorKernelResult) { row(result.kernel, result.milliseconds) }

    func printGame(_ result: EnvironmentResult) { row("game \(result.game)", result.stepsPerSecond) }

    func printDQN(_ result: DQNResult) {
        let work = result.flopsPerFrame * result.framesPerCPUSecond / 1e9
        var note = String(
            format: "%.0f per CPU-second, %.1f MFLOP/frame = %.1f GFLOP/s", result.framesPerCPUSecond,
            result.flopsPerFrame / 1e6, work)
        if let gemm { note += String(format: " (%.0f%% of gemm)", 100 * work / gemm.gigaflopsPerSecond.median) }
        row("DQN \(result.encoder) \(result.game) batch \(result.batch)", result.framesPerSecond, note)
    }

    func printHeader() {
        emit(
            "nfm-bench on \(machine.cpuModel), \(machine.cores) cores, \(String(format: "%.0f", machine.memoryGiB)) GiB, "
                + "vector ISA \(machine.vectorISA ?? "unknown"), "
                + "load \(machine.loadAverage.map { String(format: "%.2f", $0) }.joined(separator: " ")), \(machine.date)")
        emit("median [min–max] over \(iterations) timed iterations after \(warmup) warm-up")
    }

    /// Time per image from the smallest to the largest batch of each model (the flatness target).
    func printSummary() {
        if gemm == nil { printHeader() }
        for kind in ModelKind.allCases {
            let results = models.filter { $0.model == kind }.sorted { $0.batch < $1.batch }
            guard let first = results.first, let last = results.last, first.batch != last.batch else { continue }
            let ratio = (last.trainStep.median / Double(last.batch)) / (first.trainStep.median / Double(first.batch))
            emit(String(format: "%@ train time per image, batch %d vs %d: %.2f×", kind.rawValue, last.batch, first.batch, ratio))
        }
    }
}
