import FisoConcurrency

/// The result of one raw call (`stdin` in, exit status and output out), for `fiso-flow wasm run`.
public struct WasmCallResult: Sendable {
    /// What the module did. A timeout answered by the executor has empty stdout and stderr.
    public var execution: WasmExecution
    /// Where the time went.
    public var timing: WasmCallTiming
    /// The module version that ran.
    public var version: WasmModuleVersion
}

/// A module file loaded for the guide's JSON-in/JSON-out ABI: calls run on a ``WasmExecutor``,
/// at most ``WasmModuleConfiguration/maxConcurrency`` at a time (the rest wait in line), each in
/// a fresh sandbox with the configured limits; ``reloadIfChanged()`` swaps in a changed file
/// while running calls finish on the version they started with.
///
/// This is everything a `wasm` interceptor needs: create one per interceptor, call
/// ``transform(_:)`` per event, poll ``reloadIfChanged()`` from a watcher.
public final class WasmTransformer: Sendable {
    /// The module file, kept loaded.
    public let handle: WasmModuleHandle
    public let configuration: WasmModuleConfiguration
    public let executor: WasmExecutor
    /// The module's concurrency slots (``WasmModuleConfiguration/maxConcurrency``), first come,
    /// first served.
    private let slots: AsyncSemaphore

    /// Loads and compiles `path` on the calling thread (which may block for as long as compiling
    /// takes: milliseconds for small modules, about half a second for a standard-Go one). From
    /// async code prefer ``load(path:configuration:engine:executor:)``.
    ///
    /// - Throws: ``WasmError`` `module_not_found` or `invalid_module`; `invalid_module` also for a
    ///   configuration with ``WasmModuleConfiguration/problems``.
    public init(
        path: String,
        configuration: WasmModuleConfiguration = WasmModuleConfiguration(),
        engine: any WasmEngine = WasmKitEngine.shared,
        executor: WasmExecutor = .shared
    ) throws(WasmError) {
        if let problem = configuration.problems.first {
            throw .invalidModule(
                "invalid configuration: \(problem)", module: WasmModuleFile.fileName(of: path), path: path)
        }
        self.handle = try WasmModuleHandle(
            path: path,
            engine: engine,
            options: WasmCompileOptions(mode: configuration.mode, reactorPool: configuration.reactorPool),
            maximumBytes: configuration.maxModuleBytes
        )
        self.configuration = configuration
        self.executor = executor
        self.slots = AsyncSemaphore(permits: max(1, configuration.maxConcurrency))
    }

    /// Loads and compiles `path` on one of `executor`'s threads.
    ///
    /// - Throws: ``WasmError`` (see ``init(path:configuration:engine:executor:)``).
    public static func load(
        path: String,
        configuration: WasmModuleConfiguration = WasmModuleConfiguration(),
        engine: any WasmEngine = WasmKitEngine.shared,
        executor: WasmExecutor = .shared
    ) async throws(WasmError) -> WasmTransformer {
        let result: Result<WasmTransformer, WasmError>
        do {
            result = try await executor.run {
                Result { () throws(WasmError) in
                    try WasmTransformer(path: path, configuration: configuration, engine: engine, executor: executor)
                }
            }
        } catch {
            throw .invalidModule("cannot load: \(error)", module: WasmModuleFile.fileName(of: path), path: path)
        }
        return try result.get()
    }

    /// The module's file name: its `argv[0]`, and the `module` label of its metrics.
    public var name: String { handle.name }
    /// The module's configured path.
    public var path: String { handle.path }
    /// The version new calls run on.
    public var version: WasmModuleVersion { handle.current.version }
    /// The engine running the module, e.g. `"wasmkit"`.
    public var engineName: String { handle.current.compiled.engineName }
    /// Calls of this module running now, and calls waiting for their turn.
    public var concurrency: (running: Int, waiting: Int) {
        let counts = slots.counts
        return (counts.inUse, counts.waiting)
    }
    /// The most calls of this module that ever ran at once (at most
    /// ``WasmModuleConfiguration/maxConcurrency``).
    public var peakConcurrency: Int { slots.peakInUse }
    /// The current version's warm-instance pool counters (reactor mode); nil in command mode.
    public var poolStatistics: WasmInstancePoolStatistics? { handle.current.compiled.poolStatistics }

    /// Runs the module on one event: the input as the guide's JSON envelope on stdin, the output
    /// decoded from stdout.
    ///
    /// - Throws: ``WasmError`` for every failure, with the module's stderr and the call's timing;
    ///   `CancellationError` when the calling task is cancelled (a module that is already running
    ///   then finishes in the background, holding its concurrency slot until it does).
    public func transform(_ input: WasmTransformInput) async throws -> WasmTransformOutput {
        let stdin: [UInt8]
        do {
            stdin = try input.encoded()
        } catch {
            throw annotated(error, stderr: "", timing: nil)
        }
        let result = try await execute(stdin: stdin)
        let execution = result.execution
        switch execution.termination {
        case .failed(let error):
            throw annotated(error, stderr: execution.stderrText, timing: result.timing)
        case .exited(let code) where code != 0:
            throw annotated(.exitCode(code), stderr: execution.stderrText, timing: result.timing)
        case .exited:
            do {
                let decoded = try WasmTransformOutput.decode(stdout: execution.stdout, inputHeaders: input.headers)
                return WasmTransformOutput(
                    payload: decoded.payload,
                    headers: decoded.headers,
                    moduleReturnedHeaders: decoded.moduleReturnedHeaders,
                    stderr: execution.stderrText,
                    timing: result.timing,
                    version: result.version
                )
            } catch {
                throw annotated(error, stderr: execution.stderrText, timing: result.timing)
            }
        }
    }

    /// Runs the module once with `stdin` as it is and reports what it did: exit status, stdout,
    /// stderr. A non-zero exit status is not an error here.
    ///
    /// - Throws: `CancellationError` only, when the calling task is cancelled.
    public func execute(stdin: [UInt8]) async throws -> WasmCallResult {
        let clock = ContinuousClock()
        let called = clock.now
        try await slots.acquire()
        let permitWait = clock.now - called
        let loaded = handle.current
        let compiled = loaded.compiled
        let invocation = WasmInvocation(
            stdin: stdin,
            environment: configuration.environment,
            limits: configuration.limits
        )
        let slots = self.slots
        if configuration.allowsInlineCalls, let execution = compiled.runInline(invocation) {
            slots.release()
            let total = clock.now - called
            return WasmCallResult(
                execution: execution,
                timing: WasmCallTiming(queued: permitWait, running: execution.duration, total: total),
                version: loaded.version
            )
        }
        let outcome = await executor.run(
            timeout: configuration.timeout,
            work: { compiled.run(invocation) },
            whenDone: { slots.release() }
        )
        let total = clock.now - called
        switch outcome {
        case .finished(let execution, let queued, let running):
            return WasmCallResult(
                execution: execution,
                timing: WasmCallTiming(queued: permitWait + queued, running: running, total: total),
                version: loaded.version
            )
        case .timedOut(let queued, let running):
            var error = WasmError.timeout(configuration.timeout)
            error.module = name
            return WasmCallResult(
                execution: WasmExecution(termination: .failed(error), stdout: [], stderr: [], duration: running),
                timing: WasmCallTiming(queued: permitWait + queued, running: running, total: total),
                version: loaded.version
            )
        case .cancelled:
            throw CancellationError()
        }
    }

    /// Swaps in the module file's new content if it changed (see
    /// ``WasmModuleHandle/reloadIfChanged()``). Blocks while it compiles; from async code prefer
    /// ``reload()``.
    @discardableResult
    public func reloadIfChanged() throws(WasmError) -> WasmReloadResult {
        try handle.reloadIfChanged()
    }

    /// ``reloadIfChanged()`` on one of the executor's threads.
    @discardableResult
    public func reload() async throws(WasmError) -> WasmReloadResult {
        let handle = self.handle
        let result: Result<WasmReloadResult, WasmError>
        do {
            result = try await executor.run { Result { () throws(WasmError) in try handle.reloadIfChanged() } }
        } catch {
            throw .invalidModule("cannot reload: \(error)", module: name, path: path)
        }
        return try result.get()
    }

    private func annotated(_ error: WasmError, stderr: String, timing: WasmCallTiming?) -> WasmError {
        var error = error
        error.module = name
        if error.stderr.isEmpty { error.stderr = stderr }
        error.timing = timing
        return error
    }
}
