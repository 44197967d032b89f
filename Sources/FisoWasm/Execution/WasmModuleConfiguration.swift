import Foundation

/// How a module is run: the interceptor's `config` (`module` aside), with the defaults documented
/// in docs/wasm.md.
public struct WasmModuleConfiguration: Sendable, Hashable {
    /// Wall-clock time a call may run. Default 5 s (`timeout: "5s"`).
    public var timeout: Duration
    /// The most linear memory a call may use. Default 128 MiB (`memoryLimit: "128Mi"`).
    public var memoryLimitBytes: Int
    /// Environment variables the module sees. Default none (`env: {}`).
    public var environment: [String: String]
    /// The most a call may write to stdout. Default 4 MiB (`maxOutputBytes`).
    public var maxOutputBytes: Int
    /// The most of a call's stderr that is kept. Default 64 KiB.
    public var maxStderrBytes: Int
    /// Calls of this module that run at once; more wait in line. Default: the processor count.
    public var maxConcurrency: Int
    /// The largest module (after decompression) that is loaded. Default 128 MiB.
    public var maxModuleBytes: Int
    /// How the module is entered. Default: ``WasmExecutionMode/command`` (`mode: command`).
    public var mode: WasmExecutionMode
    /// Reactor mode: calls one warm instance serves before it is replaced. Default 1000
    /// (`maxCallsPerInstance`).
    public var maxCallsPerInstance: Int
    /// Reactor mode: an instance whose linear memory is above this after a call is replaced.
    /// Default nil: half of ``memoryLimitBytes`` (`recycleMemoryAbove`).
    public var recycleMemoryBytes: Int?
    /// Whether calls may run inline on engines that offer it (see ``WasmInlineCalls``). Default
    /// true; `FISO_WASM_INLINE=off` turns inline calls off for the whole process instead.
    public var allowsInlineCalls = true

    public static let defaultMaxConcurrency = ProcessInfo.processInfo.activeProcessorCount

    public init(
        timeout: Duration = WasmLimits.defaultTimeout,
        memoryLimitBytes: Int = WasmLimits.defaultMemoryBytes,
        environment: [String: String] = [:],
        maxOutputBytes: Int = WasmLimits.defaultMaxOutputBytes,
        maxStderrBytes: Int = WasmLimits.defaultMaxStderrBytes,
        maxConcurrency: Int = WasmModuleConfiguration.defaultMaxConcurrency,
        maxModuleBytes: Int = WasmModuleFile.defaultMaximumBytes,
        mode: WasmExecutionMode = .command,
        maxCallsPerInstance: Int = WasmReactorPoolSettings.defaultMaxCallsPerInstance,
        recycleMemoryBytes: Int? = nil
    ) {
        self.timeout = timeout
        self.memoryLimitBytes = memoryLimitBytes
        self.environment = environment
        self.maxOutputBytes = maxOutputBytes
        self.maxStderrBytes = maxStderrBytes
        self.maxConcurrency = maxConcurrency
        self.maxModuleBytes = maxModuleBytes
        self.mode = mode
        self.maxCallsPerInstance = maxCallsPerInstance
        self.recycleMemoryBytes = recycleMemoryBytes
    }

    /// The reactor pool these settings describe: one warm instance per concurrent call at most.
    public var reactorPool: WasmReactorPoolSettings {
        WasmReactorPoolSettings(
            maxInstances: maxConcurrency, maxCallsPerInstance: maxCallsPerInstance,
            recycleMemoryBytes: recycleMemoryBytes)
    }

    /// The per-call limits.
    public var limits: WasmLimits {
        WasmLimits(
            timeout: timeout,
            memoryBytes: memoryLimitBytes,
            maxOutputBytes: maxOutputBytes,
            maxStderrBytes: maxStderrBytes
        )
    }

    /// Problems with the values (non-positive limits), each as a sentence; empty when valid.
    public var problems: [String] {
        var problems: [String] = []
        if timeout <= .zero { problems.append("timeout must be positive") }
        if memoryLimitBytes < WasmModuleInfo.pageSize {
            problems.append("memoryLimit must be at least 64Ki (one WebAssembly page)")
        }
        if maxOutputBytes <= 0 { problems.append("maxOutputBytes must be positive") }
        if maxStderrBytes < 0 { problems.append("maxStderrBytes must not be negative") }
        if maxConcurrency <= 0 { problems.append("maxConcurrency must be positive") }
        if maxModuleBytes <= 0 { problems.append("maxModuleBytes must be positive") }
        if !WasmExecutionMode.all.contains(mode) { problems.append("mode must be command or reactor") }
        if maxCallsPerInstance <= 0 { problems.append("maxCallsPerInstance must be positive") }
        if let recycleMemoryBytes {
            if recycleMemoryBytes < WasmModuleInfo.pageSize {
                problems.append("recycleMemoryAbove must be at least 64Ki (one WebAssembly page)")
            } else if recycleMemoryBytes > memoryLimitBytes {
                problems.append("recycleMemoryAbove must not be above memoryLimit")
            }
        }
        return problems
    }
}
