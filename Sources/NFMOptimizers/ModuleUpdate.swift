import NFMNN
import NFMTensor

extension Optimizer {
    /// Updates `model`'s parameters in place from `gradients` (MLX Swift's
    /// `optimizer.update(model:gradients:)`); parameters without a gradient are skipped, as torch
    /// skips parameters whose grad is None. Every gradient must name a parameter of `model`.
    public func update(model: Module, gradients: [String: Tensor]) {
        var applied = 0
        model.modifyParameters { name, parameter in
            guard let gradient = gradients[name] else { return }
            update(&parameter, named: name, gradient: gradient)
            applied += 1
        }
        precondition(
            applied == gradients.count,
            "\(Self.self).update(model:): \(gradients.count - applied) gradients do not name parameters of \(type(of: model))")
    }

    /// The optimizer state of `model`'s parameters with torch's names (`state.<index>.exp_avg`, …).
    public func stateDict(for model: Module) -> [String: Tensor] {
        stateDict(parameterOrder: model.namedParameters().map(\.name))
    }

    /// Restores optimizer state saved by `stateDict(for:)` for the same model.
    public func load(stateDict: [String: Tensor], for model: Module) throws {
        try load(stateDict: stateDict, parameters: model.namedParameters())
    }
}
