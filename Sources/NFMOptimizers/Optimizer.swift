import NFMTensor

/// A first-order optimizer with PyTorch's `torch.optim` semantics, working on named parameters.
///
/// Parameters are identified by name (the Module's parameter path, e.g. `"encoder.weight"`). A
/// parameter whose name is absent from the gradients has no gradient this step (torch's `grad is
/// None`): it is skipped entirely, so no state is created for it, no weight decay touches it and its
/// step count does not advance. Hyper-parameters come from the initialiser (the run's config), not
/// from the state dict. They are `Double`, as torch's Python floats: scalar arithmetic such as
/// bias corrections and 1 − β runs in double and is rounded once to Float where it meets a tensor,
/// which is what makes the results match torch's to float rounding.
///
/// Updates run in place as single fused loops over the parameter, gradient and state buffers, so a
/// parameter tensor whose storage is not shared is never copied. Mutating a tensor detaches it from
/// the autodiff tape, as `torch.no_grad()` does around `optimizer.step()`.
public protocol Optimizer: AnyObject {
    /// The step size; a schedule may change it between updates (torch's `param_groups[0]["lr"]`).
    var learningRate: Double { get set }

    /// Applies one update to a single parameter from its gradient, creating the parameter's state on
    /// its first gradient. The building block of the collection forms of `update`.
    func update(_ parameter: inout Tensor, named name: String, gradient: Tensor)

    /// The optimizer state as flat named tensors with torch's names: `state.<index>.<name>`, where
    /// `index` is the parameter's position in `parameterOrder` (the numbering of torch's
    /// `optimizer.state_dict()["state"]`) and `step` is a scalar tensor. Parameters that never had a
    /// gradient have no entries. The tensors share storage with the optimizer's buffers; the next
    /// update copies before writing, so the returned dictionary is a stable snapshot.
    func stateDict(parameterOrder: [String]) -> [String: Tensor]

    /// Replaces the optimizer state with `stateDict` (as written by `stateDict(parameterOrder:)` or
    /// flattened from torch). `parameters` gives the order that numbers the entries and the shapes
    /// the buffers must have. Nothing changes if it throws.
    func load(stateDict: [String: Tensor], parameters: [(name: String, tensor: Tensor)]) throws
}

extension Optimizer {
    /// Updates `parameters` in place from `gradients`; parameters absent from `gradients` are skipped.
    /// Every gradient must name a parameter.
    public func update(_ parameters: inout [String: Tensor], gradients: [String: Tensor]) {
        for (name, gradient) in gradients {
            guard let index = parameters.index(forKey: name) else {
                preconditionFailure("\(Self.self).update: gradient for '\(name)', which is not a parameter")
            }
            // Through the index, the value is mutated inside the dictionary: no copy of its storage.
            update(&parameters.values[index], named: name, gradient: gradient)
        }
    }

    /// Updates an ordered list of named parameters (as torch's `named_parameters()`) in place from
    /// `gradients`; parameters absent from `gradients` are skipped. Every gradient must name a parameter.
    public func update(_ parameters: inout [(name: String, tensor: Tensor)], gradients: [String: Tensor]) {
        var applied = 0
        for index in parameters.indices {
            guard let gradient = gradients[parameters[index].name] else { continue }
            update(&parameters[index].tensor, named: parameters[index].name, gradient: gradient)
            applied += 1
        }
        if applied != gradients.count {
            let known = Set(parameters.map(\.name))
            let unknown = gradients.keys.filter { !known.contains($0) }.sorted()
            preconditionFailure("\(Self.self).update: gradients for \(unknown), which are not parameters")
        }
    }
}

/// A problem with an optimizer state dict being loaded; the message names the offending key.
public enum OptimizerStateError: Error, Equatable, CustomStringConvertible {
    /// An entry the optimizer needs for a parameter that has state is absent.
    case missingEntry(key: String, expectedShape: [Int])
    /// An entry has a shape other than the one the optimizer needs.
    case shapeMismatch(key: String, expectedShape: [Int], foundShape: [Int])
    /// A key that this optimizer, as configured, does not use (e.g. an Adam state loaded into SGD,
    /// or an index beyond the parameter list).
    case unexpectedEntry(key: String)
    /// A `step` entry that is not a non-negative whole number.
    case invalidStep(key: String, value: Float)

    /// A sentence naming the key and, for shape problems, both shapes.
    public var description: String {
        switch self {
        case .missingEntry(let key, let expectedShape):
            return "optimizer state: '\(key)' is missing (expected shape \(expectedShape), found none)"
        case .shapeMismatch(let key, let expectedShape, let foundShape):
            return "optimizer state: '\(key)' has shape \(foundShape), expected \(expectedShape)"
        case .unexpectedEntry(let key):
            return "optimizer state: unexpected entry '\(key)'; was it saved by another optimizer or configuration?"
        case .invalidStep(let key, let value):
            return "optimizer state: '\(key)' is \(value), not a non-negative whole number"
        }
    }
}

// MARK: Shared internals

/// torch's name of the per-parameter step counter.
let stepEntry = "step"

/// Flattens per-parameter state into torch's `state.<index>.<name>` keys.
/// `entries(name)` gives a parameter's entries, or `nil` when it has no state.
func flattenState(
    parameterOrder: [String], stateNames: some Collection<String>, optimizer: String,
    entries: (String) -> [(name: String, tensor: Tensor)]?
) -> [String: Tensor] {
    let position = Dictionary(parameterOrder.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
    var result: [String: Tensor] = [:]
    for name in stateNames {
        guard let index = position[name] else {
            preconditionFailure("\(optimizer).stateDict: '\(name)' has state but is not in parameterOrder")
        }
        for entry in entries(name) ?? [] {
            result["state.\(index).\(entry.name)"] = entry.tensor
        }
    }
    return result
}

/// Reads torch-style flat state into per-parameter entry dictionaries, validating everything first.
///
/// `entryNames` lists the entries a parameter with state must have; `step` is a scalar, every other
/// entry has the parameter's shape. A parameter with no entries at all has no state (it never had a
/// gradient), which is valid. Returns parameter name → entry name → tensor.
func unflattenState(
    _ stateDict: [String: Tensor], parameters: [(name: String, tensor: Tensor)], entryNames: [String]
) throws -> [String: [String: Tensor]] {
    // Group the keys by parameter index, rejecting anything that is not one of our entries.
    var byIndex: [Int: [String: Tensor]] = [:]
    for key in stateDict.keys.sorted() {
        let parts = key.split(separator: ".", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "state", let index = Int(parts[1]),
            parameters.indices.contains(index), entryNames.contains(String(parts[2]))
        else { throw OptimizerStateError.unexpectedEntry(key: key) }
        byIndex[index, default: [:]][String(parts[2])] = stateDict[key]
    }

    var result: [String: [String: Tensor]] = [:]
    for index in byIndex.keys.sorted() {
        let found = byIndex[index]!
        let parameter = parameters[index]
        for entryName in entryNames {
            let key = "state.\(index).\(entryName)"
            let expectedShape = entryName == stepEntry ? [] : parameter.tensor.shape
            guard let tensor = found[entryName] else {
                throw OptimizerStateError.missingEntry(key: key, expectedShape: expectedShape)
            }
            guard tensor.shape == expectedShape else {
                throw OptimizerStateError.shapeMismatch(key: key, expectedShape: expectedShape, foundShape: tensor.shape)
            }
            if entryName == stepEntry {
                let value = tensor.item
                guard value >= 0, value == value.rounded() else {
                    throw OptimizerStateError.invalidStep(key: key, value: value)
                }
            }
        }
        // Detached, so the buffers carry no tape node; the storage stays shared with the caller's
        // tensors until the first update, which copies before writing (value semantics).
        result[parameter.name] = found.mapValues { $0.detached() }
    }
    return result
}

/// Stops with both shapes named when a gradient does not fit its parameter.
@inline(__always)
func checkGradientShape(_ parameter: Tensor, _ gradient: Tensor, name: String, optimizer: String) {
    precondition(
        parameter.shape == gradient.shape,
        "\(optimizer).update: gradient of '\(name)' has shape \(gradient.shape), the parameter \(parameter.shape)")
}

/// Stops with both shapes named when a parameter's shape changed since its state was created.
@inline(__always)
func checkStateShape(_ state: Tensor, _ parameter: Tensor, name: String, optimizer: String) {
    precondition(
        state.shape == parameter.shape,
        "\(optimizer).update: state of '\(name)' has shape \(state.shape), the parameter \(parameter.shape)")
}
