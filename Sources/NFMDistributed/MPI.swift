// Open MPI, reached at run time: a program started without mpirun never loads libmpi, and none of
// this project's targets links it, so single-machine users need no MPI at all (issue 15).
//
// Open MPI's handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM) are C macros for the addresses of global
// objects (`&ompi_mpi_comm_world`, …), which Swift cannot import; with the library opened by
// dlopen, dlsym gives those addresses directly, so no C shim or mpi.h is needed. The handle types
// (MPI_Comm, MPI_Datatype, MPI_Op, MPI_Request) are all pointers in Open MPI's ABI.

import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// What went wrong with MPI, said so that a user can act on it.
public enum MPIError: Error, CustomStringConvertible, LocalizedError, Sendable, Equatable {
    /// libmpi could not be opened.
    case libraryNotFound(path: String, reason: String)
    /// A function or handle is missing from it (not Open MPI, or another major version).
    case symbolMissing(name: String, library: String)
    /// A call returned an error code.
    case callFailed(function: String, code: Int32)

    /// A sentence naming the library or call and what to do.
    public var description: String {
        switch self {
        case .libraryNotFound(let path, let reason):
            return "started under mpirun, but cannot open Open MPI's library \(path) (\(reason)); "
                + "install it with `bash scripts/setup.sh --mpi` (libopenmpi-dev openmpi-bin), or name it in NFM_MPI_LIBRARY"
        case .symbolMissing(let name, let library):
            return "\(library) has no \(name): it is not Open MPI 4.x, which this program's MPI support is written for"
        case .callFailed(let function, let code):
            return "\(function) failed with MPI error code \(code)"
        }
    }

    /// Same as ``description``.
    public var errorDescription: String? { description }
}

/// The processes of an MPI job (MPI_COMM_WORLD): this one's rank, their number, and the few
/// collective operations the programs need.
public final class MPI: ProcessGroup, @unchecked Sendable {
    /// This process's rank, 0..<size.
    public let rank: Int
    /// The number of processes.
    public let size: Int
    /// The number of processes on this machine (`OMPI_COMM_WORLD_LOCAL_SIZE`), for sharing its cores.
    public let localSize: Int

    private typealias Handle = OpaquePointer
    private let world: Handle
    private let floatType: Handle
    private let sumOperation: Handle
    private let ibarrier: @convention(c) (Handle, UnsafeMutablePointer<Handle?>) -> Int32
    private let test: @convention(c) (UnsafeMutablePointer<Handle?>, UnsafeMutablePointer<Int32>, UnsafeMutableRawPointer?) -> Int32
    private let allreduce: @convention(c) (UnsafeRawPointer, UnsafeMutableRawPointer, Int32, Handle, Handle, Handle) -> Int32
    private let byteType: Handle
    private let broadcastFunction: @convention(c) (UnsafeMutableRawPointer, Int32, Handle, Int32, Handle) -> Int32
    private let finalizeFunction: @convention(c) () -> Int32
    private let abortFunction: @convention(c) (Handle, Int32) -> Int32
    private var finalized = false

    /// Whether this process was started by Open MPI's mpirun (or srun with Open MPI): it sets
    /// `OMPI_COMM_WORLD_SIZE` for every process it starts.
    public static var isLaunched: Bool { ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] != nil }

    /// The number of ranks mpirun started (`OMPI_COMM_WORLD_SIZE`), nil when not started by it.
    public static var launchedRankCount: Int? { ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"].flatMap(Int.init) }

    /// The threads each rank on this machine should use when ranks share it and the environment
    /// sets no `NFM_THREADS`: its cores divided by the ranks on it (`OMPI_COMM_WORLD_LOCAL_SIZE`);
    /// nil otherwise. Without it every rank would start a thread per core and they would fight.
    public static var threadsPerLocalRank: Int? {
        let environment = ProcessInfo.processInfo.environment
        guard environment["NFM_THREADS"] == nil, let ranks = environment["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap(Int.init), ranks > 1 else {
            return nil
        }
        return max(1, ProcessInfo.processInfo.activeProcessorCount / ranks)
    }

    /// Sets `NFM_THREADS` and `OMP_NUM_THREADS` of this process to ``threadsPerLocalRank`` when it
    /// has one. Call first thing in `main`, before any kernel reads them.
    public static func shareCoresAmongLocalRanks() {
        guard let threads = threadsPerLocalRank else { return }
        setenv("NFM_THREADS", String(threads), 1)
        setenv("OMP_NUM_THREADS", String(threads), 1)
    }

    /// The job's MPI, initialised on first use when the process was started under mpirun; nil otherwise.
    ///
    /// - Throws: ``MPIError`` when started under mpirun but the library cannot be loaded or initialised.
    public static func launched() throws -> MPI? {
        guard isLaunched else { return nil }
        return try shared.get()
    }

    private static let shared: Result<MPI, Error> = Result { try MPI() }

    /// The environment variables by which mpirun tells a process it is a rank. A child process that
    /// inherits them would take itself for a rank too; ``childEnvironment(_:)`` removes them.
    public static func childEnvironment(_ environment: [String: String]) -> [String: String] {
        environment.filter { key, _ in !(key.hasPrefix("OMPI_") || key.hasPrefix("PMIX_") || key.hasPrefix("PRTE_")) }
    }

    private init() throws {
        let path = ProcessInfo.processInfo.environment["NFM_MPI_LIBRARY"] ?? "libmpi.so.40"
        // RTLD_GLOBAL: Open MPI loads its own plugins, which look for libmpi's symbols globally.
        guard let library = dlopen(path, RTLD_NOW | RTLD_GLOBAL) else {
            throw MPIError.libraryNotFound(path: path, reason: dlerror().map { String(cString: $0) } ?? "unknown reason")
        }
        func symbol(_ name: String) throws -> UnsafeMutableRawPointer {
            guard let address = dlsym(library, name) else { throw MPIError.symbolMissing(name: name, library: path) }
            return address
        }
        func function<Function>(_ name: String, as _: Function.Type) throws -> Function {
            unsafeBitCast(try symbol(name), to: Function.self)
        }
        world = Handle(try symbol("ompi_mpi_comm_world"))
        floatType = Handle(try symbol("ompi_mpi_float"))
        sumOperation = Handle(try symbol("ompi_mpi_op_sum"))
        byteType = Handle(try symbol("ompi_mpi_byte"))
        broadcastFunction = try function("MPI_Bcast", as: (@convention(c) (UnsafeMutableRawPointer, Int32, Handle, Int32, Handle) -> Int32).self)
        ibarrier = try function("MPI_Ibarrier", as: (@convention(c) (Handle, UnsafeMutablePointer<Handle?>) -> Int32).self)
        test = try function("MPI_Test", as: (@convention(c) (UnsafeMutablePointer<Handle?>, UnsafeMutablePointer<Int32>, UnsafeMutableRawPointer?) -> Int32).self)
        allreduce = try function(
            "MPI_Allreduce", as: (@convention(c) (UnsafeRawPointer, UnsafeMutableRawPointer, Int32, Handle, Handle, Handle) -> Int32).self)
        finalizeFunction = try function("MPI_Finalize", as: (@convention(c) () -> Int32).self)
        abortFunction = try function("MPI_Abort", as: (@convention(c) (Handle, Int32) -> Int32).self)
        let initialize = try function(
            "MPI_Init", as: (@convention(c) (UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> Int32).self)
        let commRank = try function("MPI_Comm_rank", as: (@convention(c) (Handle, UnsafeMutablePointer<Int32>) -> Int32).self)
        let commSize = try function("MPI_Comm_size", as: (@convention(c) (Handle, UnsafeMutablePointer<Int32>) -> Int32).self)
        try Self.check("MPI_Init", initialize(nil, nil))
        var value: Int32 = 0
        try Self.check("MPI_Comm_rank", commRank(world, &value))
        rank = Int(value)
        try Self.check("MPI_Comm_size", commSize(world, &value))
        size = Int(value)
        localSize = ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap(Int.init) ?? 1
    }

    private static func check(_ function: String, _ code: Int32) throws {
        if code != 0 { throw MPIError.callFailed(function: function, code: code) }
    }

    /// Waits until every rank has called it. It polls a non-blocking barrier every `interval`
    /// seconds and sleeps in between, because a blocking MPI_Barrier spins at full speed on a core
    /// that a rank still training needs.
    public func barrier(pollingEvery interval: Double = 0.2) throws {
        var request: Handle? = nil
        try Self.check("MPI_Ibarrier", ibarrier(world, &request))
        var done: Int32 = 0
        while true {
            try Self.check("MPI_Test", test(&request, &done, nil))
            if done != 0 { return }
            usleep(UInt32(interval * 1_000_000))
        }
    }

    /// Replaces `values` on every rank by their elementwise sum over the ranks (MPI_Allreduce, MPI_SUM),
    /// in place (MPI_IN_PLACE), so that a gradient buffer of many megabytes is not copied first.
    public func allReduceSum(_ values: inout [Float]) throws {
        precondition(values.count <= Int(Int32.max), "MPI.allReduceSum: \(values.count) values exceed one MPI message")
        let count = Int32(values.count)
        try values.withUnsafeMutableBytes { target in
            try Self.check("MPI_Allreduce", allreduce(Self.inPlace(), target.baseAddress!, count, floatType, sumOperation, world))
        }
    }

    /// Open MPI's MPI_IN_PLACE: `((void *) 1)` in its mpi.h (a constant of its ABI, not a symbol).
    private static func inPlace() -> UnsafeRawPointer { UnsafeRawPointer(bitPattern: 1)! }

    /// Replaces `values` on every rank by rank `root`'s (MPI_Bcast); every rank passes the same count.
    public func broadcast(_ values: inout [Float], from root: Int = 0) throws {
        precondition(values.count <= Int(Int32.max), "MPI.broadcast: \(values.count) values exceed one MPI message")
        let count = Int32(values.count)
        try values.withUnsafeMutableBytes { target in
            try Self.check("MPI_Bcast", broadcastFunction(target.baseAddress!, count, floatType, Int32(root), world))
        }
    }

    /// `text` as rank `root` has it, on every rank (MPI_Bcast of its length, then of its UTF-8 bytes).
    public func broadcast(_ text: String, from root: Int = 0) throws -> String {
        var length = [UInt8](withUnsafeBytes(of: Int64(text.utf8.count).littleEndian) { Array($0) })
        try length.withUnsafeMutableBytes { try Self.check("MPI_Bcast", broadcastFunction($0.baseAddress!, 8, byteType, Int32(root), world)) }
        let count = Int(Int64(littleEndian: length.withUnsafeBytes { $0.loadUnaligned(as: Int64.self) }))
        var bytes = rank == root ? Array(text.utf8) : [UInt8](repeating: 0, count: count)
        if count > 0 {
            try bytes.withUnsafeMutableBytes { try Self.check("MPI_Bcast", broadcastFunction($0.baseAddress!, Int32(count), byteType, Int32(root), world)) }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Ends every rank of the job with `code` (MPI_Abort): for an error after which the other ranks
    /// would wait for this one forever.
    public func abort(code: Int32) -> Never {
        _ = abortFunction(world, code)
        exit(code)
    }

    /// Shuts MPI down (MPI_Finalize); call once, before the process exits.
    public func finalize() {
        guard !finalized else { return }
        finalized = true
        _ = finalizeFunction()
    }
}
