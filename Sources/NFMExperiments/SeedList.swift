import Foundation

/// The seeds of a comparison, as a user writes them after `--seeds`: a count (`5` is seeds 1…5) or
/// a comma-separated list (`1,2,3`, `7,11`).
public struct SeedList: Sendable, Equatable, Codable, CustomStringConvertible {
    /// The seeds, in the order given, without repeats.
    public let seeds: [UInt64]

    /// Parses `5` (seeds 1…5) or `1,2,3`; throws, saying what is wrong, for a count below 1, a
    /// repeated seed or something that is not a seed.
    public init(parsing argument: String) throws(SeedListError) {
        let text = argument.trimmingCharacters(in: .whitespaces)
        if !text.contains(",") {
            guard let count = Int(text) else { throw SeedListError("\"\(text)\" is neither a count of seeds nor a list such as 1,2,3") }
            guard count >= 1 else { throw SeedListError("a count of seeds must be at least 1, got \(count)") }
            self.seeds = (1...count).map { UInt64($0) }
            return
        }
        var seeds: [UInt64] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let item = part.trimmingCharacters(in: .whitespaces)
            guard let seed = UInt64(item) else { throw SeedListError("\"\(item)\" in the list is not a seed (a whole number ≥ 0)") }
            guard !seeds.contains(seed) else { throw SeedListError("seed \(seed) is listed twice") }
            seeds.append(seed)
        }
        self.seeds = seeds
    }

    /// `1,2,3`.
    public var description: String { seeds.map(String.init).joined(separator: ",") }
}

/// Why a `--seeds` value was refused.
public struct SeedListError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
