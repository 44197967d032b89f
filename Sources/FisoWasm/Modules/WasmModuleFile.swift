import CompressNIO
import NIOCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Identifies the file a path leads to, cheaply (one `stat`): a different target of a ConfigMap's
/// `..data` symlink, a replaced file or a rewritten one all change it.
public struct WasmFileFingerprint: Sendable, Hashable {
    public var device: UInt64
    public var inode: UInt64
    public var size: Int64
    public var modificationSeconds: Int64
    public var modificationNanoseconds: Int64

    /// The fingerprint of the file `path` leads to (symlinks followed), or `nil` if there is none.
    public static func of(path: String) -> WasmFileFingerprint? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return WasmFileFingerprint(info)
    }

    init(_ info: stat) {
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        #if canImport(Darwin)
            modificationSeconds = Int64(info.st_mtimespec.tv_sec)
            modificationNanoseconds = Int64(info.st_mtimespec.tv_nsec)
        #else
            modificationSeconds = Int64(info.st_mtim.tv_sec)
            modificationNanoseconds = Int64(info.st_mtim.tv_nsec)
        #endif
    }
}

/// A module file read from disk: its WebAssembly bytes (decompressed when the file is gzip),
/// where it really lives, and what identifies its content.
public struct WasmModuleFile: Sendable {
    /// The path as configured.
    public var path: String
    /// The path with every symlink resolved (for a ConfigMap volume, inside `..<timestamp>/`).
    public var resolvedPath: String
    /// The file name of ``path``: what the module sees as `argv[0]`, and its name in logs and metrics.
    public var name: String
    /// The WebAssembly binary (decompressed).
    public var bytes: [UInt8]
    /// The size of the file on disk.
    public var fileSize: Int
    /// Whether the file was gzip-compressed (recognised by its magic bytes, not its name).
    public var isGzipped: Bool
    /// SHA-256 of ``bytes``, in hexadecimal: equal for the same module, compressed or not.
    public var contentHash: String
    /// What the file looked like when it was read.
    public var fingerprint: WasmFileFingerprint

    /// The default bound on a module's decompressed size: 128 MiB.
    public static let defaultMaximumBytes = 128 << 20

    /// The gzip magic number.
    public static let gzipMagic: [UInt8] = [0x1f, 0x8b]

    /// Reads `path` (following symlinks), decompressing it when it starts with the gzip magic
    /// number.
    ///
    /// - Throws: ``WasmError`` `module_not_found` when the file cannot be opened or read;
    ///   `invalid_module` when it is empty, a directory, larger than `maximumBytes`, or a gzip
    ///   stream that does not decompress.
    public static func read(path: String, maximumBytes: Int = defaultMaximumBytes) throws(WasmError) -> WasmModuleFile {
        let name = fileName(of: path)
        var (contents, info) = try readContents(path: path, maximumBytes: maximumBytes)
        let fileSize = contents.count
        var isGzipped = false
        if contents.starts(with: gzipMagic) {
            isGzipped = true
            contents = try gunzip(contents, maximumBytes: maximumBytes, name: name, path: path)
        }
        return WasmModuleFile(
            path: path,
            resolvedPath: resolvedPath(of: path),
            name: name,
            bytes: contents,
            fileSize: fileSize,
            isGzipped: isGzipped,
            contentHash: SHA256.hexDigest(contents),
            fingerprint: WasmFileFingerprint(info)
        )
    }

    /// The bytes of the file `path` leads to, as stored, and its `fstat` (taken on the same open
    /// file, so both describe the same version even while a ConfigMap update swaps it).
    static func readContents(path: String, maximumBytes: Int) throws(WasmError) -> ([UInt8], stat) {
        let name = fileName(of: path)
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            let code = errno
            if code == ENOENT || code == ENOTDIR {
                throw .moduleNotFound(path: path)
            }
            var error = WasmError.moduleNotFound(path: path)
            error.message = "wasm module not readable: \(String(cString: strerror(code)))"
            throw error
        }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            throw .moduleNotFound(path: path)
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw .invalidModule("not a regular file", module: name, path: path)
        }
        let fileSize = Int(info.st_size)
        guard fileSize <= maximumBytes else {
            throw .invalidModule(
                "the file is \(fileSize) bytes, more than the \(maximumBytes)-byte limit",
                module: name,
                path: path
            )
        }
        var contents = [UInt8](repeating: 0, count: fileSize)
        var filled = 0
        while filled < fileSize {
            let count = contents.withUnsafeMutableBytes { buffer in
                readFileDescriptor(descriptor, buffer.baseAddress! + filled, fileSize - filled)
            }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            filled += count
        }
        guard filled == fileSize else {
            var error = WasmError.moduleNotFound(path: path)
            error.message = "wasm module not readable: the file changed while it was read"
            throw error
        }
        guard !contents.isEmpty else {
            throw .invalidModule("the file is empty", module: name, path: path)
        }
        return (contents, info)
    }

    /// The last path component.
    public static func fileName(of path: String) -> String {
        let trimmed = path.hasSuffix("/") ? String(path.dropLast()) : path
        return trimmed.split(separator: "/").last.map(String.init) ?? trimmed
    }

    static func resolvedPath(of path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// The bytes of the file `path` leads to, as stored (gzip-compressed or not), at most
    /// `maximumBytes` of them.
    ///
    /// - Throws: ``WasmError`` as ``read(path:maximumBytes:)`` does, gzip aside.
    public static func readStoredBytes(path: String, maximumBytes: Int) throws(WasmError) -> [UInt8] {
        try readContents(path: path, maximumBytes: maximumBytes).0
    }

    /// `bytes` (a gzip stream) decompressed, at most `maximumBytes` of them; `name` and `path`
    /// describe the file in errors.
    ///
    /// - Throws: ``WasmError`` `invalid_module` when the stream does not decompress, is truncated,
    ///   or decompresses past `maximumBytes`.
    public static func gunzip(_ bytes: [UInt8], maximumBytes: Int, name: String, path: String?) throws(WasmError)
        -> [UInt8]
    {
        var buffer = ByteBuffer(bytes: bytes)
        let output: [UInt8]
        do {
            var decompressed = try buffer.decompress(with: .gzip(), maxSize: maximumBytes)
            output = decompressed.readBytes(length: decompressed.readableBytes) ?? []
        } catch {
            throw .invalidModule(
                "the file starts like gzip but does not decompress to at most \(maximumBytes) bytes (\(error))",
                module: name,
                path: path
            )
        }
        // A gzip member ends with the uncompressed size modulo 2^32; a truncated or corrupt file
        // that zlib stops reading early does not match it.
        let trailer = bytes.suffix(4)
        let recordedSize = trailer.count == 4 ? trailer.reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) } : 0
        guard bytes.count >= 18, !output.isEmpty, recordedSize == UInt32(truncatingIfNeeded: output.count) else {
            throw .invalidModule(
                "the file starts like gzip but does not decompress (truncated or corrupt)",
                module: name,
                path: path
            )
        }
        return output
    }
}

/// `read(2)`, named apart from the many `read` methods in scope.
private func readFileDescriptor(_ descriptor: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    read(descriptor, buffer, count)
}
