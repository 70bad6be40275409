// Playing episodes with a trained Q-network, and drawing them: the final evaluation of a run,
// `nfm-rl eval`, and the filmstrip PNG.

import Envs
import NFMIO
import NFMNN
import NFMTensor

/// One evaluation episode.
public struct EpisodeRecord: Sendable {
    /// The sum of rewards.
    public var totalReturn: Double
    /// Frames played.
    public var frames: Int
    /// Whether the episode was cut at the frame limit rather than ended by the game.
    public var truncated: Bool
    /// The observations seen, starting with the first (only as many as asked to record).
    public var observations: [[Float]]
}

/// Plays `episodes` episodes of `game` with `network` acting ε-greedily (ε = `epsilon`; 0 is greedy),
/// with MinAtar's sticky actions, in a fresh environment seeded with `seed`. Records the first
/// `recordFrames` observations of the first episode. The network runs in evaluation mode (batch norms
/// on running statistics).
public func playEpisodes(
    network: any QNetwork, game: String, seed: UInt32, episodes: Int, epsilon: Double, frameLimit: Int,
    stickyActionProbability: Double = 0.1, recordFrames: Int = 0, using generator: inout SeededGenerator
) throws -> [EpisodeRecord] {
    var environment = try Environment(game: game, seed: seed, stickyActionProbability: stickyActionProbability)
    network.eval()
    let count = environment.observationCount
    var input = Tensor(zeros: [1] + environment.observationShape)
    var records: [EpisodeRecord] = []
    for episode in 0..<episodes {
        if episode > 0 { environment.reset() }
        var record = EpisodeRecord(totalReturn: 0, frames: 0, truncated: false, observations: [])
        while true {
            if episode == 0 && record.observations.count < recordFrames { record.observations.append(environment.observation()) }
            if record.frames >= frameLimit {
                record.truncated = true
                break
            }
            let action: Int
            if epsilon > 0 && Double(generator.nextUniform()) < epsilon {
                action = generator.nextIndex(below: environment.numActions)
            } else {
                input = Tensor(shape: input.shape) { environment.observation(into: UnsafeMutableBufferPointer(rebasing: $0[0..<count])) }
                let values = withoutGradient { network(input) }
                action = values.withHostCopy { greedyAction($0) }
            }
            let (reward, terminal) = environment.act(action)
            record.totalReturn += Double(reward)
            record.frames += 1
            if terminal {
                if episode == 0 && record.observations.count < recordFrames { record.observations.append(environment.observation()) }
                break
            }
        }
        records.append(record)
    }
    return records
}

/// Draws MinAtar observations as a grid of frames, one coloured cell per board cell.
///
/// Each cell takes the colour of the highest-numbered channel set there, as MinAtar's own display
/// does (`np.amax(state * (channel + 1))`), on a dark background; the palette is fixed per channel
/// index (10 distinguishable colours, enough for Seaquest's 10 channels).
public enum Filmstrip {
    /// Colours of channels 0…9, and the background.
    public static let palette: [RGBColor] = [
        RGBColor(red: 230, green: 25, blue: 75), RGBColor(red: 60, green: 180, blue: 75),
        RGBColor(red: 255, green: 225, blue: 25), RGBColor(red: 0, green: 130, blue: 200),
        RGBColor(red: 245, green: 130, blue: 48), RGBColor(red: 145, green: 30, blue: 180),
        RGBColor(red: 70, green: 240, blue: 240), RGBColor(red: 240, green: 50, blue: 230),
        RGBColor(red: 210, green: 245, blue: 60), RGBColor(red: 250, green: 190, blue: 212),
    ]
    /// The colour of an empty cell.
    public static let background = RGBColor(red: 20, green: 20, blue: 28)

    /// The colour of board cell `cell` (row · 10 + column) of a CHW observation with `channels` channels.
    public static func color(of observation: [Float], cell: Int, channels: Int) -> RGBColor {
        for channel in stride(from: channels - 1, through: 0, by: -1) where observation[channel * cellsPerChannel + cell] > 0.5 {
            return palette[channel % palette.count]
        }
        return background
    }

    /// The observations as one RGB image: `columns` frames per row, each cell `scale` pixels wide.
    public static func image(observations: [[Float]], channels: Int, columns: Int = 12, scale: Int = 8) -> PNGImage {
        precondition(!observations.isEmpty, "Filmstrip.image: no observations")
        var rgb = [Float](repeating: 0, count: observations.count * 3 * cellsPerChannel)
        for (index, observation) in observations.enumerated() {
            precondition(observation.count == channels * cellsPerChannel, "Filmstrip.image: observation \(index) has \(observation.count) values, expected \(channels * cellsPerChannel)")
            for cell in 0..<cellsPerChannel {
                let color = color(of: observation, cell: cell, channels: channels)
                let base = index * 3 * cellsPerChannel + cell
                rgb[base] = Float(color.red) / 255
                rgb[base + cellsPerChannel] = Float(color.green) / 255
                rgb[base + 2 * cellsPerChannel] = Float(color.blue) / 255
            }
        }
        let grid = ImageGrid(columns: Swift.min(columns, observations.count), padding: 2, paddingColor: RGBColor(gray: 90), scale: scale)
        return grid.render(rgb, count: observations.count, channels: 3, height: boardSize, width: boardSize)
    }
}
