// Image grids: a batch of generated or input images as one viewable PNG, like torchvision's
// make_grid. Works on a plain Float32 NCHW buffer so that it needs no tensor type.

/// Lays out a batch of images (Float32, NCHW) in a grid, as one RGB ``PNGImage``.
///
/// Images fill the grid row by row. Every cell is surrounded by `padding` pixels of
/// `paddingColor` (so the outer border and the gaps between cells are equally wide), and empty cells
/// at the end of the last row are filled with `paddingColor`. Each image pixel becomes a
/// `scale × scale` block (nearest neighbour), so 28×28 images can be looked at; `padding` is in
/// output pixels and is not scaled.
public struct ImageGrid: Sendable {
    /// Images per row; nil chooses ⌈√count⌉, which gives a near-square grid.
    public var columns: Int?
    /// Pixels between cells and around the border.
    public var padding: Int
    /// The colour of the padding and of empty cells.
    public var paddingColor: RGBColor
    /// Integer upscaling factor (nearest neighbour).
    public var scale: Int
    /// The value range that maps to 0…255: `range.lowerBound` is black, `range.upperBound` is
    /// white, values outside are clamped, and NaN is drawn black.
    public var range: ClosedRange<Float>

    /// A grid layout. The defaults suit images in 0…1; pass `range: -1...1` for tanh outputs.
    public init(
        columns: Int? = nil, padding: Int = 2, paddingColor: RGBColor = RGBColor(gray: 128), scale: Int = 1,
        range: ClosedRange<Float> = 0...1
    ) {
        precondition(columns.map { $0 > 0 } ?? true, "ImageGrid: columns must be positive, got \(columns!)")
        precondition(padding >= 0, "ImageGrid: padding must be non-negative, got \(padding)")
        precondition(scale >= 1, "ImageGrid: scale must be at least 1, got \(scale)")
        precondition(range.lowerBound < range.upperBound, "ImageGrid: range \(range) is empty")
        self.columns = columns
        self.padding = padding
        self.paddingColor = paddingColor
        self.scale = scale
        self.range = range
    }

    /// The (rows, columns) this grid uses for `count` images.
    public func layout(count: Int) -> (rows: Int, columns: Int) {
        precondition(count > 0, "ImageGrid: needs at least one image")
        var columnCount = columns ?? Int(Float(count).squareRoot().rounded(.up))
        // Guard against floating-point error in the square root (e.g. 49 must give 7, not 8).
        if columns == nil {
            while (columnCount - 1) * (columnCount - 1) >= count { columnCount -= 1 }
            while columnCount * columnCount < count { columnCount += 1 }
        }
        columnCount = min(columnCount, count)
        return ((count + columnCount - 1) / columnCount, columnCount)
    }

    /// Renders `images`, a row-major buffer of shape (count, channels, height, width) with 1 (gray,
    /// replicated to RGB) or 3 channels, as an RGB image.
    public func render(_ images: [Float], count: Int, channels: Int, height: Int, width: Int) -> PNGImage {
        precondition(channels == 1 || channels == 3, "ImageGrid: channels must be 1 or 3, got \(channels)")
        precondition(height > 0 && width > 0, "ImageGrid: image size \(height)×\(width) must be positive")
        precondition(
            images.count == count * channels * height * width,
            "ImageGrid: shape [\(count), \(channels), \(height), \(width)] needs \(count * channels * height * width) values, got \(images.count)"
        )
        let (rows, columnCount) = layout(count: count)
        let cellWidth = width * scale
        let cellHeight = height * scale
        let outputWidth = columnCount * cellWidth + (columnCount + 1) * padding
        let outputHeight = rows * cellHeight + (rows + 1) * padding

        var pixels = [UInt8](repeating: 0, count: outputWidth * outputHeight * 3)
        for index in stride(from: 0, to: pixels.count, by: 3) {
            pixels[index] = paddingColor.red
            pixels[index + 1] = paddingColor.green
            pixels[index + 2] = paddingColor.blue
        }

        let low = range.lowerBound
        let span = range.upperBound - range.lowerBound
        func level(_ value: Float) -> UInt8 {
            // As torchvision's save_image: scale to 0…255, add 0.5, truncate. NaN fails both
            // comparisons and lands on 0.
            let scaled = (value - low) / span * 255 + 0.5
            guard scaled > 0 else { return 0 }
            return scaled < 255 ? UInt8(scaled) : 255
        }

        let planeSize = height * width
        for image in 0..<count {
            let originX = padding + (image % columnCount) * (cellWidth + padding)
            let originY = padding + (image / columnCount) * (cellHeight + padding)
            let base = image * channels * planeSize
            for y in 0..<height {
                for x in 0..<width {
                    let source = base + y * width + x
                    let red = level(images[source])
                    let green = channels == 3 ? level(images[source + planeSize]) : red
                    let blue = channels == 3 ? level(images[source + 2 * planeSize]) : red
                    for blockY in 0..<scale {
                        var target = ((originY + y * scale + blockY) * outputWidth + originX + x * scale) * 3
                        for _ in 0..<scale {
                            pixels[target] = red
                            pixels[target + 1] = green
                            pixels[target + 2] = blue
                            target += 3
                        }
                    }
                }
            }
        }
        return PNGImage(width: outputWidth, height: outputHeight, channels: 3, pixels: pixels)
    }
}
