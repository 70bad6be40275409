// A lean gradient step for small networks. `valueAndGrad(model:)` and `optimizer.update(model:)`
// find a module's parameters by reflection (Mirror) on every call; for MinAtar's 132k-parameter
// network that walk costs as much as the arithmetic of the update (measured with `nfm-rl speed`).
// Here each network lists its parameters once, as get/set handles, and the step runs through them.

import Foundation
import NFMNN
import NFMOptimizers
import NFMTensor

/// Direct access to one parameter of a module: its state-dict name and how to read and replace it.
public struct ParameterHandle {
    /// The name under which `namedParameters()` and checkpoints know it.
    public let name: String
    /// Reads the parameter.
    public let get: () -> Tensor
    /// Replaces the parameter.
    public let set: (Tensor) -> Void

    /// A handle from its name and accessors.
    public init(name: String, get: @escaping () -> Tensor, set: @escaping (Tensor) -> Void) {
        self.name = name
        self.get = get
        self.set = set
    }

    /// The weight and (if any) bias of a convolution, named `prefix.weight`, `prefix.bias`.
    public static func of(_ layer: Conv2d, prefix: String) -> [ParameterHandle] {
        var handles = [ParameterHandle(name: prefix + ".weight", get: { layer.weight }, set: { layer.weight = $0 })]
        if layer.bias != nil { handles.append(ParameterHandle(name: prefix + ".bias", get: { layer.bias! }, set: { layer.bias = $0 })) }
        return handles
    }

    /// The weight and (if any) bias of a linear layer.
    public static func of(_ layer: Linear, prefix: String) -> [ParameterHandle] {
        var handles = [ParameterHandle(name: prefix + ".weight", get: { layer.weight }, set: { layer.weight = $0 })]
        if layer.bias != nil { handles.append(ParameterHandle(name: prefix + ".bias", get: { layer.bias! }, set: { layer.bias = $0 })) }
        return handles
    }

    /// The affine weight and bias of a batch norm.
    public static func of(_ layer: BatchNorm, prefix: String) -> [ParameterHandle] {
        [
            ParameterHandle(name: prefix + ".weight", get: { layer.weight }, set: { layer.weight = $0 }),
            ParameterHandle(name: prefix + ".bias", get: { layer.bias }, set: { layer.bias = $0 }),
        ]
    }
}

/// A placeholder parked in a parameter's slot while the optimizer updates the parameter, so that the
/// parameter's storage is uniquely held and updated in place instead of copied.
private let parkedParameter = Tensor(zeros: [0])

/// One gradient step through `handles`: makes every parameter a leaf of the tape, evaluates `loss`,
/// back-propagates, and lets `optimizer` update each parameter that got a gradient (the others are
/// skipped, as torch skips parameters whose grad is None). Returns the loss.
///
/// The same as `valueAndGrad(model:)` followed by `optimizer.update(model:gradients:)`, without the
/// reflection walks.
public func gradientStep(handles: [ParameterHandle], optimizer: any Optimizer, loss: () -> Tensor) -> Float {
    var timings = GradientStepTimings()
    return gradientStep(handles: handles, optimizer: optimizer, timings: &timings, loss: loss)
}

/// Nanoseconds spent in the phases of `gradientStep`, accumulated (for `nfm-rl speed`).
struct GradientStepTimings {
    var forward: UInt64 = 0
    var backward: UInt64 = 0
    var optimizer: UInt64 = 0
}

/// `gradientStep`, adding the time of each phase to `timings`.
func gradientStep(
    handles: [ParameterHandle], optimizer: any Optimizer, timings: inout GradientStepTimings, loss: () -> Tensor
) -> Float {
    let start = DispatchTime.now().uptimeNanoseconds
    var leaves: [Tensor] = []
    leaves.reserveCapacity(handles.count)
    for handle in handles {
        let leaf = handle.get().requiringGradient()
        handle.set(leaf)
        leaves.append(leaf)
    }
    let value = loss()
    precondition(value.scalarCount == 1, "gradientStep: the loss must be a scalar, got shape \(value.shape)")
    let forwardEnd = DispatchTime.now().uptimeNanoseconds
    let grads = gradients(of: value, withRespectTo: leaves)
    leaves.removeAll()
    let backwardEnd = DispatchTime.now().uptimeNanoseconds
    for (handle, gradient) in zip(handles, grads) {
        var parameter = handle.get().detached()
        handle.set(parkedParameter)
        if let gradient { optimizer.update(&parameter, named: handle.name, gradient: gradient) }
        handle.set(parameter)
    }
    let end = DispatchTime.now().uptimeNanoseconds
    timings.forward += forwardEnd - start
    timings.backward += backwardEnd - forwardEnd
    timings.optimizer += end - backwardEnd
    return value.item
}
