import Foundation
import NFMLayers
import NFMModels
import NFMNN
import NFMTensor
import XCTest

final class NFMLayerTests: XCTestCase {
    /// The reference model's keys, shapes and dtypes (copied from shared/reference).
    func referenceEntries() throws -> [(key: String, shape: [Int], dtype: String)] {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "sort_of_clevr_nfm_state_dict", withExtension: "tsv", subdirectory: "Fixtures"))
        return try String(contentsOf: url, encoding: .utf8).split(separator: "\n").compactMap { line in
            let fields = line.split(separator: "\t").map(String.init)
            guard fields.count == 3, !line.hasPrefix("#"), fields[0] != "key" else { return nil }
            let shape = fields[1].dropFirst().dropLast().split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            return (fields[0], shape, fields[2])
        }
    }

    func testSortOfClevrNFMModelHasExactlyTheReferenceKeysAndShapes() throws {
        var generator = SeededGenerator(seed: 0)
        let model = SortOfClevrModel(using: &generator)
        let ours = model.stateDict()
        let reference = try referenceEntries()
        XCTAssertEqual(reference.count, 192)
        XCTAssertEqual(ours.keys, reference.map(\.key), "keys or their order differ from the reference state_dict")
        for entry in reference {
            guard let value = ours[entry.key] else { continue }
            XCTAssertEqual(value.shape, entry.shape, entry.key)
            switch value {
            case .int64: XCTAssertEqual(entry.dtype, "int64", entry.key)
            case .float: XCTAssertEqual(entry.dtype, "float32", entry.key)
            }
        }
        let values = ours.entries.reduce(0) { total, entry in
            if case .float(let tensor) = entry.value { return total + tensor.scalarCount }
            return total + 1
        }
        XCTAssertEqual(values, 6_898_530)
    }

    func testBaselineHasThePass1TrunkAndHeadOnly() {
        var generator = SeededGenerator(seed: 0)
        let model = SortOfClevrModel(nfm: nil, using: &generator)
        let keys = model.stateDict().keys
        XCTAssertFalse(keys.contains { $0.contains(".ad.") || $0.contains("conv1b") })
        XCTAssertTrue(keys.contains("conv.conv4.weight") && keys.contains("fcout.fc3.bias"))
    }

    func testAFreshNFMLayerIsTheIdentityBecauseGammaStartsAtZero() {
        var generator = SeededGenerator(seed: 1)
        let nfm = NeuralFunctionModules(slotChannels: [6, 6], heads: 2, keySize: 4, valueSize: 3, topK: 1, using: &generator)
        let x = Tensor.randomNormal([2, 6, 5, 5], using: &generator)
        var memory = NFMMemory()
        _ = nfm(x, slot: 0, read: false, write: true, memory: &memory)
        let y = nfm(x, slot: 1, read: true, write: true, memory: &memory)
        XCTAssertEqual(y.scalars, x.scalars)
        XCTAssertEqual(memory.writtenSlots, [0, 1])
        // The read still happened: weights over the 2 written slots plus the null slot.
        XCTAssertEqual(nfm.lastAttention[1]?.slots, [0, 1])
        XCTAssertEqual(nfm.lastAttention[1]?.weights.shape[2], 3)
    }

    func testPass1QueryAndOutLayersGetNoGradientSoOptimizersSkipThem() {
        var generator = SeededGenerator(seed: 2)
        let model = SortOfClevrModel(widths: [4, 4, 4, 4], using: &generator)
        let images = Tensor.randomUniform([2, 3, 75, 75], using: &generator)
        let questions = Tensor.randomUniform([2, 11], using: &generator)
        var dropoutGenerator = SeededGenerator(seed: 3)
        let (_, gradients) = valueAndGrad(model: model) { model in
            nllLoss(model(images: images, questions: questions, generator: &dropoutGenerator), targets: [1, 2])
        }
        for slot in 0..<4 {
            XCTAssertNil(gradients["conv.ad.query_layers.\(slot).weight"], "pass-1 slot \(slot) never reads")
            XCTAssertNil(gradients["conv.ad.out_layers.\(slot).0.weight"])
            XCTAssertNotNil(gradients["conv.ad.key_layers.\(slot).weight"], "pass-1 slot \(slot) writes keys read in pass 2")
        }
        for slot in 4..<8 {
            XCTAssertNotNil(gradients["conv.ad.query_layers.\(slot).weight"])
            XCTAssertNotNil(gradients["conv.ad.gammas.\(slot)"], "γ gets a gradient even at 0")
        }
    }
}
