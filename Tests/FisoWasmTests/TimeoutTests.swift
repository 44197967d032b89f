import FisoJSON
import FisoWasm
import FisoWasmTestSupport
import Foundation
import Testing

/// Timeouts: the caller gets `timeout` at the deadline, and the module's thread comes back once
/// the engine has stopped the module (by fuel, or at its next host call).
@Suite struct TimeoutTests {
    /// A pool of one thread, so that what happens to it is observable: the caller is answered at
    /// the timeout, the pool gets a replacement thread at once (another module's call runs while
    /// the runaway one may still be burning its fuel), and once the engine has stopped the
    /// runaway module its thread leaves and the pool is back to one thread.
    @Test(arguments: [
        ("faults/infinite-loop.wasm", "a bare loop"),
        ("faults/busy-compute.wasm", "a loop with calls and memory traffic"),
    ])
    func runawayModuleTimesOutAndFreesItsThread(module: String, shape: String) async throws {
        let executor = WasmExecutor(threadCount: 1, name: "timeout")
        defer { executor.shutdown() }
        let transformer = try await WasmTransformer.load(
            path: ExampleModules.path(module),
            configuration: WasmModuleConfiguration(timeout: .milliseconds(200), maxConcurrency: 1),
            executor: executor
        )
        let enrich = try await WasmTransformer.load(
            path: ExampleModules.path("enrich-c/enrich.wasm"),
            configuration: .testing(),
            executor: executor
        )
        let clock = ContinuousClock()
        let started = clock.now
        let error = await expectWasmError { _ = try await transformer.transform(GuideExample.transformInput) }
        let answeredAfter = clock.now - started
        #expect(error?.reason == .timeout)
        #expect(error?.message == "wasm: timeout after 200ms")
        #expect(error?.module == WasmModuleFileName.of(module))
        // Not a timing assertion: a broken timeout would hang far longer than this.
        #expect(answeredAfter < .seconds(10))

        // The runaway module holds its thread until its fuel is gone, but not the pool: a
        // replacement thread serves other modules meanwhile.
        #expect(
            try await waitUntil(limit: .seconds(60)) { executor.liveThreads == 2 || executor.busyThreads == 0 } != nil)
        let output = try await enrich.transform(GuideExample.transformInput)
        #expect(output.headers == ["X-WASM-Processed": "true"])
        let otherCallDoneAfter = clock.now - started

        // Fuel measures work, not time: on a machine this busy (the whole test suite in parallel on
        // two cores, perhaps under ThreadSanitizer) the module gets a small share of a processor
        // and takes correspondingly longer to burn its budget. Hence the generous limit.
        let freed = try await waitUntil(limit: .seconds(600)) { executor.busyThreads == 0 }
        #expect(freed != nil, "the module's thread was not released")
        let freedAfter = clock.now - started
        #expect(try await waitUntil(limit: .seconds(60)) { executor.liveThreads == 1 } != nil)
        print(
            "timeout (\(shape), timeout 200ms): caller answered after \(String(format: "%.0f", answeredAfter.milliseconds)) ms, "
                + "another module's call done after \(String(format: "%.0f", otherCallDoneAfter.milliseconds)) ms, "
                + "runaway thread released after \(String(format: "%.0f", freedAfter.milliseconds)) ms"
        )
    }

    /// A module that keeps calling the host (here: reading the clock) is stopped at its first host
    /// call after the deadline.
    @Test func hostCallingModuleStopsAtTheDeadline() async throws {
        let executor = WasmExecutor(threadCount: 1, name: "timeout-host")
        defer { executor.shutdown() }
        let transformer = try await WasmTransformer.load(
            path: ExampleModules.path("probes/spin.wasm"),
            configuration: WasmModuleConfiguration(timeout: .milliseconds(200), maxConcurrency: 1),
            executor: executor
        )
        let clock = ContinuousClock()
        let started = clock.now
        let error = await expectWasmError {
            _ = try await transformer.transform(WasmTransformInput(payload: ["spin_ms": 60_000]))
        }
        #expect(error?.reason == .timeout)
        let freed = try await waitUntil(limit: .seconds(600)) { executor.busyThreads == 0 }
        #expect(freed != nil)
        print(
            "timeout (host-calling spin, timeout 200ms): thread free after \(String(format: "%.0f", (clock.now - started).milliseconds)) ms"
        )
    }

    /// The engine alone (no executor) stops a runaway module too, and reports `timeout`.
    @Test func engineStopsARunawayModuleByItself() async throws {
        let execution = try await Blocking.run {
            let compiled = try WasmKitEngine.shared.compile(
                try ExampleModules.bytes("faults/infinite-loop.wasm"), name: "loop.wasm")
            return compiled.run(WasmInvocation(stdin: [], limits: WasmLimits(timeout: .milliseconds(100))))
        }
        guard case .failed(let error) = execution.termination else {
            Issue.record("expected a failure, got \(execution.termination)")
            return
        }
        #expect(error.reason == .timeout)
        print(
            "engine-only stop of a bare loop with timeout 100ms: \(String(format: "%.0f", execution.duration.milliseconds)) ms"
        )
    }

    /// A call whose module finishes in time is not affected by the timer.
    @Test func callsWithinTheirTimeoutSucceed() async throws {
        let executor = WasmExecutor(threadCount: 1, name: "in-time")
        defer { executor.shutdown() }
        let transformer = try await WasmTransformer.load(
            path: ExampleModules.path("probes/spin.wasm"),
            configuration: WasmModuleConfiguration(timeout: .seconds(60), maxConcurrency: 1),
            executor: executor
        )
        let output = try await transformer.transform(WasmTransformInput(payload: ["spin_ms": 50]))
        #expect(output.payload["module"] == "spin")
    }
}

enum WasmModuleFileName {
    static func of(_ path: String) -> String { String(path.split(separator: "/").last ?? "") }
}
