/// One run of a module: what it reads, what it may see and how much it may use.
public struct WasmInvocation: Sendable {
    /// The bytes the module reads on stdin.
    public var stdin: [UInt8]

    /// The module's environment variables. Empty by default: a module sees nothing of the host's.
    public var environment: [String: String]

    /// How long and how much memory the run may take, and how much it may write.
    public var limits: WasmLimits

    public init(stdin: [UInt8], environment: [String: String] = [:], limits: WasmLimits = WasmLimits()) {
        self.stdin = stdin
        self.environment = environment
        self.limits = limits
    }
}

/// The resource limits of one run. See docs/wasm.md ("Limits") for how each is enforced.
public struct WasmLimits: Sendable, Hashable {
    /// Wall-clock time the run may take, from the moment it starts on a thread. Default: 5 s.
    public var timeout: Duration

    /// The most linear memory the module may have, in bytes. Default: 128 MiB.
    public var memoryBytes: Int

    /// The most the module may write to stdout, in bytes; one byte more fails the call with
    /// ``WasmError/Reason/outputTooLarge``. Default: 4 MiB.
    public var maxOutputBytes: Int

    /// The most of the module's stderr that is kept, in bytes; the rest is dropped (and counted).
    /// Default: 64 KiB.
    public var maxStderrBytes: Int

    public static let defaultTimeout: Duration = .seconds(5)
    public static let defaultMemoryBytes = 128 << 20
    public static let defaultMaxOutputBytes = 4 << 20
    public static let defaultMaxStderrBytes = 64 << 10

    public init(
        timeout: Duration = WasmLimits.defaultTimeout,
        memoryBytes: Int = WasmLimits.defaultMemoryBytes,
        maxOutputBytes: Int = WasmLimits.defaultMaxOutputBytes,
        maxStderrBytes: Int = WasmLimits.defaultMaxStderrBytes
    ) {
        self.timeout = timeout
        self.memoryBytes = memoryBytes
        self.maxOutputBytes = maxOutputBytes
        self.maxStderrBytes = maxStderrBytes
    }
}

/// What happened during one run of a module.
public struct WasmExecution: Sendable {
    /// How the run ended.
    public enum Termination: Sendable, Equatable {
        /// `_start` returned or the module called `proc_exit`; 0 is success.
        case exited(code: Int32)
        /// The run was stopped: a trap, the timeout, the memory limit, the output limit, or a
        /// module that could not be instantiated.
        case failed(WasmError)
    }

    /// How the run ended.
    public var termination: Termination

    /// Everything the module wrote to stdout (at most the output limit).
    public var stdout: [UInt8]

    /// What was kept of the module's stderr (at most ``WasmLimits/maxStderrBytes``).
    public var stderr: [UInt8]

    /// How many bytes of stderr were dropped beyond ``WasmLimits/maxStderrBytes``.
    public var stderrBytesDropped: Int

    /// Wall-clock time of the run, instantiation included.
    public var duration: Duration

    public init(
        termination: Termination,
        stdout: [UInt8],
        stderr: [UInt8],
        stderrBytesDropped: Int = 0,
        duration: Duration
    ) {
        self.termination = termination
        self.stdout = stdout
        self.stderr = stderr
        self.stderrBytesDropped = stderrBytesDropped
        self.duration = duration
    }

    /// The exit status a command-line runner (`fiso-flow wasm run`) should end with, as
    /// `wasmtime` does: the module's own status when it exited; 124 for a timeout (as `timeout(1)`);
    /// 134 (128 + SIGABRT) for a trap or running out of memory; 1 for any other failure.
    public var commandLineExitStatus: Int32 {
        switch termination {
        case .exited(let code): return code
        case .failed(let error):
            switch error.reason {
            case .timeout: return 124
            case .trap, .outOfMemory: return 134
            default: return 1
            }
        }
    }

    /// The module's stderr as text (invalid UTF-8 replaced), with a note when some was dropped.
    public var stderrText: String {
        var text = String(decoding: stderr, as: UTF8.self)
        if stderrBytesDropped > 0 {
            text += "… [\(stderrBytesDropped) more bytes dropped]"
        }
        return text
    }
}
