import NFMTensor
import Synchronization

/// A neural-network building block that owns parameters, buffers and child modules, named exactly
/// as PyTorch's `state_dict` names them (MLX Swift's `Module`, with PyTorch keys).
///
/// Subclasses declare parameters with `@ParameterInfo`, buffers with `@BufferInfo`, and children as
/// ordinary stored properties (a `Module`, an optional one, or an array of them, which gets the
/// keys `.0`, `.1`, …). Keys are the property names unless a wrapper gives another `key`. As in
/// torch, a module's own parameters come first, then its buffers, then its children in declaration
/// order; that order is the parameter order optimizers number their state by.
///
/// The structure is found by reflection once, on first use, and kept as a parameter table (as MLX
/// Swift builds its parameter tree once): `valueAndGrad(model:)`, optimizer updates, state dicts,
/// `train()` and `eval()` all reuse it. Assigning a parameter or buffer (`layer.weight = w`) does
/// not change the structure. Replacing a child does, so a child that may be replaced after the
/// module is built must be declared with `@ModuleInfo`, whose setter invalidates every table built
/// before; children held in `let` properties are fixed.
open class Module {
    /// True in training mode (batch statistics, dropout on); false after `eval()`.
    public private(set) var isTraining = true

    /// The table of this module's tree, built on first use (see `parameterTable`).
    private var cachedTable: ParameterTable?

    /// Creates a module in training mode.
    public init() {}

    /// Switches this module and every descendant to training mode (torch's `train()`).
    public func train() { setTraining(true) }

    /// Switches this module and every descendant to evaluation mode (torch's `eval()`).
    public func eval() { setTraining(false) }

    private func setTraining(_ training: Bool) {
        isTraining = training
        for module in parameterTable.descendants { module.isTraining = training }
    }

    // MARK: Reflection

    /// The direct children with their keys, in declaration order.
    open func children() -> [(key: String, module: Module)] {
        var result: [(String, Module)] = []
        for (label, value) in storedProperties() {
            switch value {
            case let info as ModuleInfoSlot:
                let key = info.key ?? label
                if let module = info.anyModule { result.append((key, module)) }
                for (index, module) in info.anyModules.enumerated() { result.append(("\(key).\(index)", module)) }
            case let module as Module:
                result.append((label, module))
            case let modules as [Module]:
                for (index, module) in modules.enumerated() { result.append(("\(label).\(index)", module)) }
            default:
                if let module = (value as? OptionalModule)?.wrappedModule { result.append((label, module)) }
            }
        }
        return result
    }

    /// This module's own parameter and buffer slots (not its children's), in declaration order.
    /// Overridden by containers whose keys are bare indices (`ParameterList`).
    func ownSlots() -> [(key: String, slot: TensorSlot)] {
        storedProperties().compactMap { label, value in
            guard let slot = value as? TensorSlot else { return nil }
            return (slot.key ?? label, slot)
        }
    }

    /// Stored properties of the whole class chain, base class first, with the `_` that property
    /// wrappers add removed from labels. Module's own bookkeeping is left out.
    private func storedProperties() -> [(String, Any)] {
        var mirrors: [Mirror] = []
        var mirror: Mirror? = Mirror(reflecting: self)
        while let current = mirror {
            mirrors.append(current)
            mirror = current.superclassMirror
        }
        return mirrors.reversed().flatMap { mirror in
            mirror.children.compactMap { child -> (String, Any)? in
                guard var label = child.label, label != "isTraining", label != "cachedTable" else { return nil }
                if label.hasPrefix("_") { label.removeFirst() }
                return (label, child.value)
            }
        }
    }

    /// The table of this module's tree: built by reflection on first use, then reused until a
    /// `@ModuleInfo` child anywhere is replaced.
    var parameterTable: ParameterTable {
        let generation = moduleStructureGeneration.load(ordering: .relaxed)
        if let cachedTable, cachedTable.generation == generation { return cachedTable }
        let table = ParameterTable(root: self, generation: generation)
        cachedTable = table
        return table
    }

    // MARK: Parameters

    /// Every parameter (not buffers) with its dotted name, in torch's `named_parameters()` order. A
    /// parameter reachable under several names (a module used twice) is listed once, under the first,
    /// as torch does; `stateDict()` keeps every name.
    public func namedParameters() -> [(name: String, tensor: Tensor)] {
        parameterTable.parameters.compactMap { key, slot in slot.tensor.map { (key, $0) } }
    }

    /// The number of scalar parameters.
    public var parameterCount: Int { namedParameters().reduce(0) { $0 + $1.tensor.scalarCount } }

    /// Replaces parameters by name; every name must be a parameter and keep its shape.
    public func update(parameters: [String: Tensor]) {
        var applied = 0
        for (key, slot) in parameterTable.slots where slot.kind == .parameter {
            guard let value = parameters[key] else { continue }
            precondition(
                slot.tensor?.shape == value.shape,
                "update(parameters:): '\(key)' has shape \(slot.tensor?.shape ?? []), new value \(value.shape)")
            slot.tensor = value
            applied += 1
        }
        precondition(
            applied == parameters.count,
            "update(parameters:): \(parameters.count - applied) names are not parameters of \(type(of: self))")
    }

    /// Calls `body` with each parameter's name and the parameter itself, uniquely held, so that an
    /// optimizer can update it in place without copying its storage.
    public func modifyParameters(_ body: (_ name: String, _ parameter: inout Tensor) -> Void) {
        // Each parameter once: a module used twice must not be stepped twice.
        for (key, slot) in parameterTable.parameters {
            slot.modify { body(key, &$0) }
        }
    }
}

/// Counts replacements of `@ModuleInfo` children anywhere; a parameter table built at an older
/// count is stale. One global count, because a module does not know the trees it is part of.
private let moduleStructureGeneration = Atomic<Int>(0)

/// A module tree's structure, found by reflection once and then reused, so that the hot paths
/// (`valueAndGrad(model:)`, optimizer updates, `train()`/`eval()`) walk arrays instead of mirrors.
final class ParameterTable {
    /// The structure generation it was built at.
    let generation: Int
    /// Every parameter and buffer slot with its dotted key, in torch's `state_dict` order; a slot
    /// reachable under several names (a module used twice) appears under each.
    let slots: [(key: String, slot: TensorSlot)]
    /// Each parameter slot once, under the first name that reaches it (torch's `named_parameters`).
    let parameters: [(key: String, slot: TensorSlot)]
    /// Every module below the root, each once. The root is not held, so that the table it caches
    /// does not keep it alive.
    let descendants: [Module]

    init(root: Module, generation: Int) {
        self.generation = generation
        var slots: [(key: String, slot: TensorSlot)] = []
        var descendants: [Module] = []
        var seenModules = Set<ObjectIdentifier>()
        func visit(_ module: Module, prefix: String) {
            let own = module.ownSlots().map { (key: prefix + $0.key, slot: $0.slot) }
            slots += own.filter { $0.slot.kind == .parameter }
            slots += own.filter { $0.slot.kind != .parameter }
            for (key, child) in module.children() {
                if seenModules.insert(ObjectIdentifier(child)).inserted { descendants.append(child) }
                visit(child, prefix: prefix + key + ".")
            }
        }
        visit(root, prefix: "")
        var seenSlots = Set<ObjectIdentifier>()
        parameters = slots.filter { $0.slot.kind == .parameter && seenSlots.insert(ObjectIdentifier($0.slot)).inserted }
        self.slots = slots
        self.descendants = descendants
    }
}

/// A module that maps one tensor to one tensor (MLX Swift's `UnaryLayer`).
public protocol UnaryLayer: Module {
    /// Applies the layer.
    func callAsFunction(_ x: Tensor) -> Tensor
}

// MARK: Property wrappers

/// What a slot holds: a trained parameter, a float buffer (running statistics), or an integer
/// counter buffer (torch's int64 `num_batches_tracked`).
public enum SlotKind: Sendable {
    /// Trained by the optimizer.
    case parameter
    /// Saved and loaded, not trained.
    case buffer
    /// An int64 scalar buffer.
    case counter
}

/// Type-erased access to a parameter or buffer wrapper.
protocol TensorSlot: AnyObject {
    var key: String? { get }
    var kind: SlotKind { get }
    var tensor: Tensor? { get set }
    /// Lends the tensor to `body` as the only reference, so in-place updates need no copy.
    func modify(_ body: (inout Tensor) -> Void)
}

/// `Tensor` or `Tensor?`, so that one wrapper serves required and optional parameters (a Linear without bias).
public protocol TensorSlotValue {
    /// The wrapped tensor, if any.
    var slotTensor: Tensor? { get }
    /// Wraps a tensor.
    init(slotTensor: Tensor?)
}

extension Tensor: TensorSlotValue {
    /// The tensor itself.
    public var slotTensor: Tensor? { self }
    /// Unwraps; a required parameter cannot be removed.
    public init(slotTensor: Tensor?) {
        guard let slotTensor else { preconditionFailure("a required parameter or buffer cannot be set to nil") }
        self = slotTensor
    }
}

extension Optional: TensorSlotValue where Wrapped == Tensor {
    /// The optional tensor.
    public var slotTensor: Tensor? { self }
    /// Wraps an optional tensor.
    public init(slotTensor: Tensor?) { self = slotTensor }
}

/// The storage that `ParameterInfo` and `BufferInfo` share: an optional value (unset until the
/// module's initialiser assigns it), the PyTorch key, and what kind of slot it is.
public class TensorSlotStorage<Value: TensorSlotValue>: TensorSlot {
    var value: Value?
    let key: String?
    let kind: SlotKind

    init(value: Value?, key: String?, kind: SlotKind) {
        self.value = value
        self.key = key
        self.kind = kind
    }

    func read() -> Value {
        guard let value else { preconditionFailure("\(kind) '\(key ?? "?")' read before it was set") }
        return value
    }

    func modify(_ body: (inout Tensor) -> Void) {
        guard var tensor = value?.slotTensor else { return }
        value = nil  // drop the wrapper's reference so that `tensor` is uniquely held
        body(&tensor)
        value = Value(slotTensor: tensor)
    }

    var tensor: Tensor? {
        get { value?.slotTensor }
        set { value = Value(slotTensor: newValue) }
    }
}

/// Declares a trained parameter of a `Module`, saved under the property name or `key`.
@propertyWrapper
public final class ParameterInfo<Value: TensorSlotValue>: TensorSlotStorage<Value> {
    /// The parameter; set it in the module's initialiser before first use.
    public var wrappedValue: Value {
        get { read() }
        set { value = newValue }
    }

    /// A parameter saved under the property name, or under `key` (a PyTorch name) if given; the
    /// module's initialiser assigns its value.
    public init(key: String? = nil) { super.init(value: nil, key: key, kind: .parameter) }

    /// A parameter with an initial value.
    public init(wrappedValue: Value, key: String? = nil) { super.init(value: wrappedValue, key: key, kind: .parameter) }
}

/// Declares a buffer of a `Module` (saved, not trained), such as batch norm's running statistics.
@propertyWrapper
public final class BufferInfo<Value: TensorSlotValue>: TensorSlotStorage<Value> {
    /// The buffer; set it in the module's initialiser before first use.
    public var wrappedValue: Value {
        get { read() }
        set { value = newValue }
    }

    /// A buffer saved under the property name, or under `key` (a PyTorch name) if given; the
    /// module's initialiser assigns its value.
    public init(key: String? = nil) { super.init(value: nil, key: key, kind: .buffer) }

    /// A buffer with an initial value.
    public init(wrappedValue: Value, key: String? = nil) { super.init(value: wrappedValue, key: key, kind: .buffer) }
}

/// Declares an integer counter buffer, saved as an int64 scalar (torch's `num_batches_tracked`).
@propertyWrapper
public final class CounterInfo: TensorSlot {
    /// The count.
    public var wrappedValue: Int = 0
    let key: String?
    var kind: SlotKind { .counter }
    var tensor: Tensor? {
        get { Tensor(Float(wrappedValue)) }
        set { wrappedValue = Int(newValue?.item ?? 0) }
    }

    func modify(_ body: (inout Tensor) -> Void) {
        var tensor = Tensor(Float(wrappedValue))
        body(&tensor)
        wrappedValue = Int(tensor.item)
    }

    /// A counter starting at 0, saved under the property name or `key`.
    public init(key: String? = nil) { self.key = key }

    /// A counter saved under the property name, or under `key` if given.
    public init(wrappedValue: Int, key: String? = nil) {
        self.wrappedValue = wrappedValue
        self.key = key
    }
}

protocol ModuleInfoSlot {
    var key: String? { get }
    var anyModule: Module? { get }
    var anyModules: [Module] { get }
}

/// Declares a child module (or an array of modules, keyed `key.0`, `key.1`, …) saved under `key`
/// instead of its property name, for PyTorch names that are not Swift-style
/// (e.g. `@ModuleInfo(key: "query_layers") var queryLayers: [Conv2d]`).
@propertyWrapper
public final class ModuleInfo<Value>: ModuleInfoSlot {
    private var value: Value?
    let key: String?

    /// The child module (or modules); set it in the module's initialiser before first use.
    public var wrappedValue: Value {
        get {
            guard let value else { preconditionFailure("module '\(key ?? "?")' read before it was set") }
            return value
        }
        set {
            value = newValue
            // The tree changed: every parameter table built before is stale.
            moduleStructureGeneration.add(1, ordering: .relaxed)
        }
    }

    var anyModule: Module? { value.flatMap { ($0 as? Module) ?? ($0 as? OptionalModule)?.wrappedModule } }
    var anyModules: [Module] { (value as? [Module]) ?? [] }

    /// A child saved under `key`; the module's initialiser assigns it.
    public init(key: String? = nil) { self.key = key }

    /// A child saved under `key`.
    public init(wrappedValue: Value, key: String? = nil) {
        self.value = wrappedValue
        self.key = key
    }
}

protocol OptionalModule {
    var wrappedModule: Module? { get }
}

extension Optional: OptionalModule {
    var wrappedModule: Module? {
        switch self {
        case .some(let value): return value as? Module
        case .none: return nil
        }
    }
}
