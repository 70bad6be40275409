import NFMOptimizers
import NFMTensor
import XCTest

/// Replays torch.optim trajectories (Fixtures/optimizers.json) step by step.
final class OptimizerTests: XCTestCase {
    let fixture = OptimizerFixture.shared

    /// Runs `optimizer` over the fixture's gradients for `steps` from `parameters`, checking each
    /// step against torch's trajectory.
    private func replay(
        _ optimizer: any Optimizer, from parameters: inout [(name: String, tensor: Tensor)], steps: Range<Int>,
        case testCase: OptimizerCase
    ) {
        for step in steps {
            optimizer.update(&parameters, gradients: fixture.gradients[step])
            for (name, tensor) in parameters {
                assertClose(tensor, testCase.trajectory[step][name]!, "\(testCase.name) step \(step + 1) '\(name)'")
            }
        }
    }

    func testFixtureCoversEveryConfiguration() {
        XCTAssertEqual(
            fixture.cases.map(\.name),
            [
                "sgd_plain", "sgd_momentum_dampening", "sgd_nesterov_weight_decay", "adam", "adam_amsgrad_weight_decay",
                "adamw", "adamw_amsgrad", "rmsprop_plain", "rmsprop_centered_momentum", "rmsprop_dqn",
            ])
        // The skip is exercised: some steps have no bias gradient, and no step has one for "frozen.scale".
        XCTAssertTrue(fixture.gradients.contains { $0["layer.bias"] == nil })
        XCTAssertTrue(fixture.gradients.allSatisfy { $0["frozen.scale"] == nil })
    }

    func testTrajectoriesMatchTorch() {
        for testCase in fixture.cases {
            var parameters = fixture.initialList
            replay(testCase.makeOptimizer(), from: &parameters, steps: 0..<fixture.gradients.count, case: testCase)
        }
    }

    func testParameterWithoutGradientIsNeverTouchedAndGetsNoState() {
        for testCase in fixture.cases {
            let optimizer = testCase.makeOptimizer()
            var parameters = fixture.initialList
            for gradients in fixture.gradients { optimizer.update(&parameters, gradients: gradients) }
            // Exactly equal: not even weight decay may reach a parameter that had no gradient.
            XCTAssertEqual(parameters[2].tensor.scalars, fixture.initialParameters["frozen.scale"]!.scalars, testCase.name)
            let state = optimizer.stateDict(parameterOrder: fixture.parameterOrder)
            XCTAssertFalse(state.keys.contains { $0.hasPrefix("state.2.") }, "\(testCase.name): \(state.keys.sorted())")
        }
    }

    func testStateDictAtStep10MatchesTorchNamesAndValues() {
        for testCase in fixture.cases {
            let optimizer = testCase.makeOptimizer()
            var parameters = fixture.initialList
            for step in 0..<testCase.stateStep { optimizer.update(&parameters, gradients: fixture.gradients[step]) }
            let state = optimizer.stateDict(parameterOrder: fixture.parameterOrder)
            XCTAssertEqual(state.keys.sorted(), testCase.state.keys.sorted(), testCase.name)
            for (key, expected) in testCase.state {
                guard let actual = state[key] else { continue }
                if key.hasSuffix(".step") {
                    // Per parameter: the bias missed steps 1, 4 and 5, so its count lags the weight's.
                    XCTAssertEqual(actual.shape, [], "\(testCase.name) \(key)")
                    XCTAssertEqual(actual.item, expected.item, "\(testCase.name) \(key)")
                } else {
                    assertClose(actual, expected, "\(testCase.name) \(key)")
                }
            }
        }
    }

    /// Checkpoint at step 10, keep training the original for 10 more steps, then restore the
    /// checkpoint into a fresh optimizer: it must retrace the original exactly. Training on after
    /// the snapshot also checks that the snapshot did not change under the later updates.
    func testResumingFromOwnStateDictRetracesTheTrajectory() {
        for testCase in fixture.cases {
            let original = testCase.makeOptimizer()
            // The dictionary form of update here; the list form elsewhere.
            var parameters = fixture.initialParameters
            for step in 0..<10 { original.update(&parameters, gradients: fixture.gradients[step]) }
            let checkpoint = original.stateDict(parameterOrder: fixture.parameterOrder)
            let checkpointParameters = parameters
            var continued: [[String: Tensor]] = []
            for step in 10..<fixture.gradients.count {
                original.update(&parameters, gradients: fixture.gradients[step])
                continued.append(parameters)
            }

            let resumed = testCase.makeOptimizer()
            let list = fixture.parameterOrder.map { (name: $0, tensor: checkpointParameters[$0]!) }
            XCTAssertNoThrow(try resumed.load(stateDict: checkpoint, parameters: list), testCase.name)
            var resumedParameters = checkpointParameters
            for (offset, step) in (10..<fixture.gradients.count).enumerated() {
                resumed.update(&resumedParameters, gradients: fixture.gradients[step])
                for name in fixture.parameterOrder {
                    XCTAssertEqual(
                        resumedParameters[name]!.scalars, continued[offset][name]!.scalars,
                        "\(testCase.name) step \(step + 1) '\(name)': resumed run differs")
                    assertClose(resumedParameters[name]!, testCase.trajectory[step][name]!, "\(testCase.name) step \(step + 1)")
                }
            }
        }
    }

    /// Loads torch's own state dict at step 10 (with torch's parameters) and finishes torch's run.
    func testResumingFromTorchStateDictFinishesTorchTrajectory() throws {
        for testCase in fixture.cases {
            let optimizer = testCase.makeOptimizer()
            var parameters = fixture.parameterOrder.map { (name: $0, tensor: testCase.trajectory[testCase.stateStep - 1][$0]!) }
            try optimizer.load(stateDict: testCase.state, parameters: parameters)
            replay(optimizer, from: &parameters, steps: testCase.stateStep..<fixture.gradients.count, case: testCase)
        }
    }

    func testLoadRejectsMissingMisshapenAndUnexpectedEntriesAndKeepsItsState() throws {
        let adam = fixture.cases.first { $0.name == "adam_amsgrad_weight_decay" }!
        let parameters = fixture.initialList
        let optimizer = adam.makeOptimizer()
        try optimizer.load(stateDict: adam.state, parameters: parameters)

        func expectError(_ stateDict: [String: Tensor], _ expected: OptimizerStateError, mentioning words: [String]) {
            XCTAssertThrowsError(try optimizer.load(stateDict: stateDict, parameters: parameters)) { error in
                XCTAssertEqual(error as? OptimizerStateError, expected)
                for word in words { XCTAssertTrue("\(error)".contains(word), "'\(error)' does not mention \(word)") }
            }
        }
        var missing = adam.state
        missing["state.1.max_exp_avg_sq"] = nil
        expectError(
            missing, .missingEntry(key: "state.1.max_exp_avg_sq", expectedShape: [4]),
            mentioning: ["state.1.max_exp_avg_sq", "[4]"])

        var misshapen = adam.state
        misshapen["state.0.exp_avg"] = Tensor(zeros: [12])
        expectError(
            misshapen, .shapeMismatch(key: "state.0.exp_avg", expectedShape: [3, 4], foundShape: [12]),
            mentioning: ["state.0.exp_avg", "[3, 4]", "[12]"])

        var vectorStep = adam.state
        vectorStep["state.0.step"] = Tensor([10])
        expectError(
            vectorStep, .shapeMismatch(key: "state.0.step", expectedShape: [], foundShape: [1]), mentioning: ["state.0.step"])

        var fractionalStep = adam.state
        fractionalStep["state.1.step"] = Tensor(2.5)
        expectError(fractionalStep, .invalidStep(key: "state.1.step", value: 2.5), mentioning: ["state.1.step"])

        var foreign = adam.state
        foreign["state.0.momentum_buffer"] = Tensor(zeros: [3, 4])
        expectError(foreign, .unexpectedEntry(key: "state.0.momentum_buffer"), mentioning: ["state.0.momentum_buffer"])

        var beyond = adam.state
        beyond["state.3.step"] = Tensor(1)
        expectError(beyond, .unexpectedEntry(key: "state.3.step"), mentioning: ["state.3.step"])

        // A failed load changes nothing.
        let kept = optimizer.stateDict(parameterOrder: fixture.parameterOrder)
        XCTAssertEqual(kept.keys.sorted(), adam.state.keys.sorted())
        for (key, value) in adam.state { XCTAssertEqual(kept[key]?.scalars, value.scalars, key) }

        // An SGD state (momentum buffers only) does not load into Adam.
        let sgd = fixture.cases.first { $0.name == "sgd_momentum_dampening" }!
        XCTAssertThrowsError(try optimizer.load(stateDict: sgd.state, parameters: parameters))
    }

    func testUpdateWritesInPlaceAndKeepsValueSemantics() {
        let optimizer = Adam(learningRate: 0.1)
        var parameters = ["w": Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])]
        let gradients = ["w": Tensor(repeating: 0.5, shape: [2, 3])]
        optimizer.update(&parameters, gradients: gradients)  // creates the state

        // Unshared storage is updated where it lies: no copy of a 6.9M-element model per step.
        let buffer = ObjectIdentifier(parameters["w"]!.buffer)
        optimizer.update(&parameters, gradients: gradients)
        XCTAssertEqual(ObjectIdentifier(parameters["w"]!.buffer), buffer)

        // A copy held elsewhere is not changed by the update (copy on write).
        let before = parameters["w"]!.scalars
        let snapshot = parameters
        optimizer.update(&parameters, gradients: gradients)
        XCTAssertNotEqual(parameters["w"]!.scalars, before)
        XCTAssertEqual(snapshot["w"]!.scalars, before)
    }
}
