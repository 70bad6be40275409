import ClassifyKit
import Foundation
import NFMIO
import NFMLog
import NFMTraining
import XCTest

/// The scenario of issue 14 through the program's own path (ClassifySession), on the tiny model.
extension EndToEndTests {
    private func tinyBaseline(steps: Int) -> ClassifyConfiguration {
        var configuration = tinySortOfCLEVR(steps: steps)
        configuration.model = .baseline
        return configuration
    }

    /// Every file of a directory tree with its bytes.
    private func files(_ directory: String) throws -> [String: [UInt8]] {
        var result: [String: [UInt8]] = [:]
        for case let relative as String in FileManager.default.enumerator(atPath: directory)! {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: directory + "/" + relative, isDirectory: &isDirectory), !isDirectory.boolValue {
                result[relative] = try AtomicFile.readBytes(contentsOf: directory + "/" + relative)
            }
        }
        return result
    }

    func testDamagedLatestCheckpointResumesFromTheOneBeforeAndEndsAsAStraightRun() throws {
        let silent: (String) -> Void = { _ in }
        _ = try ClassifySession.train(configuration: tinyBaseline(steps: 6), runPath: root + "/straight", resume: false, log: silent)
        _ = try ClassifySession.train(configuration: tinyBaseline(steps: 4), runPath: root + "/run", resume: false, log: silent)
        try AtomicFile.write("garbage\n", to: root + "/run/checkpoints/step-000000004/trainer.safetensors")
        _ = try ClassifySession.train(configuration: tinyBaseline(steps: 6), runPath: root + "/run", resume: true, log: silent)
        XCTAssertTrue(exists(root + "/run/checkpoints/damaged-step-000000004/trainer.safetensors"))
        func values(_ run: String) throws -> [String: [Double]] {
            try MetricsWriter.load(directory: root + "/" + run).mapValues { $0.map(\.value) }
        }
        XCTAssertEqual(try values("run"), try values("straight"))
        let straight = try files(root + "/straight/checkpoints/step-000000006").filter { $0.key.hasSuffix(".safetensors") }
        let resumed = try files(root + "/run/checkpoints/step-000000006").filter { $0.key.hasSuffix(".safetensors") }
        XCTAssertEqual(resumed, straight)
    }

    func testAResumeWithNoIntactCheckpointLeavesTheRunAsItWas() throws {
        _ = try ClassifySession.train(configuration: tinyBaseline(steps: 4), runPath: root + "/run", resume: false) { _ in }
        for step in ["000000002", "000000004"] {
            try AtomicFile.write("garbage\n", to: root + "/run/checkpoints/step-\(step)/model.safetensors")
        }
        let before = try files(root + "/run")
        XCTAssertThrowsError(try ClassifySession.train(configuration: tinyBaseline(steps: 6), runPath: root + "/run", resume: true) { _ in }) { error in
            XCTAssertTrue("\(error)".contains("no checkpoint loads, and nothing in the run was changed"), "\(error)")
        }
        XCTAssertEqual(try files(root + "/run"), before, "config.json, metrics and checkpoints are untouched")
    }
}
