import NFMIO
import NFMTensor

// State dicts ↔ safetensors files. Float tensors are stored as F32 and counters as I64 scalars, under
// PyTorch's keys and layouts, so `safetensors.torch.load_file(path)` gives a dict that
// `model.load_state_dict` accepts.

/// A safetensors file that cannot be used as a state dict (wrong dtype, bad values).
public struct CheckpointError: Error, CustomStringConvertible {
    /// The file.
    public let path: String
    /// What is wrong.
    public let reason: String
    /// "path: reason".
    public var description: String { "\(path): \(reason)" }
}

extension StateDict {
    /// Writes every entry to `path` atomically (temp file, fsync, rename), with optional metadata.
    public func save(to path: String, metadata: [String: String] = [:]) throws {
        let tensors: [(name: String, tensor: SafeTensor)] = entries.map { key, value in
            switch value {
            case .float(let tensor): return (key, SafeTensor(tensor.scalars, shape: tensor.shape))
            case .int64(let count): return (key, SafeTensor([count], shape: []))
            }
        }
        try SafeTensors.write(tensors, metadata: metadata, to: path)
    }

    /// Reads a state dict from a safetensors file. F32 (and F64, converted) tensors become float
    /// entries and I64 scalars become counters; anything else is an error naming the key.
    public static func load(contentsOf path: String) throws -> StateDict {
        let file = try SafeTensors.read(contentsOf: path)
        var result = StateDict()
        for (name, tensor) in file.tensors {
            switch tensor.dtype {
            case .float32: result[name] = .float(Tensor(shape: tensor.shape, scalars: try tensor.floats()))
            case .float64: result[name] = .float(Tensor(shape: tensor.shape, scalars: try tensor.doubles().map(Float.init)))
            case .int64 where tensor.elementCount == 1: result[name] = .int64(try tensor.int64s()[0])
            default:
                throw CheckpointError(path: path, reason: "tensor '\(name)' has dtype \(tensor.dtype.rawValue) and shape \(tensor.shape); expected F32, or an I64 scalar")
            }
        }
        return result
    }

    /// The metadata stored in a safetensors file's header.
    public static func metadata(contentsOf path: String) throws -> [String: String] {
        try SafeTensors.read(contentsOf: path).metadata
    }
}

extension Module {
    /// Saves parameters and buffers to a safetensors file under PyTorch's keys, atomically.
    public func save(to path: String, metadata: [String: String] = [:]) throws {
        try stateDict().save(to: path, metadata: metadata)
    }

    /// Loads parameters and buffers from a safetensors file (see `load(stateDict:strict:)`).
    public func load(contentsOf path: String, strict: Bool = true) throws {
        try load(stateDict: StateDict.load(contentsOf: path), strict: strict)
    }
}
