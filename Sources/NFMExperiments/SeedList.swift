import Foundation

/// The seeds of a comparison, as a user writes them after `--seeds`: a count (`5` is seeds 1…5) or
/// a comma-separated list (`1,2,3`, `7,11`).
public struct SeedList: Sendable, Equatable, Codable, CustomStringConvertible {
    /// The seeds, in the order given, without repeats.
    public let seeds: [UInt64]

    /// The seeds `seeds`; nil if empty or repeated.
    public init?(_ seeds: [UInt64]) {
        guard !seeds.isEmpty, Set(seeds).count == seeds.count else { return nil }
        self.seeds = seeds
    }

    /// Parses `5` (seeds 1…5) or `1,2,3`; nil for anything else (a count below 1, a repeated seed,
    /// a non-number). The signature is ArgumentParser's `ExpressibleByArgument` initialiser, so a
    /// program makes it a flag type with an empty conformance.
    public init?(argument: String) {
        let text = argument.trimmingCharacters(in: .whitespaces)
        if !text.contains(",") {
            guard let count = Int(text), count >= 1 else { return nil }
            self.init((1...count).map { UInt64($0) })
            return
        }
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { UInt64($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.allSatisfy({ $0 != nil }) else { return nil }
        self.init(parts.map { $0! })
    }

    /// `1,2,3`.
    public var description: String { seeds.map(String.init).joined(separator: ",") }
}
