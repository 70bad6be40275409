// A Python list of small mutable objects, with Python's identity and equality rules.
//
// Seaquest (minatar/environments/seaquest.py) keeps its bullets, fish, submarines and divers as Python
// lists of lists, walks them with `for x in reversed(lst)` while removing with `lst.remove(x)`, and keeps
// using `x` after removing it. Three Python details decide what happens:
//   * `lst.remove(x)` removes the first element *equal* to `x` (the same object, or another list with equal
//     contents), which is not necessarily `x` itself;
//   * `reversed(lst)` walks indices len−1, len−2, ... and re-reads `lst[index]` each time, stopping once the
//     index is out of range — so removing the current element is safe, but removing an equal twin further
//     left makes the walk visit the current object again;
//   * a removed object is still the loop variable, and mutating it afterwards is harmless.
// `ObjectList` reproduces all three: objects live in slots (their identity), the list is a sequence of
// slot handles, and `remove` matches by handle or by value. Storage is reserved up front and slots are
// reused, so nothing is allocated once the lists have reached their working size.

/// Python-list semantics (identity, value equality, removal while iterating) for small value objects.
struct ObjectList<Element: Equatable & Sendable>: Sendable {
    /// Object storage; a handle is an index into it.
    private var slots: [Element] = []
    /// The list, in order, as handles.
    private var order: [Int] = []
    /// Slots no longer in the list, ready for reuse.
    private var freeSlots: [Int] = []

    /// An empty list with room for `capacity` objects before any allocation.
    init(capacity: Int) {
        slots.reserveCapacity(capacity)
        order.reserveCapacity(capacity)
        freeSlots.reserveCapacity(capacity)
    }

    /// Number of objects in the list (`len(lst)`).
    var count: Int { order.count }

    /// The handle of the object at list position `index`.
    @inline(__always)
    func handle(at index: Int) -> Int { order[index] }

    /// The object with a handle; stays readable after removal until the slot is reused by `append`.
    @inline(__always)
    subscript(handle: Int) -> Element {
        get { slots[handle] }
        set { slots[handle] = newValue }
    }

    /// Empties the list, keeping its storage.
    mutating func removeAll() {
        slots.removeAll(keepingCapacity: true)
        order.removeAll(keepingCapacity: true)
        freeSlots.removeAll(keepingCapacity: true)
    }

    /// `lst += [object]`: appends a new object.
    mutating func append(_ object: Element) {
        let handle: Int
        if let reused = freeSlots.popLast() {
            slots[reused] = object
            handle = reused
        } else {
            handle = slots.count
            slots.append(object)
        }
        order.append(handle)
    }

    /// `lst.remove(obj)`: removes the first element that is the object or equals it.
    ///
    /// Python raises when nothing matches; MinAtar never gets there, so this is a no-op.
    mutating func remove(_ handle: Int) {
        let object = slots[handle]
        for index in 0..<order.count where order[index] == handle || slots[order[index]] == object {
            freeSlots.append(order[index])
            order.remove(at: index)
            return
        }
        assertionFailure("list.remove(x): x not in list")
    }

    /// Whether any object satisfies `predicate` (Python's `any(...)` over the list).
    func contains(where predicate: (Element) -> Bool) -> Bool {
        for handle in order where predicate(slots[handle]) { return true }
        return false
    }
}
