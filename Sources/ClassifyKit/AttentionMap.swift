// The paper's "which arguments does a module read" picture: for each NFM layer that reads (pass 2
// and later), the average attention weight it puts on every memory slot and on the null slot,
// over a test set. Drawn as a labelled heat map with NFMLog's bitmap font.

import Foundation
import NFMIO
import NFMLog
import NFMTensor

/// The mean attention weight of each reading NFM layer on each memory slot, over a data set.
public struct AttentionMap: Equatable, Sendable {
    /// One reading layer.
    public struct Row: Equatable, Sendable {
        /// The reading slot (pass · layers + layer).
        public var slot: Int
        /// Mean weight per column: `slotCount` memory slots, then the null slot; nil where the slot
        /// had not been written when this layer read.
        public var weights: [Double?]

        /// A row of reading slot `slot`.
        public init(slot: Int, weights: [Double?]) {
            self.slot = slot
            self.weights = weights
        }
    }

    /// Layers per pass.
    public let layers: Int
    /// Memory slots (passes · layers): the columns before the null slot.
    public let slotCount: Int
    /// The reading layers, by slot.
    public var rows: [Row]

    /// A map with the given rows.
    public init(layers: Int, slotCount: Int, rows: [Row]) {
        precondition(layers > 0 && slotCount > 0, "AttentionMap: layers and slots must be positive")
        precondition(rows.allSatisfy { $0.weights.count == slotCount + 1 }, "AttentionMap: each row needs \(slotCount + 1) weights")
        self.layers = layers
        self.slotCount = slotCount
        self.rows = rows
    }

    /// A slot's short name: `P2L3` is pass 2, layer 3.
    public func name(ofSlot slot: Int) -> String { "P\(slot / layers + 1)L\(slot % layers + 1)" }

    /// The column names: every slot, then `null`.
    public var columnNames: [String] { (0..<slotCount).map(name(ofSlot:)) + ["null"] }

    /// CSV: `reading_layer,P1L1,…,null`, one line per reading layer; empty where a slot was not readable.
    public func csv() -> String {
        var text = "reading_layer," + columnNames.joined(separator: ",") + "\n"
        for row in rows {
            text += name(ofSlot: row.slot) + "," + row.weights.map { $0.map { String(format: "%.6f", $0) } ?? "" }.joined(separator: ",") + "\n"
        }
        return text
    }

    // MARK: Drawing

    /// The heat map's colour for a weight: white at 0, dark blue (8, 48, 107) at 1, linear between.
    public static func color(forWeight weight: Double) -> RGBColor {
        let t = min(max(weight, 0), 1)
        func mix(_ high: UInt8) -> UInt8 { UInt8((255 + (Double(high) - 255) * t).rounded()) }
        return RGBColor(red: mix(8), green: mix(48), blue: mix(107))
    }

    /// The colour of a cell whose slot was not written yet when the layer read.
    public static let unavailableColor = RGBColor(gray: 220)

    /// Where the heat map's cells lie in the picture.
    public struct Layout: Equatable, Sendable {
        /// Picture width.
        public var width: Int
        /// Picture height.
        public var height: Int
        /// The top-left corner of cell (row 0, column 0).
        public var gridX: Int
        /// The top-left corner of cell (row 0, column 0).
        public var gridY: Int
        /// Cell width.
        public var cellWidth: Int
        /// Cell height.
        public var cellHeight: Int

        /// The top-left pixel of the cell at (`row`, `column`).
        public func cellOrigin(row: Int, column: Int) -> (x: Int, y: Int) {
            (gridX + column * cellWidth, gridY + row * cellHeight)
        }
    }

    static let textScale = 2
    static let margin = 16

    /// The geometry of ``render(title:)``.
    public func layout() -> Layout {
        let scale = AttentionMap.textScale
        let lineHeight = BitmapFont.height(scale: scale)
        let rowLabelWidth = BitmapFont.width(of: "reading P0L0", scale: scale)
        let cellWidth = max(BitmapFont.width(of: "0.00", scale: scale), BitmapFont.width(of: "null", scale: scale)) + 16
        let cellHeight = lineHeight + 20
        let gridX = AttentionMap.margin + rowLabelWidth + 12
        // Title, subtitle, a blank line, then the column labels.
        let gridY = AttentionMap.margin + 3 * (lineHeight + 8) + lineHeight + 8
        let width = max(
            gridX + (slotCount + 1) * cellWidth + AttentionMap.margin,
            AttentionMap.margin * 2 + BitmapFont.width(of: String(repeating: "x", count: 58), scale: scale))
        // The grid, then the colour bar with its labels.
        let height = gridY + rows.count * cellHeight + 16 + 16 + 6 + lineHeight + AttentionMap.margin
        return Layout(width: width, height: height, gridX: gridX, gridY: gridY, cellWidth: cellWidth, cellHeight: cellHeight)
    }

    /// Draws the map: one row per reading layer, one column per memory slot and the null slot, each
    /// cell coloured by its mean weight (see ``color(forWeight:)``) with the value written in it,
    /// grey where the slot was not readable, and a colour bar from 0 to 1 below.
    public func render(title: String = "NFM attention: mean weight per memory slot") -> PNGImage {
        let scale = AttentionMap.textScale
        let lineHeight = BitmapFont.height(scale: scale)
        let layout = layout()
        var canvas = Canvas(width: layout.width, height: layout.height, background: .white)
        let ink = RGBColor(gray: 30)
        var y = AttentionMap.margin
        canvas.drawText(title, x: AttentionMap.margin, y: y, scale: scale, color: .black)
        y += lineHeight + 8
        canvas.drawText("rows: reading layers; columns: slots written", x: AttentionMap.margin, y: y, scale: scale, color: ink)
        y += lineHeight + 8
        canvas.drawText("(PpLl = pass p, layer l; null = read nothing)", x: AttentionMap.margin, y: y, scale: scale, color: ink)

        for (column, name) in columnNames.enumerated() {
            let origin = layout.cellOrigin(row: 0, column: column)
            let textWidth = BitmapFont.width(of: name, scale: scale)
            canvas.drawText(name, x: origin.x + (layout.cellWidth - textWidth) / 2, y: layout.gridY - lineHeight - 6, scale: scale, color: .black)
        }
        for (rowIndex, row) in rows.enumerated() {
            let origin = layout.cellOrigin(row: rowIndex, column: 0)
            let label = "reading " + name(ofSlot: row.slot)
            canvas.drawText(
                label, x: layout.gridX - 12 - BitmapFont.width(of: label, scale: scale),
                y: origin.y + (layout.cellHeight - lineHeight) / 2, scale: scale, color: .black)
            for (column, weight) in row.weights.enumerated() {
                let cell = layout.cellOrigin(row: rowIndex, column: column)
                let fill = weight.map(AttentionMap.color(forWeight:)) ?? AttentionMap.unavailableColor
                canvas.fill(x: cell.x, y: cell.y, width: layout.cellWidth, height: layout.cellHeight, color: fill)
                let text = weight.map { String(format: "%.2f", $0) } ?? "-"
                let textColor: RGBColor = (weight ?? 0) > 0.5 ? .white : .black
                canvas.drawText(
                    text, x: cell.x + (layout.cellWidth - BitmapFont.width(of: text, scale: scale)) / 2,
                    y: cell.y + (layout.cellHeight - lineHeight) / 2, scale: scale, color: textColor)
            }
        }
        // Thin white grid lines between cells.
        for column in 0...(columnNames.count) {
            canvas.fill(x: layout.gridX + column * layout.cellWidth, y: layout.gridY, width: 1, height: rows.count * layout.cellHeight, color: .white)
        }
        for row in 0...rows.count {
            canvas.fill(x: layout.gridX, y: layout.gridY + row * layout.cellHeight, width: columnNames.count * layout.cellWidth, height: 1, color: .white)
        }

        // Colour bar: 0 on the left, 1 on the right, under the grid.
        let barY = layout.gridY + rows.count * layout.cellHeight + 16
        let barWidth = min(columnNames.count * layout.cellWidth, 400)
        for x in 0..<barWidth {
            canvas.fill(x: layout.gridX + x, y: barY, width: 1, height: 16, color: AttentionMap.color(forWeight: Double(x) / Double(barWidth - 1)))
        }
        canvas.drawText("0", x: layout.gridX, y: barY + 16 + 6, scale: scale, color: .black)
        canvas.drawText("1", x: layout.gridX + barWidth - BitmapFont.width(of: "1", scale: scale), y: barY + 16 + 6, scale: scale, color: .black)
        canvas.drawText("weight", x: layout.gridX + barWidth + 12, y: barY, scale: scale, color: ink)
        return canvas.image
    }
}

/// Sums the attention weights that an NFM trunk's reading layers record over many batches, for an
/// ``AttentionMap`` of their means.
public struct AttentionAccumulator: Sendable {
    /// Layers per pass.
    public let layers: Int
    /// Memory slots.
    public let slotCount: Int
    private var sums: [Int: [Double]] = [:]
    private var counts: [Int: Double] = [:]
    /// The slots each reading slot attended over (the others were not yet written).
    private var readable: [Int: Set<Int>] = [:]

    /// An empty accumulator for a trunk of `passes` × `layers` slots.
    public init(layers: Int, passes: Int) {
        self.layers = layers
        slotCount = layers * passes
    }

    /// Adds one forward run's weights: per reading slot, weights [N, heads, M+1, H, W] over the
    /// memory slots `slots` (in memory order) and the null slot. Each (example, head, pixel) counts once.
    public mutating func add(_ attention: [Int: (weights: Tensor, slots: [Int])]) {
        for (slot, entry) in attention {
            let shape = entry.weights.shape
            precondition(shape.count == 5 && shape[2] == entry.slots.count + 1, "AttentionAccumulator: weights \(shape) for slots \(entry.slots)")
            let perSlot = entry.weights.sum(alongAxes: [0, 1, 3, 4]).scalars
            var sum = sums[slot] ?? [Double](repeating: 0, count: slotCount + 1)
            for (index, written) in entry.slots.enumerated() { sum[written] += Double(perSlot[index]) }
            sum[slotCount] += Double(perSlot[entry.slots.count])
            sums[slot] = sum
            counts[slot, default: 0] += Double(shape[0] * shape[1] * shape[3] * shape[4])
            readable[slot, default: []].formUnion(entry.slots)
        }
    }

    /// The mean weights, one row per reading slot in slot order; nil before anything was added.
    public func map() -> AttentionMap? {
        guard !sums.isEmpty else { return nil }
        let rows = sums.keys.sorted().map { slot -> AttentionMap.Row in
            let count = counts[slot]!
            let sum = sums[slot]!
            let slots = readable[slot] ?? []
            var weights: [Double?] = (0..<slotCount).map { slots.contains($0) ? sum[$0] / count : nil }
            weights.append(sum[slotCount] / count)
            return AttentionMap.Row(slot: slot, weights: weights)
        }
        return AttentionMap(layers: layers, slotCount: slotCount, rows: rows)
    }
}
