import NFMTensor
import XCTest

/// The generator's first draws, pinned to values computed independently by
/// scripts/reference/seeded_generator_reference.py (SplitMix64, xoshiro256**, Lemire's bounded draw
/// in plain Python integers): a change to any of them changes every seeded run.
final class SeededGeneratorTests: XCTestCase {
    func testRawDrawsMatchTheReference() {
        var generator = SeededGenerator(seed: 2024)
        XCTAssertEqual(
            (0..<4).map { _ in generator.next() },
            [1_029_197_146_548_041_518, 14_427_268_137_155_694_693, 1_329_179_038_587_965_441, 2_946_237_779_985_736_811])
    }

    func testBoundedDrawsMatchTheReference() {
        var generator = SeededGenerator(seed: 7)
        XCTAssertEqual((0..<12).map { _ in generator.nextIndex(below: 6) }, [4, 1, 5, 5, 5, 5, 0, 0, 2, 0, 3, 4])
        generator = SeededGenerator(seed: 7)
        XCTAssertEqual((0..<6).map { _ in generator.nextIndex(below: 100_000) }, [70_057, 27_875, 83_962, 98_109, 99_086, 87_277])
    }

    func testRejectedDrawsAreRedrawnAsTheReferenceDoes() {
        // A bound just above 2^62 rejects about a quarter of the raw words: 8 draws take 14 of them.
        var generator = SeededGenerator(seed: 3)
        XCTAssertEqual(
            (0..<8).map { _ in generator.nextIndex(below: (1 << 62) + 1) },
            [
                3_185_006_969_385_231_152, 1_006_557_535_215_976_276, 1_958_101_720_500_872_706, 969_227_116_883_123_349,
                4_258_253_071_890_144_123, 3_135_375_620_726_801_682, 2_974_057_897_089_153_228, 3_479_552_165_164_412_322,
            ])
        var raw = SeededGenerator(seed: 3)
        for _ in 0..<14 { _ = raw.next() }
        XCTAssertEqual(generator, raw, "the rejected words were consumed, and no more")
    }
}
