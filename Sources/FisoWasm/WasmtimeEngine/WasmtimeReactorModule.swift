import Synchronization

/// A reactor module on Wasmtime: calls borrow a warm instance (its own store and WASI context)
/// from the pool (see ``ReactorInstancePool``), with a fresh epoch deadline per call.
///
/// Warm calls may run inline (see ``WasmInlineCalls``). Instances come from the guarded template
/// (see ``InlinePollGuard``): a call that polls is stopped there and run again on an ordinary
/// instance. A module that polls twice within ``WasmInlineState/demotionWindow`` calls (one that
/// sleeps, say) gets ordinary instances only from then on, and no inline calls; one that polls
/// rarely (a language runtime's occasional housekeeping) keeps them.
final class WasmtimeReactorModule: CompiledWasmModule {
    /// The pre-linked command-mode module, for its template, WASI set-up and classification.
    let linking: WasmtimeCompiledModule
    private let pool: ReactorInstancePool<WasmtimeReactorInstance>
    private let inline: WasmInlineState

    var name: String { linking.name }
    var engineName: String { linking.engine.name }
    var mode: WasmExecutionMode { .reactor }
    var poolStatistics: WasmInstancePoolStatistics? { pool.statistics }

    init(linking: WasmtimeCompiledModule, settings: WasmReactorPoolSettings) {
        self.linking = linking
        self.pool = ReactorInstancePool(settings: settings)
        self.inline = WasmInlineState(hasGuardedTemplate: linking.guardedTemplate != nil)
    }

    private func key(_ invocation: WasmInvocation, guarded: Bool) -> ReactorInstanceKey {
        ReactorInstanceKey(
            environment: invocation.environment, memoryBytes: invocation.limits.memoryBytes, guarded: guarded)
    }

    func run(_ invocation: WasmInvocation) -> WasmExecution {
        if inline.takeUnguardedRun() {
            return run(invocation, guarded: false, throwaway: !inline.isDemoted)
        }
        return run(invocation, guarded: inline.usesGuardedInstances)
    }

    private func run(_ invocation: WasmInvocation, guarded: Bool, throwaway: Bool = false) -> WasmExecution {
        let clock = ContinuousClock()
        let started = clock.now
        let limits = invocation.limits
        if guarded { inline.countGuardedCall() }
        let deadlineTicks = WasmtimeCompiledModule.deadlineTicks(for: limits.timeout)

        let lease: ReactorInstancePool<WasmtimeReactorInstance>.Lease
        do {
            lease = try pool.acquire(key(invocation, guarded: guarded), throwaway: throwaway) {
                () throws(InstanceFailure) in
                try makeInstance(invocation, guarded: guarded, deadlineTicks: deadlineTicks)
            }
        } catch {
            if error.polled { return runAgainUnguarded(invocation, started: started, clock: clock) }
            return finish(.failed(error.error), log: error.log, started: started, clock: clock)
        }
        let (termination, output, polled) = call(lease.instance, invocation, deadlineTicks: deadlineTicks)
        if polled {
            pool.release(lease, .retried)
            return runAgainUnguarded(invocation, started: started, clock: clock)
        }
        return complete(lease, termination, output, limits: limits, started: started, clock: clock)
    }

    /// After a guarded instance was stopped in `poll_oneoff`: the call runs again, on an ordinary
    /// instance, with the time it has left. The instance is a throw-away one unless the module was
    /// just demoted (the pool keeps guarded instances until then).
    private func runAgainUnguarded(
        _ invocation: WasmInvocation, started: ContinuousClock.Instant, clock: ContinuousClock
    ) -> WasmExecution {
        inline.recordPoll(inline: false)
        var again = invocation
        again.limits.timeout = invocation.limits.timeout - (clock.now - started)
        guard again.limits.timeout > .zero else {
            let log = OutputCapture(limit: 0, failsOnOverflow: false)
            return finish(.failed(.timeout(invocation.limits.timeout)), log: log, started: started, clock: clock)
        }
        var execution = run(again, guarded: false, throwaway: !inline.isDemoted)
        execution.duration = clock.now - started
        return execution
    }

    func runInline(_ invocation: WasmInvocation) -> WasmExecution? {
        let limits = invocation.limits
        guard inline.mayTryInline(timeout: limits.timeout),
            let lease = pool.acquireIdle(key(invocation, guarded: true))
        else { return nil }
        inline.countGuardedCall()
        let clock = ContinuousClock()
        let started = clock.now
        let (termination, output, polled) = call(
            lease.instance, invocation, deadlineTicks: WasmtimeCompiledModule.deadlineTicks(for: WasmInlineCalls.budget)
        )
        if polled {
            inline.recordPoll(inline: true)  // the executor runs it again, on an ordinary instance
            pool.release(lease, .retried)
            return nil
        }
        if case .failed(let error) = termination, error.reason == .timeout {
            inline.recordBudgetOverrun()
            pool.release(lease, .retried)
            return nil
        }
        return complete(lease, termination, output, limits: limits, started: started, clock: clock)
    }

    /// One call on a leased instance; `polled` when a guarded instance was stopped in
    /// `poll_oneoff` (the call must run again elsewhere).
    private func call(_ instance: WasmtimeReactorInstance, _ invocation: WasmInvocation, deadlineTicks: UInt64)
        -> (termination: WasmExecution.Termination, output: [UInt8], polled: Bool)
    {
        instance.log.reset(limit: invocation.limits.maxStderrBytes)
        linking.engine.api.contextSetEpochDeadline(instance.context, deadlineTicks)
        let (termination, output) = call(instance, invocation)
        return (termination, output, instance.mark.pointee == InlinePollGuard.blockedMark)
    }

    /// Gives the instance back after a finished call (kept, or recycled) and describes the call.
    private func complete(
        _ lease: ReactorInstancePool<WasmtimeReactorInstance>.Lease, _ termination: WasmExecution.Termination,
        _ output: [UInt8], limits: WasmLimits, started: ContinuousClock.Instant, clock: ContinuousClock
    ) -> WasmExecution {
        let instance = lease.instance
        let execution = finish(termination, stdout: output, log: instance.log, started: started, clock: clock)
        pool.release(
            lease, after: termination, output: output, memoryGrowthDenied: false, memoryBytes: instance.memoryBytes,
            memoryLimitBytes: limits.memoryBytes)
        return execution
    }

    private func call(_ instance: WasmtimeReactorInstance, _ invocation: WasmInvocation) -> (
        WasmExecution.Termination, [UInt8]
    ) {
        let limits = invocation.limits
        let input = invocation.stdin
        let failed = { (outcome: WasmtimeCompiledModule.Outcome) -> (WasmExecution.Termination, [UInt8]) in
            if case .exited(0) = outcome { return (.failed(ReactorABI.exitedWithoutOutput), []) }
            let termination = self.linking.classify(
                outcome, limits: limits, memoryBytes: instance.memoryBytes, outputOverflowed: false)
            return (termination, [])
        }
        let allocated = instance.call(instance.allocate, [Int64(UInt32(clamping: input.count))])
        guard case .success(let rawOffset) = allocated else {
            if case .failure(let outcome) = allocated { return failed(outcome) }
            return (.failed(.trap("fiso_alloc failed")), [])
        }
        let offset = Int(UInt32(truncatingIfNeeded: rawOffset))
        let memoryBytes = instance.memoryBytes
        guard offset + input.count <= memoryBytes, offset != 0 || input.isEmpty, let base = instance.memoryBase else {
            return (
                .failed(ReactorABI.badBuffer(offset: rawOffset, length: input.count, memoryBytes: memoryBytes)), []
            )
        }
        input.withUnsafeBytes { source in
            if let from = source.baseAddress { (base + offset).copyMemory(from: from, byteCount: input.count) }
        }
        let handled = instance.call(instance.handle, [Int64(offset), Int64(input.count)])
        guard case .success(let raw) = handled else {
            if case .failure(let outcome) = handled { return failed(outcome) }
            return (.failed(.trap("fiso_handle failed")), [])
        }
        let result = ReactorABI.decode(raw)
        if case .refused(let status) = result { return (.exited(code: status), []) }
        switch ReactorABI.outputRange(result, memoryBytes: instance.memoryBytes, limits: limits) {
        case .failure(let error):
            return (.failed(error), [])
        case .success(let range):
            guard let base = instance.memoryBase else { return (.failed(.trap("the memory has no data")), []) }
            let output = [UInt8](UnsafeRawBufferPointer(start: base + range.lowerBound, count: range.count))
            return (.exited(code: 0), output)
        }
    }

    /// A failure while making an instance, with what it logged.
    struct InstanceFailure: Error {
        var error: WasmError
        var log: OutputCapture
        /// A guarded instance's `_initialize` called `poll_oneoff`.
        var polled = false
    }

    private func makeInstance(_ invocation: WasmInvocation, guarded: Bool, deadlineTicks: UInt64)
        throws(InstanceFailure) -> WasmtimeReactorInstance
    {
        let api = linking.engine.api
        let limits = invocation.limits
        let log = OutputCapture(limit: limits.maxStderrBytes, failsOnOverflow: false)
        func failure(_ error: WasmError) -> InstanceFailure { InstanceFailure(error: error, log: log) }
        guard let instance = WasmtimeReactorInstance(api: api, engine: linking.engine.engine.raw, log: log) else {
            throw failure(.trap("wasmtime_store_new failed"))
        }
        let store = instance.store
        api.storeLimiter(
            store, Int64(clamping: limits.memoryBytes), WasmtimeCompiledModule.maximumTableElements, -1, -1, -1)
        guard let context = api.storeContext(store) else { throw failure(.trap("wasmtime_store_context failed")) }
        instance.context = context
        api.contextSetEpochDeadline(context, deadlineTicks)
        let sandbox = WasmInvocation(stdin: [], environment: invocation.environment, limits: limits)
        if let problem = linking.configureWASI(context, sandbox, stdout: log, stderr: log) {
            throw failure(.trap("cannot set up WASI: \(problem)"))
        }
        var trap: WasmtimeCAPI.Handle?
        let template = guarded ? linking.guardedTemplate ?? linking.template : linking.template
        if let error = api.instancePreInstantiate(template.raw, context, instance.instanceStorage, &trap) {
            let message = WasmtimeEngine.firstParagraph(api.consume(error: error).message)
            throw failure(classifyFailure(.failed(message), limits: limits, memoryBytes: nil))
        }
        if let trap {
            let (message, code) = api.consume(trap: trap)
            throw failure(classifyFailure(.trapped(message: message, code: code), limits: limits, memoryBytes: nil))
        }
        guard instance.export(ReactorABI.allocate, kind: WasmtimeCAPI.externKindFunction, into: instance.allocate),
            instance.export(ReactorABI.handle, kind: WasmtimeCAPI.externKindFunction, into: instance.handle),
            instance.export(ReactorABI.memory, kind: WasmtimeCAPI.externKindMemory, into: instance.memory)
        else {
            throw failure(.invalidModule("the instance lacks the reactor exports", module: name))
        }
        let initialize = UnsafeMutableRawPointer.allocate(
            byteCount: WasmtimeCAPI.externStorageBytes, alignment: 16)
        defer { initialize.deallocate() }
        if instance.export(ReactorABI.initialize, kind: WasmtimeCAPI.externKindFunction, into: initialize) {
            if case .failure(let outcome) = instance.call(initialize, [], results: 0) {
                var failed = failure(classifyFailure(outcome, limits: limits, memoryBytes: instance.memoryBytes))
                failed.polled = instance.mark.pointee == InlinePollGuard.blockedMark
                throw failed
            }
        }
        return instance
    }

    private func classifyFailure(_ outcome: WasmtimeCompiledModule.Outcome, limits: WasmLimits, memoryBytes: Int?)
        -> WasmError
    {
        if case .exited(let code) = outcome { return code == 0 ? ReactorABI.exitedWithoutOutput : .exitCode(code) }
        if case .failed(let error) = linking.classify(
            outcome, limits: limits, memoryBytes: memoryBytes, outputOverflowed: false)
        {
            return error
        }
        return .trap("the instance could not be set up")
    }

    private func finish(
        _ termination: WasmExecution.Termination,
        stdout: [UInt8] = [],
        log: OutputCapture,
        started: ContinuousClock.Instant,
        clock: ContinuousClock
    ) -> WasmExecution {
        .reactorCall(termination, stdout: stdout, log: log.captured, duration: clock.now - started, module: name)
    }
}

/// One warm instance: a store (owned, deleted with this object) holding the instance, and the
/// exports a call needs. Used by one call at a time.
final class WasmtimeReactorInstance {
    private let api: WasmtimeCAPI
    let store: WasmtimeCAPI.Handle
    /// Set right after the store is made; the store's context lives as long as the store.
    var context: WasmtimeCAPI.Handle
    /// The module's stdout and stderr, both kept as log text; emptied before every call.
    let log: OutputCapture
    /// One block for the `wasmtime_instance_t` and the three `wasmtime_extern_t` a call uses.
    private let storage: UnsafeMutableRawPointer
    var instanceStorage: UnsafeMutableRawPointer { storage }
    var allocate: UnsafeMutableRawPointer { storage + WasmtimeCAPI.instanceStorageBytes }
    var handle: UnsafeMutableRawPointer { allocate + WasmtimeCAPI.externStorageBytes }
    var memory: UnsafeMutableRawPointer { handle + WasmtimeCAPI.externStorageBytes }
    /// The store's data: whether `poll_oneoff` stopped a guarded instance (see ``InlinePollGuard``).
    var mark: UnsafeMutablePointer<UInt8> {
        (memory + WasmtimeCAPI.externStorageBytes).assumingMemoryBound(to: UInt8.self)
    }

    /// Makes the store too; nil when Wasmtime cannot.
    init?(api: WasmtimeCAPI, engine: WasmtimeCAPI.Handle, log: OutputCapture) {
        let bytes = WasmtimeCAPI.instanceStorageBytes + 4 * WasmtimeCAPI.externStorageBytes
        let storage = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 16)
        storage.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        let mark = storage + WasmtimeCAPI.instanceStorageBytes + 3 * WasmtimeCAPI.externStorageBytes
        guard let store = api.storeNew(engine, mark, nil) else {
            storage.deallocate()
            return nil
        }
        self.api = api
        self.store = store
        self.context = store  // replaced by the real context before any use
        self.log = log
        self.storage = storage
    }

    deinit {
        api.storeDelete(store)
        storage.deallocate()
    }

    /// Looks up export `name` of `kind` into `external`; false when it is missing or another kind.
    func export(_ name: String, kind: UInt8, into external: UnsafeMutableRawPointer) -> Bool {
        let found = name.withCString { api.instanceExportGet(context, storage, $0, name.utf8.count, external) }
        return found && external.load(as: UInt8.self) == kind
    }

    var memoryBytes: Int {
        api.memoryDataSize(context, UnsafeRawPointer(memory + WasmtimeCAPI.externPayloadOffset))
    }

    var memoryBase: UnsafeMutableRawPointer? {
        api.memoryData(context, UnsafeRawPointer(memory + WasmtimeCAPI.externPayloadOffset)).map {
            UnsafeMutableRawPointer($0)
        }
    }

    /// Calls `function` with i32 `arguments`; its one result (i32 or i64) as an Int64.
    func call(_ function: UnsafeMutableRawPointer, _ arguments: [Int64], results: Int = 1) -> Result<
        Int64, WasmtimeCompiledModule.Outcome
    > {
        let valueBytes = WasmtimeCAPI.valueStorageBytes
        return withUnsafeTemporaryAllocation(byteCount: valueBytes * (arguments.count + 1), alignment: 16) { buffer in
            guard let values = buffer.baseAddress else { return .failure(.failed("no memory for the arguments")) }
            values.initializeMemory(as: UInt8.self, repeating: 0, count: buffer.count)
            for (index, argument) in arguments.enumerated() {
                let value = values + index * valueBytes
                value.storeBytes(of: WasmtimeCAPI.valueKindI32, as: UInt8.self)
                value.storeBytes(
                    of: Int32(truncatingIfNeeded: argument), toByteOffset: WasmtimeCAPI.valuePayloadOffset,
                    as: Int32.self)
            }
            let result = values + arguments.count * valueBytes
            var trap: WasmtimeCAPI.Handle?
            let error = api.funcCall(
                context, UnsafeRawPointer(function + WasmtimeCAPI.externPayloadOffset),
                arguments.isEmpty ? nil : UnsafeRawPointer(values), arguments.count, result, results, &trap)
            if let error {
                let (message, status) = api.consume(error: error)
                if let status { return .failure(.exited(status)) }
                return .failure(.failed(WasmtimeEngine.firstParagraph(message)))
            }
            if let trap {
                let (message, code) = api.consume(trap: trap)
                return .failure(.trapped(message: message, code: code))
            }
            guard results > 0 else { return .success(0) }
            switch result.load(as: UInt8.self) {
            case WasmtimeCAPI.valueKindI32:
                return .success(
                    Int64(
                        UInt32(bitPattern: result.load(fromByteOffset: WasmtimeCAPI.valuePayloadOffset, as: Int32.self))
                    ))
            case WasmtimeCAPI.valueKindI64:
                return .success(result.load(fromByteOffset: WasmtimeCAPI.valuePayloadOffset, as: Int64.self))
            default:
                return .failure(.failed("the function returned a value of an unexpected type"))
            }
        }
    }
}
