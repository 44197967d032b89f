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
}

extension WasmEngine {
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
    /// Never throws: every failure is described by the returned ``WasmExecution``. Call it from a
    /// thread that may block (``WasmExecutor`` does), never from an event loop.
    func run(_ invocation: WasmInvocation) -> WasmExecution
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

    public var description: String { name }
}

/// Options for ``WasmEngine/compile(_:name:options:)``.
public struct WasmCompileOptions: Sendable {
    /// How the module is entered. Default: ``WasmExecutionMode/command``.
    public var mode: WasmExecutionMode

    public init(mode: WasmExecutionMode = .command) {
        self.mode = mode
    }
}
