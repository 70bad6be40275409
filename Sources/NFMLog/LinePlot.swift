// Learning curves as PNG line charts, drawn in pure Swift (no plotting library, no font files):
// white background, axes with "nice" 1-2-5 tick values, grid lines, title, axis labels, a legend
// and anti-aliased 2.5-pixel lines. Enough to look at a run without leaving the terminal machine.

import Foundation
import NFMIO

/// One named line of a ``LinePlot``.
public struct PlotSeries: Sendable {
    /// The legend entry.
    public var name: String
    /// The points, in drawing order. Points with a non-finite coordinate are skipped and break the line.
    public var points: [(x: Double, y: Double)]
    /// The line colour; nil takes the next colour of ``LinePlot/palette``.
    public var color: RGBColor?
    /// A shaded band around the line (e.g. a confidence interval across seeds), drawn in the line's
    /// colour at ``LinePlot/bandOpacity``, in x order; empty for none. Non-finite ends break it.
    public var band: [(x: Double, lower: Double, upper: Double)]

    /// A series from (x, y) pairs, with an optional shaded `band`.
    public init(name: String, points: [(x: Double, y: Double)], color: RGBColor? = nil, band: [(x: Double, lower: Double, upper: Double)] = []) {
        self.name = name
        self.points = points
        self.color = color
        self.band = band
    }

    /// A series from parallel coordinate arrays of equal length.
    public init(name: String, x: [Double], y: [Double], color: RGBColor? = nil) {
        precondition(x.count == y.count, "PlotSeries \(name): \(x.count) x values but \(y.count) y values")
        self.init(name: name, points: Array(zip(x, y).map { (x: $0, y: $1) }), color: color)
    }
}

/// One axis: its limits, and tick values at whole multiples of a 1, 2 or 5 × 10^k step.
struct NiceScale: Equatable {
    /// The value at the start of the axis.
    var lower: Double
    /// The value at the end of the axis.
    var upper: Double
    /// The distance between ticks.
    var step: Double

    /// The multiples of ``step`` between ``lower`` and ``upper``.
    var ticks: [Double] {
        // Multiply rather than accumulate, so that 0.1 + 0.1 + 0.1 does not drift off 0.3; the
        // tolerance keeps a tick that lies on a limit up to rounding.
        let first = (lower / step - 1e-9).rounded(.up)
        let last = (upper / step + 1e-9).rounded(.down)
        guard first <= last else { return [] }
        return (0...Int(last - first)).map { (first + Double($0)) * step }
    }

    /// An axis from `minimum` to `maximum`, widened on both sides by `margin` times the range so
    /// that extreme points do not sit on the frame, with about `targetTicks` ticks (step choice
    /// after Heckbert, "Nice numbers for graph labels", Graphics Gems, 1990). An empty range (a
    /// constant series or a single point) is widened around its value so that it sits mid-axis.
    init(minimum: Double, maximum: Double, targetTicks: Int = 6, margin: Double = 0) {
        var (low, high) = (minimum, maximum)
        if !(low.isFinite && high.isFinite) { (low, high) = (0, 1) }
        if high - low <= max(abs(low), abs(high)) * 1e-12 {
            let half = low == 0 ? 1 : abs(low) * 0.1
            (low, high) = (low - half, high + half)
        }
        let padding = (high - low) * margin
        lower = low - padding
        upper = high + padding
        step = Self.niceNumber((upper - lower) / Double(max(targetTicks - 1, 1)), round: true)
    }

    /// The 1, 2, 5 or 10 × 10^k nearest to `value` (`round`) or at least `value`.
    static func niceNumber(_ value: Double, round: Bool) -> Double {
        let exponent = log10(value).rounded(.down)
        let power = pow(10, exponent)
        let fraction = value / power
        let nice: Double
        if round {
            nice = fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10
        } else {
            nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10
        }
        return nice * power
    }

    /// `value` as a tick label with as many decimals as the step needs: "0.25", "1500",
    /// "20k" and "1.5M" for large values, "2e-4" (one exponent per axis) for tiny steps.
    func label(_ value: Double) -> String {
        if abs(value) < step * 1e-9 { return "0" }
        let magnitude = max(abs(lower), abs(upper))
        if magnitude >= 10_000 {
            let (divisor, suffix) = magnitude >= 1e9 ? (1e9, "G") : magnitude >= 1e6 ? (1e6, "M") : (1e3, "k")
            let decimals = max(0, -Int(log10(step / divisor).rounded(.down)))
            return String(format: "%.\(decimals)f", value / divisor) + suffix
        }
        if step < 1e-3 {
            // One exponent for the whole axis (that of its largest value), so the labels line up.
            let exponent = Int(log10(magnitude).rounded(.down))
            let decimals = max(0, exponent - Int(log10(step).rounded(.down)))
            return String(format: "%.\(decimals)fe%ld", value / pow(10, Double(exponent)), exponent)
        }
        let decimals = max(0, -Int(log10(step).rounded(.down)))
        return String(format: "%.\(decimals)f", value)
    }
}

/// A line chart of one or more series, rendered to a ``PNGImage``.
///
/// Text uses a built-in 5×7 bitmap font at ``textScale``. Axis ranges are fitted to the finite
/// data plus a 4% margin, with ticks at nice 1-2-5 values inside; a constant series or a single
/// point gets a range around its value. Series with few points (at most ``markerThreshold``) also get a dot at each point,
/// so that an isolated point (e.g. one evaluation) is visible.
public struct LinePlot: Sendable {
    /// The title, drawn centred at the top.
    public var title: String
    /// The x-axis label.
    public var xLabel: String
    /// The y-axis label, drawn vertically.
    public var yLabel: String
    /// The lines.
    public var series: [PlotSeries]
    /// Picture width in pixels.
    public var width: Int
    /// Picture height in pixels.
    public var height: Int
    /// Font scale: each font pixel is `textScale × textScale` pixels (2 gives 10×14-pixel characters).
    public var textScale: Int
    /// Line thickness in pixels.
    public var lineWidth: Double
    /// Series with at most this many points get a dot at every point.
    public var markerThreshold: Int

    /// The opacity of a series' band over the background.
    public static let bandOpacity: Float = 0.2

    /// Colours for series without their own: Matplotlib's "tab10" palette, which stays
    /// distinguishable for common colour-vision deficiencies.
    public static let palette: [RGBColor] = [
        RGBColor(red: 31, green: 119, blue: 180), RGBColor(red: 255, green: 127, blue: 14),
        RGBColor(red: 44, green: 160, blue: 44), RGBColor(red: 214, green: 39, blue: 40),
        RGBColor(red: 148, green: 103, blue: 189), RGBColor(red: 140, green: 86, blue: 75),
        RGBColor(red: 227, green: 119, blue: 194), RGBColor(red: 127, green: 127, blue: 127),
        RGBColor(red: 188, green: 189, blue: 34), RGBColor(red: 23, green: 190, blue: 207),
    ]

    /// A chart with the given text and series; the defaults give an 800×500 picture.
    public init(
        title: String, xLabel: String = "step", yLabel: String = "", series: [PlotSeries],
        width: Int = 800, height: Int = 500, textScale: Int = 2, lineWidth: Double = 2.5, markerThreshold: Int = 30
    ) {
        precondition(width >= 200 && height >= 150, "LinePlot: \(width)×\(height) is too small to draw a chart")
        precondition(textScale >= 1, "LinePlot: textScale must be at least 1, got \(textScale)")
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
        self.width = width
        self.height = height
        self.textScale = textScale
        self.lineWidth = lineWidth
        self.markerThreshold = markerThreshold
    }

    /// The colour each series is drawn in.
    public var colors: [RGBColor] {
        series.enumerated().map { index, line in line.color ?? Self.palette[index % Self.palette.count] }
    }

    /// Draws the chart.
    public func render() -> PNGImage { draw().image }

    /// Where the plot area and its scales ended up, so that tests can map data to pixels.
    struct Layout {
        var plotLeft: Int
        var plotRight: Int
        var plotTop: Int
        var plotBottom: Int
        var xScale: NiceScale
        var yScale: NiceScale

        /// The pixel column of data coordinate `x`.
        func pixelX(_ x: Double) -> Double {
            Double(plotLeft) + (x - xScale.lower) / (xScale.upper - xScale.lower) * Double(plotRight - plotLeft)
        }

        /// The pixel row of data coordinate `y` (rows grow downwards).
        func pixelY(_ y: Double) -> Double {
            Double(plotBottom) - (y - yScale.lower) / (yScale.upper - yScale.lower) * Double(plotBottom - plotTop)
        }
    }

    /// Draws the chart and reports its layout.
    func draw() -> (image: PNGImage, layout: Layout) {
        let ink = RGBColor(gray: 40)
        let gridColor = RGBColor(gray: 225)
        let scale = textScale
        let lineHeight = BitmapFont.height(scale: scale)
        let gap = 4 * scale
        var canvas = Canvas(width: width, height: height, background: .white)

        // Fit both axes to the finite data, bands included.
        let bandEnds = series.flatMap { line in line.band.flatMap { [(x: $0.x, y: $0.lower), (x: $0.x, y: $0.upper)] } }
        let finite = (series.flatMap(\.points) + bandEnds).filter { $0.x.isFinite && $0.y.isFinite }
        // A 4% margin on each side, so that the extreme points do not disappear into the frame.
        let xScale = NiceScale(
            minimum: finite.map(\.x).min() ?? 0, maximum: finite.map(\.x).max() ?? 1, targetTicks: max(3, width / 120),
            margin: 0.04)
        let yScale = NiceScale(
            minimum: finite.map(\.y).min() ?? 0, maximum: finite.map(\.y).max() ?? 1, targetTicks: max(3, height / 70),
            margin: 0.04)
        let xTicks = xScale.ticks
        let yTicks = yScale.ticks
        let yLabels = yTicks.map { yScale.label($0) }

        // Legend entries flow left to right under the title, wrapping into rows. The legend may
        // take at most a quarter of the height, so that many series still leave room for the
        // plot; entries that do not fit are summarised as "+N more".
        let colors = self.colors
        let sampleLength = 8 * scale
        let rightLimit = width - 2 * gap
        let maximumLegendRows = max(1, height / 4 / (lineHeight + gap))
        var legendRows: [[(index: Int, x: Int)]] = []
        var cursor = 0
        var omitted = 0
        for (index, line) in series.enumerated() {
            let entryWidth = sampleLength + gap + BitmapFont.width(of: line.name, scale: scale) + 4 * gap
            if legendRows.isEmpty || cursor + entryWidth > rightLimit {
                if legendRows.count == maximumLegendRows {
                    omitted = series.count - index
                    break
                }
                legendRows.append([])
                cursor = 2 * gap
            }
            legendRows[legendRows.count - 1].append((index, cursor))
            cursor += entryWidth
        }
        var moreLabel: (text: String, x: Int)? = nil
        if omitted > 0 {
            // Make room for the summary at the end of the last row by dropping entries from it.
            var lastRow = legendRows[legendRows.count - 1]
            func label() -> String { "+\(omitted) more" }
            func end(of row: [(index: Int, x: Int)]) -> Int {
                guard let last = row.last else { return 2 * gap }
                return last.x + sampleLength + gap + BitmapFont.width(of: series[last.index].name, scale: scale) + 4 * gap
            }
            while !lastRow.isEmpty && end(of: lastRow) + BitmapFont.width(of: label(), scale: scale) > rightLimit {
                lastRow.removeLast()
                omitted += 1
            }
            legendRows[legendRows.count - 1] = lastRow
            moreLabel = (label(), end(of: lastRow))
        }

        // Margins: the title and legend above; tick labels and the y label on the left; tick
        // labels and the x label below.
        let top = gap + (title.isEmpty ? 0 : lineHeight + gap) + legendRows.count * (lineHeight + gap) + gap
        let tickLength = 3 * scale
        let left =
            gap + (yLabel.isEmpty ? 0 : lineHeight + gap) + (yLabels.map { BitmapFont.width(of: $0, scale: scale) }.max() ?? 0)
            + tickLength + gap
        let bottom = tickLength + gap + lineHeight + (xLabel.isEmpty ? 0 : gap + lineHeight) + gap
        let lastXLabelHalf = BitmapFont.width(of: xScale.label(xTicks.last ?? 0), scale: scale) / 2
        let right = max(3 * gap, lastXLabelHalf + gap)
        let plotLeft = left
        let plotRight = width - right
        let plotTop = top
        let plotBottom = height - bottom
        let layout = Layout(
            plotLeft: plotLeft, plotRight: plotRight, plotTop: plotTop, plotBottom: plotBottom, xScale: xScale, yScale: yScale)
        // Labels too wide for the picture leave no room for the plot; draw nothing rather than trap.
        guard plotRight - plotLeft > 10, plotBottom - plotTop > 10 else { return (canvas.image, layout) }
        let pixelX = layout.pixelX
        let pixelY = layout.pixelY

        // Grid lines and ticks with their labels.
        for (tick, label) in zip(yTicks, yLabels) {
            let y = Int(pixelY(tick).rounded())
            canvas.fill(x: plotLeft, y: y, width: plotRight - plotLeft, height: 1, color: gridColor)
            canvas.fill(x: plotLeft - tickLength, y: y, width: tickLength, height: 1, color: ink)
            let labelWidth = BitmapFont.width(of: label, scale: scale)
            canvas.drawText(label, x: plotLeft - tickLength - gap / 2 - labelWidth, y: y - lineHeight / 2, scale: scale, color: ink)
        }
        for tick in xTicks {
            let x = Int(pixelX(tick).rounded())
            canvas.fill(x: x, y: plotTop, width: 1, height: plotBottom - plotTop, color: gridColor)
            canvas.fill(x: x, y: plotBottom, width: 1, height: tickLength, color: ink)
            let label = xScale.label(tick)
            let labelWidth = BitmapFont.width(of: label, scale: scale)
            canvas.drawText(label, x: x - labelWidth / 2, y: plotBottom + tickLength + gap / 2, scale: scale, color: ink)
        }
        // The frame.
        canvas.fill(x: plotLeft, y: plotTop, width: plotRight - plotLeft + 1, height: 1, color: ink)
        canvas.fill(x: plotLeft, y: plotBottom, width: plotRight - plotLeft + 1, height: 1, color: ink)
        canvas.fill(x: plotLeft, y: plotTop, width: 1, height: plotBottom - plotTop + 1, color: ink)
        canvas.fill(x: plotRight, y: plotTop, width: 1, height: plotBottom - plotTop + 1, color: ink)

        // Text: title, axis labels, legend.
        if !title.isEmpty {
            let titleWidth = BitmapFont.width(of: title, scale: scale)
            canvas.drawText(title, x: (width - titleWidth) / 2, y: gap, scale: scale, color: ink)
        }
        if !xLabel.isEmpty {
            let labelWidth = BitmapFont.width(of: xLabel, scale: scale)
            canvas.drawText(xLabel, x: (plotLeft + plotRight - labelWidth) / 2, y: height - gap - lineHeight, scale: scale, color: ink)
        }
        if !yLabel.isEmpty {
            let labelWidth = BitmapFont.width(of: yLabel, scale: scale)
            canvas.drawText(yLabel, x: gap, y: (plotTop + plotBottom + labelWidth) / 2, scale: scale, color: ink, vertical: true)
        }
        let legendTop = gap + (title.isEmpty ? 0 : lineHeight + gap)
        for (row, entries) in legendRows.enumerated() {
            let y = legendTop + row * (lineHeight + gap)
            for entry in entries {
                canvas.fill(x: entry.x, y: y + lineHeight / 2 - scale / 2 - 1, width: sampleLength, height: max(2, scale + 1), color: colors[entry.index])
                canvas.drawText(series[entry.index].name, x: entry.x + sampleLength + gap, y: y, scale: scale, color: ink)
            }
        }
        if let moreLabel {
            let y = legendTop + (legendRows.count - 1) * (lineHeight + gap)
            canvas.drawText(moreLabel.text, x: moreLabel.x, y: y, scale: scale, color: RGBColor(gray: 110))
        }
        if finite.isEmpty {
            let message = "no finite data"
            canvas.drawText(
                message, x: (plotLeft + plotRight - BitmapFont.width(of: message, scale: scale)) / 2,
                y: (plotTop + plotBottom - lineHeight) / 2, scale: scale, color: RGBColor(gray: 150))
        }

        // Bands under the lines: each pixel column between two band points is shaded between the
        // linearly interpolated lower and upper ends.
        let clip = (minimumX: plotLeft + 1, minimumY: plotTop + 1, maximumX: plotRight - 1, maximumY: plotBottom - 1)
        for (index, line) in series.enumerated() {
            for (start, end) in zip(line.band, line.band.dropFirst()) {
                guard [start.x, start.lower, start.upper, end.x, end.lower, end.upper].allSatisfy(\.isFinite) else { continue }
                let (left, right) = (pixelX(start.x), pixelX(end.x))
                let firstColumn = Swift.max(Int(left.rounded()), clip.minimumX)
                let lastColumn = Swift.min(Int(right.rounded()), clip.maximumX)
                guard firstColumn <= lastColumn else { continue }
                for column in firstColumn...lastColumn {
                    let fraction = right > left ? Swift.min(Swift.max((Double(column) - left) / (right - left), 0), 1) : 0
                    let upper = pixelY(start.upper + (end.upper - start.upper) * fraction)
                    let lower = pixelY(start.lower + (end.lower - start.lower) * fraction)
                    let top = Swift.max(Int(upper.rounded()), clip.minimumY)
                    let bottom = Swift.min(Int(lower.rounded()), clip.maximumY)
                    // Columns shared by two segments are shaded once.
                    if column == firstColumn && start.x != line.band.first!.x { continue }
                    guard top <= bottom else { continue }
                    for row in top...bottom { canvas.blend(x: column, y: row, color: colors[index], alpha: Self.bandOpacity) }
                }
            }
        }

        // The lines, clipped to the inside of the frame. A non-finite point ends a run of segments.
        for (index, line) in series.enumerated() {
            var mask = CoverageMask(width: width, height: height, clip: clip)
            var previous: (x: Double, y: Double)? = nil
            let drawMarkers = line.points.count <= markerThreshold
            for point in line.points {
                guard point.x.isFinite && point.y.isFinite else {
                    previous = nil
                    continue
                }
                let current = (x: pixelX(point.x), y: pixelY(point.y))
                if let previous { mask.addSegment(from: previous, to: current, thickness: lineWidth) }
                if drawMarkers { mask.addDot(at: current, diameter: lineWidth * 2.4) }
                previous = current
            }
            mask.composite(onto: &canvas, color: colors[index])
        }
        return (canvas.image, layout)
    }

    /// Renders the chart and writes it as a PNG at `path` (atomically, through ``AtomicFile``).
    public func write(to path: String) throws {
        try render().write(to: path)
    }
}
