import NIOConcurrencyHelpers

/// One loaded version of a module file.
public struct WasmModuleVersion: Sendable, Hashable {
    /// SHA-256 of the WebAssembly bytes (after decompression), in hexadecimal.
    public var contentHash: String
    /// 1 for the first load, then one more for each reload that swapped the module.
    public var generation: Int
    /// The path with symlinks resolved, as it was when this version was read.
    public var resolvedPath: String
    /// Size on disk.
    public var fileSize: Int
    /// Size of the WebAssembly binary (after decompression).
    public var moduleSize: Int
    /// Whether the file was gzip-compressed.
    public var isGzipped: Bool
    /// How long checking and compiling the module took.
    public var compileDuration: Duration
}

/// A compiled module together with the version of the file it came from.
public struct LoadedWasmModule: Sendable {
    public var compiled: any CompiledWasmModule
    public var version: WasmModuleVersion
}

/// What ``WasmModuleHandle/reloadIfChanged()`` did.
public enum WasmReloadResult: Sendable, Equatable {
    /// The file is as it was (same fingerprint, or same content): nothing was compiled.
    case unchanged
    /// A new version was compiled and now serves new calls.
    case reloaded(from: WasmModuleVersion, to: WasmModuleVersion)
}

/// A module file kept loaded and replaceable: calls take ``current`` and run on it to the end,
/// while ``reloadIfChanged()`` swaps in a new version when the file changes.
///
/// Works with Kubernetes ConfigMap volumes, where the file is a symlink into a `..data` directory
/// that the kubelet replaces atomically: the path is followed on every check, so a swapped
/// `..data` is a changed file.
public final class WasmModuleHandle: Sendable {
    /// The path as configured.
    public let path: String
    /// The module's file name (its `argv[0]`).
    public let name: String
    private let engine: any WasmEngine
    private let options: WasmCompileOptions
    private let maximumBytes: Int
    private let state: NIOLockedValueBox<(module: LoadedWasmModule, fingerprint: WasmFileFingerprint)>
    /// Serializes reloads, so that two pollers never compile the same change twice.
    private let reloading = NIOLockedValueBox(())

    /// Reads and compiles `path` now.
    ///
    /// - Throws: ``WasmError`` (`module_not_found` or `invalid_module`).
    public init(
        path: String,
        engine: any WasmEngine,
        options: WasmCompileOptions = WasmCompileOptions(),
        maximumBytes: Int = WasmModuleFile.defaultMaximumBytes
    ) throws(WasmError) {
        self.path = path
        self.name = WasmModuleFile.fileName(of: path)
        self.engine = engine
        self.options = options
        self.maximumBytes = maximumBytes
        let file = try WasmModuleFile.read(path: path, maximumBytes: maximumBytes)
        let loaded = try Self.compile(file, engine: engine, options: options, generation: 1)
        self.state = NIOLockedValueBox((loaded, file.fingerprint))
    }

    /// The version new calls run on.
    public var current: LoadedWasmModule {
        state.withLockedValue { $0.module }
    }

    /// Checks the file and, when its content changed, compiles it and makes it ``current``.
    /// Calls already running keep the version they started with.
    ///
    /// Cheap when nothing changed: one `stat` of the path. When the file's identity changed but
    /// its content is the same (a ConfigMap update that did not touch this key), nothing is
    /// compiled either.
    ///
    /// - Throws: ``WasmError`` when the changed file cannot be read or compiled; the current
    ///   version stays in service, and the same change is tried again on the next call.
    @discardableResult
    public func reloadIfChanged() throws(WasmError) -> WasmReloadResult {
        // `withLockedValue` rethrows untyped errors, so the typed result travels as a `Result`.
        try reloading.withLockedValue { _ in Result { () throws(WasmError) in try reloadLocked() } }.get()
    }

    /// ``reloadIfChanged()`` once the reload lock is held.
    private func reloadLocked() throws(WasmError) -> WasmReloadResult {
        let (current, knownFingerprint) = state.withLockedValue { ($0.module, $0.fingerprint) }
        guard let fingerprint = WasmFileFingerprint.of(path: path) else {
            throw .moduleNotFound(path: path)
        }
        if fingerprint == knownFingerprint { return .unchanged }
        let file = try WasmModuleFile.read(path: path, maximumBytes: maximumBytes)
        if file.contentHash == current.version.contentHash {
            state.withLockedValue { $0.fingerprint = file.fingerprint }
            return .unchanged
        }
        let loaded = try Self.compile(
            file,
            engine: engine,
            options: options,
            generation: current.version.generation + 1
        )
        state.withLockedValue { $0 = (loaded, file.fingerprint) }
        return .reloaded(from: current.version, to: loaded.version)
    }

    private static func compile(
        _ file: WasmModuleFile,
        engine: any WasmEngine,
        options: WasmCompileOptions,
        generation: Int
    ) throws(WasmError) -> LoadedWasmModule {
        let clock = ContinuousClock()
        let started = clock.now
        let compiled: any CompiledWasmModule
        do {
            compiled = try engine.compile(file.bytes, name: file.name, options: options)
        } catch {
            var error = error
            error.path = file.path
            throw error
        }
        let version = WasmModuleVersion(
            contentHash: file.contentHash,
            generation: generation,
            resolvedPath: file.resolvedPath,
            fileSize: file.fileSize,
            moduleSize: file.bytes.count,
            isGzipped: file.isGzipped,
            compileDuration: clock.now - started
        )
        return LoadedWasmModule(compiled: compiled, version: version)
    }
}
