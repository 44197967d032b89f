import NIOConcurrencyHelpers
@_spi(WASIPlatform) import WASI
@_spi(Fuzzing) import WasmKit
import WasmKitWASI

/// A reactor module on WasmKit: calls borrow a warm instance from the pool (see
/// ``ReactorInstancePool``); each instance has its own store, WASI context and translated code,
/// so WasmKit translates a function once per instance rather than once per call.
final class WasmKitReactorModule: CompiledWasmModule {
    /// The command-mode module, for its parsed module, WASI linking and failure classification.
    let linking: WasmKitCompiledModule
    private let pool: ReactorInstancePool<WasmKitReactorInstance>

    var name: String { linking.name }
    var engineName: String { linking.engine.name }
    var mode: WasmExecutionMode { .reactor }
    var poolStatistics: WasmInstancePoolStatistics? { pool.statistics }

    init(linking: WasmKitCompiledModule, settings: WasmReactorPoolSettings) {
        self.linking = linking
        self.pool = ReactorInstancePool(settings: settings)
    }

    func run(_ invocation: WasmInvocation) -> WasmExecution {
        let clock = ContinuousClock()
        let started = clock.now
        let limits = invocation.limits
        let deadline = started + limits.timeout
        let key = ReactorInstanceKey(environment: invocation.environment, memoryBytes: limits.memoryBytes)
        let fuel = linking.engine.fuelBudget(for: limits.timeout)

        let lease: ReactorInstancePool<WasmKitReactorInstance>.Lease
        do {
            lease = try pool.acquire(key) { () throws(InstanceFailure) in
                try makeInstance(invocation, deadline: deadline, fuel: fuel)
            }
        } catch {
            return finish(.failed(error.error), log: error.log, started: started, clock: clock)
        }
        let instance = lease.instance
        instance.prepare(deadline: deadline, fuel: fuel, maxLogBytes: limits.maxStderrBytes)
        let (termination, output) = call(instance, invocation)
        let execution = finish(termination, stdout: output, log: instance.log, started: started, clock: clock)
        pool.release(
            lease, after: termination, output: output, memoryGrowthDenied: instance.limiter.deniedRequest != nil,
            memoryBytes: instance.memory.byteCount, memoryLimitBytes: limits.memoryBytes)
        return execution
    }

    /// Calls `fiso_alloc`, copies the input, calls `fiso_handle` and copies the output out.
    private func call(_ instance: WasmKitReactorInstance, _ invocation: WasmInvocation) -> (
        WasmExecution.Termination, [UInt8]
    ) {
        let limits = invocation.limits
        let input = invocation.stdin
        do {
            let allocated = try instance.allocate([.i32(UInt32(clamping: input.count))])
            guard case .i32(let rawOffset)? = allocated.first else {
                return (.failed(.trap("fiso_alloc returned no i32")), [])
            }
            let offset = Int(rawOffset)
            let memoryBytes = instance.memory.byteCount
            guard offset + input.count <= memoryBytes, rawOffset != 0 || input.isEmpty else {
                return (
                    .failed(
                        ReactorABI.badBuffer(
                            offset: Int64(Int32(bitPattern: rawOffset)), length: input.count, memoryBytes: memoryBytes)),
                    []
                )
            }
            if !input.isEmpty {
                instance.memory.withUnsafeMutableBufferPointer(offset: UInt(offset), count: input.count) { buffer in
                    input.withUnsafeBytes { buffer.copyMemory(from: $0) }
                }
            }
            let results = try instance.handle([.i32(rawOffset), .i32(UInt32(clamping: input.count))])
            guard case .i64(let raw)? = results.first else {
                return (.failed(.trap("fiso_handle returned no i64")), [])
            }
            let result = ReactorABI.decode(Int64(bitPattern: raw))
            if case .refused(let status) = result { return (.exited(code: status), []) }
            switch ReactorABI.outputRange(result, memoryBytes: instance.memory.byteCount, limits: limits) {
            case .failure(let error):
                return (.failed(error), [])
            case .success(let range):
                let output = instance.memory.withUnsafeBufferPointer(offset: UInt(range.lowerBound), count: range.count)
                {
                    [UInt8]($0)
                }
                return (.exited(code: 0), output)
            }
        } catch let exit as WASIExitCode {
            let code = Int32(bitPattern: exit.code)
            if code == 0 { return (.failed(ReactorABI.exitedWithoutOutput), []) }
            if let denied = instance.limiter.deniedRequest {
                return (
                    .failed(linking.outOfMemory(limiter: instance.limiter, denied: denied, after: "exit code \(code)")),
                    []
                )
            }
            return (.exited(code: code), [])
        } catch {
            return (
                .failed(linking.classify(error, limits: limits, limiter: instance.limiter, outputOverflowed: false)), []
            )
        }
    }

    /// A failure while making an instance, with what it logged.
    struct InstanceFailure: Error {
        var error: WasmError
        var log: CapturedOutput
    }

    /// A new instance: WASI context, store, instantiation and `_initialize`, under the call's
    /// deadline and fuel.
    private func makeInstance(_ invocation: WasmInvocation, deadline: ContinuousClock.Instant, fuel: UInt64)
        throws(InstanceFailure) -> WasmKitReactorInstance
    {
        let limits = invocation.limits
        let log = CapturedOutput(limit: limits.maxStderrBytes, overflow: .truncate)
        let limiter = MemoryLimiter(limitBytes: limits.memoryBytes)
        let engine = linking.engine
        let runtimeEngine = engine.borrowRuntimeEngine()
        var bridge: WASIBridgeToHost?
        do {
            let madeBridge = try WASIBridgeToHost(
                args: [name],
                environment: invocation.environment,
                fileSystem: .memory(try MemoryFileSystem())
                    .withStdio(stdin: InMemoryStdin([]), stdout: log, stderr: log)
            )
            bridge = madeBridge
            let store = Store(engine: runtimeEngine)
            store.resourceLimiter = limiter
            store.fuel = Fuel(remaining: fuel)
            let deadlineBox = NIOLockedValueBox(deadline)
            let instance = try linking.module.instantiate(
                store: store,
                imports: linking.linkWASI(madeBridge, into: store, deadline: { deadlineBox.withLockedValue { $0 } }))
            guard let allocate = instance.exports[function: ReactorABI.allocate],
                let handle = instance.exports[function: ReactorABI.handle],
                let memory = instance.exports[memory: ReactorABI.memory]
            else {
                throw WASIError(description: "the instance lacks the reactor exports")
            }
            let reactor = WasmKitReactorInstance(
                engine: engine, runtimeEngine: runtimeEngine, bridge: madeBridge, store: store, instance: instance,
                allocate: allocate, handle: handle, memory: memory, log: log, limiter: limiter, deadline: deadlineBox)
            bridge = nil  // owned by the instance now
            if let initialize = instance.exports[function: ReactorABI.initialize] {
                try initialize()
            }
            return reactor
        } catch {
            if let bridge {
                try? bridge.close()
                engine.returnRuntimeEngine(runtimeEngine)
            }
            let failure: WasmError
            if let exit = error as? WASIExitCode {
                failure = .exitCode(Int32(bitPattern: exit.code))
            } else {
                failure = linking.classify(error, limits: limits, limiter: limiter, outputOverflowed: false)
            }
            throw InstanceFailure(error: failure, log: log)
        }
    }

    private func finish(
        _ termination: WasmExecution.Termination,
        stdout: [UInt8] = [],
        log: CapturedOutput,
        started: ContinuousClock.Instant,
        clock: ContinuousClock
    ) -> WasmExecution {
        .reactorCall(termination, stdout: stdout, log: log.captured, duration: clock.now - started, module: name)
    }
}

/// One warm instance of a reactor module with everything it owns. Used by one call at a time.
final class WasmKitReactorInstance {
    private let engine: WasmKitEngine
    private let runtimeEngine: Engine
    private let bridge: WASIBridgeToHost
    let store: Store
    let instance: Instance
    let allocate: Function
    let handle: Function
    let memory: Memory
    /// The module's stdout and stderr, both kept as log text; emptied before every call.
    let log: CapturedOutput
    let limiter: MemoryLimiter
    /// The running call's deadline, checked by every WASI call.
    private let deadline: NIOLockedValueBox<ContinuousClock.Instant>

    init(
        engine: WasmKitEngine, runtimeEngine: Engine, bridge: WASIBridgeToHost, store: Store, instance: Instance,
        allocate: Function, handle: Function, memory: Memory, log: CapturedOutput, limiter: MemoryLimiter,
        deadline: NIOLockedValueBox<ContinuousClock.Instant>
    ) {
        self.engine = engine
        self.runtimeEngine = runtimeEngine
        self.bridge = bridge
        self.store = store
        self.instance = instance
        self.allocate = allocate
        self.handle = handle
        self.memory = memory
        self.log = log
        self.limiter = limiter
        self.deadline = deadline
    }

    /// Sets the call's deadline, fuel and log limit.
    func prepare(deadline: ContinuousClock.Instant, fuel: UInt64, maxLogBytes: Int) {
        self.deadline.withLockedValue { $0 = deadline }
        store.fuel = Fuel(remaining: fuel)
        log.reset(limit: maxLogBytes)
    }

    deinit {
        try? bridge.close()
        engine.returnRuntimeEngine(runtimeEngine)
    }
}
