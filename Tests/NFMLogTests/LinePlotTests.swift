import Foundation
import NFMIO
import XCTest

@testable import NFMLog

/// A fresh empty directory under the system temporary directory.
func makeTemporaryDirectory(_ label: String = #function) throws -> String {
    let safe = label.filter { $0.isLetter || $0.isNumber }
    let path = NSTemporaryDirectory() + "nfmlog-\(safe)-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Set NFMLOG_SAMPLE_DIR to keep the sample charts the tests draw, to look at them.
func keepSample(_ image: PNGImage, name: String) throws {
    guard let directory = ProcessInfo.processInfo.environment["NFMLOG_SAMPLE_DIR"] else { return }
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    try image.write(to: directory + "/" + name)
}

extension PNGImage {
    /// The number of pixels whose RGB equals `color`.
    func count(of color: RGBColor) -> Int {
        stride(from: 0, to: pixels.count, by: channels).filter {
            pixels[$0] == color.red && pixels[$0 + 1] == color.green && pixels[$0 + 2] == color.blue
        }.count
    }

    /// Whether pixel (x, y) is within `tolerance` of `color` in every channel.
    func pixel(x: Int, y: Int, isNear color: RGBColor, tolerance: Int = 40) -> Bool {
        let value = pixel(x: x, y: y)
        return abs(Int(value[0]) - Int(color.red)) <= tolerance && abs(Int(value[1]) - Int(color.green)) <= tolerance
            && abs(Int(value[2]) - Int(color.blue)) <= tolerance
    }
}

final class NiceScaleTests: XCTestCase {
    func testTicksUseOneTwoFiveSteps() {
        XCTAssertEqual(NiceScale(minimum: 0, maximum: 1).ticks, [0, 0.2, 0.4, 0.6000000000000001, 0.8, 1])
        XCTAssertEqual(NiceScale(minimum: 0, maximum: 1).ticks.map { NiceScale(minimum: 0, maximum: 1).label($0) }, ["0", "0.2", "0.4", "0.6", "0.8", "1.0"])
        // The axis spans the data; ticks are the step's multiples inside it.
        let fitted = NiceScale(minimum: 0.13, maximum: 0.87)
        XCTAssertEqual(fitted.step, 0.1, accuracy: 1e-12)
        XCTAssertEqual(fitted.lower, 0.13)
        XCTAssertEqual(fitted.upper, 0.87)
        XCTAssertEqual(fitted.ticks.map { fitted.label($0) }, ["0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8"])
        // A margin widens the axis on both sides.
        let padded = NiceScale(minimum: 0, maximum: 100, margin: 0.05)
        XCTAssertEqual(padded.lower, -5)
        XCTAssertEqual(padded.upper, 105)
        XCTAssertEqual(padded.ticks, [0, 20, 40, 60, 80, 100])
        let steps = NiceScale(minimum: 0, maximum: 1000)
        XCTAssertEqual(steps.ticks, [0, 200, 400, 600, 800, 1000])
        XCTAssertEqual(steps.label(400), "400")
        // 94 / 3 ≈ 31 rounds to 50 (Heckbert's thresholds: below 1.5 → 1, 3 → 2, 7 → 5).
        XCTAssertEqual(NiceScale(minimum: 3, maximum: 97, targetTicks: 4).step, 50)
        XCTAssertEqual(NiceScale(minimum: 3, maximum: 97, targetTicks: 10).step, 10)
        for (value, expected) in [(0.8, 1.0), (1.6, 2.0), (4.0, 5.0), (8.0, 10.0), (0.025, 0.02), (0.031, 0.05), (1.2, 1.0)] {
            XCTAssertEqual(NiceScale.niceNumber(value, round: true), expected, accuracy: 1e-12, "\(value)")
        }
    }

    func testDegenerateRangesAreWidened() {
        let constant = NiceScale(minimum: 5, maximum: 5)
        XCTAssertLessThan(constant.lower, 5)
        XCTAssertGreaterThan(constant.upper, 5)
        XCTAssertEqual(constant.step, 0.2, accuracy: 1e-12)
        XCTAssertTrue(constant.ticks.contains { abs($0 - 5) < 1e-9 })
        let zero = NiceScale(minimum: 0, maximum: 0)
        XCTAssertEqual(zero.lower, -1)
        XCTAssertEqual(zero.upper, 1)
        XCTAssertEqual(zero.ticks, [-1, -0.5, 0, 0.5, 1])
        let infinite = NiceScale(minimum: -.infinity, maximum: .nan)
        XCTAssertEqual(infinite.lower, 0)
        XCTAssertEqual(infinite.upper, 1)
    }

    func testLabelsForLargeAndTinyValues() {
        let large = NiceScale(minimum: 0, maximum: 50_000)
        XCTAssertEqual(large.step, 10_000)
        XCTAssertEqual(large.label(20_000), "20k")
        let millions = NiceScale(minimum: 0, maximum: 3_000_000, targetTicks: 7)
        XCTAssertEqual(millions.step, 500_000)
        XCTAssertEqual(millions.label(1_500_000), "1.5M")
        let tiny = NiceScale(minimum: 0, maximum: 0.0005)
        XCTAssertEqual(tiny.step, 0.0001, accuracy: 1e-15)
        XCTAssertEqual(tiny.label(0.0003), "3e-4")
        XCTAssertEqual(tiny.label(0), "0")
        // The whole axis shares the exponent of its largest value.
        let learningRate = NiceScale(minimum: 0.9e-4, maximum: 1.1e-4, targetTicks: 5)
        XCTAssertEqual(learningRate.ticks.map { learningRate.label($0) }, ["0.90e-4", "0.95e-4", "1.00e-4", "1.05e-4", "1.10e-4"])
        XCTAssertEqual(NiceScale(minimum: -1, maximum: 1).label(-0.5), "-0.5")
    }
}

final class BitmapFontTests: XCTestCase {
    func testEveryPrintableGlyphHasPixelsExceptSpace() {
        XCTAssertEqual(BitmapFont.rows.count, 95 * BitmapFont.glyphHeight)
        for code in 33...126 {
            let character = Character(Unicode.Scalar(UInt8(code)))
            XCTAssertTrue(BitmapFont.glyph(character).contains { $0 != 0 }, "\(character)")
            XCTAssertTrue(BitmapFont.glyph(character).allSatisfy { $0 < 32 }, "\(character) uses more than 5 columns")
        }
        XCTAssertTrue(BitmapFont.glyph(" ").allSatisfy { $0 == 0 })
        XCTAssertEqual(BitmapFont.glyph("é"), BitmapFont.glyph("?"))
        // Distinct characters must look distinct.
        let shapes = (33...126).map { Array(BitmapFont.glyph(Character(Unicode.Scalar(UInt8($0))))) }
        XCTAssertEqual(Set(shapes.map { $0.map(String.init).joined(separator: ",") }).count, 94)
    }

    func testTextIsDrawnAtScale() {
        var canvas = Canvas(width: 20, height: 20, background: .white)
        canvas.drawText("L", x: 1, y: 2, scale: 2, color: .black)
        let image = canvas.image
        // "L": the left column and the bottom row of the 5×7 glyph, each font pixel 2×2, so
        // x 1…10 and y 2…15.
        XCTAssertEqual(image.pixel(x: 1, y: 2), [0, 0, 0])
        XCTAssertEqual(image.pixel(x: 2, y: 15), [0, 0, 0])
        XCTAssertEqual(image.pixel(x: 10, y: 15), [0, 0, 0])
        XCTAssertEqual(image.pixel(x: 10, y: 14), [0, 0, 0])
        XCTAssertEqual(image.pixel(x: 11, y: 15), [255, 255, 255])
        XCTAssertEqual(image.pixel(x: 3, y: 2), [255, 255, 255])
        XCTAssertEqual(image.pixel(x: 12, y: 15), [255, 255, 255])
        XCTAssertEqual(image.pixel(x: 1, y: 16), [255, 255, 255])
        XCTAssertEqual(image.count(of: .black), (7 + 4) * 4)
        XCTAssertEqual(BitmapFont.width(of: "ab", scale: 2), 22)
    }
}

final class LinePlotTests: XCTestCase {
    func testDiagonalLineLandsOnTheDiagonal() throws {
        let plot = LinePlot(
            title: "diagonal", series: [PlotSeries(name: "y=x", x: (0...100).map(Double.init), y: (0...100).map(Double.init))])
        let (image, layout) = plot.draw()
        try keepSample(image, name: "diagonal.png")
        XCTAssertEqual(image.width, 800)
        XCTAssertEqual(image.height, 500)
        XCTAssertEqual(image.pixel(x: 0, y: 0), [255, 255, 255])
        XCTAssertEqual(layout.xScale.ticks, [0, 20, 40, 60, 80, 100])
        XCTAssertEqual(layout.yScale.ticks, [0, 20, 40, 60, 80, 100])
        // The frame is drawn in dark gray on the plot area's edges.
        XCTAssertEqual(image.pixel(x: layout.plotLeft, y: (layout.plotTop + layout.plotBottom) / 2), [40, 40, 40])
        XCTAssertEqual(image.pixel(x: layout.plotRight, y: (layout.plotTop + layout.plotBottom) / 2), [40, 40, 40])
        let blue = LinePlot.palette[0]
        for t in stride(from: 5.0, through: 95, by: 10) {
            let x = Int(layout.pixelX(t))
            let y = Int(layout.pixelY(t))
            XCTAssertTrue(image.pixel(x: x, y: y, isNear: blue), "no line at (\(x), \(y)) for t = \(t)")
            // 20 pixels below the line is background (white or grid gray).
            XCTAssertFalse(image.pixel(x: x, y: y + 20, isNear: blue))
        }
        // The title is drawn: dark pixels in the top band.
        XCTAssertGreaterThan((0..<image.width).flatMap { x in (4..<20).map { (x, $0) } }.filter { image.pixel(x: $0.0, y: $0.1)[0] < 100 }.count, 50)
    }

    func testNaNBreaksTheLineAndSinglePointsShowAsDots() throws {
        let lines = [
            PlotSeries(name: "gap", x: [0, 1, 2, 3, 4], y: [1, 1, .nan, 1, 1]),
            PlotSeries(name: "single", points: [(x: 2, y: 2)], color: RGBColor(red: 200, green: 0, blue: 0)),
        ]
        let (image, layout) = LinePlot(title: "gaps", series: lines).draw()
        try keepSample(image, name: "gaps.png")
        let blue = LinePlot.palette[0]
        let row = Int(layout.pixelY(1))
        XCTAssertTrue(image.pixel(x: Int(layout.pixelX(0.5)), y: row, isNear: blue))
        XCTAssertTrue(image.pixel(x: Int(layout.pixelX(3.5)), y: row, isNear: blue))
        // Between x = 1 and x = 3 the line is broken by the NaN (the dots at 1 and 3 end 3 px out).
        XCTAssertFalse(image.pixel(x: Int(layout.pixelX(2)), y: row, isNear: blue))
        XCTAssertFalse(image.pixel(x: Int(layout.pixelX(1.5)), y: row, isNear: blue))
        // The single point is a red dot at (2, 2).
        let red = RGBColor(red: 200, green: 0, blue: 0)
        XCTAssertTrue(image.pixel(x: Int(layout.pixelX(2)), y: Int(layout.pixelY(2)), isNear: red, tolerance: 0))
        XCTAssertGreaterThan(image.count(of: red), 10)
    }

    func testConstantEmptyAndManySeriesDoNotCrash() throws {
        let constant = LinePlot(title: "constant", series: [PlotSeries(name: "c", x: [0, 1, 2], y: [3, 3, 3])]).render()
        XCTAssertGreaterThan(constant.count(of: LinePlot.palette[0]), 100)
        let empty = LinePlot(title: "empty", series: [PlotSeries(name: "none", points: []), PlotSeries(name: "nan", x: [1], y: [.nan])]).render()
        XCTAssertEqual(empty.count(of: LinePlot.palette[0]), 8 * 2 * 3)  // only the legend sample
        var many: [PlotSeries] = []
        for index in 0..<14 {
            many.append(PlotSeries(name: "eval/series_\(index)", x: [0, 1], y: [Double(index), Double(index) + 1]))
        }
        // A legend too long for the picture is cut to a quarter of its height ("+N more"), and
        // every line is still drawn.
        let (crowded, layout) = LinePlot(title: "many", series: many, width: 400, height: 300).draw()
        try keepSample(crowded, name: "many.png")
        XCTAssertEqual(crowded.width, 400)
        XCTAssertLessThan(layout.plotTop, 300 / 4 + 40)
        for index in 0..<14 {
            let color = LinePlot.palette[index % LinePlot.palette.count]
            let middle = (x: Int(layout.pixelX(0.5)), y: Int(layout.pixelY(Double(index) + 0.5)))
            XCTAssertTrue((middle.y - 3...middle.y + 3).contains { crowded.pixel(x: middle.x, y: $0, isNear: color, tolerance: 60) }, "series \(index)")
        }
    }
}
