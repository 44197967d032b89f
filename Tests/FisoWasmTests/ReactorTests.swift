import FisoJSON
import FisoWasm
import FisoWasmTestSupport
import Foundation
import Testing

/// Reactor mode (exported `fiso_alloc`/`fiso_handle`, pooled warm instances), run on every
/// available engine as part of the engine-equivalence suite.
extension EngineEquivalenceTests {
    func reactor(
        _ module: String,
        on choice: WasmEngineChoice,
        _ configuration: WasmModuleConfiguration = .testing(maxConcurrency: 1)
    ) async throws -> WasmTransformer {
        var configuration = configuration
        configuration.mode = .reactor
        return try await load(module, on: choice, configuration)
    }

    /// The reactor counter module's answer: how many calls its instance has served.
    func counterCall(_ transformer: WasmTransformer, _ marker: String = "") async throws -> Int64? {
        let output = try await transformer.transform(WasmTransformInput(payload: ["marker": .string(marker)]))
        guard case .int(let calls)? = output.payload["calls"] else { return nil }
        return calls
    }

    static let reactorPairs: [(command: String, reactor: String)] = [
        ("enrich-c/enrich.wasm", "enrich-reactor-c/enrich.wasm")
    ]

    /// Every example input gives the same bytes and the same exit status in both modes.
    @Test(arguments: TestEngines.available)
    func reactorOutputIsByteIdenticalToCommandMode(engine: WasmEngineChoice) async throws {
        let cases = try String(contentsOfFile: ExampleModules.path("enrich-cases.jsonl"), encoding: .utf8)
            .split(separator: "\n").map { Array($0.utf8) }
        #expect(cases.count >= 18)
        var pairs = Self.reactorPairs
        if engine == .wasmtime { pairs.append(("enrich-go/enrich.wasm", "enrich-reactor-go/enrich.wasm")) }
        // Generous: under ThreadSanitizer on a busy machine a fresh WasmKit instance takes minutes
        // on the number-heavy case.
        let configuration = WasmModuleConfiguration.testing(timeout: .seconds(900), maxConcurrency: 1)
        for (commandModule, reactorModule) in pairs {
            let command = try await load(commandModule, on: engine, configuration)
            let reactor = try await reactor(reactorModule, on: engine, configuration)
            #expect(reactor.engineName == engine.rawValue)
            for input in cases + [Array(GuideExample.input.utf8)] {
                let expected = try await command.execute(stdin: input).execution
                let actual = try await reactor.execute(stdin: input).execution
                let text = String(decoding: input, as: UTF8.self)
                #expect(actual.termination == expected.termination, "\(reactorModule): \(text)")
                #expect(actual.stdout == expected.stdout, "\(reactorModule): \(text)")
            }
            let guide = try await reactor.execute(stdin: Array(GuideExample.input.utf8))
            #expect(String(decoding: guide.execution.stdout, as: UTF8.self) == GuideExample.output)
            let statistics = try #require(reactor.poolStatistics)
            #expect(statistics.created >= 1)
            #expect(statistics.reuses >= 1, "\(statistics)")
            #expect(statistics.live <= 1)
            #expect(command.poolStatistics == nil)
        }
    }

    /// The standard-Go reactor on WasmKit (slow to translate in a debug build: the guide input only).
    @Test func goReactorOnWasmKit() async throws {
        let transformer = try await reactor(
            "enrich-reactor-go/enrich.wasm", on: .wasmkit, WasmModuleConfiguration(timeout: .seconds(600)))
        for _ in 0..<2 {
            let result = try await transformer.execute(stdin: Array(GuideExample.input.utf8))
            #expect(result.execution.termination == .exited(code: 0))
            #expect(String(decoding: result.execution.stdout, as: UTF8.self) == GuideExample.output)
        }
        let refused = try await transformer.execute(stdin: Array("not json".utf8))
        #expect(refused.execution.termination == .exited(code: 1))
        #expect(transformer.poolStatistics?.reuses == 2)
    }

    /// Every error class, each followed by a call on a fresh instance (the failed one is discarded).
    @Test(arguments: TestEngines.available)
    func reactorErrorClasses(engine: WasmEngineChoice) async throws {
        let transformer = try await reactor(
            "faults/reactor-faults.wasm", on: engine,
            WasmModuleConfiguration(timeout: .seconds(600), memoryLimitBytes: 16 << 20, maxConcurrency: 1))
        let cases: [(String, WasmError.Reason, String)] = [
            ("#trap", .trap, "wasm: trap: "),
            ("#exit7", .exitCode, "wasm: exit code 7"),
            ("#exit0", .exitCode, "wasm: exit code 0: the reactor called proc_exit"),
            ("#refuse", .exitCode, "wasm: exit code 4"),
            ("#oom", .outOfMemory, "wasm: out of memory: memory limit 16Mi reached"),
            ("#invalid", .invalidJSON, "wasm: invalid JSON: module output: "),
            ("#nopayload", .invalidJSON, "wasm: invalid JSON: module output has no \"payload\""),
            ("#huge", .outputTooLarge, "wasm: output too large: more than 4194304 bytes"),
            ("#outside", .invalidJSON, "wasm: invalid JSON: fiso_handle returned an output of 4096 bytes"),
        ]
        for (marker, reason, message) in cases {
            #expect(try await counterCall(transformer) == 1, "\(marker)")
            #expect(try await counterCall(transformer) == 2, "\(marker)")
            let error = await expectWasmError { _ = try await counterCall(transformer, marker) }
            #expect(error?.reason == reason, "\(marker): \(error?.message ?? "")")
            #expect(error?.message.hasPrefix(message) == true, "\(marker): \(error?.message ?? "")")
            #expect(error?.module == "reactor-faults.wasm")
            if marker == "#refuse" { #expect(error?.stderr == "reactor-faults: refusing this event\n") }
            print("\(engine) reactor \(marker): \(error?.message ?? "")")
        }
        #expect(try await counterCall(transformer) == 1)
        let statistics = try #require(transformer.poolStatistics)
        #expect(statistics.recycledAfterFailure == cases.count)
        #expect(statistics.live == 1)

        // Stdout is not the output in reactor mode: it is kept with stderr as log text.
        let result = try await transformer.execute(stdin: Array(##"{"payload":{"m":"#stdout"}}"##.utf8))
        #expect(result.execution.termination == .exited(code: 0))
        #expect(String(decoding: result.execution.stderr, as: UTF8.self) == "to stdout\nto stderr\n")
        #expect(String(decoding: result.execution.stdout, as: UTF8.self).hasPrefix(#"{"payload":{"calls":2,"#))
    }

    /// Instances are reused, replaced after `maxCallsPerInstance` calls and after their memory grew
    /// past the recycle bound.
    @Test(arguments: TestEngines.available)
    func reactorPoolReusesAndRecycles(engine: WasmEngineChoice) async throws {
        var configuration = WasmModuleConfiguration.testing(maxConcurrency: 1)
        configuration.maxCallsPerInstance = 3
        let counted = try await reactor("faults/reactor-faults.wasm", on: engine, configuration)
        var counts: [Int64?] = []
        for _ in 0..<7 { counts.append(try await counterCall(counted)) }
        #expect(counts == [1, 2, 3, 1, 2, 3, 1])
        #expect(counted.poolStatistics?.recycledAfterMaxCalls == 2)
        #expect(counted.poolStatistics?.created == 3)
        #expect(counted.poolStatistics?.reuses == 4)

        var growing = WasmModuleConfiguration.testing(maxConcurrency: 1)
        growing.memoryLimitBytes = 64 << 20
        growing.recycleMemoryBytes = 4 << 20
        // Each call touches a new MiB: inline, one preempted for 2 ms on a loaded machine would be
        // run again on a fresh instance (correct, but not the sequence this test is about).
        growing.allowsInlineCalls = false
        let leaking = try await reactor("faults/reactor-faults.wasm", on: engine, growing)
        var leaks: [Int64?] = []
        for _ in 0..<8 { leaks.append(try await counterCall(leaking, "#leak")) }
        #expect(leaks == [1, 2, 3, 4, 1, 2, 3, 4])
        #expect(leaking.poolStatistics?.recycledAfterMemoryGrowth == 2)
    }

    /// 16 calls at once on a pool of 4: each gets its own output; never more than 4 instances.
    @Test(arguments: TestEngines.available)
    func reactorSixteenConcurrentCalls(engine: WasmEngineChoice) async throws {
        let transformer = try await reactor(
            "enrich-reactor-c/enrich.wasm", on: engine, .testing(maxConcurrency: 4))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<16 {
                group.addTask {
                    for round in 0..<3 {
                        let input = WasmTransformInput(
                            payload: [
                                "order_id": .string("order-\(index)-\(round)"),
                                "pad": .string(String(repeating: "x", count: index * 100)),
                            ],
                            headers: ["X-Request": "\(index)"])
                        let output = try await transformer.transform(input)
                        #expect(output.payload["order_id"] == .string("order-\(index)-\(round)"))
                        #expect(output.payload["pad"] == .string(String(repeating: "x", count: index * 100)))
                        #expect(output.headers == ["X-Request": "\(index)", "X-WASM-Processed": "true"])
                    }
                }
            }
            try await group.waitForAll()
        }
        let statistics = try #require(transformer.poolStatistics)
        // A retry (an inline call preempted past its budget on a loaded machine) replaces one.
        #expect(statistics.created <= 4 + statistics.retries, "\(statistics)")
        #expect(statistics.live <= 4)
        #expect(statistics.reuses >= 48 - 4 - statistics.retries)
    }

    /// A call that times out is stopped by the engine (WasmKit: fuel, Wasmtime: epoch); its instance
    /// is discarded, and the next call runs on a fresh instance.
    @Test(arguments: TestEngines.available)
    func reactorTimeoutFreesTheInstance(engine: WasmEngineChoice) async throws {
        let compiler = try TestEngines.engine(engine)
        let (before, timedOut, after, statistics) = try await Blocking.run {
            let compiled = try compiler.compile(
                try ExampleModules.bytes("faults/reactor-faults.wasm"), name: "reactor-faults.wasm",
                options: WasmCompileOptions(mode: .reactor, reactorPool: WasmReactorPoolSettings(maxInstances: 1)))
            let generous = WasmLimits(timeout: .seconds(120))
            // The first call makes the instance: generous, as a debug build translates slowly.
            let before = compiled.run(WasmInvocation(stdin: Array(#"{"payload":{}}"#.utf8), limits: generous))
            let timedOut = compiled.run(
                WasmInvocation(
                    stdin: Array(##"{"payload":"#spin"}"##.utf8), limits: WasmLimits(timeout: .milliseconds(300))))
            let after = compiled.run(WasmInvocation(stdin: Array(#"{"payload":{}}"#.utf8), limits: generous))
            return (before, timedOut, after, compiled.poolStatistics)
        }
        #expect(String(decoding: before.stdout, as: UTF8.self).hasPrefix(#"{"payload":{"calls":1,"#))
        guard case .failed(let error) = timedOut.termination else {
            Issue.record("expected a timeout, got \(timedOut.termination)")
            return
        }
        #expect(error.reason == .timeout)
        #expect(error.message == "wasm: timeout after 300ms")
        #expect(String(decoding: after.stdout, as: UTF8.self).hasPrefix(#"{"payload":{"calls":1,"#))
        #expect(statistics?.recycledAfterFailure == 1)
        #expect(statistics?.created == 2)
        #expect(statistics?.live == 1)
        print("\(engine) reactor timeout 300ms: stopped after \(timedOut.duration)")
    }

    /// Through the transformer: the caller is answered at the timeout, and the module's calls go
    /// on once the engine has stopped the runaway one. (The timeout also bounds the call after it,
    /// which makes a fresh instance: generous, for ThreadSanitizer runs on a busy machine.)
    @Test(arguments: TestEngines.available)
    func reactorTimeoutThroughTheTransformer(engine: WasmEngineChoice) async throws {
        let transformer = try await reactor(
            "faults/reactor-faults.wasm", on: engine, WasmModuleConfiguration(timeout: .seconds(10), maxConcurrency: 1))
        let error = await expectWasmError { _ = try await counterCall(transformer, "#spin") }
        #expect(error?.reason == .timeout)
        #expect(try await waitUntil(limit: .seconds(600)) { transformer.concurrency.running == 0 } != nil)
        #expect(transformer.poolStatistics?.recycledAfterFailure == 1)
        #expect(try await counterCall(transformer) == 1)
    }

    /// Warm calls on Wasmtime run inline, on the caller's thread, and answer as they would on an
    /// executor thread.
    @Test(.enabled(if: WasmtimeEngine.isAvailable && WasmInlineCalls.isEnabled))
    func warmCallsRunInlineOnWasmtime() async throws {
        let transformer = try await reactor(
            "faults/reactor-faults.wasm", on: .wasmtime,
            WasmModuleConfiguration(timeout: .seconds(60), maxConcurrency: 1))
        for expected in 1...5 {
            #expect(try await counterCall(transformer) == Int64(expected))
        }
        let statistics = try #require(transformer.poolStatistics)
        #expect(statistics.created == 1)
        #expect(statistics.inlineCalls == 4)  // the first call made the instance, on an executor thread
        #expect(statistics.retries == 0)
    }

    /// A warm call still running at the inline budget is interrupted within milliseconds, its
    /// instance discarded, and the call run again on an executor thread, where the module's own
    /// timeout applies. The next calls skip the inline attempt.
    @Test(.enabled(if: WasmtimeEngine.isAvailable && WasmInlineCalls.isEnabled))
    func aRunawayInlineCallMovesToAnExecutorThread() async throws {
        let timeout = Duration.seconds(1)
        let transformer = try await reactor(
            "faults/reactor-faults.wasm", on: .wasmtime, WasmModuleConfiguration(timeout: timeout, maxConcurrency: 1))
        #expect(try await counterCall(transformer) == 1)
        let started = ContinuousClock.now
        let error = await expectWasmError { _ = try await counterCall(transformer, "#spin") }
        #expect(error?.reason == .timeout)
        #expect(ContinuousClock.now - started >= timeout)
        #expect(try await waitUntil(limit: .seconds(600)) { transformer.concurrency.running == 0 } != nil)
        #expect(try await counterCall(transformer) == 1)
        let statistics = try #require(transformer.poolStatistics)
        #expect(statistics.retries == 1)
        #expect(statistics.inlineCalls == 1)  // the runaway; the call after it skipped the inline attempt
        #expect(statistics.recycledAfterFailure == 1)  // the executor's instance, at the timeout
    }

    /// A module that sleeps in a host call (`poll_oneoff`, which epoch interruption cannot stop)
    /// is never left to block a caller's thread. Its warm instances cannot wait in `poll_oneoff`:
    /// a call that polls is stopped there and run again on an ordinary instance (where
    /// `poll_oneoff` is Wasmtime's own and sleeps as WASI says). Two polls close together, and the
    /// module gets ordinary instances only, and no inline calls.
    @Test(.enabled(if: WasmtimeEngine.isAvailable && WasmInlineCalls.isEnabled))
    func aModuleThatSleepsNeverRunsInline() async throws {
        let transformer = try await reactor(
            "faults/reactor-faults.wasm", on: .wasmtime,
            WasmModuleConfiguration(timeout: .seconds(60), maxConcurrency: 1))
        var counters: [Int64?] = []
        for _ in 1...2 {
            let started = ContinuousClock.now
            counters.append(try await counterCall(transformer, "#sleep"))
            #expect(ContinuousClock.now - started >= .milliseconds(100))
        }
        for _ in 1...3 { counters.append(try await counterCall(transformer)) }
        // The first #sleep ran again on a throw-away instance; the second demoted the module, and
        // its ordinary instance then served every call.
        #expect(counters == [1, 1, 2, 3, 4])
        let statistics = try #require(transformer.poolStatistics)
        #expect(statistics.retries == 2)
        #expect(statistics.inlineCalls == 0)
        #expect(statistics.created == 4)  // two guarded (each stopped at its poll), two ordinary
    }

    /// Missing or mistyped exports are refused when the module is compiled, with a clear message.
    @Test(arguments: TestEngines.available)
    func reactorInvalidModules(engine: WasmEngineChoice) async throws {
        let cases: [(String, String)] = [
            ("faults/reactor-missing-handle.wasm", "not a reactor: no exported fiso_handle function"),
            (
                "faults/reactor-wrong-type.wasm",
                "fiso_handle must have type (i32, i32) -> i64, but its type is (i32, i32) -> i32"
            ),
            ("enrich-c/enrich.wasm", "not a reactor: no exported fiso_alloc function"),
        ]
        let compiler = try TestEngines.engine(engine)
        for (module, expected) in cases {
            let bytes = try ExampleModules.bytes(module)
            #expect {
                _ = try compiler.compile(bytes, name: "module.wasm", options: WasmCompileOptions(mode: .reactor))
            } throws: { error in
                guard let error = error as? WasmError else { return false }
                return error.reason == .invalidModule && error.description.contains(expected)
            }
        }
        // And a reactor is not a command.
        #expect {
            _ = try compiler.compile(try ExampleModules.bytes("enrich-reactor-c/enrich.wasm"), name: "module.wasm")
        } throws: { error in
            (error as? WasmError)?.description.contains("not a WASI command: no exported _start function") == true
        }
    }

    /// A reload compiles a new module with its own pool; the old pool's instances go with it.
    @Test(arguments: TestEngines.available)
    func reactorReloadStartsANewPool(engine: WasmEngineChoice) async throws {
        let directory = try TemporaryDirectory()
        let original = try ExampleModules.bytes("faults/reactor-faults.wasm")
        try directory.write("reactor.wasm", original)
        var configuration = WasmModuleConfiguration.testing(maxConcurrency: 1)
        configuration.mode = .reactor
        let transformer = try await WasmTransformer.load(
            path: directory.file("reactor.wasm"), configuration: configuration,
            engine: try TestEngines.engine(engine), executor: executor)
        #expect(try await counterCall(transformer) == 1)
        #expect(try await counterCall(transformer) == 2)
        // The same code with a custom section appended: another content hash, so a new version.
        try directory.write("reactor.wasm", original + [0x00, 0x05, 0x04] + Array("fiso".utf8))
        let reloaded = try await transformer.reload()
        guard case .reloaded = reloaded else {
            Issue.record("expected a reload, got \(reloaded)")
            return
        }
        #expect(try await counterCall(transformer) == 1)
        #expect(transformer.poolStatistics?.created == 1)
    }

    @Test func reactorSettingsAreValidated() {
        var configuration = WasmModuleConfiguration(mode: .reactor)
        #expect(configuration.problems.isEmpty)
        #expect(configuration.reactorPool.maxInstances == configuration.maxConcurrency)
        #expect(configuration.reactorPool.maxCallsPerInstance == 1000)
        configuration.maxCallsPerInstance = 0
        configuration.recycleMemoryBytes = 1024
        #expect(
            configuration.problems == [
                "maxCallsPerInstance must be positive",
                "recycleMemoryAbove must be at least 64Ki (one WebAssembly page)",
            ])
        configuration.maxCallsPerInstance = 10
        configuration.recycleMemoryBytes = configuration.memoryLimitBytes + 1
        #expect(configuration.problems == ["recycleMemoryAbove must not be above memoryLimit"])
        #expect(WasmExecutionMode(named: "reactor") == .reactor)
        #expect(WasmExecutionMode(named: "command") == .command)
        #expect(WasmExecutionMode(named: "pooled") == nil)
    }
}
