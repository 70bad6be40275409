import Foundation
import NFMIO
import NFMTensor

/// Writes the pictures of a run: sample grids, the fixed-noise progress strips, VAE reconstructions
/// and interpolations. Every image is a PNG of 8-bit RGB, each pixel upscaled to `scale × scale`.
public struct Pictures: Sendable {
    /// The folder the pictures go into (created on first write).
    public let directory: String
    /// The upscaling factor (3 turns 28×28 into 84×84).
    public let scale: Int

    /// Pictures under `directory`.
    public init(directory: String, scale: Int = 3) {
        self.directory = directory
        self.scale = scale
    }

    /// The path of `name` inside the folder.
    public func path(_ name: String) -> String { directory + "/" + name }

    /// Writes images [N, C, H, W] in [0, 1] as a grid with `columns` per row (near-square if nil)
    /// to `name` and returns its path.
    @discardableResult
    public func writeGrid(_ images: Tensor, columns: Int? = nil, name: String) throws -> String {
        let image = Pictures.render(images, columns: columns, scale: scale)
        let target = path(name)
        try FileManager.default.createDirectory(
            atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try image.write(to: target)
        return target
    }

    /// Renders images [N, C, H, W] in [0, 1] as one RGB grid image.
    public static func render(_ images: Tensor, columns: Int? = nil, scale: Int) -> PNGImage {
        precondition(images.rank == 4, "Pictures: images must be [N, C, H, W], got \(images.shape)")
        let grid = ImageGrid(columns: columns, padding: 2, scale: scale, range: 0...1)
        return grid.render(
            images.scalars, count: images.shape[0], channels: images.shape[1], height: images.shape[2], width: images.shape[3])
    }

    /// Stacks RGB images of equal width top to bottom, `gap` grey rows between them.
    public static func stackVertically(_ images: [PNGImage], gap: Int = 4) -> PNGImage {
        precondition(!images.isEmpty, "stackVertically: needs at least one image")
        let width = images.map(\.width).max()!
        let height = images.reduce(0) { $0 + $1.height } + gap * (images.count - 1)
        var pixels = [UInt8](repeating: 128, count: width * height * 3)
        var top = 0
        for image in images {
            precondition(image.channels == 3, "stackVertically: images must be RGB")
            for row in 0..<image.height {
                let source = row * image.width * 3
                let target = ((top + row) * width) * 3
                for offset in 0..<(image.width * 3) { pixels[target + offset] = image.pixels[source + offset] }
            }
            top += image.height + gap
        }
        return PNGImage(width: width, height: height, channels: 3, pixels: pixels)
    }

    /// Writes one fixed-noise strip for `step` under `progress/` and rebuilds `progress.png` from every
    /// strip written so far (earliest on top), so a resumed run keeps its history. Returns the path
    /// of `progress.png`.
    @discardableResult
    public func writeProgressStrip(_ images: Tensor, step: Int) throws -> String {
        try writeGrid(images, columns: images.shape[0], name: String(format: "progress/step-%09d.png", step))
        let folder = path("progress")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasPrefix("step-") && $0.hasSuffix(".png") }.sorted()
        let strips = try names.map { try PNGImage.read(contentsOf: folder + "/" + $0) }
        let target = path("progress.png")
        try Pictures.stackVertically(strips).write(to: target)
        return target
    }

    /// Interleaves inputs and reconstructions [N, C, H, W] row by row: `columns` inputs, then their
    /// reconstructions right below, and so on.
    public static func inputsAboveOutputs(inputs: Tensor, outputs: Tensor, columns: Int) -> Tensor {
        precondition(inputs.shape == outputs.shape, "inputsAboveOutputs: \(inputs.shape) and \(outputs.shape) differ")
        var rows: [Tensor] = []
        var start = 0
        while start < inputs.shape[0] {
            let end = Swift.min(inputs.shape[0], start + columns)
            rows.append(inputs.sliced(alongAxis: 0, from: start, to: end))
            rows.append(outputs.sliced(alongAxis: 0, from: start, to: end))
            start = end
        }
        return Tensor.concatenate(rows, alongAxis: 0)
    }

    /// Latent codes on straight lines: for each pair (a, b) of rows of `start` and `end`, `steps` points
    /// a + t(b − a) with t from 0 to 1. [pairs · steps, latent].
    public static func interpolate(from start: Tensor, to end: Tensor, steps: Int) -> Tensor {
        precondition(start.shape == end.shape && start.rank == 2 && steps >= 2, "interpolate: [N, latent] pairs and at least 2 steps needed")
        var rows: [Tensor] = []
        for pair in 0..<start.shape[0] {
            let a = start.sliced(alongAxis: 0, from: pair, to: pair + 1)
            let b = end.sliced(alongAxis: 0, from: pair, to: pair + 1)
            for index in 0..<steps {
                let t = Float(index) / Float(steps - 1)
                rows.append(a + t * (b - a))
            }
        }
        return Tensor.concatenate(rows, alongAxis: 0)
    }
}
