import NFMTensor

/// Evaluates `loss` on `model` with every parameter differentiable and returns the loss value and
/// the gradient of each parameter by name (MLX Swift's `valueAndGrad(model:)`). Parameters that do
/// not affect the loss are absent, as torch leaves their `.grad` None, so optimizers skip them. A
/// parameter reachable under several names (a module used twice) is one leaf, so its one gradient,
/// under its `namedParameters()` name, sums every use, as torch accumulates `.grad`.
public func valueAndGrad<M: Module>(
    model: M, _ loss: (M) -> Tensor
) -> (value: Tensor, gradients: [String: Tensor]) {
    let slots = model.parameterTable.parameters.filter { $0.slot.tensor != nil }
    var leaves: [Tensor] = []
    for (_, slot) in slots {
        let leaf = slot.tensor!.requiringGradient()
        slot.tensor = leaf
        leaves.append(leaf)
    }
    let value = loss(model)
    precondition(value.scalarCount == 1, "valueAndGrad: the loss must be a scalar, got shape \(value.shape)")
    let grads = gradients(of: value, withRespectTo: leaves)
    var result: [String: Tensor] = [:]
    for ((key, slot), gradient) in zip(slots, grads) {
        slot.tensor = slot.tensor!.detached()
        if let gradient { result[key] = gradient }
    }
    return (value.detached(), result)
}
