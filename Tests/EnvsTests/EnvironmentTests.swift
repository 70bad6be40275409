@testable import Envs
import XCTest

/// The `Environment` wrapper: names, action sets, channels, sticky actions and the terminal contract.
final class EnvironmentTests: XCTestCase {
    func testUnknownGameThrowsAndListsValidNames() {
        XCTAssertThrowsError(try Environment(game: "pong", seed: 0)) { error in
            let expected = EnvironmentError.unknownGame(
                "pong", valid: ["asterix", "breakout", "freeway", "seaquest", "space_invaders"])
            XCTAssertEqual(error as? EnvironmentError, expected)
            let text = String(describing: error)
            XCTAssertTrue(text.contains("\"pong\""), text)
            XCTAssertTrue(text.contains("asterix, breakout, freeway, seaquest, space_invaders"), text)
        }
        // MinAtar's module names are exact: no aliases.
        XCTAssertThrowsError(try Environment(game: "SpaceInvaders", seed: 0))
    }

    func testMinimalActionSetsMatchMinAtar() throws {
        // minimal_action_set() of each minatar/environments/*.py, as indices into ['n','l','u','r','d','f'].
        let expected: [String: [Int]] = [
            "asterix": [0, 1, 2, 3, 4],
            "breakout": [0, 1, 3],
            "freeway": [0, 2, 4],
            "seaquest": [0, 1, 2, 3, 4, 5],
            "space_invaders": [0, 1, 3, 5],
        ]
        XCTAssertEqual(Set(Environment.gameNames), Set(expected.keys))
        for (name, actions) in expected {
            let environment = try Environment(game: name, seed: 0)
            XCTAssertEqual(environment.minimalActionSet(), actions, name)
            XCTAssertEqual(environment.numActions, 6, name)
            XCTAssertEqual(environment.gameName, name)
        }
    }

    func testChannelsMatchMinAtar() throws {
        let expected: [String: [String]] = [
            "asterix": ["player", "enemy", "trail", "gold"],
            "breakout": ["paddle", "ball", "trail", "brick"],
            "freeway": ["chicken", "car", "speed1", "speed2", "speed3", "speed4", "speed5"],
            "seaquest": ["sub_front", "sub_back", "friendly_bullet", "trail", "enemy_bullet", "enemy_fish",
                         "enemy_sub", "oxygen_guage", "diver_guage", "diver"],
            "space_invaders": ["cannon", "alien", "alien_left", "alien_right", "friendly_bullet", "enemy_bullet"],
        ]
        for (name, channels) in expected {
            let environment = try Environment(game: name, seed: 3)
            XCTAssertEqual(environment.channelNames, channels, name)
            XCTAssertEqual(environment.observationShape, [channels.count, 10, 10], name)
            XCTAssertEqual(environment.observation().count, channels.count * 100, name)
        }
    }

    func testActionOrderFollowsMinAtarActionMap() {
        XCTAssertEqual(Action.allCases.map(\.rawValue), [0, 1, 2, 3, 4, 5])
        XCTAssertEqual(Action.fire.rawValue, 5)
        XCTAssertEqual(Action.up.rawValue, 2)
    }

    /// The sticky draw happens on every `act`, even with probability 0, so the game's draws come after it.
    func testStickyDrawHappensEveryStep() throws {
        var environment = try Environment(game: "breakout", seed: 11, stickyActionProbability: 0)
        var reference = NumpyRandomState(seed: 11)
        _ = reference.randomInteger(high: 2)  // Breakout's reset
        for _ in 0..<5 {
            _ = environment.act(3)
            _ = reference.randomSample()
            XCTAssertEqual(environment.lastAction, 3)
        }
        var copy = environment.random
        XCTAssertEqual(copy.nextUInt32(), reference.nextUInt32())
    }

    /// With probability 1 every action is replaced by the last executed one — 0 at first — and the last
    /// action survives `reset`.
    func testStickyActionsRepeatLastExecutedActionAcrossResets() throws {
        var environment = try Environment(game: "space_invaders", seed: 1, stickyActionProbability: 1)
        for action in [1, 3, 5] {
            _ = environment.act(action)
            XCTAssertEqual(environment.lastAction, 0)
        }
        var other = try Environment(game: "space_invaders", seed: 1, stickyActionProbability: 0)
        _ = other.act(4)
        other.reset()
        XCTAssertEqual(other.lastAction, 4, "reset must not clear the last action")
    }

    /// Once terminal, `act` returns (0, true) and changes nothing until `reset`, as in MinAtar.
    func testTerminalStateIsFrozenUntilReset() throws {
        for name in Environment.gameNames {
            var environment = try Environment(game: name, seed: 5, stickyActionProbability: 0)
            var steps = 0
            while !environment.isTerminal && steps < 10_000 {
                _ = environment.act(steps % 6)
                steps += 1
            }
            XCTAssertTrue(environment.isTerminal, "\(name) should end within 10000 random-ish steps")
            let frozen = environment.observation()
            // MinAtar's Environment.act draws the sticky-action uniform even when the game is over.
            var expectedStream = environment.random
            _ = expectedStream.randomSample()
            let result = environment.act(5)
            var actualStream = environment.random
            XCTAssertEqual(actualStream.nextUInt32(), expectedStream.nextUInt32(), "\(name): sticky draw when over")
            XCTAssertEqual(result.reward, 0, name)
            XCTAssertTrue(result.terminal, name)
            XCTAssertEqual(environment.observation(), frozen, name)
            environment.reset()
            XCTAssertFalse(environment.isTerminal, name)
        }
    }

    func testDifficultyRampIsNilOnlyForGamesWithoutRamp() throws {
        for name in Environment.gameNames {
            let environment = try Environment(game: name, seed: 0)
            if name == "breakout" || name == "freeway" {
                XCTAssertNil(environment.difficultyRamp, name)
            } else {
                XCTAssertEqual(environment.difficultyRamp, 0, name)
            }
        }
    }
}
