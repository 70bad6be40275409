// PNG files through libpng's simplified API (png_image_*). The classic libpng API reports errors by
// longjmp, which Swift cannot survive, so it is never used here. The simplified API returns an
// error flag and leaves libpng's message in `png_image.message`, which our errors carry.

import CPNG
import Foundation

/// An 8-bit colour, for padding, backgrounds and plot lines.
public struct RGBColor: Sendable, Hashable {
    /// The red component.
    public var red: UInt8
    /// The green component.
    public var green: UInt8
    /// The blue component.
    public var blue: UInt8

    /// A colour with the given components.
    public init(red: UInt8, green: UInt8, blue: UInt8) {
        self.red = red
        self.green = green
        self.blue = blue
    }

    /// A gray with all three components equal to `level`.
    public init(gray level: UInt8) {
        self.init(red: level, green: level, blue: level)
    }

    /// Pure white (255, 255, 255).
    public static let white = RGBColor(gray: 255)
    /// Pure black (0, 0, 0).
    public static let black = RGBColor(gray: 0)
}

/// What went wrong reading or writing a PNG, with libpng's own message.
public enum PNGError: Error, CustomStringConvertible, LocalizedError, Sendable, Equatable {
    /// libpng could not encode the image; `message` is libpng's.
    case encodeFailed(message: String)
    /// libpng could not read the PNG (from `path`, or from memory when nil); `message` is libpng's.
    case decodeFailed(path: String?, message: String)
    /// The image is larger than this reader accepts (it would need `byteCount` bytes of pixels).
    case imageTooLarge(width: Int, height: Int, byteCount: Int)

    /// A sentence naming the file (if any) and libpng's reason.
    public var description: String {
        switch self {
        case .encodeFailed(let message):
            return "cannot encode PNG: \(message)"
        case .decodeFailed(let path, let message):
            return "cannot read PNG\(path.map { " \($0)" } ?? " from memory"): \(message)"
        case .imageTooLarge(let width, let height, let byteCount):
            return "PNG of \(width)×\(height) pixels would need \(byteCount) bytes, more than the \(PNGImage.maximumPixelBytes)-byte limit"
        }
    }

    /// Same as ``description``, for `localizedDescription`.
    public var errorDescription: String? { description }
}

/// An 8-bit image: `channels` interleaved samples per pixel (1 gray, 3 RGB, 4 RGBA), rows top to
/// bottom, `width × height × channels` bytes.
public struct PNGImage: Sendable, Equatable {
    /// Width in pixels.
    public let width: Int
    /// Height in pixels.
    public let height: Int
    /// Samples per pixel: 1 (gray), 3 (RGB) or 4 (RGBA, not premultiplied).
    public let channels: Int
    /// The samples, row-major and interleaved: pixel (x, y), channel c is at `(y × width + x) × channels + c`.
    public var pixels: [UInt8]

    /// The largest pixel buffer ``read(contentsOf:)`` accepts (1 GiB): a corrupt header must not
    /// make us allocate terabytes.
    public static let maximumPixelBytes = 1 << 30

    /// An image holding `pixels`, which must have `width × height × channels` bytes.
    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(width > 0 && height > 0, "PNGImage: size \(width)×\(height) must be positive")
        precondition([1, 3, 4].contains(channels), "PNGImage: channels must be 1, 3 or 4, got \(channels)")
        precondition(
            pixels.count == width * height * channels,
            "PNGImage: \(width)×\(height)×\(channels) needs \(width * height * channels) bytes, got \(pixels.count)")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// An image of `width × height` pixels, every sample set to `value`.
    public init(width: Int, height: Int, channels: Int, filledWith value: UInt8 = 0) {
        self.init(width: width, height: height, channels: channels, pixels: [UInt8](repeating: value, count: width * height * channels))
    }

    /// The samples of pixel (`x`, `y`), `channels` of them.
    public func pixel(x: Int, y: Int) -> [UInt8] {
        precondition(x >= 0 && x < width && y >= 0 && y < height, "PNGImage: pixel (\(x), \(y)) outside \(width)×\(height)")
        let start = (y * width + x) * channels
        return Array(pixels[start..<(start + channels)])
    }

    private var format: UInt32 {
        switch channels {
        case 1: return UInt32(PNG_FORMAT_GRAY)
        case 3: return UInt32(PNG_FORMAT_RGB)
        default: return UInt32(PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA)
        }
    }

    /// The image encoded as PNG bytes (`png_image_write_to_memory`).
    public func encoded() throws(PNGError) -> [UInt8] {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(width)
        image.height = UInt32(height)
        image.format = format
        // libpng's API takes a non-const buffer pointer but only reads it; copying keeps `self` immutable.
        var samples = pixels
        // The first call, with no output buffer, only measures the encoded size.
        var size = 0
        let measured = samples.withUnsafeMutableBytes {
            png_image_write_to_memory(&image, nil, &size, 0, $0.baseAddress, 0, nil)
        }
        if measured == 0 { throw .encodeFailed(message: Self.message(of: &image)) }
        var output = [UInt8](repeating: 0, count: size)
        let written = output.withUnsafeMutableBytes { outputBytes in
            samples.withUnsafeMutableBytes {
                png_image_write_to_memory(&image, outputBytes.baseAddress, &size, 0, $0.baseAddress, 0, nil)
            }
        }
        if written == 0 { throw .encodeFailed(message: Self.message(of: &image)) }
        return Array(output[0..<size])
    }

    /// Writes the image as a PNG file at `path`. The PNG is encoded in memory and written through
    /// ``AtomicFile`` (rather than `png_image_write_to_file`), so that a failed write never leaves
    /// a truncated image. Throws ``PNGError`` or ``AtomicFileError``.
    public func write(to path: String) throws {
        try AtomicFile.write(encoded(), to: path)
    }

    /// Reads the PNG file at `path` (`png_image_begin_read_from_file`). The result has 1 channel
    /// for a gray file, 3 for a colour file and 4 for any file with transparency (gray with alpha
    /// becomes RGBA); 16-bit files are converted to 8 bits by libpng.
    public static func read(contentsOf path: String) throws(PNGError) -> PNGImage {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        if png_image_begin_read_from_file(&image, path) == 0 {
            throw .decodeFailed(path: path, message: message(of: &image))
        }
        return try finishRead(&image, path: path)
    }

    /// Decodes PNG `bytes` held in memory (`png_image_begin_read_from_memory`), with the channel
    /// rules of ``read(contentsOf:)``.
    public static func decode(_ bytes: [UInt8]) throws(PNGError) -> PNGImage {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        // libpng keeps a pointer to the memory until the read finishes, so both calls must run
        // inside one closure that holds the buffer.
        let result: Result<PNGImage, PNGError> = bytes.withUnsafeBytes { raw in
            if png_image_begin_read_from_memory(&image, raw.baseAddress, raw.count) == 0 {
                return .failure(.decodeFailed(path: nil, message: message(of: &image)))
            }
            return Result { () throws(PNGError) in try finishRead(&image, path: nil) }
        }
        return try result.get()
    }

    private static func finishRead(_ image: inout png_image, path: String?) throws(PNGError) -> PNGImage {
        let fileFormat = image.format
        let channels: Int
        if fileFormat & UInt32(PNG_FORMAT_FLAG_ALPHA) != 0 {
            channels = 4
            image.format = UInt32(PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA)
        } else if fileFormat & UInt32(PNG_FORMAT_FLAG_COLOR) != 0 {
            channels = 3
            image.format = UInt32(PNG_FORMAT_RGB)
        } else {
            channels = 1
            image.format = UInt32(PNG_FORMAT_GRAY)
        }
        let (width, height) = (Int(image.width), Int(image.height))
        let (byteCount, overflow) = (width * height).multipliedReportingOverflow(by: channels)
        if overflow || byteCount > maximumPixelBytes {
            png_image_free(&image)
            throw .imageTooLarge(width: width, height: height, byteCount: overflow ? Int.max : byteCount)
        }
        var pixels = [UInt8](repeating: 0, count: byteCount)
        // finish_read frees libpng's state whether it succeeds or fails.
        let finished = pixels.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, 0, nil) }
        if finished == 0 { throw .decodeFailed(path: path, message: message(of: &image)) }
        return PNGImage(width: width, height: height, channels: channels, pixels: pixels)
    }

    /// libpng's message from the image's fixed-size `message` buffer.
    private static func message(of image: inout png_image) -> String {
        withUnsafeBytes(of: &image.message) { raw in
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
    }
}
