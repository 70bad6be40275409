import NFMTensor

/// One entry of a state dict: Float32 tensors, or int64 counters (torch's `num_batches_tracked`).
public enum StateValue: Sendable {
    /// A Float32 parameter or buffer.
    case float(Tensor)
    /// An int64 scalar counter.
    case int64(Int64)

    /// The shape as PyTorch reports it (`[]` for counters).
    public var shape: [Int] {
        switch self {
        case .float(let tensor): return tensor.shape
        case .int64: return []
        }
    }
}

/// An ordered mapping from PyTorch-style keys (`conv.conv1.weight`) to values, as `state_dict()`.
public struct StateDict: Sendable {
    /// Keys in insertion order (torch's order).
    public private(set) var keys: [String] = []
    private var values: [String: StateValue] = [:]

    /// An empty state dict.
    public init() {}

    /// The value for `key`.
    public subscript(key: String) -> StateValue? {
        get { values[key] }
        set {
            if values[key] == nil, newValue != nil { keys.append(key) }
            if newValue == nil { keys.removeAll { $0 == key } }
            values[key] = newValue
        }
    }

    /// Entries in order.
    public var entries: [(key: String, value: StateValue)] { keys.map { ($0, values[$0]!) } }

    /// The number of entries.
    public var count: Int { keys.count }

    /// Adds every entry of `other` under `prefix` (for checkpoints that hold several state dicts).
    public mutating func merge(_ other: StateDict, prefix: String) {
        for (key, value) in other.entries { self[prefix + key] = value }
    }

    /// The entries whose keys start with `prefix`, with the prefix removed.
    public func subset(prefix: String) -> StateDict {
        var result = StateDict()
        for (key, value) in entries where key.hasPrefix(prefix) { result[String(key.dropFirst(prefix.count))] = value }
        return result
    }
}

/// Why a state dict did not load: every missing key, unexpected key and shape mismatch at once.
public struct StateDictError: Error, CustomStringConvertible {
    /// Keys the module has that the state dict lacks.
    public var missingKeys: [String]
    /// Keys in the state dict that the module does not have.
    public var unexpectedKeys: [String]
    /// Keys whose shapes differ, with the module's and the state dict's shapes.
    public var shapeMismatches: [(key: String, expected: [Int], found: [Int])]

    /// A readable report naming every problem.
    public var description: String {
        var lines = ["state dict does not match the model:"]
        if !missingKeys.isEmpty { lines.append("  missing keys (\(missingKeys.count)): \(missingKeys.joined(separator: ", "))") }
        if !unexpectedKeys.isEmpty { lines.append("  unexpected keys (\(unexpectedKeys.count)): \(unexpectedKeys.joined(separator: ", "))") }
        for mismatch in shapeMismatches {
            lines.append("  shape mismatch for \(mismatch.key): model has \(mismatch.expected), state dict has \(mismatch.found)")
        }
        return lines.joined(separator: "\n")
    }
}

extension Module {
    /// Every parameter and buffer under its PyTorch key, in torch's order.
    public func stateDict() -> StateDict {
        var result = StateDict()
        for (key, slot) in parameterTable.slots {
            guard let tensor = slot.tensor else { continue }
            result[key] = slot.kind == .counter ? .int64(Int64(tensor.item)) : .float(tensor)
        }
        return result
    }

    /// Loads parameters and buffers by key (torch's `load_state_dict`). With `strict`, missing and
    /// unexpected keys are errors; shape mismatches always are. Nothing is changed unless the
    /// whole load succeeds, so a failed load leaves the model as it was.
    public func load(stateDict: StateDict, strict: Bool = true) throws {
        let slots = parameterTable.slots.filter { $0.slot.tensor != nil }
        var error = StateDictError(missingKeys: [], unexpectedKeys: [], shapeMismatches: [])
        let known = Set(slots.map(\.key))
        error.unexpectedKeys = stateDict.keys.filter { !known.contains($0) }
        var assignments: [(TensorSlot, Tensor)] = []
        for (key, slot) in slots {
            guard let value = stateDict[key] else {
                error.missingKeys.append(key)
                continue
            }
            let expected = slot.tensor!.shape
            switch (slot.kind, value) {
            case (.counter, .int64(let count)): assignments.append((slot, Tensor(Float(count))))
            case (.counter, .float(let tensor)) where tensor.scalarCount == 1: assignments.append((slot, tensor.reshaped(to: [])))
            case (_, .float(let tensor)) where tensor.shape == expected: assignments.append((slot, tensor))
            default: error.shapeMismatches.append((key, expected, value.shape))
            }
        }
        if !error.shapeMismatches.isEmpty || (strict && !(error.missingKeys.isEmpty && error.unexpectedKeys.isEmpty)) {
            throw error
        }
        for (slot, tensor) in assignments { slot.tensor = tensor }
    }
}
