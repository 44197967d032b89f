@_spi(WASIPlatform) import WASI
@_spi(Fuzzing) import WasmKit
import FisoQuantities
import WasmKitWASI

/// Thrown from a host call made after the call's deadline, to stop a module that is still calling
/// the host (a clock loop, Go's scheduler) without waiting for its fuel to run out.
struct DeadlineExceeded: Error {}

/// A module parsed once by WasmKit; every run gets a fresh store, WASI context and instance.
final class WasmKitCompiledModule: CompiledWasmModule {
    let name: String
    let engine: WasmKitEngine
    let module: Module
    /// The WASI functions the module imports; only these are linked into each store.
    let wasiImports: [String]
    /// The WASI capability groups that provide them (see ``WASIFunctions/linkPlan(forImports:)``).
    let capabilities: [WasmKitWASI.WASICapability]
    let includesStubs: Bool

    var engineName: String { engine.name }
    var mode: WasmExecutionMode { .command }

    init(name: String, engine: WasmKitEngine, module: Module, wasiImports: [String]) {
        self.name = name
        self.engine = engine
        self.module = module
        self.wasiImports = wasiImports
        let plan = WASIFunctions.linkPlan(forImports: wasiImports)
        let all = WasmKitWASI.WASICapability.all
        self.capabilities = plan.capabilityIndices.map { all[$0] }
        self.includesStubs = plan.includesStubs
    }

    func run(_ invocation: WasmInvocation) -> WasmExecution {
        let clock = ContinuousClock()
        let started = clock.now
        let deadline = started + invocation.limits.timeout
        let stdout = CapturedOutput(limit: invocation.limits.maxOutputBytes, overflow: .fail)
        let stderr = CapturedOutput(limit: invocation.limits.maxStderrBytes, overflow: .truncate)
        let limiter = MemoryLimiter(limitBytes: invocation.limits.memoryBytes)

        var termination: WasmExecution.Termination
        do {
            let bridge = try WASIBridgeToHost(
                args: [name],
                environment: invocation.environment,
                fileSystem: .memory(try MemoryFileSystem())
                    .withStdio(stdin: InMemoryStdin(invocation.stdin), stdout: stdout, stderr: stderr)
            )
            let fuel = engine.fuelBudget(for: invocation.limits.timeout)
            let exitCode = try bridge.runAndClose { bridge in
                try engine.withRuntimeEngine { runtimeEngine in
                    let store = Store(engine: runtimeEngine)
                    store.resourceLimiter = limiter
                    store.fuel = Fuel(remaining: fuel)
                    let instance = try module.instantiate(
                        store: store,
                        imports: linkWASI(bridge, into: store, deadline: { deadline })
                    )
                    return try bridge.start(instance)
                }
            }
            let code = Int32(bitPattern: exitCode)
            if code != 0, let denied = limiter.deniedRequest {
                termination = .failed(outOfMemory(limiter: limiter, denied: denied, after: "exit code \(code)"))
            } else {
                termination = .exited(code: code)
            }
        } catch {
            termination = .failed(
                classify(
                    error, limits: invocation.limits, limiter: limiter, outputOverflowed: stdout.captured.overflowed))
        }

        let (stdoutBytes, _, _) = stdout.captured
        let (stderrBytes, stderrDropped, _) = stderr.captured
        var execution = WasmExecution(
            termination: termination,
            stdout: stdoutBytes,
            stderr: stderrBytes,
            stderrBytesDropped: stderrDropped,
            duration: clock.now - started
        )
        if case .failed(var error) = execution.termination {
            error.module = name
            error.stderr = execution.stderrText
            execution.termination = .failed(error)
        }
        return execution
    }

    /// Defines the module's WASI imports in `store`, each checking `deadline()` first (a reactor's
    /// instance reads a deadline set per call).
    func linkWASI(
        _ bridge: WASIBridgeToHost,
        into store: Store,
        deadline: @escaping @Sendable () -> ContinuousClock.Instant
    ) -> Imports {
        let clock = ContinuousClock()
        let functions: [String: WASIHostFunction<Memory>] = bridge.hostFunctions(
            capabilities: capabilities,
            stubUnlinked: includesStubs
        )
        var imports = Imports()
        for name in wasiImports {
            guard let function = functions[name] else { continue }
            let implementation = function.implementation
            imports.define(
                module: WASIFunctions.moduleName,
                name: name,
                Function(store: store, type: function.type) { caller, arguments in
                    if clock.now >= deadline() { throw DeadlineExceeded() }
                    guard case .memory(let memory) = caller.instance?.export("memory") else {
                        throw WASIError(description: "the module exports no memory named \"memory\"")
                    }
                    return try implementation(memory, arguments)
                }
            )
        }
        return imports
    }

    func classify(
        _ error: any Error,
        limits: WasmLimits,
        limiter: MemoryLimiter,
        outputOverflowed: Bool
    ) -> WasmError {
        if error is OutputLimitExceeded || outputOverflowed {
            return .outputTooLarge(limitBytes: limits.maxOutputBytes)
        }
        if error is DeadlineExceeded {
            return .timeout(limits.timeout)
        }
        let description = String(describing: error)
        if let trap = error as? Trap {
            let (reason, function) = Self.trapReason(trap)
            if reason == "out of fuel" {
                return .timeout(limits.timeout)
            }
            if let denied = limiter.deniedRequest {
                return outOfMemory(limiter: limiter, denied: denied, after: "trap: \(reason)")
            }
            return .trap(function.map { "\(reason) (in function \($0))" } ?? reason)
        }
        if let denied = limiter.deniedRequest {
            return outOfMemory(limiter: limiter, denied: denied, after: description)
        }
        if error is WasmKitError {
            // Raised while instantiating: an import or memory the module declares cannot be set up.
            return .invalidModule(description, module: name)
        }
        return .trap(description)
    }

    func outOfMemory(limiter: MemoryLimiter, denied: Int, after failure: String) -> WasmError {
        .outOfMemory(
            limitBytes: limiter.limitBytes,
            detail: "growing to \(ByteSize.formatQuantity(denied)) was denied, then \(failure)"
        )
    }

    /// The reason of a trap and the innermost named function, from its description
    /// (`Trap: <reason>` followed by backtrace lines `    0: (0x…) <name>`).
    static func trapReason(_ trap: Trap) -> (reason: String, function: String?) {
        let lines = trap.description.split(separator: "\n", omittingEmptySubsequences: true)
        var reason = lines.first.map(String.init) ?? "trap"
        if reason.hasPrefix("Trap: ") { reason.removeFirst("Trap: ".count) }
        var function: String?
        if lines.count > 1, let close = lines[1].firstIndex(of: ")") {
            let name = lines[1][lines[1].index(after: close)...].trimmingPrefix(" ")
            if !name.isEmpty, name != "unknown" { function = String(name) }
        }
        return (reason, function)
    }
}
