import Envs
import XCTest

@testable import RLKit

final class TerminalPlayTests: XCTestCase {
    func testKeysDecodeToMinAtarActions() {
        var decoder = KeyDecoder()
        func decode(_ text: [UInt8]) -> [PlayCommand] { text.compactMap { decoder.feed($0) } }
        XCTAssertEqual(decode(Array("wasd f.nq".utf8)), [.action(2), .action(1), .action(4), .action(3), .action(5), .action(5), .action(0), .action(0), .quit])
        // Arrow keys: ESC [ A (up), B (down), C (right), D (left); ESC O A from keypad mode.
        XCTAssertEqual(decode([0x1B, 0x5B, 0x41, 0x1B, 0x5B, 0x42, 0x1B, 0x5B, 0x43, 0x1B, 0x5B, 0x44, 0x1B, 0x4F, 0x41]),
                       [.action(2), .action(4), .action(3), .action(1), .action(2)])
        XCTAssertEqual(decode([0x03]), [.quit], "Ctrl-C quits (raw mode turns off signals)")
        XCTAssertEqual(decode(Array("xyz".utf8)), [], "other keys do nothing")
    }

    func testPlainBoardShowsTheTopChannel() {
        var observation = [Float](repeating: 0, count: 400)
        observation[0 * 100 + 9 * 10 + 4] = 1  // paddle at row 9, column 4
        observation[1 * 100 + 5 * 10 + 2] = 1  // ball at row 5, column 2
        observation[2 * 100 + 5 * 10 + 2] = 1  // trail under it: the higher channel wins, as in MinAtar's display
        let text = BoardRenderer.render(observation: observation, channelNames: ["paddle", "ball", "trail", "brick"], color: false)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertEqual(lines[5], "..2.......")
        XCTAssertEqual(lines[9], "....0.....")
        XCTAssertEqual(lines[10], "0 paddle  1 ball  2 trail  3 brick")
        XCTAssertTrue(BoardRenderer.render(observation: observation, channelNames: ["paddle", "ball", "trail", "brick"], color: true)
            .contains("\u{1B}[48;2;230;25;75m  "), "the paddle's cell in the palette's first colour")
    }

    func testUnknownGameIsAnError() {
        XCTAssertThrowsError(try TerminalPlay(game: "pong", seed: 0, framesPerSecond: 0, stickyActionProbability: 0.1)) { error in
            XCTAssertEqual(error as? EnvironmentError, .unknownGame("pong", valid: Environment.gameNames))
        }
    }
}
