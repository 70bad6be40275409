import CVectorKernels
import Foundation

/// Which compiled copy of the Swift kernels' hot loops runs: the elementwise maps, the optimizer
/// steps and batch norm (issue 13, item 4).
///
/// The package builds Swift for baseline x86-64 (SSE, 4 lanes), whatever machine it runs on. The C
/// target CVectorKernels holds the same loops compiled for AVX2 and for AVX-512, and one of them is
/// chosen at run time from what the CPU reports, so that a binary built once uses the vector width
/// of each machine and never executes an instruction its CPU lacks.
///
/// Every path gives bit-identical results: the C loops do the same IEEE operations in the same order
/// as the Swift loops (no fused multiply-add; sums keep the Swift loops' eight-lane layout). So a
/// seed reproduces a run across paths and across machines, and VectorISATests compares the paths
/// with exact equality.
public enum VectorISA: String, CaseIterable, Sendable {
    /// The Swift loops, compiled for baseline x86-64; runs on every CPU.
    case portable
    /// The C loops compiled for AVX2 (256-bit vectors).
    case avx2
    /// The C loops compiled for AVX-512 Foundation (512-bit vectors).
    case avx512

    /// Whether this CPU (and operating system) runs this path.
    public var isSupported: Bool {
        switch self {
        case .portable: return true
        case .avx2: return nfm_cpu_supports(NFMVectorInstructionSetAVX2)
        case .avx512: return nfm_cpu_supports(NFMVectorInstructionSetAVX512)
        }
    }

    /// The paths this CPU runs, narrowest first (`portable` always).
    public static var supported: [VectorISA] { allCases.filter(\.isSupported) }

    /// The widest path this CPU runs: what `auto` chooses.
    public static var widest: VectorISA { supported.last ?? .portable }

    /// The path `name` asks for, as `NFM_ISA` spells it: portable, avx2, avx512, or auto (also nil or
    /// empty), the widest this CPU runs. Throws for an unknown name, and for a path this CPU cannot
    /// run: forcing it would stop the program with an illegal instruction at the first kernel.
    public init(choosing name: String?) throws(VectorISAError) {
        switch name?.lowercased() {
        case nil, "", "auto":
            self = VectorISA.widest
        case let spelled?:
            guard let isa = VectorISA(rawValue: spelled) else { throw .unknown(spelled) }
            guard isa.isSupported else { throw .unsupported(isa) }
            self = isa
        }
    }

    /// The compiled kernels of this path; nil for `portable`.
    var kernels: NFMVectorKernels? {
        switch self {
        case .portable: return nil
        case .avx2: return nfm_vector_kernels(NFMVectorInstructionSetAVX2)?.pointee
        case .avx512: return nfm_vector_kernels(NFMVectorInstructionSetAVX512)?.pointee
        }
    }
}

/// Why `NFM_ISA` (or `VectorISA(choosing:)`) cannot be honoured.
public enum VectorISAError: Error, Equatable, CustomStringConvertible {
    /// Not one of the names.
    case unknown(String)
    /// A path this CPU cannot run.
    case unsupported(VectorISA)

    public var description: String {
        let choices = "auto (the default), " + VectorISA.supported.map(\.rawValue).joined(separator: ", ")
        switch self {
        case .unknown(let name):
            return "NFM_ISA=\(name) is not an instruction set: choose \(choices)"
        case .unsupported(let isa):
            return "NFM_ISA=\(isa.rawValue): this CPU does not support \(isa.rawValue); choose \(choices)"
        }
    }
}

extension Kernels {
    /// The path of the Swift kernels' hot loops (``VectorISA``): the one `NFM_ISA` names, the widest
    /// this CPU runs when it is unset or `auto`. An unknown or unsupported name stops the program with
    /// the choices.
    ///
    /// Like ``backend``, set it once, at start-up or at the top of a test, before kernels run on
    /// other threads: it is a plain global, read on every call. Setting a path this CPU cannot run
    /// stops the program (check ``VectorISA/isSupported`` first).
    nonisolated(unsafe) public static var vectorISA: VectorISA = chosenByEnvironment() {
        didSet {
            precondition(vectorISA.isSupported, VectorISAError.unsupported(vectorISA).description)
            vectorKernels = vectorISA.kernels
        }
    }

    /// The kernels of ``vectorISA``; nil when it is `portable`. The primitives read this, not
    /// `vectorISA`, so that choosing the table costs nothing per call.
    nonisolated(unsafe) static var vectorKernels: NFMVectorKernels? = vectorISA.kernels

    /// The path `NFM_ISA` names. A name this CPU cannot honour ends the program with the message and
    /// exit status 2, not with a trap: a Swift trap reports "Illegal instruction", which would read
    /// as the very failure this check prevents.
    private static func chosenByEnvironment() -> VectorISA {
        do {
            return try VectorISA(choosing: ProcessInfo.processInfo.environment["NFM_ISA"])
        } catch {
            FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
            exit(2)
        }
    }
}

// MARK: The operations with compiled kernels

extension UnaryOperation {
    /// This operation's compiled kernel and its two scalar parameters, or nil where it has none: the
    /// transcendental functions (exp, log, tanh, sigmoid, softplus, a general power) stay on libm,
    /// since a vectorised exp would not round as libm's does, and √x is not on any hot path.
    var vectorKernel: (kernel: NFMUnaryKernel, parameter0: Float, parameter1: Float)? {
        switch self {
        case .negate: return (NFMUnaryKernelNegate, 0, 0)
        case .abs: return (NFMUnaryKernelAbs, 0, 0)
        case .power(let exponent) where exponent == 2: return (NFMUnaryKernelSquare, 0, 0)
        case .relu: return (NFMUnaryKernelRelu, 0, 0)
        case .clamp(let lower, let upper): return (NFMUnaryKernelClamp, lower, upper)
        case .leakyRelu(let slope): return (NFMUnaryKernelLeakyRelu, slope, 0)
        case .keepMask(let probability, let scale): return (NFMUnaryKernelKeepMask, probability, scale)
        case .exp, .log, .sqrt, .power, .sigmoid, .tanh, .softplus: return nil
        }
    }
}

extension BinaryOperation {
    /// This operation's compiled kernel and its scalar parameter, or nil where it has none (the
    /// comparisons, and the pullbacks that call libm).
    var vectorKernel: (kernel: NFMBinaryKernel, parameter: Float)? {
        switch self {
        case .add: return (NFMBinaryKernelAdd, 0)
        case .subtract: return (NFMBinaryKernelSubtract, 0)
        case .multiply: return (NFMBinaryKernelMultiply, 0)
        case .divide: return (NFMBinaryKernelDivide, 0)
        case .reluBackward: return (NFMBinaryKernelReluBackward, 0)
        case .leakyReluBackward(let slope): return (NFMBinaryKernelLeakyReluBackward, slope)
        case .sigmoidBackward: return (NFMBinaryKernelSigmoidBackward, 0)
        case .tanhBackward: return (NFMBinaryKernelTanhBackward, 0)
        case .keepWhereTrue: return (NFMBinaryKernelKeepWhereTrue, 0)
        case .keepWhereFalse: return (NFMBinaryKernelKeepWhereFalse, 0)
        case .power, .greater, .less, .greaterEqual, .lessEqual, .equal, .sqrtBackward, .powerBackward,
            .absBackward, .clampBackward, .softplusBackward:
            return nil
        }
    }
}
