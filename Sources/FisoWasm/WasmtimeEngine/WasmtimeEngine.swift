import FisoConcurrency
import Foundation
import NIOConcurrencyHelpers

/// The WebAssembly engine built on Wasmtime (a JIT compiler), loaded at run time from its C API
/// library; see ``WasmtimeEngine/shared()`` and docs/wasm.md ("Wasmtime engine").
///
/// A module is compiled to native code once and pre-linked with WASI into an instance template;
/// each call instantiates the template in a fresh store with its own WASI context (argv[0] = the
/// module name, the configured environment only, no preopened directories, stdin from memory,
/// stdout and stderr captured in memory), a memory limit (the store limiter) and a deadline
/// (epoch interruption, driven by one timer thread per engine).
public final class WasmtimeEngine: WasmEngine {
    public let name = "wasmtime"
    /// Where the Wasmtime library was loaded from.
    public let libraryPath: String
    /// The library's version as Wasmtime records it in compiled code: its major version, e.g.
    /// `"50"`. Always one of ``supportedMajorVersions`` (other versions are refused at load).
    public let libraryVersion: String
    /// The Wasmtime major versions this engine supports (tested with the Wasmtime 50 C API).
    public static var supportedMajorVersions: ClosedRange<Int> { WasmtimeLibrary.supportedMajorVersions }
    /// How often the timer thread advances the engine's epoch: a module is stopped at most about a
    /// tick after its deadline (later on a starved machine; see ``EpochTicker``).
    public static let epochTick: Duration = .milliseconds(2)

    let api: WasmtimeCAPI
    let engine: EngineHandle
    private let ticker: EpochTicker
    /// WASI without a waiting `poll_oneoff`, for instances that may run inline (see
    /// ``WasmInlineCalls``); nil when inline calls are off.
    private let guardedLinker: NIOLockedValueBox<LinkerHandle>?
    /// Pre-linking reads the shared WASI linker; the lock keeps it to one compile at a time.
    private let linker: NIOLockedValueBox<LinkerHandle>
    /// Compiled code on disk (see docs/wasm.md, "Wasmtime engine").
    let cache: CompiledCodeCache

    /// The directory of the compiled-code cache, or nil when it is off (`FISO_WASM_CACHE_DIR=off`)
    /// or the directory is not private to this user.
    public var cacheDirectory: String? { cache.directory }

    /// The cache file that holds (or would hold) the compiled code of `moduleBytes`.
    public func cachedCodePath(for moduleBytes: [UInt8]) -> String? {
        cache.entryPath(for: moduleBytes)
    }

    /// The process-wide engine, created on first use.
    ///
    /// - Throws: ``WasmtimeUnavailable`` when the library cannot be found or loaded; its
    ///   description says how to get it.
    public static func shared() throws(WasmtimeUnavailable) -> WasmtimeEngine {
        try sharedEngine.get()
    }

    /// Whether the Wasmtime library can be loaded here.
    public static var isAvailable: Bool {
        if case .success = sharedEngine { return true }
        return false
    }

    private static let sharedEngine: Result<WasmtimeEngine, WasmtimeUnavailable> = {
        switch WasmtimeLibrary.load() {
        case .success(let library):
            return Result { () throws(WasmtimeUnavailable) in try WasmtimeEngine(library: library) }
        case .failure(let error):
            return .failure(error)
        }
    }()

    private init(library: WasmtimeLibrary) throws(WasmtimeUnavailable) {
        let api = library.api
        guard let config = api.configNew() else { throw WasmtimeUnavailable("wasm_config_new failed") }
        api.configEpochInterruptionSet(config, true)
        let poolingNote = Self.configureAllocator(config, api: api)
        guard let rawEngine = api.engineNewWithConfig(config) else {
            throw WasmtimeUnavailable("wasm_engine_new_with_config failed")
        }
        let engine = EngineHandle(api: api, raw: rawEngine)
        guard let rawLinker = api.linkerNew(rawEngine) else { throw WasmtimeUnavailable("wasmtime_linker_new failed") }
        let linker = LinkerHandle(api: api, raw: rawLinker, engine: engine)
        if let error = api.linkerDefineWASI(rawLinker) {
            throw WasmtimeUnavailable("cannot define WASI: \(api.consume(error: error).message)")
        }
        self.guardedLinker =
            WasmInlineCalls.isEnabled
            ? InlinePollGuard.makeLinker(engine: engine, api: api).map { NIOLockedValueBox($0) } : nil
        self.api = api
        self.libraryPath = library.path
        self.libraryVersion = library.version
        self.engine = engine
        self.linker = NIOLockedValueBox(linker)
        self.ticker = EpochTicker(engine: engine, tick: Self.epochTick)
        self.cache = CompiledCodeCache(libraryPath: library.path)
        self.allocator = poolingNote
    }

    /// The instance allocator in use: `pooling (…)` or `on-demand (…)`, for logs and benchmarks.
    public let allocator: String

    /// The environment variable that turns the pooling allocator off (`off`) or on (`on`, the
    /// default).
    static let poolingVariable = "FISO_WASMTIME_POOLING"

    /// Slots of the pooling allocator: instances (with their memory and table) alive at once in
    /// the process, command calls and warm reactor instances together.
    static let poolingSlots: UInt32 = 1000

    /// Memory of a reused pooling slot kept resident (reset with memset, not returned to the
    /// kernel).
    static let keepResidentBytes = 16 << 20

    /// Unused slots kept warm (with their resident pages), for calls on every processor.
    static let warmSlots = UInt32(max(8, 2 * ProcessInfo.processInfo.activeProcessorCount))

    /// Sets up Wasmtime's pooling allocator (instances, memories and tables taken from
    /// preallocated slots instead of mapped and unmapped per call; copy-on-write memory images),
    /// unless `FISO_WASMTIME_POOLING=off` or the library lacks it. Returns what was chosen.
    private static func configureAllocator(_ config: WasmtimeCAPI.Handle, api: WasmtimeCAPI) -> String {
        let setting = ProcessInfo.processInfo.environment[poolingVariable] ?? "on"
        guard setting != "off" else { return "on-demand (\(poolingVariable)=off)" }
        guard let pooling = api.pooling, let poolingConfig = pooling.configNew() else {
            return "on-demand (the library has no pooling allocator)"
        }
        defer { pooling.configDelete(poolingConfig) }
        pooling.memoryInitCOWSet(config, true)
        pooling.totalCoreInstancesSet(poolingConfig, poolingSlots)
        pooling.totalMemoriesSet(poolingConfig, poolingSlots)
        pooling.totalTablesSet(poolingConfig, poolingSlots)
        // Any 32-bit memory (the store limiter enforces each module's own limit).
        pooling.maxMemorySizeSet(poolingConfig, 1 << 32)
        pooling.tableElementsSet(poolingConfig, Int(WasmtimeCompiledModule.pooledTableElements))
        pooling.maxCoreInstanceSizeSet(poolingConfig, 16 << 20)
        // Reset the first 16 MiB of a reused slot with memset rather than madvise, so the pages
        // stay mapped: a fresh standard-Go instance touches a few MiB, and re-faulting them cost
        // about 0.4 ms per call (measured: 1.0-1.1 ms per Go call with 1 MiB, 0.6-0.7 ms with 16).
        pooling.linearMemoryKeepResidentSet(poolingConfig, keepResidentBytes)
        pooling.tableKeepResidentSet(poolingConfig, 64 << 10)
        // Idle slots keep what they touched (at most keepResidentBytes each) resident.
        pooling.maxUnusedWarmSlotsSet(poolingConfig, warmSlots)
        pooling.strategySet(config, poolingConfig)
        return "pooling (\(poolingSlots) slots)"
    }

    deinit {
        ticker.stop()
    }

    public func compile(_ bytes: [UInt8], name: String, options: WasmCompileOptions) throws(WasmError)
        -> any CompiledWasmModule
    {
        try compile(bytes, info: WasmCommandChecks.read(bytes, name: name), name: name, options: options)
    }

    public func compile(_ bytes: [UInt8], info: WasmModuleInfo, name: String, options: WasmCompileOptions)
        throws(WasmError) -> any CompiledWasmModule
    {
        guard options.mode == .command || options.mode == .reactor else {
            throw .invalidModule("mode \"\(options.mode)\" is not supported by the \(self.name) engine", module: name)
        }
        try WasmCommandChecks.check(info: info, mode: options.mode, name: name)
        let module = try compiledModule(bytes, name: name)
        var rawTemplate: WasmtimeCAPI.Handle?
        let linkError = linker.withLockedValue { linker in
            api.linkerInstantiatePre(linker.raw, module.raw, &rawTemplate)
        }
        if let linkError {
            throw .invalidModule(Self.firstParagraph(api.consume(error: linkError).message), module: name)
        }
        guard let rawTemplate else {
            throw .invalidModule("wasmtime_linker_instantiate_pre returned nothing", module: name)
        }
        var guardedTemplate: InstanceTemplateHandle?
        if let guardedLinker {
            var rawGuarded: WasmtimeCAPI.Handle?
            let error = guardedLinker.withLockedValue { api.linkerInstantiatePre($0.raw, module.raw, &rawGuarded) }
            if let error {
                _ = api.consume(error: error)  // linked above with the same imports; then no inline calls
            } else if let rawGuarded {
                guardedTemplate = InstanceTemplateHandle(api: api, raw: rawGuarded, module: module)
            }
        }
        let compiled = WasmtimeCompiledModule(
            name: name,
            engine: self,
            template: InstanceTemplateHandle(api: api, raw: rawTemplate, module: module),
            guardedTemplate: guardedTemplate,
            initialMemoryBytes: info.initialMemoryBytes
        )
        if options.mode == .reactor {
            return WasmtimeReactorModule(linking: compiled, settings: options.reactorPool)
        }
        return compiled
    }

    /// The module's compiled code: from the disk cache when it holds it, else compiled now (and
    /// cached).
    private func compiledModule(_ bytes: [UInt8], name: String) throws(WasmError) -> ModuleHandle {
        let entry = cache.entryPath(for: bytes)
        if let entry, let cached = cache.load(entry) {
            var rawModule: WasmtimeCAPI.Handle?
            let error = cached.withUnsafeBufferPointer { buffer in
                api.moduleDeserialize(engine.raw, buffer.baseAddress, buffer.count, &rawModule)
            }
            if let error {
                _ = api.consume(error: error)
                cache.remove(entry)  // another Wasmtime's or a damaged entry: compile afresh
            } else if let rawModule {
                return ModuleHandle(api: api, raw: rawModule, engine: engine)
            }
        }
        var rawModule: WasmtimeCAPI.Handle?
        let error = bytes.withUnsafeBufferPointer { buffer in
            api.moduleNew(engine.raw, buffer.baseAddress, buffer.count, &rawModule)
        }
        if let error {
            throw .invalidModule(Self.firstParagraph(api.consume(error: error).message), module: name)
        }
        guard let rawModule else { throw .invalidModule("wasmtime_module_new returned nothing", module: name) }
        let module = ModuleHandle(api: api, raw: rawModule, engine: engine)
        if let entry {
            var serialized = WasmtimeCAPI.ByteVector()
            if let error = api.moduleSerialize(rawModule, &serialized) {
                _ = api.consume(error: error)
            } else {
                if let data = serialized.data, serialized.size > 0 {
                    cache.store(Array(UnsafeBufferPointer(start: data, count: serialized.size)), at: entry)
                }
                api.byteVectorDelete(&serialized)
            }
        }
        return module
    }

    /// Wasmtime's messages put the cause after a blank line; keep them on one line.
    static func firstParagraph(_ message: String) -> String {
        message.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            .joined(separator: ": ")
    }
}

extension WasmModuleInfo {
    /// The initial size of the module's first memory (defined or imported), in bytes.
    var initialMemoryBytes: Int {
        let imported = imports.compactMap { entry -> Limits? in
            if case .memory(let limits) = entry.kind { limits } else { nil }
        }
        guard let first = (imported + memories).first else { return 0 }
        let pages = min(first.minimum, UInt64(Int.max / Self.pageSize))
        return Int(pages) * Self.pageSize
    }
}

// MARK: - Owned C handles

// The handles below are immutable after creation and each wraps a Wasmtime object that Wasmtime
// documents as thread-safe to share (`Engine`, `Module`, `InstancePre` are `Send + Sync`; the
// linker is only read, under a lock). Hence `@unchecked Sendable`: nothing in them mutates, and
// `deinit` frees the object once no Swift reference is left.

/// Owns a `wasm_engine_t`.
final class EngineHandle: @unchecked Sendable {
    let api: WasmtimeCAPI
    let raw: WasmtimeCAPI.Handle

    init(api: WasmtimeCAPI, raw: WasmtimeCAPI.Handle) {
        self.api = api
        self.raw = raw
    }

    deinit { api.engineDelete(raw) }
}

/// Owns a `wasmtime_linker_t` (and keeps its engine alive).
final class LinkerHandle: @unchecked Sendable {
    let api: WasmtimeCAPI
    let raw: WasmtimeCAPI.Handle
    let engine: EngineHandle

    init(api: WasmtimeCAPI, raw: WasmtimeCAPI.Handle, engine: EngineHandle) {
        self.api = api
        self.raw = raw
        self.engine = engine
    }

    deinit { api.linkerDelete(raw) }
}

/// Owns a `wasmtime_module_t` (and keeps its engine alive).
final class ModuleHandle: @unchecked Sendable {
    let api: WasmtimeCAPI
    let raw: WasmtimeCAPI.Handle
    let engine: EngineHandle

    init(api: WasmtimeCAPI, raw: WasmtimeCAPI.Handle, engine: EngineHandle) {
        self.api = api
        self.raw = raw
        self.engine = engine
    }

    deinit { api.moduleDelete(raw) }
}

/// Owns a `wasmtime_instance_pre_t`: the module pre-linked with WASI (and keeps the module alive).
final class InstanceTemplateHandle: @unchecked Sendable {
    let api: WasmtimeCAPI
    let raw: WasmtimeCAPI.Handle
    let module: ModuleHandle

    init(api: WasmtimeCAPI, raw: WasmtimeCAPI.Handle, module: ModuleHandle) {
        self.api = api
        self.raw = raw
        self.module = module
    }

    deinit { api.instancePreDelete(raw) }
}

/// One thread that advances an engine's epoch by one per tick, so that a store whose deadline (in
/// ticks) has passed traps at its next epoch check. It never catches up after a late wake-up (a
/// busy machine): increments stay at least a tick apart, so a deadline of N ticks never stops a
/// module before N−1 ticks of real time have passed. That keeps short inline budgets (see
/// ``WasmInlineCalls``) from firing early. The cost: each wake-up's latency adds up (a few percent
/// on a quiet machine, more on a starved one), so modules are stopped somewhat after their timeout,
/// while callers are still answered on time by ``WasmExecutor``. Stops when its engine is released.
final class EpochTicker: Sendable {
    private let stopped = NIOLockedValueBox(false)

    init(engine: EngineHandle, tick: Duration) {
        let stopped = self.stopped
        let microseconds = UInt32(max(1, tick.components.attoseconds / 1_000_000_000_000))
        DedicatedThread.start(name: "wasmtime-epoch") {
            // The thread holds the engine: it is deleted only after the last increment.
            while !stopped.withLockedValue({ $0 }) {
                usleep(microseconds)
                engine.api.engineIncrementEpoch(engine.raw)
            }
        }
    }

    func stop() {
        stopped.withLockedValue { $0 = true }
    }
}
