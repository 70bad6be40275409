import XCTest

@testable import NFMData

/// A data set whose examples are their own indices, so batches show exactly which examples they hold.
struct Numbers: IndexedDataset, Sendable {
    let count: Int
    func batch(indices: [Int]) -> [Int] { indices }
}

final class DataLoaderTests: XCTestCase {
    func testEachEpochIsAPermutationSeededBySeedAndEpoch() {
        let loader = DataLoader(dataset: Numbers(count: 103), batchSize: 10, seed: 1, dropLast: false)
        XCTAssertEqual(loader.batchesPerEpoch, 11)
        var epochs: [[Int]] = []
        for epoch in 0..<3 {
            let seen = loader.steps(ofEpoch: epoch).flatMap { loader.batch(step: $0) }
            XCTAssertEqual(seen.sorted(), Array(0..<103), "epoch \(epoch) visits every example once")
            XCTAssertEqual(seen, loader.permutation(epoch: epoch))
            epochs.append(seen)
        }
        XCTAssertNotEqual(epochs[0], epochs[1])
        XCTAssertNotEqual(epochs[1], epochs[2])
        XCTAssertNotEqual(epochs[0], Array(0..<103), "shuffled")
        XCTAssertEqual(loader.batch(step: 10).count, 3, "the last batch holds the remainder")
        XCTAssertNotEqual(
            DataLoader(dataset: Numbers(count: 103), batchSize: 10, seed: 2).permutation(epoch: 0), epochs[0],
            "another seed, another order")
        // Pinned, so that a toolchain change cannot silently change the batches of a resumed run.
        XCTAssertEqual(Array(DataLoader(dataset: Numbers(count: 10), batchSize: 2, seed: 0).permutation(epoch: 0)), [8, 1, 2, 0, 7, 4, 5, 6, 9, 3])
    }

    func testResumingAtAnyStepReproducesTheBatches() {
        let dataset = Numbers(count: 50)
        let original = DataLoader(dataset: dataset, batchSize: 8, seed: 123)
        XCTAssertEqual(original.batchesPerEpoch, 6, "dropLast defaults to true when shuffling")
        let uninterrupted = (0..<40).map { original.batch(step: $0) }
        XCTAssertTrue(uninterrupted.allSatisfy { $0.count == 8 })
        // A fresh loader (as after a restart) asked for steps 17..<40, in any order, gives the same batches.
        let resumed = DataLoader(dataset: dataset, batchSize: 8, seed: 123)
        for step in (17..<40).reversed() {
            XCTAssertEqual(resumed.batch(step: step), uninterrupted[step], "step \(step)")
        }
        XCTAssertEqual(original.position(ofStep: 13).epoch, 2)
        XCTAssertEqual(original.position(ofStep: 13).batch, 1)
    }

    func testWithoutShuffleBatchesAreInOrder() {
        let loader = DataLoader(dataset: Numbers(count: 7), batchSize: 3, seed: 9, shuffle: false)
        XCTAssertEqual(loader.batchesPerEpoch, 3)
        XCTAssertEqual((0..<4).map { loader.batch(step: $0) }, [[0, 1, 2], [3, 4, 5], [6], [0, 1, 2]])
    }

    func testWorksOverSortOfCLEVRQuestions() {
        let dataset = SortOfCLEVR.generate(SortOfCLEVR.Configuration(seed: 2), split: .train, count: 10)
        let loader = DataLoader(dataset: dataset, batchSize: 64, seed: 4)
        XCTAssertEqual(loader.batchesPerEpoch, 3)
        let batch = loader.batch(step: 4)
        XCTAssertEqual(batch.images.shape, [64, 3, 75, 75])
        XCTAssertEqual(batch.answers, loader.indices(step: 4).map { dataset.question(at: $0).question.answer.rawValue })
    }
}
