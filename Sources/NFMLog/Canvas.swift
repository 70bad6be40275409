// A minimal RGB raster for drawing charts: filled rectangles, anti-aliased thick lines and dots,
// and bitmap text. Just enough for learning curves; not a general graphics library.

import NFMIO

/// An RGB image being drawn on. Coordinates are pixels, origin top-left, y down. Public so that
/// programs can draw their own figures (heat maps, tables) with the same font as the plots.
public struct Canvas {
    /// Width in pixels.
    public let width: Int
    /// Height in pixels.
    public let height: Int
    /// The samples, RGB interleaved, row-major.
    public private(set) var pixels: [UInt8]

    /// A canvas of `width × height` pixels filled with `background`.
    public init(width: Int, height: Int, background: RGBColor) {
        self.width = width
        self.height = height
        pixels = [UInt8](repeating: 0, count: width * height * 3)
        fill(x: 0, y: 0, width: width, height: height, color: background)
    }

    /// The finished picture.
    public var image: PNGImage { PNGImage(width: width, height: height, channels: 3, pixels: pixels) }

    /// Blends `color` over pixel (x, y) with opacity `alpha` (0…1); pixels outside are ignored.
    mutating func blend(x: Int, y: Int, color: RGBColor, alpha: Float) {
        guard x >= 0, x < width, y >= 0, y < height, alpha > 0 else { return }
        let index = (y * width + x) * 3
        let opacity = min(alpha, 1)
        func mix(_ old: UInt8, _ new: UInt8) -> UInt8 {
            UInt8((Float(old) * (1 - opacity) + Float(new) * opacity).rounded())
        }
        pixels[index] = mix(pixels[index], color.red)
        pixels[index + 1] = mix(pixels[index + 1], color.green)
        pixels[index + 2] = mix(pixels[index + 2], color.blue)
    }

    /// Fills the rectangle with its top-left corner at (x, y), clipped to the canvas.
    public mutating func fill(x: Int, y: Int, width rectangleWidth: Int, height rectangleHeight: Int, color: RGBColor) {
        for row in max(y, 0)..<max(min(y + rectangleHeight, height), max(y, 0)) {
            for column in max(x, 0)..<max(min(x + rectangleWidth, width), max(x, 0)) {
                let index = (row * width + column) * 3
                pixels[index] = color.red
                pixels[index + 1] = color.green
                pixels[index + 2] = color.blue
            }
        }
    }

    /// Draws `text` with its top-left corner at (x, y), each font pixel a `scale × scale` block.
    /// With `vertical`, the text runs bottom to top (rotated 90° anticlockwise) from (x, y) as
    /// its bottom-left corner, for y-axis labels.
    public mutating func drawText(_ text: String, x: Int, y: Int, scale: Int, color: RGBColor, vertical: Bool = false) {
        for (position, character) in text.enumerated() {
            let glyph = BitmapFont.glyph(character)
            for (row, bits) in glyph.enumerated() {
                for column in 0..<BitmapFont.glyphWidth where bits & (0x10 >> UInt8(column)) != 0 {
                    // Font pixel (u, v): u along the text, v down the glyph.
                    let u = (position * BitmapFont.advance + column) * scale
                    let v = row * scale
                    if vertical {
                        fill(x: x + v, y: y - u - scale, width: scale, height: scale, color: color)
                    } else {
                        fill(x: x + u, y: y + v, width: scale, height: scale, color: color)
                    }
                }
            }
        }
    }
}

/// Coverage of a set of anti-aliased strokes, combined by maximum and then blended once, so that
/// where two segments of one line meet the joint is not drawn twice (which would darken it).
struct CoverageMask {
    let width: Int
    let height: Int
    /// Only pixels inside this rectangle receive coverage (the plot area).
    let clip: (minimumX: Int, minimumY: Int, maximumX: Int, maximumY: Int)
    private(set) var coverage: [Float]

    init(width: Int, height: Int, clip: (minimumX: Int, minimumY: Int, maximumX: Int, maximumY: Int)) {
        self.width = width
        self.height = height
        self.clip = clip
        coverage = [Float](repeating: 0, count: width * height)
    }

    /// Adds a line segment of the given thickness with round ends. A pixel's coverage falls from
    /// 1 to 0 over the one-pixel band at the stroke's edge (distance from the pixel centre to the
    /// segment), which anti-aliases the line.
    mutating func addSegment(from start: (x: Double, y: Double), to end: (x: Double, y: Double), thickness: Double) {
        let radius = thickness / 2
        let reach = radius + 1
        let minimumX = max(Int((min(start.x, end.x) - reach).rounded(.down)), clip.minimumX)
        let maximumX = min(Int((max(start.x, end.x) + reach).rounded(.up)), clip.maximumX)
        let minimumY = max(Int((min(start.y, end.y) - reach).rounded(.down)), clip.minimumY)
        let maximumY = min(Int((max(start.y, end.y) + reach).rounded(.up)), clip.maximumY)
        guard minimumX <= maximumX, minimumY <= maximumY else { return }
        let (directionX, directionY) = (end.x - start.x, end.y - start.y)
        let lengthSquared = directionX * directionX + directionY * directionY
        for y in minimumY...maximumY {
            for x in minimumX...maximumX {
                let (pointX, pointY) = (Double(x) + 0.5, Double(y) + 0.5)
                // Project the pixel centre onto the segment, clamped to its ends.
                var t = 0.0
                if lengthSquared > 0 {
                    t = ((pointX - start.x) * directionX + (pointY - start.y) * directionY) / lengthSquared
                    t = min(max(t, 0), 1)
                }
                let (nearestX, nearestY) = (start.x + t * directionX, start.y + t * directionY)
                let distance = ((pointX - nearestX) * (pointX - nearestX) + (pointY - nearestY) * (pointY - nearestY)).squareRoot()
                let value = Float(min(max(radius + 0.5 - distance, 0), 1))
                let index = y * width + x
                if value > coverage[index] { coverage[index] = value }
            }
        }
    }

    /// Adds a filled dot (a zero-length segment).
    mutating func addDot(at centre: (x: Double, y: Double), diameter: Double) {
        addSegment(from: centre, to: centre, thickness: diameter)
    }

    /// Blends `color` into `canvas` with this mask's coverage as opacity.
    func composite(onto canvas: inout Canvas, color: RGBColor) {
        for y in clip.minimumY...clip.maximumY {
            for x in clip.minimumX...clip.maximumX {
                let value = coverage[y * width + x]
                if value > 0 { canvas.blend(x: x, y: y, color: color, alpha: value) }
            }
        }
    }
}
