import FisoJSON

/// The reactor ABI (docs/module-authors-guide.md, "Reactor modules"): what a module exports in
/// ``WasmExecutionMode/reactor`` mode and how a call's result is read.
///
/// - `memory`: the linear memory.
/// - `fiso_alloc(len: i32) -> i32`: returns a buffer of `len` bytes the host writes the input into.
/// - `fiso_handle(ptr: i32, len: i32) -> i64`: handles the input; returns `(out_ptr << 32) | out_len`
///   for the output, or `-N` (N in 1...255) to fail the call as a command exiting with status N.
/// - `_initialize() -> ()` (optional): called once per instance, before its first call.
enum ReactorABI {
    static let allocate = "fiso_alloc"
    static let handle = "fiso_handle"
    static let initialize = "_initialize"
    static let memory = "memory"

    static let allocateSignature = WasmModuleInfo.Signature(parameters: [.i32], results: [.i32])
    static let handleSignature = WasmModuleInfo.Signature(parameters: [.i32, .i32], results: [.i64])

    /// Checks that a module (already read) is one the reactor ABI can run, with the same messages on
    /// every engine: the ABI's exports with their types, only WASI imports.
    static func check(info: WasmModuleInfo, name: String) throws(WasmError) -> WasmModuleInfo {
        try checkExports(info: info, name: name)
        try WASIFunctions.requireProvidedImports(of: info, module: name)
        return info
    }

    /// The exports the ABI needs, with their types; not the imports.
    static func checkExports(info: WasmModuleInfo, name: String) throws(WasmError) {
        for (export, signature) in [(allocate, allocateSignature), (handle, handleSignature)] {
            guard case .function(let actual) = info.export(named: export)?.kind else {
                throw .invalidModule(
                    "not a reactor: no exported \(export) function (mode reactor needs fiso_alloc(i32) -> i32 and "
                        + "fiso_handle(i32, i32) -> i64; see the module authors' guide, or use mode command)",
                    module: name
                )
            }
            if let actual, actual != signature {
                throw .invalidModule(
                    "\(export) must have type \(signature), but its type is \(actual)", module: name)
            }
        }
        guard case .memory = info.export(named: memory)?.kind else {
            throw .invalidModule("not a reactor: no exported memory named \"memory\"", module: name)
        }
        if let export = info.export(named: initialize) {
            guard case .function(let signature) = export.kind,
                signature.map({ $0.parameters.isEmpty && $0.results.isEmpty }) ?? true
            else {
                throw .invalidModule("_initialize must be a function that takes and returns nothing", module: name)
            }
        }
    }

    /// What `fiso_handle`'s result means.
    enum Result: Equatable {
        /// The output is `length` bytes at `offset`.
        case output(offset: UInt32, length: UInt32)
        /// The module refused the event with this status (a command's exit status).
        case refused(status: Int32)
    }

    static func decode(_ value: Int64) -> Result {
        // -1...-255 would otherwise be an output at 0xFFFFFFFF of almost 4 GiB: never a valid range.
        if (-255)...(-1) ~= value { return .refused(status: Int32(-value)) }
        let bits = UInt64(bitPattern: value)
        return .output(offset: UInt32(truncatingIfNeeded: bits >> 32), length: UInt32(truncatingIfNeeded: bits))
    }

    /// Validates a result against the memory size and the output limit: the output's range, or
    /// the failure to report.
    static func outputRange(
        _ result: Result,
        memoryBytes: Int,
        limits: WasmLimits
    ) -> Swift.Result<Range<Int>, WasmError> {
        switch result {
        case .refused(let status):
            return .failure(.exitCode(status))
        case .output(let offset, let length):
            if Int(length) > limits.maxOutputBytes {
                return .failure(.outputTooLarge(limitBytes: limits.maxOutputBytes))
            }
            let start = Int(offset)
            let end = start + Int(length)
            guard end <= memoryBytes else {
                return .failure(
                    .invalidJSON(
                        "fiso_handle returned an output of \(length) bytes at \(offset), outside the module's "
                            + "memory of \(memoryBytes) bytes"
                    )
                )
            }
            return .success(start..<end)
        }
    }

    /// Whether `output` is a document the transformer will accept. An instance that returned
    /// anything else is discarded like one that failed (the call itself is reported by the caller,
    /// which decodes the output: `invalid_json`).
    static func isAcceptable(_ output: [UInt8]) -> Bool {
        (try? WasmTransformOutput.decode(stdout: output, inputHeaders: WasmHeaders())) != nil
    }

    /// The failure for a `fiso_alloc` result that cannot hold `length` bytes.
    static func badBuffer(offset: Int64, length: Int, memoryBytes: Int) -> WasmError {
        .trap(
            "fiso_alloc(\(length)) returned \(offset), not a buffer inside the module's memory of \(memoryBytes) bytes")
    }

    /// `proc_exit(0)` inside a call: the instance is gone and there is no output.
    static var exitedWithoutOutput: WasmError {
        WasmError(
            .exitCode, "wasm: exit code 0: the reactor called proc_exit instead of returning from fiso_handle",
            exitCode: 0)
    }
}

extension WasmExecution {
    /// A reactor call's result. The module's stdout and stderr were both captured as its log text
    /// (`log`); a failure names the module and carries that text.
    static func reactorCall(
        _ termination: Termination, stdout: [UInt8], log: (bytes: [UInt8], droppedBytes: Int, overflowed: Bool),
        duration: Duration, module: String
    ) -> WasmExecution {
        var execution = WasmExecution(
            termination: termination, stdout: stdout, stderr: log.bytes, stderrBytesDropped: log.droppedBytes,
            duration: duration)
        if case .failed(var error) = execution.termination {
            error.module = module
            error.stderr = execution.stderrText
            execution.termination = .failed(error)
        }
        return execution
    }
}

extension WasmModuleInfo {
    /// Whether the module exports the reactor ABI's `fiso_handle` function.
    public var exportsReactorHandler: Bool {
        if case .function? = export(named: ReactorABI.handle)?.kind { return true }
        return false
    }

    /// Checks the exports ``WasmExecutionMode/reactor`` needs (`fiso_alloc`, `fiso_handle` and
    /// `memory`, and `_initialize` when present) and their types, with the messages the engines
    /// give when they refuse a module; the imports are not checked.
    ///
    /// - Throws: ``WasmError`` `invalid_module`.
    public func checkReactorExports(module name: String) throws(WasmError) {
        try ReactorABI.checkExports(info: self, name: name)
    }
}
