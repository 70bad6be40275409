import Foundation
import GenerateKit
import NFMData
import NFMIO
import NFMLog
import NFMNN
import NFMTensor
import XCTest

/// Tiny runs through the whole program path: training with the shared trainer, pictures, FD, resume.
final class EndToEndTests: XCTestCase {
    /// 28×28 grey images of ten classes: class c is a bright bar at row 2c + 4 on a dark, noisy background.
    private func syntheticData(train: Int = 96, test: Int = 48) -> ImageData {
        func split(_ count: Int, seed: UInt64) -> ImageSplit {
            var generator = SeededGenerator(seed: seed)
            var pixels = [UInt8](repeating: 0, count: count * 28 * 28)
            var labels: [Int] = []
            for image in 0..<count {
                let label = Int(generator.next() % 10)
                labels.append(label)
                for row in 0..<28 {
                    for column in 0..<28 {
                        let bar = abs(row - (2 * label + 4)) <= 1 && column >= 4 && column < 24
                        pixels[image * 784 + row * 28 + column] = bar ? 230 : UInt8(generator.next() % 40)
                    }
                }
            }
            return ImageSplit(pixels: pixels, count: count, channels: 1, size: 28, labels: .classes(labels, classCount: 10))
        }
        return ImageData(name: .fashionMNIST, train: split(train, seed: 1), test: split(test, seed: 2))
    }

    private func tinyConfiguration(_ model: ModelKind, steps: Int) -> ExperimentConfiguration {
        var configuration = ExperimentConfiguration.defaults(model: model, dataset: .fashionMNIST)
        configuration.steps = steps
        configuration.batchSize = 8
        configuration.latentSize = 6
        configuration.decoderWidths = [6, 4]
        configuration.discriminatorWidths = [3, 4, 4]
        configuration.discriminatorSteps = 2
        configuration.encoderWidths = [3, 4]
        configuration.encoderHidden = 8
        configuration.nfm.keySize = 4
        configuration.nfm.valueSize = 4
        configuration.sampleEvery = 2
        configuration.checkpointEvery = 2
        configuration.fdSamples = 40
        configuration.iwaeImages = 4
        configuration.iwaeSamples = 3
        configuration.classifierSteps = 4
        return configuration
    }

    private func experiment(_ configuration: ExperimentConfiguration, root: String, name: String, resume: Bool = false) throws -> Experiment {
        Experiment(
            configuration: configuration, data: syntheticData(), run: try RunDirectory(name: name, root: root + "/runs", resume: resume),
            samplesRoot: root + "/samples", classifierDirectory: root + "/classifier", log: { _ in })
    }

    func testTinyGANWritesPicturesAndResumesExactly() throws {
        let root = try temporaryDirectory(self)
        // Straight through 5 steps.
        let straight = try XCTUnwrap(try experiment(tinyConfiguration(.gan, steps: 5), root: root, name: "straight").train())
        XCTAssertEqual(straight.steps, 5)
        XCTAssertTrue(straight.scores.frechetDistance.isFinite && straight.scores.frechetDistance >= 0)
        XCTAssertTrue(straight.scores.frechetDistanceFloor.isFinite)
        XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/classifier/model.safetensors"))
        let shares = try XCTUnwrap(straight.scores.generatedClassShares)
        XCTAssertEqual(shares.count, 10)
        XCTAssertEqual(shares.reduce(0, +), 1, accuracy: 1e-12)
        let divergence = try XCTUnwrap(straight.scores.classDivergence)
        XCTAssertEqual(straight.finalMetrics["eval/class_kl"], divergence)

        // Scoring the saved generator again draws the run's evaluation noise: the same FD and balance.
        let rescored = try CheckpointSampler.evaluate(
            checkpoint: root + "/runs/straight", data: syntheticData(), classifierDirectory: root + "/classifier", log: { _ in })
        XCTAssertEqual(rescored.checkpoint, root + "/runs/straight/checkpoints/step-000000005")
        XCTAssertEqual(rescored.scores.frechetDistance, straight.scores.frechetDistance, accuracy: 1e-9)
        XCTAssertEqual(rescored.scores, straight.scores)

        // A run finished before the class balance existed gets it recorded, and only from its own final model.
        let finalMetrics = root + "/runs/straight/final_metrics.json"
        var older = try XCTUnwrap(try FinalMetrics.read(directory: root + "/runs/straight"))
        older["eval/class_kl"] = nil
        try FinalMetrics.encode(older).write(to: URL(fileURLWithPath: finalMetrics))
        var other = rescored
        other.scores.frechetDistance *= 1.01
        XCTAssertThrowsError(try CheckpointSampler.record(other, inRun: root + "/runs/straight")) { error in
            XCTAssertTrue("\(error)".contains("not the model the run finished with"), "\(error)")
        }
        XCTAssertNil(try FinalMetrics.read(directory: root + "/runs/straight")?["eval/class_kl"], "a refused record writes nothing")
        try CheckpointSampler.record(rescored, inRun: root + "/runs/straight")
        XCTAssertEqual(try FinalMetrics.read(directory: root + "/runs/straight"), straight.finalMetrics)
        XCTAssertThrowsError(try CheckpointSampler.record(rescored, inRun: root + "/runs")) { error in
            XCTAssertTrue("\(error)".contains("has not finished"), "\(error)")
        }

        // 3 steps, then resumed to 5 from the checkpoint.
        let first = try XCTUnwrap(try experiment(tinyConfiguration(.gan, steps: 3), root: root, name: "split").train())
        XCTAssertEqual(first.steps, 3)
        let pictures = root + "/samples/gan-fashion-mnist-split"
        let samples = try PNGImage.read(contentsOf: pictures + "/samples.png")
        XCTAssertEqual(samples.width, 8 * (28 * 3 + 2) + 2, "an 8-wide grid of 3× upscaled images")
        let resumed = try XCTUnwrap(
            try experiment(tinyConfiguration(.gan, steps: 5), root: root, name: "split", resume: true).train(resumeFrom: root + "/runs/split"))
        XCTAssertEqual(resumed.steps, 5)
        let strips = try FileManager.default.contentsOfDirectory(atPath: pictures + "/progress").sorted()
        XCTAssertEqual(strips, ["step-000000002.png", "step-000000003.png", "step-000000004.png", "step-000000005.png"])
        let progress = try PNGImage.read(contentsOf: pictures + "/progress.png")
        let strip = try PNGImage.read(contentsOf: pictures + "/progress/step-000000002.png")
        XCTAssertEqual(progress.height, 4 * strip.height + 3 * 4, "one strip per sampling interval, across the resume")

        // The resumed run ends exactly where the straight one did.
        let straightWeights = try StateDict.load(contentsOf: root + "/runs/straight/checkpoints/step-000000005/generator.safetensors")
        let resumedWeights = try StateDict.load(contentsOf: root + "/runs/split/checkpoints/step-000000005/generator.safetensors")
        XCTAssertEqual(straightWeights.keys, resumedWeights.keys)
        for key in straightWeights.keys {
            switch (straightWeights[key], resumedWeights[key]) {
            case (.float(let a), .float(let b)): XCTAssertEqual(a.scalars, b.scalars, key)
            case (.int64(let a), .int64(let b)): XCTAssertEqual(a, b, key)
            default: XCTFail("\(key) has different kinds")
            }
        }
        XCTAssertEqual(resumed.scores.frechetDistance, straight.scores.frechetDistance, accuracy: 1e-9)

        // New samples from the saved generator.
        let output = try CheckpointSampler.writeSamples(checkpoint: root + "/runs/split", count: 5, seed: 3, samplesRoot: root + "/samples")
        XCTAssertEqual(output, pictures + "/sample-seed3-5.png")
        XCTAssertEqual(try PNGImage.read(contentsOf: output).height, 2 * (28 * 3 + 2) + 2)
    }

    func testTinyVAEWritesReconstructionsInterpolationsAndBounds() throws {
        let root = try temporaryDirectory(self)
        var configuration = tinyConfiguration(.vae, steps: 3)
        configuration.useNFM = false
        let result = try XCTUnwrap(try experiment(configuration, root: root, name: "vae").train())
        let pictures = root + "/samples/vae-fashion-mnist-vae"
        for name in ["samples.png", "progress.png", "reconstructions.png", "interpolations.png"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: pictures + "/" + name), name)
        }
        let elbo = try XCTUnwrap(result.testELBO)
        let iwae = try XCTUnwrap(result.testIWAE)
        XCTAssertTrue(elbo.isFinite && iwae.isFinite)
        XCTAssertLessThan(elbo, 0)
        XCTAssertEqual(try XCTUnwrap(result.testReconstruction) - (try XCTUnwrap(result.testKL)), elbo, accuracy: 1e-3)
        XCTAssertEqual(result.decoderParameters, configuration.baselineDecoder.parameterCount)
        let reconstructions = try PNGImage.read(contentsOf: pictures + "/reconstructions.png")
        XCTAssertEqual(reconstructions.height, 8 * (28 * 3 + 2) + 2, "32 inputs above their 32 reconstructions, 8 per row")
        // The decoder rescored from its checkpoint: the same samples, so the same FD and balance.
        let rescored = try CheckpointSampler.evaluate(
            checkpoint: root + "/runs/vae", data: syntheticData(), classifierDirectory: root + "/classifier", log: { _ in })
        XCTAssertEqual(rescored.scores.frechetDistance, result.scores.frechetDistance, accuracy: 1e-9)
        XCTAssertEqual(rescored.scores.classDivergence, try XCTUnwrap(result.scores.classDivergence))
    }

    func testMissingDataNamesTheFileAndTheSetupCommand() {
        XCTAssertThrowsError(try ImageData.load(.fashionMNIST, fashionMNISTDirectory: "/nonexistent-fashion")) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("/nonexistent-fashion/train-images-idx3-ubyte.gz"), message)
            XCTAssertTrue(message.contains("bash scripts/setup.sh"), message)
        }
    }
}
