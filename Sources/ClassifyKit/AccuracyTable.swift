import Foundation
import NFMData

/// Counts of correct answers by category (a Sort-of-CLEVR question kind, a Fashion-MNIST class) and
/// by test split (in-distribution, out-of-distribution), with the summary rows of some category
/// groups (non-relational, relational, all). Prints as an aligned table and writes CSV.
public struct AccuracyTable: Equatable, Sendable {
    /// Correct and total predictions of one cell.
    public struct Cell: Equatable, Sendable {
        /// Correct predictions.
        public var correct = 0
        /// All predictions.
        public var total = 0

        /// A cell with the given counts.
        public init(correct: Int = 0, total: Int = 0) {
            self.correct = correct
            self.total = total
        }

        /// correct / total, or nil when the cell is empty.
        public var accuracy: Double? { total == 0 ? nil : Double(correct) / Double(total) }
    }

    /// A summary row over several categories.
    public struct Group: Equatable, Sendable {
        /// The row's name (also the metric name's stem: `relational` → `relational_accuracy`; `all` → `accuracy`).
        public var name: String
        /// The categories it sums.
        public var members: [Int]
    }

    /// One test split (a column pair of the table).
    public struct Split: Equatable, Sendable {
        /// The metric namespace (`eval`, `ood`).
        public var metricPrefix: String
        /// The column title.
        public var title: String
    }

    /// The row names, by category index.
    public let categories: [String]
    /// A second label per category (e.g. "relational"), printed beside its name; empty strings if none.
    public let categoryTypes: [String]
    /// The summary rows, printed after the categories.
    public let groups: [Group]
    /// The columns.
    public let splits: [Split]
    /// cells[split][category].
    public private(set) var cells: [[Cell]]

    /// An empty table.
    public init(categories: [String], categoryTypes: [String]? = nil, groups: [Group], splits: [Split]) {
        precondition(!categories.isEmpty && !splits.isEmpty, "AccuracyTable: needs categories and splits")
        precondition(groups.allSatisfy { $0.members.allSatisfy(categories.indices.contains) }, "AccuracyTable: a group names an unknown category")
        self.categories = categories
        self.categoryTypes = categoryTypes ?? categories.map { _ in "" }
        self.groups = groups
        self.splits = splits
        cells = splits.map { _ in categories.map { _ in Cell() } }
    }

    /// The in-distribution split (`eval/…` metrics).
    public static let inDistribution = Split(metricPrefix: "eval", title: "in-distribution")
    /// The out-of-distribution split (`ood/…` metrics).
    public static let outOfDistribution = Split(metricPrefix: "ood", title: "out-of-distribution")

    /// The Sort-of-CLEVR table: the six question kinds, then non-relational, relational and all.
    public static func sortOfCLEVR(splits: [Split]) -> AccuracyTable {
        let kinds = SortOfCLEVR.QuestionKind.allCases
        return AccuracyTable(
            categories: kinds.map(\.name), categoryTypes: kinds.map(\.typeName),
            groups: [
                Group(name: "nonrelational", members: kinds.filter { !$0.isRelational }.map(\.rawValue)),
                Group(name: "relational", members: kinds.filter(\.isRelational).map(\.rawValue)),
                Group(name: "all", members: kinds.map(\.rawValue)),
            ],
            splits: splits)
    }

    /// The Sort-of-CLEVR table by question kind and colour: a row per (kind, colour), kind-major, then
    /// one summary row per colour over its six kinds. It separates how hard a colour is from how hard a
    /// question kind is: the out-of-distribution set asks only about the held-out colours, so its
    /// per-kind rows compare with these colours' in-distribution rows, not with the all-colour ones.
    public static func sortOfCLEVRByColor(splits: [Split]) -> AccuracyTable {
        let kinds = SortOfCLEVR.QuestionKind.allCases, colors = SortOfCLEVR.Color.allCases
        return AccuracyTable(
            categories: kinds.flatMap { kind in colors.map { "\(kind.name) \($0.name)" } },
            categoryTypes: kinds.flatMap { kind in colors.map { _ in kind.typeName } },
            groups: colors.map { color in Group(name: color.name, members: kinds.map { colorCategory(kind: $0, color: color) }) },
            splits: splits)
    }

    /// The row of (kind, colour) in `sortOfCLEVRByColor`.
    public static func colorCategory(kind: SortOfCLEVR.QuestionKind, color: SortOfCLEVR.Color) -> Int {
        kind.rawValue * SortOfCLEVR.Color.allCases.count + color.rawValue
    }

    /// The Fashion-MNIST table: the ten classes, then all.
    public static func fashionMNIST() -> AccuracyTable {
        AccuracyTable(
            categories: FashionMNIST.classNames, groups: [Group(name: "all", members: Array(0..<10))],
            splits: [Split(metricPrefix: "eval", title: "test")])
    }

    /// Records one prediction.
    public mutating func record(split: Int, category: Int, correct: Bool) {
        cells[split][category].total += 1
        if correct { cells[split][category].correct += 1 }
    }

    /// Records predictions against the true labels; `categories[i]` is prediction i's row.
    public mutating func record(split: Int, categories: [Int], predictions: [Int], labels: [Int]) {
        precondition(
            categories.count == predictions.count && predictions.count == labels.count,
            "AccuracyTable.record: \(categories.count) categories, \(predictions.count) predictions, \(labels.count) labels")
        for index in predictions.indices {
            record(split: split, category: categories[index], correct: predictions[index] == labels[index])
        }
    }

    /// The counts of `split` summed over `members`.
    public func cell(split: Int, members: [Int]) -> Cell {
        members.reduce(into: Cell()) { sum, member in
            sum.correct += cells[split][member].correct
            sum.total += cells[split][member].total
        }
    }

    /// The metric name of a group in a split: `eval/accuracy` for `all`, `eval/relational_accuracy`, ….
    public func metricName(split: Int, group: Group) -> String {
        splits[split].metricPrefix + "/" + (group.name == "all" ? "accuracy" : group.name + "_accuracy")
    }

    /// The summary accuracies of `split` as metrics (non-empty groups only).
    public func metrics(split: Int) -> [String: Double] {
        var metrics: [String: Double] = [:]
        for group in groups {
            if let accuracy = cell(split: split, members: group.members).accuracy {
                metrics[metricName(split: split, group: group)] = accuracy
            }
        }
        return metrics
    }

    /// The accuracy of every non-empty category of every split: `eval/by_type/shape_accuracy`,
    /// `ood/by_type/count_accuracy`, … (Fashion-MNIST: `eval/by_class/Coat_accuracy`, …), with any
    /// character other than a letter, digit, '-' or '_' in a category name written as '_'.
    public func categoryMetrics() -> [String: Double] {
        let kind = splits.count > 1 || categoryTypes.contains { !$0.isEmpty } ? "by_type" : "by_class"
        var metrics: [String: Double] = [:]
        for split in splits.indices {
            for (index, category) in categories.enumerated() {
                guard let accuracy = cell(split: split, members: [index]).accuracy else { continue }
                let name = String(category.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" })
                metrics["\(splits[split].metricPrefix)/\(kind)/\(name)_accuracy"] = accuracy
            }
        }
        return metrics
    }

    /// The summary accuracies of every split.
    public func metrics() -> [String: Double] {
        splits.indices.reduce(into: [:]) { result, split in result.merge(metrics(split: split)) { first, _ in first } }
    }

    /// The rows in print order: (name, type, members) for each category, then each group.
    private var rows: [(name: String, type: String, members: [Int])] {
        categories.indices.map { (categories[$0], categoryTypes[$0], [$0]) }
            + groups.map { ($0.name, "", $0.members) }
    }

    /// CSV: `category,type,<split>_correct,<split>_total,<split>_accuracy,…`, one line per category
    /// then per group; an empty cell's accuracy is left blank.
    public func csv() -> String {
        var text = "category,type," + splits.map { s in ["correct", "total", "accuracy"].map { s.metricPrefix + "_" + $0 }.joined(separator: ",") }.joined(separator: ",") + "\n"
        for row in rows {
            var fields = [row.name, row.type]
            for split in splits.indices {
                let cell = cell(split: split, members: row.members)
                fields += [String(cell.correct), String(cell.total), cell.accuracy.map { String(format: "%.6f", $0) } ?? ""]
            }
            text += fields.joined(separator: ",") + "\n"
        }
        return text
    }

    /// An aligned text table: accuracy in percent with the count in parentheses, `-` for empty cells,
    /// and a rule before the summary rows.
    public func formatted() -> String {
        let nameWidth = max(rows.map(\.name.count).max() ?? 0, 8)
        let typeWidth = categoryTypes.map(\.count).max() ?? 0
        let columnWidth = max(splits.map(\.title.count).max() ?? 0, 16)
        func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
            let fill = String(repeating: " ", count: max(width - text.count, 0))
            return right ? fill + text : text + fill
        }
        var header = typeWidth > 0 ? pad("question", nameWidth) + "  " + pad("type", typeWidth) : pad("class", nameWidth)
        for split in splits { header += "  " + pad(split.title, columnWidth, right: true) }
        var lines = [header]
        for (index, row) in rows.enumerated() {
            if index == categories.count {
                lines.append(String(repeating: "-", count: header.count))
            }
            var line = pad(row.name, nameWidth) + (typeWidth > 0 ? "  " + pad(row.type, typeWidth) : "")
            for split in splits.indices {
                let cell = cell(split: split, members: row.members)
                let text = cell.accuracy.map { String(format: "%.1f%% (%d)", $0 * 100, cell.total) } ?? "-"
                line += "  " + pad(text, columnWidth, right: true)
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
