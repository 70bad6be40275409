// `nfm-rl play`: a person plays a MinAtar game in the terminal. On a terminal, stdin is put in raw
// mode (termios) so that single keys act at once: arrows or WASD move, space or F fires, '.' or N
// waits a frame, Q (or Ctrl-C) quits. The board is drawn with 24-bit ANSI background colours, the
// filmstrip's palette. When stdin is not a terminal (a pipe, a file) each character read is a key
// and an empty line is a no-op, so the game can be scripted.

import Envs
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// What a key press asks for.
public enum PlayCommand: Equatable, Sendable {
    /// Play a frame with this MinAtar action (0 no-op, 1 left, 2 up, 3 right, 4 down, 5 fire).
    case action(Int)
    /// Leave the game.
    case quit
}

/// Turns raw terminal bytes into commands, including the three-byte arrow-key sequences `ESC [ A…D`.
public struct KeyDecoder: Sendable {
    private var pending: [UInt8] = []

    /// A decoder with nothing pending.
    public init() {}

    /// Feeds one byte; returns a command once a key is complete, nil while a sequence is incomplete
    /// or for a key that means nothing.
    public mutating func feed(_ byte: UInt8) -> PlayCommand? {
        if !pending.isEmpty {
            pending.append(byte)
            if pending.count == 2 {
                if byte == UInt8(ascii: "[") || byte == UInt8(ascii: "O") { return nil }
                pending.removeAll()
                return nil
            }
            pending.removeAll()
            switch byte {
            case UInt8(ascii: "A"): return .action(Action.up.rawValue)
            case UInt8(ascii: "B"): return .action(Action.down.rawValue)
            case UInt8(ascii: "C"): return .action(Action.right.rawValue)
            case UInt8(ascii: "D"): return .action(Action.left.rawValue)
            default: return nil
            }
        }
        switch byte {
        case 0x1B:
            pending = [byte]
            return nil
        case UInt8(ascii: "w"), UInt8(ascii: "W"): return .action(Action.up.rawValue)
        case UInt8(ascii: "a"), UInt8(ascii: "A"): return .action(Action.left.rawValue)
        case UInt8(ascii: "s"), UInt8(ascii: "S"): return .action(Action.down.rawValue)
        case UInt8(ascii: "d"), UInt8(ascii: "D"): return .action(Action.right.rawValue)
        case UInt8(ascii: " "), UInt8(ascii: "f"), UInt8(ascii: "F"): return .action(Action.fire.rawValue)
        case UInt8(ascii: "."), UInt8(ascii: "n"), UInt8(ascii: "N"): return .action(Action.noOperation.rawValue)
        case UInt8(ascii: "q"), UInt8(ascii: "Q"), 0x03, 0x04: return .quit  // q, Ctrl-C, Ctrl-D
        default: return nil
        }
    }
}

/// Draws a MinAtar observation as text.
public enum BoardRenderer {
    /// The board as lines: with `color`, two spaces per cell on the channel's ANSI 24-bit background;
    /// without, one character per cell (the channel's index, or '.' when empty), then a legend.
    public static func render(observation: [Float], channelNames: [String], color: Bool) -> String {
        let channels = channelNames.count
        var text = ""
        for row in 0..<boardSize {
            for column in 0..<boardSize {
                let cell = row * boardSize + column
                if color {
                    let rgb = Filmstrip.color(of: observation, cell: cell, channels: channels)
                    text += "\u{1B}[48;2;\(rgb.red);\(rgb.green);\(rgb.blue)m  "
                } else {
                    var symbol = "."
                    for channel in stride(from: channels - 1, through: 0, by: -1) where observation[channel * cellsPerChannel + cell] > 0.5 {
                        symbol = String(channel % 10)
                        break
                    }
                    text += symbol
                }
            }
            text += color ? "\u{1B}[0m\n" : "\n"
        }
        let legend = channelNames.enumerated().map { index, name in
            if color {
                let rgb = Filmstrip.palette[index % Filmstrip.palette.count]
                return "\u{1B}[48;2;\(rgb.red);\(rgb.green);\(rgb.blue)m  \u{1B}[0m \(name)"
            }
            return "\(index % 10) \(name)"
        }
        return text + legend.joined(separator: "  ") + "\n"
    }
}

/// An interactive game in the terminal.
public struct TerminalPlay {
    /// The game's MinAtar name.
    public let game: String
    /// The environment's seed.
    public let seed: UInt32
    /// Frames per second in real-time mode; 0 plays one frame per key.
    public let framesPerSecond: Double
    /// MinAtar's sticky-action probability (0.1 as in the benchmark; 0 for a crisper game).
    public let stickyActionProbability: Double

    /// A game to play; throws `EnvironmentError.unknownGame` (listing the valid names) for a bad name.
    public init(game: String, seed: UInt32, framesPerSecond: Double, stickyActionProbability: Double) throws {
        _ = try Environment(game: game, seed: seed)  // checks the name
        self.game = game
        self.seed = seed
        self.framesPerSecond = framesPerSecond
        self.stickyActionProbability = stickyActionProbability
    }

    /// Plays until the player quits (or stdin ends); returns the returns of the finished episodes.
    @discardableResult
    public func run() throws -> [Double] {
        var environment = try Environment(game: game, seed: seed, stickyActionProbability: stickyActionProbability)
        let interactive = isatty(STDIN_FILENO) == 1
        let color = isatty(STDOUT_FILENO) == 1
        let rawMode = interactive ? RawTerminal() : nil
        defer { rawMode?.restore() }
        var input = KeyInput(interactive: interactive)
        var returns: [Double] = []
        var episodeReturn = 0.0
        var frames = 0
        let help = "arrows/WASD move · space/F fire · '.'/N wait · Q quit"
        func draw(_ status: String) {
            let board = BoardRenderer.render(observation: environment.observation(), channelNames: environment.channelNames, color: color)
            let screen = (color ? "\u{1B}[H\u{1B}[2J" : "") + "MinAtar \(environment.gameName) · frame \(frames) · return \(formatReturn(episodeReturn))\n"
                + board + status + "\n"
            let lines = interactive ? screen.replacingOccurrences(of: "\n", with: "\r\n") : screen
            FileHandle.standardOutput.write(Data(lines.utf8))
        }
        draw(help)
        let timeout = framesPerSecond > 0 ? 1 / framesPerSecond : nil
        while true {
            let command: PlayCommand
            switch input.next(timeout: timeout) {
            case .command(let next): command = next
            case .timedOut: command = .action(Action.noOperation.rawValue)
            case .endOfInput: command = .quit
            }
            guard case .action(let action) = command else { break }
            let (reward, terminal) = environment.act(action)
            episodeReturn += Double(reward)
            frames += 1
            if terminal {
                returns.append(episodeReturn)
                draw("game over: return \(formatReturn(episodeReturn)) in \(frames) frames. A key starts a new game; Q quits.")
                let answer = input.next(timeout: nil)
                if case .endOfInput = answer { break }
                if case .command(.quit) = answer { break }
                environment.reset()
                (episodeReturn, frames) = (0, 0)
                draw(help)
            } else {
                draw(help)
            }
        }
        if !interactive || !color { print("") }
        let summary = returns.isEmpty ? "no finished episode" : "returns: " + returns.map(formatReturn).joined(separator: ", ")
        FileHandle.standardOutput.write(Data((summary + (interactive ? "\r\n" : "\n")).utf8))
        return returns
    }
}

/// The result of waiting for a key.
enum KeyEvent {
    case command(PlayCommand)
    case timedOut
    case endOfInput
}

/// Reads commands from stdin: single keys on a raw terminal, or characters of lines from a pipe,
/// where an empty line is one no-op and the newline ending a non-empty line is ignored.
struct KeyInput {
    let interactive: Bool
    var decoder = KeyDecoder()
    /// Whether the last byte read from a pipe ended a line (true at the start).
    var atLineStart = true

    init(interactive: Bool) { self.interactive = interactive }

    /// The next command; waits at most `timeout` seconds (nil: for ever) for a key on a terminal.
    mutating func next(timeout: Double?) -> KeyEvent {
        let deadline = timeout.map { DispatchTime.now().uptimeNanoseconds + UInt64($0 * 1e9) }
        while true {
            if interactive, let deadline {
                let now = DispatchTime.now().uptimeNanoseconds
                if now >= deadline { return .timedOut }
                var descriptor = pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0)
                let ready = poll(&descriptor, 1, Int32((deadline - now) / 1_000_000) + 1)
                if ready == 0 { return .timedOut }
                if ready < 0 {
                    if errno == EINTR { continue }
                    return .endOfInput
                }
            }
            var byte: UInt8 = 0
            let count = read(STDIN_FILENO, &byte, 1)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { return .endOfInput }
            if !interactive {
                let newline = byte == UInt8(ascii: "\n")
                defer { atLineStart = newline }
                if newline {
                    if atLineStart { return .command(.action(Action.noOperation.rawValue)) }
                    continue
                }
            }
            if let command = decoder.feed(byte) { return .command(command) }
        }
    }
}

/// Raw mode for the controlling terminal: no line buffering, no echo, no signals from keys (Ctrl-C
/// arrives as a byte and quits cleanly), cursor hidden; `restore()` undoes it all.
final class RawTerminal {
    private var original = termios()

    init() {
        tcgetattr(STDIN_FILENO, &original)
        var raw = original
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO | ISIG | IEXTEN)
        raw.c_iflag &= ~tcflag_t(IXON | ICRNL)
        raw.c_oflag &= ~tcflag_t(OPOST)
        withUnsafeMutableBytes(of: &raw.c_cc) { bytes in
            bytes[Int(VMIN)] = 1
            bytes[Int(VTIME)] = 0
        }
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw)
        FileHandle.standardOutput.write(Data("\u{1B}[?25l".utf8))
    }

    func restore() {
        FileHandle.standardOutput.write(Data("\u{1B}[0m\u{1B}[?25h".utf8))
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &original)
    }
}
