import FisoJSON
import FisoWasm
import FisoWasmTestSupport
import Foundation
import Testing

/// The engines this machine can run: WasmKit always, Wasmtime when its library loads (the test
/// set-up installs it; see docs/wasm.md, "Wasmtime engine").
enum TestEngines {
    static let available: [WasmEngineChoice] = WasmtimeEngine.isAvailable ? [.wasmkit, .wasmtime] : [.wasmkit]

    static func engine(_ choice: WasmEngineChoice) throws -> any WasmEngine {
        try choice.engine()
    }

    /// Why Wasmtime is absent, for the skip message.
    static var wasmtimeAbsence: Comment {
        Comment(rawValue: "needs the Wasmtime library: \(WasmEngineChoice.wasmtime.resolutionNote)")
    }
}

/// The module tests of the error classes, limits, sandbox and ABI, run on every available engine:
/// the same module must give the same bytes and the same error class under each.
@Suite struct EngineEquivalenceTests {
    let executor = WasmExecutor(threadCount: 4, name: "equivalence")

    func load(
        _ module: String,
        on choice: WasmEngineChoice,
        _ configuration: WasmModuleConfiguration = .testing()
    ) async throws -> WasmTransformer {
        try await WasmTransformer.load(
            path: ExampleModules.path(module), configuration: configuration, engine: try TestEngines.engine(choice),
            executor: executor)
    }

    func failure(
        _ module: String,
        on choice: WasmEngineChoice,
        _ configuration: WasmModuleConfiguration = .testing()
    ) async throws -> WasmError? {
        let transformer = try await load(module, on: choice, configuration)
        #expect(transformer.engineName == choice.rawValue)
        return await expectWasmError { _ = try await transformer.transform(GuideExample.transformInput) }
    }

    /// Runs `module` directly on the engine (no executor, no ABI).
    func runDirectly(
        _ module: [UInt8],
        on choice: WasmEngineChoice,
        _ invocation: WasmInvocation
    ) async throws -> WasmExecution {
        let engine = try TestEngines.engine(choice)
        return try await Blocking.run { try engine.compile(module, name: "module.wasm").run(invocation) }
    }

    @Test(
        arguments: TestEngines.available, ["enrich-c/enrich.wasm", "enrich-zig/enrich.wasm", "enrich-c/enrich.wasm.gz"])
    func guideExampleIsByteIdentical(engine: WasmEngineChoice, module: String) async throws {
        let transformer = try await load(module, on: engine)
        let result = try await transformer.execute(stdin: Array(GuideExample.input.utf8))
        #expect(result.execution.termination == .exited(code: 0))
        #expect(String(decoding: result.execution.stdout, as: UTF8.self) == GuideExample.output)
    }

    /// The standard-Go example (slow on WasmKit in a debug build, so only Wasmtime here; the
    /// WasmKit run is GuideExampleTests').
    @Test(.enabled(if: WasmtimeEngine.isAvailable, TestEngines.wasmtimeAbsence))
    func goExampleIsByteIdenticalOnWasmtime() async throws {
        let transformer = try await load("enrich-go/enrich.wasm", on: .wasmtime)
        for _ in 0..<3 {
            let result = try await transformer.execute(stdin: Array(GuideExample.input.utf8))
            #expect(result.execution.termination == .exited(code: 0))
            #expect(String(decoding: result.execution.stdout, as: UTF8.self) == GuideExample.output)
        }
    }

    @Test(arguments: TestEngines.available)
    func exitCodeAndStderr(engine: WasmEngineChoice) async throws {
        let exit = try await failure("faults/exit-1.wasm", on: engine)
        #expect(exit?.reason == .exitCode)
        #expect(exit?.message == "wasm: exit code 1")
        #expect(exit?.exitCode == 1)
        #expect(exit?.module == "exit-1.wasm")
        let failed = try await failure("faults/stderr-fail.wasm", on: engine)
        #expect(failed?.message == "wasm: exit code 3")
        #expect(failed?.stderr == "stderr-fail: upstream lookup refused for order 123\n")
    }

    @Test(arguments: TestEngines.available)
    func trap(engine: WasmEngineChoice) async throws {
        let error = try await failure("faults/trap.wasm", on: engine)
        #expect(error?.reason == .trap)
        #expect(error?.message.hasPrefix("wasm: trap: integer divide by zero") == true, "\(error?.message ?? "")")
        print("\(engine) trap message: \(error?.message ?? "")")
    }

    @Test(arguments: TestEngines.available)
    func outOfMemory(engine: WasmEngineChoice) async throws {
        let error = try await failure(
            "faults/memory-bomb.wasm", on: engine,
            WasmModuleConfiguration(timeout: .seconds(600), memoryLimitBytes: 16 << 20))
        #expect(error?.reason == .outOfMemory)
        #expect(
            error?.message.hasPrefix("wasm: out of memory: memory limit 16Mi reached") == true,
            "\(error?.message ?? "")")
        let reported = error?.stderr.split(separator: " ").dropLast().last.flatMap { Int($0) } ?? -1
        #expect((12...16).contains(reported), "\(error?.stderr ?? "")")
        print("\(engine) out of memory: \(error?.message ?? "")")
    }

    @Test(arguments: TestEngines.available)
    func initialMemoryAboveTheLimit(engine: WasmEngineChoice) async throws {
        let error = try await failure(
            "enrich-c/enrich.wasm", on: engine,
            WasmModuleConfiguration(timeout: .seconds(120), memoryLimitBytes: 64 << 10))
        #expect(error?.reason == .outOfMemory)
        print("\(engine) initial memory over the limit: \(error?.message ?? "")")
    }

    @Test(arguments: TestEngines.available)
    func outputTooLarge(engine: WasmEngineChoice) async throws {
        let huge = try await failure("faults/huge-output.wasm", on: engine)
        #expect(huge?.reason == .outputTooLarge)
        #expect(huge?.message == "wasm: output too large: more than 4194304 bytes on stdout")
        let small = try await failure(
            "enrich-c/enrich.wasm", on: engine, WasmModuleConfiguration(timeout: .seconds(120), maxOutputBytes: 64))
        #expect(small?.reason == .outputTooLarge)
        #expect(small?.message == "wasm: output too large: more than 64 bytes on stdout")
    }

    /// A module may sleep (WASI `poll_oneoff`): it answers after its sleep on every engine. On
    /// Wasmtime the first call tries to run inline, is stopped at the poll and runs again on an
    /// executor thread; the second poll stops inline attempts for the module.
    @Test(arguments: TestEngines.available)
    func aSleepingModuleAnswersAfterItsSleep(engine: WasmEngineChoice) async throws {
        let sleeper = try await load("faults/sleep.wasm", on: engine)
        for _ in 0..<3 {
            let started = ContinuousClock.now
            let output = try await sleeper.transform(GuideExample.transformInput)
            #expect(ContinuousClock.now - started >= .milliseconds(100))
            #expect(output.payload == ["slept_ms": 100])
        }
    }

    /// The sandbox: no preopened directories, no host environment; argv[0] is the module name.
    @Test(arguments: TestEngines.available)
    func sandbox(engine: WasmEngineChoice) async throws {
        let error = try await failure("faults/open-file.wasm", on: engine)
        #expect(error?.reason == .exitCode)
        #expect(error?.stderr.contains("open-file: cannot open /etc/hostname") == true)
        #expect(error?.stderr.contains("open-file: cannot open enrich.wasm") == true)

        let probe = try await load("probes/probe.wasm", on: engine, .testing(environment: ["REGION": "eu-west-1"]))
        let output = try await probe.transform(GuideExample.transformInput)
        #expect(output.payload["argv"] == ["probe.wasm"])
        #expect(output.payload["env"] == ["REGION=eu-west-1"])
        #expect(output.payload["preopens"] == 0)
        #expect(output.payload["random_ok"] == true)
        #expect(output.payload["monotonic_ok"] == true)
    }

    @Test(arguments: TestEngines.available)
    func invalidModulesGiveTheSameMessages(engine: WasmEngineChoice) async throws {
        let cases: [([UInt8], String)] = [
            (Array("hello, world\n".utf8), "not a WebAssembly binary"),
            (TestModules.reactor, "not a WASI command: no exported _start function"),
            (TestModules.unknownImport, "imports env.log, which is not provided"),
            (TestModules.wrongSignature, "does not match WASI's (i32, i32, i32, i32) -> i32"),
            (TestModules.invalidFunctionBody, "wasm: invalid module: "),
        ]
        let compiler = try TestEngines.engine(engine)
        for (bytes, expected) in cases {
            #expect {
                _ = try compiler.compile(bytes, name: "module.wasm")
            } throws: { error in
                guard let error = error as? WasmError else { return false }
                return error.reason == .invalidModule && error.description.contains(expected)
            }
        }
    }

    /// A bare loop is stopped by the engine itself (WasmKit: fuel; Wasmtime: epoch interruption).
    @Test(arguments: TestEngines.available)
    func engineStopsARunawayModule(engine: WasmEngineChoice) async throws {
        let execution = try await runDirectly(
            try ExampleModules.bytes("faults/infinite-loop.wasm"), on: engine,
            WasmInvocation(stdin: [], limits: WasmLimits(timeout: .milliseconds(100))))
        guard case .failed(let error) = execution.termination else {
            Issue.record("expected a failure, got \(execution.termination)")
            return
        }
        #expect(error.reason == .timeout)
        #expect(error.message == "wasm: timeout after 100ms")
        print("\(engine) engine-only stop of a bare loop, timeout 100ms: \(execution.duration)")
    }

    /// A module that keeps calling the host is stopped too, and the caller is answered.
    @Test(arguments: TestEngines.available)
    func hostCallingModuleTimesOut(engine: WasmEngineChoice) async throws {
        let transformer = try await load(
            "probes/spin.wasm", on: engine, WasmModuleConfiguration(timeout: .milliseconds(200), maxConcurrency: 1))
        let error = await expectWasmError {
            _ = try await transformer.transform(WasmTransformInput(payload: ["spin_ms": 60_000]))
        }
        #expect(error?.reason == .timeout)
        #expect(try await waitUntil(limit: .seconds(600)) { executor.busyThreads == 0 } != nil)
    }

    /// Each run is a fresh instance: nothing a run does is visible to the next.
    @Test(arguments: TestEngines.available)
    func runsAreIndependent(engine: WasmEngineChoice) async throws {
        let compiler = try TestEngines.engine(engine)
        let (first, second, third) = try await Blocking.run {
            let compiled = try compiler.compile(try ExampleModules.bytes("probes/echo.wasm"), name: "echo.wasm")
            let limits = WasmLimits(timeout: .seconds(60))
            return (
                compiled.run(WasmInvocation(stdin: Array("first".utf8), limits: limits)),
                compiled.run(
                    WasmInvocation(
                        stdin: Array("second".utf8), environment: ["FISO_ECHO_OUTPUT": "env"], limits: limits)),
                compiled.run(WasmInvocation(stdin: Array("third".utf8), limits: limits))
            )
        }
        #expect(first.stdout == Array("first".utf8))
        #expect(second.stdout == Array("env".utf8))
        #expect(third.stdout == Array("third".utf8))
        #expect(first.termination == .exited(code: 0))
    }

    /// Stderr beyond its limit is dropped and counted; the module goes on and succeeds.
    @Test(arguments: TestEngines.available)
    func stderrIsBounded(engine: WasmEngineChoice) async throws {
        let execution = try await runDirectly(
            try ExampleModules.bytes("faults/stderr-fail.wasm"), on: engine,
            WasmInvocation(stdin: Array(GuideExample.input.utf8), limits: WasmLimits(maxStderrBytes: 10)))
        #expect(execution.termination == .exited(code: 3))
        #expect(execution.stderr == Array("stderr-fail: upstream lookup refused for order 123\n".utf8.prefix(10)))
        #expect(execution.stderrBytesDropped == "stderr-fail: upstream lookup refused for order 123\n".utf8.count - 10)
    }

    /// Many calls at once, each with its own input, each get their own output.
    @Test(arguments: TestEngines.available)
    func concurrentCallsKeepTheirOwnData(engine: WasmEngineChoice) async throws {
        let transformer = try await load("probes/echo.wasm", on: engine, .testing(maxConcurrency: 4))
        try await withThrowingTaskGroup(of: (Int, [UInt8]).self) { group in
            for index in 0..<24 {
                group.addTask {
                    let input = Array(
                        "{\"call\":\(index),\"pad\":\"\(String(repeating: "x", count: index * 97))\"}".utf8)
                    let result = try await transformer.execute(stdin: input)
                    #expect(result.execution.termination == .exited(code: 0))
                    return (index, result.execution.stdout)
                }
            }
            for try await (index, stdout) in group {
                let expected = "{\"call\":\(index),\"pad\":\"\(String(repeating: "x", count: index * 97))\"}"
                #expect(String(decoding: stdout, as: UTF8.self) == expected)
            }
        }
    }

    /// CI sets FISO_REQUIRE_WASMTIME=1 so that a missing library fails instead of skipping.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["FISO_REQUIRE_WASMTIME"] == "1"))
    func wasmtimeIsAvailableWhenRequired() {
        #expect(WasmtimeEngine.isAvailable, "\(WasmEngineChoice.wasmtime.resolutionNote)")
    }

    @Test func engineChoices() throws {
        #expect(WasmEngineChoice.allCases.map(\.rawValue) == ["auto", "wasmkit", "wasmtime"])
        #expect(try WasmEngineChoice.wasmkit.engine().name == "wasmkit")
        let auto = try WasmEngineChoice.auto.engine().name
        #expect(auto == (WasmtimeEngine.isAvailable ? "wasmtime" : "wasmkit"))
        if !WasmtimeEngine.isAvailable {
            #expect(throws: WasmtimeUnavailable.self) { _ = try WasmEngineChoice.wasmtime.engine() }
        }
    }
}
