import NFMTensor

/// A 2-D convolution, as torch.nn.Conv2d (groups 1, dilation 1, zero padding).
public final class Conv2d: Module, UnaryLayer {
    /// [outputChannels, inputChannels, kernelSize, kernelSize].
    @ParameterInfo public var weight: Tensor
    /// [outputChannels], or nil without bias.
    @ParameterInfo public var bias: Tensor?
    /// Step between windows.
    public let stride: Int
    /// Zero padding on each side.
    public let padding: Int

    /// A convolution with torch's default initialisation drawn from `generator`.
    public init(
        _ inputChannels: Int, _ outputChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
        bias: Bool = true, using generator: inout SeededGenerator
    ) {
        self.stride = stride
        self.padding = padding
        super.init()
        let shape = [outputChannels, inputChannels, kernelSize, kernelSize]
        self.weight = Initializer.kaimingUniform(shape, using: &generator)
        self.bias = bias ? Initializer.defaultBias(count: outputChannels, fanIn: Initializer.fanIn(shape), using: &generator) : nil
    }

    /// Channels read (torch's `in_channels`).
    public var inputChannels: Int { weight.shape[1] }
    /// Channels written (torch's `out_channels`).
    public var outputChannels: Int { weight.shape[0] }
    /// The window's side (torch's `kernel_size`, square here).
    public var kernelSize: Int { weight.shape[2] }

    /// Convolves an [N, C, H, W] batch.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding)
    }
}

/// A 2-D transposed convolution, as torch.nn.ConvTranspose2d (groups 1, dilation 1).
public final class ConvTranspose2d: Module, UnaryLayer {
    /// [inputChannels, outputChannels, kernelSize, kernelSize] (PyTorch's layout).
    @ParameterInfo public var weight: Tensor
    /// [outputChannels], or nil without bias.
    @ParameterInfo public var bias: Tensor?
    /// Upsampling step.
    public let stride: Int
    /// Implicit padding removed from each side of the output.
    public let padding: Int
    /// Extra rows and columns added on one side, to pick among the output sizes a stride allows.
    public let outputPadding: Int

    /// A transposed convolution with torch's default initialisation drawn from `generator`.
    public init(
        _ inputChannels: Int, _ outputChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
        outputPadding: Int = 0, bias: Bool = true, using generator: inout SeededGenerator
    ) {
        self.stride = stride
        self.padding = padding
        self.outputPadding = outputPadding
        super.init()
        let shape = [inputChannels, outputChannels, kernelSize, kernelSize]
        self.weight = Initializer.kaimingUniform(shape, using: &generator)
        self.bias = bias ? Initializer.defaultBias(count: outputChannels, fanIn: Initializer.fanIn(shape), using: &generator) : nil
    }

    /// Upsamples an [N, C, H, W] batch.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        convTranspose2d(x, weight: weight, bias: bias, stride: stride, padding: padding, outputPadding: outputPadding)
    }
}
