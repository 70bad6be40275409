import NFMOptimizers
import NFMTensor
import XCTest

/// clip_grad_norm_ and the learning-rate schedulers against torch (clip_grad_norm.json, lr_schedules.json).
final class ClippingAndScheduleTests: XCTestCase {
    func testClipGradientNormMatchesTorch() {
        let cases = loadFixture("clip_grad_norm")["cases"] as! [[String: Any]]
        XCTAssertEqual(cases.count, 4)
        for testCase in cases {
            let name = testCase["name"] as! String
            let inputs = (testCase["gradients"] as! [Any]).map(fixtureTensor)
            let clipped = (testCase["clipped"] as! [Any]).map(fixtureTensor)
            var gradients = Dictionary(uniqueKeysWithValues: inputs.enumerated().map { ("g\($0)", $1) })
            let maxNorm = (testCase["maxNorm"] as! NSNumber).floatValue
            let total = clipGradientNorm(&gradients, maxNorm: maxNorm)
            let expectedTotal = (testCase["totalNorm"] as! NSNumber).floatValue
            XCTAssertEqual(total, expectedTotal, accuracy: 1e-5 * expectedTotal, name)
            for (index, expected) in clipped.enumerated() {
                assertClose(gradients["g\(index)"]!, expected, absolute: 0, "\(name) gradient \(index)")
            }
            if name == "below_max_unchanged" {
                for (index, input) in inputs.enumerated() { XCTAssertEqual(gradients["g\(index)"]!.scalars, input.scalars) }
            }
        }
    }

    /// The factor lr_schedules.json's LambdaLR case uses: 4 steps of linear warm-up, then ×0.9 per step.
    static let warmupThenDecay: @Sendable (Int) -> Double = { epoch in
        min(1.0, Double(epoch + 1) / 4) * pow(0.9, Double(max(0, epoch - 3)))
    }

    func testSchedulesMatchTorchGetLastLR() {
        let cases = loadFixture("lr_schedules")["cases"] as! [[String: Any]]
        XCTAssertEqual(cases.count, 5)
        for testCase in cases {
            let name = testCase["name"] as! String
            let base = (testCase["baseLearningRate"] as! NSNumber).doubleValue
            let parameters = testCase["parameters"] as! [String: NSNumber]
            let schedule: any LearningRateSchedule
            switch name {
            case "StepLR":
                schedule = StepLR(
                    baseLearningRate: base, stepSize: parameters["stepSize"]!.intValue, gamma: parameters["gamma"]!.doubleValue)
            case "CosineAnnealingLR":
                schedule = CosineAnnealingLR(
                    baseLearningRate: base, annealingSteps: parameters["annealingSteps"]!.intValue,
                    minimumLearningRate: parameters["minimumLearningRate"]!.doubleValue)
            case "LinearLR" where parameters.isEmpty:
                schedule = LinearLR(baseLearningRate: base)  // torch's defaults
            case "LinearLR":
                schedule = LinearLR(
                    baseLearningRate: base, startFactor: parameters["startFactor"]!.doubleValue,
                    endFactor: parameters["endFactor"]!.doubleValue, totalSteps: parameters["totalSteps"]!.intValue)
            case "LambdaLR":
                schedule = LambdaLR(baseLearningRate: base, factor: Self.warmupThenDecay)
            default:
                XCTFail("unknown schedule \(name)")
                continue
            }
            let expected = (testCase["learningRates"] as! [NSNumber]).map(\.doubleValue)
            for (step, rate) in expected.enumerated() {
                // torch's get_last_lr() comes from its recursive forms: equal to the closed forms up
                // to double rounding.
                XCTAssertEqual(schedule.learningRate(at: step), rate, accuracy: 1e-12 * rate, "\(name) step \(step)")
            }
        }
    }
}
