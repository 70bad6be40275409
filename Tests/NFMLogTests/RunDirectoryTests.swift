import Foundation
import NFMIO
import XCTest

@testable import NFMLog

final class RunDirectoryTests: XCTestCase {
    var root = ""

    override func setUpWithError() throws {
        root = try makeTemporaryDirectory()
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: root)
    }

    func testCreatesDirectoryWritesConfigAndSummarisesOutputs() throws {
        let run = try RunDirectory(name: "nfm-classify-nfm-test", root: root + "/runs")
        XCTAssertEqual(run.path, root + "/runs/nfm-classify-nfm-test")
        var isDirectory: ObjCBool = false
        XCTAssertTrue(FileManager.default.fileExists(atPath: run.path, isDirectory: &isDirectory) && isDirectory.boolValue)

        let configPath = try run.writeConfig(["lr": "1e-4", "batch_size": "64", "data/path": "/usr/share/x"])
        XCTAssertEqual(configPath, run.file("config.json"))
        let config = String(decoding: try AtomicFile.readBytes(contentsOf: configPath), as: UTF8.self)
        // Sorted keys, slashes unescaped, one key per line.
        let keys = ["batch_size", "data/path", "lr"].map { config.range(of: "\"\($0)\"")!.lowerBound }
        XCTAssertEqual(keys, keys.sorted())
        XCTAssertTrue(config.contains("/usr/share/x"))
        XCTAssertEqual(
            try JSONSerialization.jsonObject(with: Data(config.utf8)) as? [String: String],
            ["lr": "1e-4", "batch_size": "64", "data/path": "/usr/share/x"])

        struct Settings: Encodable {
            var learningRate = 0.001
            var layers = [48, 96]
        }
        try run.writeConfig(Settings())
        let decoded = try JSONSerialization.jsonObject(with: Data(try AtomicFile.readBytes(contentsOf: configPath))) as? [String: Any]
        XCTAssertEqual(decoded?["learningRate"] as? Double, 0.001)
        XCTAssertEqual(decoded?["layers"] as? [Int], [48, 96])

        let metrics = try run.metricsWriter(clock: { 0 })
        try metrics.log(step: 1, values: ["train/loss": 1])
        run.record(output: run.file("model.safetensors"), description: "checkpoint")
        run.record(output: run.file("model.safetensors"), description: "checkpoint (step 1)")
        XCTAssertEqual(
            run.summary(),
            """
            Outputs:
              config               \(run.path)/config.json
              metrics              \(run.path)/metrics.csv
              metrics              \(run.path)/metrics.jsonl
              checkpoint (step 1)  \(run.path)/model.safetensors

            """)
    }

    func testRefusesToReuseAndResumesExisting() throws {
        let run = try RunDirectory(name: "first", root: root)
        try run.writeConfig(["a": "1"])
        XCTAssertThrowsError(try RunDirectory(name: "first", root: root)) { error in
            XCTAssertEqual(error as? RunDirectoryError, .alreadyExists(path: root + "/first"))
        }
        let metrics = try run.metricsWriter(clock: { 0 })
        for step in 1...4 { try metrics.log(step: step, values: ["train/loss": Double(step)]) }
        XCTAssertFalse(run.isResumed)

        // Resuming from a checkpoint at step 2 keeps the metrics up to it and appends after them.
        let resumed = try RunDirectory(name: "first", root: root, resume: true)
        XCTAssertEqual(resumed.path, run.path)
        XCTAssertTrue(resumed.isResumed)
        let resumedMetrics = try resumed.metricsWriter(discardingStepsAfter: 2, clock: { 0 })
        XCTAssertEqual(resumedMetrics.points(of: "train/loss").map(\.step), [1, 2])
        try resumedMetrics.log(step: 3, values: ["train/loss": 30])
        XCTAssertEqual(try MetricsWriter.load(directory: run.path)["train/loss"]?.map(\.value), [1, 2, 30])
        XCTAssertThrowsError(try RunDirectory(name: "missing", root: root, resume: true)) { error in
            XCTAssertEqual(error as? RunDirectoryError, .notFound(path: root + "/missing"))
        }
        // An existing empty directory is fine for a fresh run.
        try FileManager.default.createDirectory(atPath: root + "/empty", withIntermediateDirectories: true)
        XCTAssertNoThrow(try RunDirectory(name: "empty", root: root))
        XCTAssertEqual(try RunDirectory(name: "nothing-written", root: root).summary(), "Outputs: none\n")
    }

    func testTimestampedName() {
        let date = Date(timeIntervalSince1970: 1_735_732_800)  // 2025-01-01 12:00:00 UTC
        XCTAssertEqual(
            RunDirectory.timestampedName(program: "nfm-rl", model: "dqn", date: date, timeZone: TimeZone(identifier: "UTC")!),
            "nfm-rl-dqn-20250101-120000")
    }
}
