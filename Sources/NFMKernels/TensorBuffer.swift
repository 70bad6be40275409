import Foundation

/// The memory behind a `Tensor`: a handle that the backend owns. Float32, dense, 64-byte aligned so
/// that oneDNN's vector loads are aligned. Between convolutions the values may live only in the
/// backend's blocked layout (``TensorLayout``); the plain row-major memory is written from it when an
/// op reads the buffer through `pointer`.
///
/// Modules above NFMKernels hold a `TensorBuffer` only as an opaque handle: they pass it to the
/// primitives of `ComputeBackend` and never reach its memory, except through the named host-copy
/// helpers below (`init(copying:)`, `init(count:fillingHost:)`, `copyToHost()`, `withHostCopy(_:)`).
/// Why: a device backend (DESIGN.md §1's CUDA plan) would keep this memory on the GPU; then those
/// helpers are the only places where bytes cross to the host, and every one of them is named.
///
/// Tensors share a buffer freely; anything that mutates one copies first unless it holds the only
/// reference (copy on write), which gives `Tensor` value semantics.
///
/// Buffers of 16 KiB and more come from `BufferPool`, which keeps freed buffers for reuse: a training
/// step allocates and frees the same sizes every time, and fresh pages from the kernel cost a page
/// fault and a zeroing each (measured: 11% of an NFM training step before the pool).
public final class TensorBuffer: @unchecked Sendable {
    /// The number of Float32 elements.
    public let count: Int
    /// Guards `storage`: a buffer may be read from several threads (a tensor shared between them).
    private let lock = NSLock()
    private var storage = Storage()

    /// Where the elements are: the plain row-major memory (allocated on first use), and possibly a
    /// copy in a backend's own layout (see ``TensorLayout``), which alone holds the current values
    /// until the plain memory is next used.
    private struct Storage {
        var plain: UnsafeMutablePointer<Float>?
        /// The pool's size class the plain memory came from, or 0 for memory of its own.
        var plainCapacity = 0
        var copy: LayoutCopy?
        /// False while `copy` alone holds the values.
        var plainIsCurrent = true
    }

    /// The elements in a backend's layout, in memory from `BufferPool`.
    struct LayoutCopy {
        let layout: any TensorLayout
        let memory: UnsafeMutableRawPointer
        let capacity: Int
        /// The memory as floats.
        var floats: UnsafeMutablePointer<Float> { memory.assumingMemoryBound(to: Float.self) }
    }

    /// Uninitialised storage of `count` floats; a primitive writes every element before it is read.
    public init(uninitializedCount count: Int) {
        self.count = count
    }

    /// `count` copies of `value`.
    public convenience init(repeating value: Float, count: Int) {
        self.init(uninitializedCount: count)
        pointer.initialize(repeating: value, count: count)
    }

    /// Host-copy helper: a buffer holding a copy of `source`.
    public convenience init(copying source: UnsafeBufferPointer<Float>) {
        self.init(uninitializedCount: source.count)
        if let base = source.baseAddress { pointer.initialize(from: base, count: source.count) }
    }

    /// Host-copy helper: a buffer of `count` elements that `fill` writes in host memory, every
    /// element, before it is copied in. On this CPU backend the host memory is the buffer itself.
    public convenience init(count: Int, fillingHost fill: (UnsafeMutableBufferPointer<Float>) throws -> Void) rethrows {
        self.init(uninitializedCount: count)
        try fill(mutableBuffer)
    }

    /// A new buffer holding the same elements.
    public func copy() -> TensorBuffer { TensorBuffer(copying: buffer) }

    /// Host-copy helper: the elements, copied out to a host array.
    public func copyToHost() -> [Float] { Array(buffer) }

    /// Host-copy helper: lends `body` a read-only host copy of the elements (on this CPU backend,
    /// the buffer itself, with no copy). `body` must not keep the pointer.
    public func withHostCopy<Result>(_ body: (UnsafeBufferPointer<Float>) throws -> Result) rethrows -> Result {
        try withExtendedLifetime(self) { try body(buffer) }
    }

    deinit {
        if let plain = storage.plain { BufferPool.shared.release(UnsafeMutableRawPointer(plain), capacity: storage.plainCapacity) }
        if let copy = storage.copy { BufferPool.shared.release(copy.memory, capacity: copy.capacity) }
    }

    /// The elements in the plain row-major layout, for reading or writing; reached only inside
    /// NFMKernels. A copy in another layout is written back first if it alone holds the values,
    /// then dropped, since the caller may change the elements.
    var pointer: UnsafeMutablePointer<Float> {
        lock.withLock {
            if storage.plain == nil {
                let (raw, capacity) = BufferPool.shared.allocate(floats: Swift.max(count, 1))
                storage.plain = raw.bindMemory(to: Float.self, capacity: Swift.max(count, 1))
                storage.plainCapacity = capacity
            }
            if let copy = storage.copy {
                if !storage.plainIsCurrent { copy.layout.writePlain(from: copy.memory, to: storage.plain!) }
                BufferPool.shared.release(copy.memory, capacity: copy.capacity)
                storage.copy = nil
                storage.plainIsCurrent = true
            }
            return storage.plain!
        }
    }

    var buffer: UnsafeBufferPointer<Float> { UnsafeBufferPointer(start: pointer, count: count) }
    var mutableBuffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }

    // MARK: Values in a backend's layout

    /// The buffer's copy in another layout, if it has one (current: it is dropped whenever the plain
    /// memory is used). An op reads the copy's memory after the lock is released, so a buffer that an
    /// op reads this way must not be read through `pointer` on another thread at the same time (which
    /// would drop the copy); the programs read a tensor on one thread at a time.
    var layoutCopy: LayoutCopy? { lock.withLock { storage.copy } }

    /// The copy in another layout when it alone holds the values and holds exactly the elements
    /// (``TensorLayout/isDense``), so that an elementwise operation can run on it as on the plain
    /// memory, and write its result in the same layout.
    var denseLayoutCopy: LayoutCopy? {
        lock.withLock { storage.plainIsCurrent || !(storage.copy?.layout.isDense ?? false) ? nil : storage.copy }
    }

    /// Gives the buffer new values in `layout`: returns memory for them, which the caller must fill
    /// completely before the buffer is next used. The plain layout is written from it on first use.
    func replaceValues(inLayout layout: any TensorLayout) -> UnsafeMutableRawPointer {
        let floats = (layout.byteCount + MemoryLayout<Float>.stride - 1) / MemoryLayout<Float>.stride
        let (memory, capacity) = BufferPool.shared.allocate(floats: Swift.max(floats, 1))
        lock.withLock {
            // The old values, in either layout, are dropped: their memory goes back to the pool now.
            if let old = storage.copy { BufferPool.shared.release(old.memory, capacity: old.capacity) }
            if let plain = storage.plain {
                BufferPool.shared.release(UnsafeMutableRawPointer(plain), capacity: storage.plainCapacity)
                storage.plain = nil
            }
            storage.copy = LayoutCopy(layout: layout, memory: memory, capacity: capacity)
            storage.plainIsCurrent = false
        }
        return memory
    }
}

/// A memory layout of a buffer's elements other than the plain row-major one, made by a backend for
/// its own kernels: oneDNN's blocked nChw8c (8 channels interleaved per pixel on AVX2), in which its
/// direct convolutions run. A buffer can keep its values in such a layout between operations that
/// all use it, instead of converting to plain and back around each (BENCHMARKS.md, issue 13).
protocol TensorLayout: AnyObject, Sendable {
    /// The bytes a buffer takes in this layout (padding included).
    var byteCount: Int { get }
    /// Whether the layout holds every element exactly once and nothing else (no padding), so that
    /// elementwise operations may run on it as on the plain layout.
    var isDense: Bool { get }
    /// b when the layout is [N][C/b][S][b] with C a multiple of b (oneDNN's nChw8c or nChw16c): b
    /// channels interleaved at each pixel, which batch norm can run on (BlockedBatchNormalization).
    var channelBlock: Int? { get }
    /// Whether `other` lays the elements out the same way.
    func isSame(as other: any TensorLayout) -> Bool
    /// Writes the elements of `source`, in this layout, to `destination` in the plain layout.
    func writePlain(from source: UnsafeRawPointer, to destination: UnsafeMutablePointer<Float>)
}

/// A caching allocator for tensor buffers: free lists of 64-byte-aligned buffers per size class.
///
/// Sizes of at least `minimumPooledFloats` are rounded up to a class with at most 12.5% slack (eight
/// classes per doubling) and, when freed, kept on that class's free list for the next allocation of
/// the class instead of going back to the system. Smaller buffers go straight to `malloc`, which
/// already recycles them without page faults. The cached (free) bytes are capped at `capacityBytes`;
/// a buffer freed beyond the cap is returned to the system, so memory cannot grow without bound.
/// Thread-safe: tensors are freed on whichever thread drops the last reference.
final class BufferPool: @unchecked Sendable {
    /// The pool every `TensorBuffer` uses.
    static let shared = BufferPool(
        capacityBytes: (ProcessInfo.processInfo.environment["NFM_BUFFER_POOL_MIB"].flatMap(Int.init) ?? 2048) << 20)

    /// Buffers below this many floats (16 KiB) are not pooled.
    static let minimumPooledFloats = 4096

    /// The most bytes kept on the free lists.
    let capacityBytes: Int
    private let lock = NSLock()
    /// Free buffers by size class (in floats). Guarded by `lock`.
    private var freeLists: [Int: [UnsafeMutableRawPointer]] = [:]
    /// Bytes on the free lists. Guarded by `lock`.
    private(set) var cachedBytes = 0

    init(capacityBytes: Int) { self.capacityBytes = capacityBytes }

    /// The size class of a request: `floats` rounded up to a multiple of an eighth of its highest
    /// power of two, or 0 (not pooled) below `minimumPooledFloats`.
    static func sizeClass(floats: Int) -> Int {
        guard floats >= minimumPooledFloats else { return 0 }
        let step = 1 << (Int.bitWidth - floats.leadingZeroBitCount - 4)
        return (floats + step - 1) / step * step
    }

    /// A buffer for at least `floats` floats and the size class to hand back to `release`.
    func allocate(floats: Int) -> (pointer: UnsafeMutableRawPointer, capacity: Int) {
        let capacity = BufferPool.sizeClass(floats: floats)
        if capacity == 0 {
            return (UnsafeMutableRawPointer.allocate(byteCount: floats * MemoryLayout<Float>.stride, alignment: 64), 0)
        }
        let reused: UnsafeMutableRawPointer? = lock.withLock {
            guard let pointer = freeLists[capacity]?.popLast() else { return nil }
            cachedBytes -= capacity * MemoryLayout<Float>.stride
            return pointer
        }
        if let reused { return (reused, capacity) }
        return (UnsafeMutableRawPointer.allocate(byteCount: capacity * MemoryLayout<Float>.stride, alignment: 64), capacity)
    }

    /// Returns a buffer from `allocate` with the size class it came with.
    func release(_ pointer: UnsafeMutableRawPointer, capacity: Int) {
        guard capacity > 0 else { return pointer.deallocate() }
        let bytes = capacity * MemoryLayout<Float>.stride
        let kept: Bool = lock.withLock {
            guard cachedBytes + bytes <= capacityBytes else { return false }
            freeLists[capacity, default: []].append(pointer)
            cachedBytes += bytes
            return true
        }
        if !kept { pointer.deallocate() }
    }

    /// Returns every cached buffer to the system.
    func trim() {
        let buffers: [UnsafeMutableRawPointer] = lock.withLock {
            defer {
                freeLists.removeAll()
                cachedBytes = 0
            }
            return freeLists.values.flatMap { $0 }
        }
        for buffer in buffers { buffer.deallocate() }
    }
}
