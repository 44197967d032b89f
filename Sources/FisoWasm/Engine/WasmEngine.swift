/// A WebAssembly engine: turns module bytes into a compiled module that can be run many times,
/// concurrently, each run in a fresh sandbox.
///
/// Implementations: ``WasmKitEngine`` (an interpreter, always available) and ``WasmtimeEngine``
/// (a JIT, loaded at run time when its library is present); ``WasmEngineChoice`` picks one.
/// Callers never see which one runs.
public protocol WasmEngine: Sendable {
    /// A short, stable name for logs and metrics, e.g. `"wasmkit"`.
    var name: String { get }

    /// Parses and validates `bytes` (an uncompressed WebAssembly binary) and prepares it to run.
    ///
    /// - Parameters:
    ///   - bytes: The module's binary.
    ///   - name: The module's file name; the module sees it as `argv[0]`.
    ///   - options: How the module is meant to be run.
    /// - Throws: ``WasmError`` with reason ``WasmError/Reason/invalidModule`` when the binary is not
    ///   a valid module, does not export what `options.mode` needs, or imports something this engine
    ///   does not provide.
    func compile(_ bytes: [UInt8], name: String, options: WasmCompileOptions) throws(WasmError)
        -> any CompiledWasmModule

    /// ``compile(_:name:options:)`` for a module whose structure the caller has already read
    /// (`info` is ``WasmModuleInfo/init(reading:)`` of the same `bytes`), so that it is not read
    /// a second time. An engine without a faster path compiles `bytes` as usual.
    func compile(_ bytes: [UInt8], info: WasmModuleInfo, name: String, options: WasmCompileOptions)
        throws(WasmError) -> any CompiledWasmModule
}

extension WasmEngine {
    public func compile(_ bytes: [UInt8], info: WasmModuleInfo, name: String, options: WasmCompileOptions)
        throws(WasmError) -> any CompiledWasmModule
    {
        try compile(bytes, name: name, options: options)
    }

    /// Compiles `bytes` as a WASI command (the default mode).
    public func compile(_ bytes: [UInt8], name: String) throws(WasmError) -> any CompiledWasmModule {
        try compile(bytes, name: name, options: WasmCompileOptions())
    }
}

/// A module compiled by a ``WasmEngine``, shared by every call; each ``run(_:)`` gets its own
/// instance (or, in a pooled mode, an instance nobody else is using).
public protocol CompiledWasmModule: Sendable {
    /// The module's file name, as given to ``WasmEngine/compile(_:name:options:)``.
    var name: String { get }

    /// The name of the engine that compiled it.
    var engineName: String { get }

    /// The mode it was compiled for.
    var mode: WasmExecutionMode { get }

    /// Runs the module once with `invocation`'s stdin, environment and limits, blocking the calling
    /// thread until it finishes, fails or runs out of time.
    ///
    /// In ``WasmExecutionMode/reactor`` mode `stdin` is the input handed to `fiso_handle`, and the
    /// execution's `stdout` is the output it returned (see docs/module-authors-guide.md).
    ///
    /// Never throws: every failure is described by the returned ``WasmExecution``. Call it from a
    /// thread that may block (``WasmExecutor`` does), never from an event loop.
    func run(_ invocation: WasmInvocation) -> WasmExecution

    /// The warm-instance pool's counters in ``WasmExecutionMode/reactor`` mode; nil in command mode.
    var poolStatistics: WasmInstancePoolStatistics? { get }

    /// Runs the call on the calling thread if that is safe and cheap: a warm reactor instance is
    /// idle, and the engine can stop the call within a few milliseconds whatever the module does
    /// (see ``WasmInlineCalls``). Nil when the call must go to a ``WasmExecutor`` thread instead,
    /// including when an inline attempt was given up (and its instance discarded) because it ran
    /// past the inline budget or would have blocked; the caller then runs the call normally.
    func runInline(_ invocation: WasmInvocation) -> WasmExecution?
}

extension CompiledWasmModule {
    public var poolStatistics: WasmInstancePoolStatistics? { nil }
    public func runInline(_ invocation: WasmInvocation) -> WasmExecution? { nil }
}

/// How a module is entered. A struct rather than an enum so that engines can add modes (such as a
/// pooled reactor mode with exported entry points) without breaking callers that switch on it.
public struct WasmExecutionMode: Hashable, Sendable, CustomStringConvertible {
    /// The mode's configuration spelling, e.g. `"command"`.
    public let name: String

    public init(name: String) {
        self.name = name
    }

    /// A WASI command: a fresh instance per call; `_start` reads the input on stdin and writes the
    /// output on stdout. Nothing survives from one call to the next.
    public static let command = WasmExecutionMode(name: "command")

    /// A reactor: the module exports `fiso_alloc` and `fiso_handle` (see
    /// docs/module-authors-guide.md, "Reactor modules"); warm instances are kept in a pool and
    /// reused across calls, so state can survive from one call to the next.
    public static let reactor = WasmExecutionMode(name: "reactor")

    /// Every mode, in their configuration spelling.
    public static let all: [WasmExecutionMode] = [.command, .reactor]

    /// The mode named `name` (`"command"` or `"reactor"`), or nil.
    public init?(named name: String) {
        guard let mode = Self.all.first(where: { $0.name == name }) else { return nil }
        self = mode
    }

    public var description: String { name }
}

/// Options for ``WasmEngine/compile(_:name:options:)``.
public struct WasmCompileOptions: Sendable {
    /// How the module is entered. Default: ``WasmExecutionMode/command``.
    public var mode: WasmExecutionMode

    /// The warm-instance pool of ``WasmExecutionMode/reactor`` mode (ignored in command mode).
    public var reactorPool: WasmReactorPoolSettings

    public init(mode: WasmExecutionMode = .command, reactorPool: WasmReactorPoolSettings = WasmReactorPoolSettings()) {
        self.mode = mode
        self.reactorPool = reactorPool
    }
}

/// How a reactor module's warm instances are kept and replaced (see docs/wasm.md, "Reactor mode").
///
/// An instance is discarded, and a fresh one made on the next call that needs it, after
/// ``maxCallsPerInstance`` calls, after any failed call (trap, timeout, exit, invalid output…),
/// and after a call that left its linear memory above ``recycleMemoryBytes``.
public struct WasmReactorPoolSettings: Sendable, Hashable {
    /// The most instances alive at once. ``WasmTransformer`` sets it to the module's concurrency
    /// limit. Default: the processor count.
    public var maxInstances: Int
    /// Calls one instance serves before it is replaced. Default: 1000.
    public var maxCallsPerInstance: Int
    /// An instance whose memory is above this after a call is replaced. Default: nil, meaning half
    /// of the call's memory limit.
    public var recycleMemoryBytes: Int?

    public static let defaultMaxCallsPerInstance = 1000

    public init(
        maxInstances: Int = WasmModuleConfiguration.defaultMaxConcurrency,
        maxCallsPerInstance: Int = WasmReactorPoolSettings.defaultMaxCallsPerInstance,
        recycleMemoryBytes: Int? = nil
    ) {
        self.maxInstances = maxInstances
        self.maxCallsPerInstance = maxCallsPerInstance
        self.recycleMemoryBytes = recycleMemoryBytes
    }

    /// The memory bound for calls limited to `memoryLimitBytes`.
    func recycleBound(memoryLimitBytes: Int) -> Int {
        recycleMemoryBytes ?? max(memoryLimitBytes / 2, WasmModuleInfo.pageSize)
    }
}

/// Counters of a reactor module's warm-instance pool.
public struct WasmInstancePoolStatistics: Sendable, Hashable {
    /// Instances alive now (idle or running a call).
    public var live: Int
    /// Instances waiting for a call.
    public var idle: Int
    /// Instances made so far.
    public var created: Int
    /// Calls served by an instance that had served a call before.
    public var reuses: Int
    /// Instances discarded so far, by cause.
    public var recycledAfterMaxCalls: Int
    public var recycledAfterFailure: Int
    public var recycledAfterMemoryGrowth: Int
    /// Calls run (or tried) inline, on the caller's thread (see ``WasmInlineCalls``).
    public var inlineCalls: Int
    /// Calls stopped before they finished and run again on another instance, which was discarded:
    /// an inline call past the inline budget, or the module's first call of `poll_oneoff`.
    public var retries: Int

    public init(
        live: Int = 0, idle: Int = 0, created: Int = 0, reuses: Int = 0, recycledAfterMaxCalls: Int = 0,
        recycledAfterFailure: Int = 0, recycledAfterMemoryGrowth: Int = 0, inlineCalls: Int = 0,
        retries: Int = 0
    ) {
        self.inlineCalls = inlineCalls
        self.retries = retries
        self.live = live
        self.idle = idle
        self.created = created
        self.reuses = reuses
        self.recycledAfterMaxCalls = recycledAfterMaxCalls
        self.recycledAfterFailure = recycledAfterFailure
        self.recycledAfterMemoryGrowth = recycledAfterMemoryGrowth
    }
}
