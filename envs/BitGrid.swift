// A 10 × 10 boolean board in one 128-bit integer.
//
// Breakout's `brick_map` and Space Invaders' `alien_map`, `f_bullet_map` and `e_bullet_map` are 10 × 10
// numpy arrays that the games update with `np.roll`, `np.count_nonzero`, slicing and element-wise logic.
// Packing a board into the low 100 bits of a UInt128 (cell (row, column) at bit row·10 + column) turns each
// of those into a handful of shifts and masks, with no heap storage.

/// A 10 × 10 board of booleans packed into the low 100 bits of a `UInt128`.
struct BitGrid: Equatable, Sendable {
    /// Cell (row, column) is bit `row * 10 + column`; bits 100 ... 127 are always zero.
    var bits: UInt128

    /// The empty board.
    static let empty = BitGrid(bits: 0)
    /// All 100 cells set.
    static let full = BitGrid(bits: (UInt128(1) << 100) - 1)

    /// The cells of one row.
    static func rowMask(_ row: Int) -> UInt128 { UInt128(0x3FF) << (row * 10) }

    /// Column 0 of every row.
    static let firstColumn: UInt128 = {
        var mask: UInt128 = 0
        for row in 0..<boardSize { mask |= UInt128(1) << (row * 10) }
        return mask
    }()
    /// Column 9 of every row.
    static let lastColumn = firstColumn << 9

    /// The cells of one column.
    @inline(__always)
    static func columnMask(_ column: Int) -> UInt128 { firstColumn << column }

    /// Rows `rows` × columns `columns` set, like numpy's `grid[rows, columns] = 1` on an empty board.
    static func block(rows: Range<Int>, columns: Range<Int>) -> BitGrid {
        var grid = BitGrid.empty
        for row in rows { for column in columns { grid[row, column] = true } }
        return grid
    }

    /// The cell at (row, column).
    @inline(__always)
    subscript(row: Int, column: Int) -> Bool {
        get { (bits >> (row * 10 + column)) & 1 != 0 }
        set {
            let bit = UInt128(1) << (row * 10 + column)
            if newValue { bits |= bit } else { bits &= ~bit }
        }
    }

    /// `np.count_nonzero(grid)`.
    var count: Int { bits.nonzeroBitCount }

    /// Whether any cell is set.
    var isEmpty: Bool { bits == 0 }

    /// Whether any cell of `row` is set (`np.sum(grid[row, :]) > 0`).
    func rowIsOccupied(_ row: Int) -> Bool { bits & BitGrid.rowMask(row) != 0 }

    /// Whether any cell of `column` is set (`np.sum(grid[:, column]) > 0`).
    func columnIsOccupied(_ column: Int) -> Bool { bits & BitGrid.columnMask(column) != 0 }

    /// The lowest set row in `column` (`np.max(np.where(grid[:, column] == 1))`), or nil if empty.
    func lowestRow(inColumn column: Int) -> Int? {
        for row in stride(from: boardSize - 1, through: 0, by: -1) where self[row, column] {
            return row
        }
        return nil
    }

    /// `np.roll(grid, 1, axis=0)`: every row moves down one; row 9 wraps round to row 0.
    func rolledDown() -> BitGrid {
        BitGrid(bits: ((bits << 10) & BitGrid.full.bits) | (bits >> 90))
    }

    /// `np.roll(grid, -1, axis=0)`: every row moves up one; row 0 wraps round to row 9.
    func rolledUp() -> BitGrid {
        BitGrid(bits: (bits >> 10) | ((bits & BitGrid.rowMask(0)) << 90))
    }

    /// `np.roll(grid, shift, axis=1)` for a shift of +1 (right) or −1 (left); columns wrap within a row.
    func rolledSideways(by shift: Int) -> BitGrid {
        if shift > 0 {
            let moved = (bits << 1) & ~BitGrid.firstColumn & BitGrid.full.bits
            return BitGrid(bits: moved | ((bits & BitGrid.lastColumn) >> 9))
        } else {
            let moved = (bits >> 1) & ~BitGrid.lastColumn
            return BitGrid(bits: moved | ((bits & BitGrid.firstColumn) << 9))
        }
    }

    /// Cells set in both boards.
    static func & (left: BitGrid, right: BitGrid) -> BitGrid { BitGrid(bits: left.bits & right.bits) }

    /// `left` with the cells of `right` cleared.
    func subtracting(_ other: BitGrid) -> BitGrid { BitGrid(bits: bits & ~other.bits) }
}
