import FisoQuantities
import Foundation
import Glibc
import NIOConcurrencyHelpers
import Synchronization

/// A module compiled by Wasmtime and pre-linked with WASI; every run instantiates it in a fresh
/// store.
///
/// Calls may run inline (see ``WasmInlineCalls``) on an instance of the guarded template (see
/// ``InlinePollGuard``); a call stopped there in `poll_oneoff` runs again on an ordinary instance.
final class WasmtimeCompiledModule: CompiledWasmModule {
    let name: String
    let engine: WasmtimeEngine
    let template: InstanceTemplateHandle
    /// The same module linked with a `poll_oneoff` that never waits; nil when inline calls are off.
    let guardedTemplate: InstanceTemplateHandle?
    /// The module's initial memory, to recognise an instantiation refused by the memory limit.
    let initialMemoryBytes: Int
    private let inline: WasmInlineState

    var engineName: String { engine.name }
    var mode: WasmExecutionMode { .command }

    /// Tables hold function references; this bounds them as the WasmKit engine does.
    static let maximumTableElements: Int64 = 10_000_000
    /// The table size of a pooling-allocator slot (a module's table may not be larger).
    static let pooledTableElements: Int64 = 1_000_000

    init(
        name: String, engine: WasmtimeEngine, template: InstanceTemplateHandle,
        guardedTemplate: InstanceTemplateHandle?, initialMemoryBytes: Int
    ) {
        self.name = name
        self.engine = engine
        self.template = template
        self.guardedTemplate = guardedTemplate
        self.initialMemoryBytes = initialMemoryBytes
        self.inline = WasmInlineState(hasGuardedTemplate: guardedTemplate != nil)
    }

    func run(_ invocation: WasmInvocation) -> WasmExecution {
        let clock = ContinuousClock()
        let started = clock.now
        let guarded = !inline.takeUnguardedRun() && inline.usesGuardedInstances
        if guarded { inline.countGuardedCall() }
        let attempt = execute(
            invocation, guarded: guarded, deadlineTicks: Self.deadlineTicks(for: invocation.limits.timeout))
        guard attempt.polled else { return attempt.execution }
        // Stopped in poll_oneoff: again on an ordinary instance, with the time left.
        inline.recordPoll(inline: false)
        var again = invocation
        again.limits.timeout = invocation.limits.timeout - (clock.now - started)
        guard again.limits.timeout > .zero else {
            var execution = attempt.execution
            execution.termination = .failed(.timeout(invocation.limits.timeout))
            return execution
        }
        var execution = execute(again, guarded: false, deadlineTicks: Self.deadlineTicks(for: again.limits.timeout))
            .execution
        execution.duration = clock.now - started
        return execution
    }

    func runInline(_ invocation: WasmInvocation) -> WasmExecution? {
        guard inline.mayTryInline(timeout: invocation.limits.timeout) else { return nil }
        inline.countGuardedCall()
        let attempt = execute(
            invocation, guarded: true, deadlineTicks: Self.deadlineTicks(for: WasmInlineCalls.budget))
        if attempt.polled {
            inline.recordPoll(inline: true)  // the executor runs it again, on an ordinary instance
            return nil
        }
        if case .failed(let error) = attempt.execution.termination, error.reason == .timeout {
            inline.recordBudgetOverrun()
            return nil
        }
        return attempt.execution
    }

    /// One call on a fresh instance of the guarded or the ordinary template; `polled` when a
    /// guarded instance was stopped in `poll_oneoff`.
    private func execute(_ invocation: WasmInvocation, guarded: Bool, deadlineTicks: UInt64) -> (
        execution: WasmExecution, polled: Bool
    ) {
        let clock = ContinuousClock()
        let started = clock.now
        let stdout = OutputCapture(limit: invocation.limits.maxOutputBytes, failsOnOverflow: true)
        let stderr = OutputCapture(limit: invocation.limits.maxStderrBytes, failsOnOverflow: false)
        var mark = InlinePollGuard.clearMark
        var termination = withUnsafeMutablePointer(to: &mark) { mark in
            runInFreshStore(
                invocation, template: guarded ? guardedTemplate ?? template : template, deadlineTicks: deadlineTicks,
                mark: mark, stdout: stdout, stderr: stderr)
        }
        let (stdoutBytes, _, _) = stdout.captured
        let (stderrBytes, stderrDropped, _) = stderr.captured
        if case .failed(var error) = termination {
            error.module = name
            termination = .failed(error)
        }
        var execution = WasmExecution(
            termination: termination,
            stdout: stdoutBytes,
            stderr: stderrBytes,
            stderrBytesDropped: stderrDropped,
            duration: clock.now - started
        )
        if case .failed(var error) = execution.termination {
            error.stderr = execution.stderrText
            execution.termination = .failed(error)
        }
        return (execution, mark == InlinePollGuard.blockedMark)
    }

    /// How a call ended, before classification.
    enum Outcome: Error {
        case returned
        case exited(Int32)
        case trapped(message: String, code: UInt8?)
        case failed(String)
    }

    /// `mark` is the store's data (see ``InlinePollGuard``); it must outlive the store, which this
    /// deletes before returning.
    private func runInFreshStore(
        _ invocation: WasmInvocation,
        template: InstanceTemplateHandle,
        deadlineTicks: UInt64,
        mark: UnsafeMutablePointer<UInt8>,
        stdout: OutputCapture,
        stderr: OutputCapture
    ) -> WasmExecution.Termination {
        let api = engine.api
        let limits = invocation.limits
        guard let store = api.storeNew(engine.engine.raw, mark, nil) else {
            return .failed(.trap("wasmtime_store_new failed"))
        }
        defer { api.storeDelete(store) }
        api.storeLimiter(store, Int64(clamping: limits.memoryBytes), Self.maximumTableElements, -1, -1, -1)
        guard let context = api.storeContext(store) else { return .failed(.trap("wasmtime_store_context failed")) }
        api.contextSetEpochDeadline(context, deadlineTicks)
        if let problem = configureWASI(context, invocation, stdout: stdout, stderr: stderr) {
            return .failed(.trap("cannot set up WASI: \(problem)"))
        }

        return withUnsafeTemporaryAllocation(byteCount: WasmtimeCAPI.instanceStorageBytes, alignment: 16) {
            instance in
            withUnsafeTemporaryAllocation(byteCount: WasmtimeCAPI.externStorageBytes, alignment: 16) { external in
                instance.initializeMemory(as: UInt8.self, repeating: 0)
                external.initializeMemory(as: UInt8.self, repeating: 0)
                let instancePointer = instance.baseAddress!
                let externPointer = external.baseAddress!
                let (outcome, instantiated) = instantiateAndStart(
                    template: template, context: context, instance: instancePointer, external: externPointer)
                // Only an instance of this store may be asked for its exports (Wasmtime panics
                // otherwise), so not after a failed instantiation.
                let memoryBytes =
                    instantiated
                    ? memorySize(context: context, instance: instancePointer, external: externPointer) : nil
                return classify(
                    outcome, limits: limits, memoryBytes: memoryBytes, outputOverflowed: stdout.captured.overflowed)
            }
        }
    }

    private func instantiateAndStart(
        template: InstanceTemplateHandle,
        context: WasmtimeCAPI.Handle,
        instance: UnsafeMutableRawPointer,
        external: UnsafeMutableRawPointer
    ) -> (outcome: Outcome, instantiated: Bool) {
        let api = engine.api
        var trap: WasmtimeCAPI.Handle?
        if let error = api.instancePreInstantiate(template.raw, context, instance, &trap) {
            return (.failed(WasmtimeEngine.firstParagraph(api.consume(error: error).message)), false)
        }
        if let trap {
            let (message, code) = api.consume(trap: trap)
            return (.trapped(message: message, code: code), false)
        }
        return (start(context: context, instance: instance, external: external), true)
    }

    /// Calls the instance's `_start`.
    private func start(
        context: WasmtimeCAPI.Handle,
        instance: UnsafeMutableRawPointer,
        external: UnsafeMutableRawPointer
    ) -> Outcome {
        let api = engine.api
        var trap: WasmtimeCAPI.Handle?
        guard api.instanceExportGet(context, instance, "_start", 6, external),
            external.load(as: UInt8.self) == WasmtimeCAPI.externKindFunction
        else {
            return .failed("the instance has no _start function")
        }
        let function = UnsafeRawPointer(external + WasmtimeCAPI.externPayloadOffset)
        let error = api.funcCall(context, function, nil, 0, nil, 0, &trap)
        if let error {
            let (message, status) = api.consume(error: error)
            if let status { return .exited(status) }
            return .failed(WasmtimeEngine.firstParagraph(message))
        }
        if let trap {
            let (message, code) = api.consume(trap: trap)
            return .trapped(message: message, code: code)
        }
        return .returned
    }

    /// The size of the exported `memory` after the call, or nil when there is none.
    func memorySize(
        context: WasmtimeCAPI.Handle,
        instance: UnsafeMutableRawPointer,
        external: UnsafeMutableRawPointer
    ) -> Int? {
        let api = engine.api
        guard api.instanceExportGet(context, instance, "memory", 6, external),
            external.load(as: UInt8.self) == WasmtimeCAPI.externKindMemory
        else { return nil }
        return api.memoryDataSize(context, UnsafeRawPointer(external + WasmtimeCAPI.externPayloadOffset))
    }

    /// Gives the store its WASI context; returns a problem, or nil.
    func configureWASI(
        _ context: WasmtimeCAPI.Handle,
        _ invocation: WasmInvocation,
        stdout: OutputCapture,
        stderr: OutputCapture
    ) -> String? {
        let api = engine.api
        guard let config = api.wasiConfigNew() else { return "wasi_config_new failed" }
        var owned = true
        defer { if owned { api.wasiConfigDelete(config) } }

        let argumentsSet = withCStrings([name]) { argv in api.wasiConfigSetArgv(config, 1, argv) }
        guard argumentsSet else { return "cannot set argv" }
        let variables = invocation.environment.sorted { $0.key < $1.key }
        let environmentSet = withCStrings(variables.map(\.key)) { names in
            withCStrings(variables.map(\.value)) { values in
                api.wasiConfigSetEnv(config, variables.count, names, values)
            }
        }
        guard environmentSet else { return "cannot set the environment" }

        var input = WasmtimeCAPI.ByteVector()
        invocation.stdin.withUnsafeBufferPointer { bytes in api.byteVectorNew(&input, bytes.count, bytes.baseAddress) }
        api.wasiConfigSetStdinBytes(config, &input)  // takes the vector's contents

        let write: WasmtimeCAPI.OutputCallback = { context, bytes, count in
            guard let context else { return -Int(EIO) }
            return Unmanaged<OutputCapture>.fromOpaque(context).takeUnretainedValue().write(bytes, count: count)
        }
        let release: WasmtimeCAPI.Finalizer = { context in
            if let context { Unmanaged<OutputCapture>.fromOpaque(context).release() }
        }
        api.wasiConfigSetStdoutCustom(config, write, Unmanaged.passRetained(stdout).toOpaque(), release)
        api.wasiConfigSetStderrCustom(config, write, Unmanaged.passRetained(stderr).toOpaque(), release)

        owned = false  // wasmtime_context_set_wasi takes the configuration, even when it fails
        if let error = api.contextSetWASI(context, config) {
            return api.consume(error: error).message
        }
        return nil
    }

    func classify(
        _ outcome: Outcome,
        limits: WasmLimits,
        memoryBytes: Int?,
        outputOverflowed: Bool
    ) -> WasmExecution.Termination {
        // Wasmtime's limiter does not report a denied growth. A call that failed with its memory
        // within one growth step of the limit (an eighth of it, at least 1 MiB) is taken to have
        // been refused memory: that is what a module does when its allocator fails.
        let margin = max(limits.memoryBytes / 8, 1 << 20)
        let nearLimit = memoryBytes.map { $0 + margin > limits.memoryBytes } ?? false
        func outOfMemory(after failure: String) -> WasmError {
            .outOfMemory(
                limitBytes: limits.memoryBytes,
                detail: "memory was at \(ByteSize.formatQuantity(memoryBytes ?? 0)) when a growth was denied, "
                    + "then \(failure)"
            )
        }
        switch outcome {
        case .returned:
            return outputOverflowed ? .failed(.outputTooLarge(limitBytes: limits.maxOutputBytes)) : .exited(code: 0)
        case .exited(let code):
            if outputOverflowed { return .failed(.outputTooLarge(limitBytes: limits.maxOutputBytes)) }
            if code != 0, nearLimit { return .failed(outOfMemory(after: "exit code \(code)")) }
            return .exited(code: code)
        case .trapped(let message, let code):
            if outputOverflowed { return .failed(.outputTooLarge(limitBytes: limits.maxOutputBytes)) }
            if code == WasmtimeCAPI.trapCodeInterrupt { return .failed(.timeout(limits.timeout)) }
            let reason = Self.trapReason(message)
            if nearLimit { return .failed(outOfMemory(after: "trap: \(reason)")) }
            return .failed(.trap(reason))
        case .failed(let message):
            if outputOverflowed { return .failed(.outputTooLarge(limitBytes: limits.maxOutputBytes)) }
            if memoryBytes == nil, initialMemoryBytes > limits.memoryBytes {
                return .failed(
                    .outOfMemory(
                        limitBytes: limits.memoryBytes,
                        detail: "the module's initial memory of \(ByteSize.formatQuantity(initialMemoryBytes)) "
                            + "is above it: \(message)"
                    )
                )
            }
            if nearLimit { return .failed(outOfMemory(after: message)) }
            return .failed(.trap(message))
        }
    }

    /// The deadline in epoch ticks: the timeout rounded up, plus one tick for the partial tick
    /// already under way.
    static func deadlineTicks(for timeout: Duration) -> UInt64 {
        let tick = WasmtimeEngine.epochTick
        let ratio = timeout / tick
        guard ratio.isFinite, ratio > 0 else { return 1 }
        return ratio >= Double(UInt64.max / 2) ? UInt64.max / 2 : UInt64(ratio.rounded(.up)) + 1
    }

    /// The reason of a Wasmtime trap (`wasm trap: integer divide by zero`), with the innermost
    /// named function of its backtrace (`0: 0x4a - trap.wasm!divide`) when there is one.
    static func trapReason(_ message: String) -> String {
        let lines = message.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        var reason = lines.last { $0.hasPrefix("wasm trap: ") } ?? lines.first { !$0.isEmpty } ?? "trap"
        if reason.hasPrefix("wasm trap: ") { reason.removeFirst("wasm trap: ".count) }
        if let frame = lines.first(where: { $0.hasPrefix("0:") }), let bang = frame.lastIndex(of: "!") {
            let function = frame[frame.index(after: bang)...].trimmingCharacters(in: .whitespaces)
            if !function.isEmpty, !function.hasPrefix("<") { return "\(reason) (in function \(function))" }
        }
        return reason
    }
}

/// Calls `body` with a NULL-free array of C strings for `strings`, valid during the call.
private func withCStrings<Result>(
    _ strings: [String],
    _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> Result
) -> Result {
    let copies = strings.map { strdup($0) }
    defer { for copy in copies { free(copy) } }
    let pointers = copies.map { UnsafePointer($0) }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress) }
}

/// A module's stdout or stderr, captured in memory up to a limit; written to by Wasmtime's WASI
/// through a C callback on the thread running the call.
final class OutputCapture: Sendable {
    private struct State {
        var limit = 0
        /// Stdout: a write past the limit fails (EIO) and the call is `output_too_large`. Stderr:
        /// the excess is dropped and counted, and the module goes on.
        var failsOnOverflow = false
        var bytes: [UInt8] = []
        var droppedBytes = 0
        var overflowed = false
    }

    private let state = NIOLockedValueBox(State())
    /// Wasmtime calls `write` from its own threads, having received the object through Rust
    /// synchronization that ThreadSanitizer cannot see (the library is not instrumented). This
    /// release/acquire pair makes the hand-over of the initialised object explicit.
    private let published = Atomic<Bool>(false)

    init(limit: Int, failsOnOverflow: Bool) {
        state.withLockedValue { state in
            state.limit = limit
            state.failsOnOverflow = failsOnOverflow
        }
        published.store(true, ordering: .releasing)
    }

    var captured: (bytes: [UInt8], droppedBytes: Int, overflowed: Bool) {
        state.withLockedValue { ($0.bytes, $0.droppedBytes, $0.overflowed) }
    }

    /// Empties the capture for the next call of a reused instance, with that call's limit.
    func reset(limit: Int) {
        state.withLockedValue { state in
            state.limit = limit
            state.bytes = []
            state.droppedBytes = 0
            state.overflowed = false
        }
    }

    /// Appends what fits; returns the count accepted, or `-EIO` when stdout overflowed.
    func write(_ bytes: UnsafePointer<UInt8>?, count: Int) -> Int {
        guard let bytes, count > 0, published.load(ordering: .acquiring) else { return 0 }
        return state.withLockedValue { state in
            let room = max(0, state.limit - state.bytes.count)
            if count > room {
                state.overflowed = true
                if state.failsOnOverflow { return -Int(EIO) }
                state.droppedBytes += count - room
            }
            state.bytes.append(contentsOf: UnsafeBufferPointer(start: bytes, count: min(room, count)))
            return count
        }
    }
}
