import ClassifyKit
import NFMIO
import NFMTensor
import XCTest

final class AttentionMapTests: XCTestCase {
    /// Two layers per pass, two passes: slots P1L1, P1L2, P2L1, P2L2; pass 2 reads.
    func makeMap() -> AttentionMap {
        AttentionMap(
            layers: 2, slotCount: 4,
            rows: [
                AttentionMap.Row(slot: 2, weights: [1, 0, 0, nil, 0]),
                AttentionMap.Row(slot: 3, weights: [0, 0.5, 0.25, 0.25, 0]),
            ])
    }

    func testCellsAreColouredByWeightAndUnreadableSlotsAreGrey() {
        let map = makeMap()
        let image = map.render()
        let layout = map.layout()
        XCTAssertEqual(image.width, layout.width)
        XCTAssertEqual(image.height, layout.height)
        // A pixel just inside each cell's corner: clear of the grid lines and of the centred value text.
        func corner(_ row: Int, _ column: Int) -> [UInt8] {
            let origin = layout.cellOrigin(row: row, column: column)
            return image.pixel(x: origin.x + 2, y: origin.y + 2)
        }
        XCTAssertEqual(corner(0, 0), [8, 48, 107], "weight 1 is the darkest blue")
        XCTAssertEqual(corner(0, 1), [255, 255, 255], "weight 0 is white")
        XCTAssertEqual(corner(0, 3), [220, 220, 220], "P2L2 was not written when P2L1 read")
        XCTAssertEqual(corner(1, 1), [132, 152, 181], "weight 0.5 is half way: 255 + (c - 255) / 2, rounded")
        XCTAssertEqual(corner(1, 4), [255, 255, 255], "the null column")
        XCTAssertEqual(AttentionMap.color(forWeight: 0.25), RGBColor(red: 193, green: 203, blue: 218))
    }

    func testValuesAndLabelsAreDrawnInText() {
        let map = makeMap()
        let image = map.render()
        let layout = map.layout()
        // The dark cell (weight 1) holds its value in white text: some pixels of the cell are white.
        let origin = layout.cellOrigin(row: 0, column: 0)
        var white = 0, blue = 0
        for y in (origin.y + 1)..<(origin.y + layout.cellHeight) {
            for x in (origin.x + 1)..<(origin.x + layout.cellWidth) {
                let pixel = image.pixel(x: x, y: y)
                if pixel == [255, 255, 255] { white += 1 }
                if pixel == [8, 48, 107] { blue += 1 }
            }
        }
        XCTAssertGreaterThan(white, 20, "the value \"1.00\" is written in the cell")
        XCTAssertGreaterThan(blue, white * 3, "most of the cell is its colour")
        // The row label ("reading P2L1") sits left of the grid, in black.
        var dark = 0
        for y in origin.y..<(origin.y + layout.cellHeight) {
            for x in 0..<layout.gridX where image.pixel(x: x, y: y) == [0, 0, 0] { dark += 1 }
        }
        XCTAssertGreaterThan(dark, 50)
        XCTAssertEqual(map.columnNames, ["P1L1", "P1L2", "P2L1", "P2L2", "null"])
    }

    func testCSVListsEveryReadingLayer() {
        XCTAssertEqual(
            makeMap().csv(),
            """
            reading_layer,P1L1,P1L2,P2L1,P2L2,null
            P2L1,1.000000,0.000000,0.000000,,0.000000
            P2L2,0.000000,0.500000,0.250000,0.250000,0.000000

            """)
    }

    func testAccumulatorAveragesOverExamplesHeadsAndPixels() {
        var accumulator = AttentionAccumulator(layers: 2, passes: 2)
        // Slot 2 read slots [0, 1, 2] and null: weights [N=2, heads=1, 4, H=1, W=2].
        let first = Tensor(shape: [2, 1, 4, 1, 2], scalars: [
            1, 1, 0, 0, 0, 0, 0, 0,  // example 0: all on slot 0
            0, 0, 1, 0, 0, 0, 0, 1,  // example 1: pixel 0 on slot 1, pixel 1 on null
        ])
        accumulator.add([2: (first, [0, 1, 2])])
        // A second batch of one example, all on slot 2.
        let second = Tensor(shape: [1, 1, 4, 1, 2], scalars: [0, 0, 0, 0, 1, 1, 0, 0])
        accumulator.add([2: (second, [0, 1, 2])])
        let map = try! XCTUnwrap(accumulator.map())
        XCTAssertEqual(map.rows.count, 1)
        XCTAssertEqual(map.rows[0].slot, 2)
        let weights = map.rows[0].weights
        XCTAssertEqual(weights[0]!, 2.0 / 6, accuracy: 1e-12)
        XCTAssertEqual(weights[1]!, 1.0 / 6, accuracy: 1e-12)
        XCTAssertEqual(weights[2]!, 2.0 / 6, accuracy: 1e-12)
        XCTAssertNil(weights[3], "slot 3 was never written before slot 2 read")
        XCTAssertEqual(weights[4]!, 1.0 / 6, accuracy: 1e-12)
    }
}
