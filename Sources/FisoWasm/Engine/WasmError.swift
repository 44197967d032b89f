import FisoQuantities

/// A failed module load or call, classified.
///
/// ``message`` is the text to log (`wasm module execution failed error="<message>"`);
/// ``reason-swift.property`` is the classification, whose ``Reason/rawValue`` is the metrics label
/// (`reason="exit_code"`). The module's captured stderr travels with the error.
public struct WasmError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The classes of failure. The raw values are the `reason` metric label values.
    public enum Reason: String, Sendable, CaseIterable, Hashable {
        /// The module file does not exist (or cannot be read).
        case moduleNotFound = "module_not_found"
        /// The file is not a usable module: not WebAssembly, invalid, no `_start`, an import this
        /// runtime does not provide, or a gzip file that does not decompress.
        case invalidModule = "invalid_module"
        /// The module exited with a non-zero status (`proc_exit(N)` or `main` returning N).
        case exitCode = "exit_code"
        /// The module ran longer than its timeout.
        case timeout
        /// The module's output (or the event payload given to it) is not what the ABI requires.
        case invalidJSON = "invalid_json"
        /// The module asked for more memory than its limit and then failed.
        case outOfMemory = "out_of_memory"
        /// The module trapped (unreachable, division by zero, out-of-bounds access, stack exhaustion…).
        case trap
        /// The module wrote more than `maxOutputBytes` to stdout.
        case outputTooLarge = "output_too_large"
    }

    /// The class of failure.
    public var reason: Reason
    /// The message to log, e.g. `wasm: exit code 1`. For ``Reason/moduleNotFound`` it is
    /// `wasm module not found` and ``path`` holds the path, to be logged as `path=...`.
    public var message: String
    /// The module's file name, when known.
    public var module: String?
    /// The module's path, when the failure concerns the file.
    public var path: String?
    /// The exit status, for ``Reason/exitCode``.
    public var exitCode: Int32?
    /// What the module wrote to stderr before failing (bounded; may be empty).
    public var stderr: String
    /// How long the call took, when the failure happened during a call.
    public var timing: WasmCallTiming?

    public init(
        _ reason: Reason,
        _ message: String,
        module: String? = nil,
        path: String? = nil,
        exitCode: Int32? = nil,
        stderr: String = "",
        timing: WasmCallTiming? = nil
    ) {
        self.reason = reason
        self.message = message
        self.module = module
        self.path = path
        self.exitCode = exitCode
        self.stderr = stderr
        self.timing = timing
    }

    /// The message, with the path for file failures: `wasm module not found path=/etc/fiso/modules/x.wasm`.
    public var description: String {
        if let path, reason == .moduleNotFound || reason == .invalidModule {
            return "\(message) path=\(path)"
        }
        return message
    }
}

extension WasmError {
    static func moduleNotFound(path: String) -> WasmError {
        WasmError(.moduleNotFound, "wasm module not found", path: path)
    }

    /// `wasm: invalid module: <detail>`.
    public static func invalidModule(_ detail: String, module: String? = nil, path: String? = nil) -> WasmError {
        WasmError(.invalidModule, "wasm: invalid module: \(detail)", module: module, path: path)
    }

    static func exitCode(_ code: Int32) -> WasmError {
        WasmError(.exitCode, "wasm: exit code \(code)", exitCode: code)
    }

    static func timeout(_ timeout: Duration) -> WasmError {
        WasmError(.timeout, "wasm: timeout after \(GoDuration.format(timeout))")
    }

    static func invalidJSON(_ detail: String) -> WasmError {
        WasmError(.invalidJSON, "wasm: invalid JSON: \(detail)")
    }

    static func outOfMemory(limitBytes: Int, detail: String) -> WasmError {
        WasmError(
            .outOfMemory,
            "wasm: out of memory: memory limit \(ByteSize.formatQuantity(limitBytes)) reached (\(detail))"
        )
    }

    static func trap(_ reason: String) -> WasmError {
        WasmError(.trap, "wasm: trap: \(reason)")
    }

    static func outputTooLarge(limitBytes: Int) -> WasmError {
        WasmError(.outputTooLarge, "wasm: output too large: more than \(limitBytes) bytes on stdout")
    }
}
