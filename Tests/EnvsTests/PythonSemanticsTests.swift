@testable import Envs
import XCTest

/// The Python and numpy behaviours the ports rely on, checked in isolation. Expected values come from
/// running the Python snippets quoted in each test (CPython 3.11, numpy 2.4.6).
final class PythonSemanticsTests: XCTestCase {
    /// Python:
    /// ```
    /// lst = [[1, 5, True], [2, 5, True], [1, 5, True]]    # objects A, B, C; A == C
    /// for x in reversed(lst):
    ///     visited.append(x)
    ///     if x[0] == 1 and x[2]:
    ///         lst.remove(x)    # for C this removes A, the first equal element
    ///         x[0] = 7         # the loop variable stays usable
    /// # visited: C, C, B;  lst: [B, C] with C == [7, 5, True]
    /// ```
    func testObjectListRemovesFirstEqualAndReversedWalkRereads() {
        var list = ObjectList<Seaquest.Mover>(capacity: 4)
        list.append(Seaquest.Mover(column: 1, row: 5, movesRight: true))  // A, handle 0
        list.append(Seaquest.Mover(column: 2, row: 5, movesRight: true))  // B, handle 1
        list.append(Seaquest.Mover(column: 1, row: 5, movesRight: true))  // C, handle 2
        var visited: [Int] = []
        var index = list.count - 1
        while index >= 0 && index < list.count {
            let handle = list.handle(at: index)
            index -= 1
            visited.append(handle)
            if list[handle].column == 1 && list[handle].movesRight {
                list.remove(handle)
                list[handle].column = 7
            }
        }
        XCTAssertEqual(visited, [2, 2, 1])
        XCTAssertEqual((0..<list.count).map { list.handle(at: $0) }, [1, 2])
        XCTAssertEqual(list[2].column, 7)
        // The freed slot (A's) is reused by the next append.
        list.append(Seaquest.Mover(column: 9, row: 1, movesRight: false))
        XCTAssertEqual(list.handle(at: 2), 0)
        XCTAssertEqual(list[0].column, 9)
    }

    /// Python: removing the current element while walking `reversed(lst)` visits every element once:
    /// `for x in reversed([[3], [4]]): lst.remove(x)` visits 4 then 3 and empties the list.
    func testObjectListRemovingCurrentElementWhileWalkingBackwards() {
        var list = ObjectList<Seaquest.Mover>(capacity: 2)
        list.append(Seaquest.Mover(column: 3, row: 1, movesRight: false))
        list.append(Seaquest.Mover(column: 4, row: 1, movesRight: false))
        var visited: [Int] = []
        var index = list.count - 1
        while index >= 0 && index < list.count {
            let handle = list.handle(at: index)
            index -= 1
            visited.append(list[handle].column)
            list.remove(handle)
        }
        XCTAssertEqual(visited, [4, 3])
        XCTAssertEqual(list.count, 0)
    }

    /// `np.roll` semantics of the bit board, wrap-around included.
    func testBitGridRollsLikeNumpy() {
        var grid = BitGrid.empty
        grid[9, 3] = true
        grid[0, 0] = true
        grid[4, 9] = true
        let down = grid.rolledDown()
        XCTAssertTrue(down[0, 3] && down[1, 0] && down[5, 9])
        XCTAssertEqual(down.count, 3)
        let up = grid.rolledUp()
        XCTAssertTrue(up[8, 3] && up[9, 0] && up[3, 9])
        let right = grid.rolledSideways(by: 1)
        XCTAssertTrue(right[9, 4] && right[0, 1] && right[4, 0])
        let left = grid.rolledSideways(by: -1)
        XCTAssertTrue(left[9, 2] && left[0, 9] && left[4, 8])
        XCTAssertEqual(left.count, 3)
        XCTAssertEqual(grid.lowestRow(inColumn: 3), 9)
        XCTAssertNil(grid.lowestRow(inColumn: 5))
        XCTAssertTrue(grid.columnIsOccupied(9) && !grid.columnIsOccupied(8))
        XCTAssertTrue(grid.rowIsOccupied(4) && !grid.rowIsOccupied(5))
    }

    /// The Seaquest diver gauge follows Python's slice `state[9, 9 - diver_count : 9]`, which is empty for
    /// the negative counts left after surfacing with six divers.
    func testSeaquestGaugeAfterNegativeDiverCount() {
        var random = NumpyRandomState(seed: 0)
        var game = Seaquest(random: &random)
        game.diverCount = -1
        var observation = game.observation()
        XCTAssertEqual(observation[8 * 100 + 90 ..< 8 * 100 + 100].reduce(0, +), 0)
        game.diverCount = 6
        observation = game.observation()
        XCTAssertEqual(Array(observation[8 * 100 + 90 ..< 8 * 100 + 100]), [0, 0, 0, 1, 1, 1, 1, 1, 1, 0])
    }
}
