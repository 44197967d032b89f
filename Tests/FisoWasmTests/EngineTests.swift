import FisoWasm
import FisoWasmTestSupport
import Testing

/// The engine protocol on its own, as another engine or mode would plug into it.
@Suite struct EngineTests {
    @Test func compiledModuleDescribesItself() async throws {
        let compiled = try await Blocking.run {
            try WasmKitEngine.shared.compile(try ExampleModules.bytes("enrich-c/enrich.wasm"), name: "enrich.wasm")
        }
        #expect(compiled.name == "enrich.wasm")
        #expect(compiled.engineName == "wasmkit")
        #expect(compiled.mode == .command)
        #expect(WasmKitEngine.shared.fuelPerSecond > 0)
    }

    /// A mode an engine does not implement is refused at compile time, not at the first call.
    @Test func unsupportedModeIsRefused() async throws {
        let pooled = WasmExecutionMode(name: "pooled")
        #expect {
            _ = try WasmKitEngine.shared.compile(
                try ExampleModules.bytes("enrich-c/enrich.wasm"),
                name: "enrich.wasm",
                options: WasmCompileOptions(mode: pooled)
            )
        } throws: { error in
            (error as? WasmError)?.message
                == "wasm: invalid module: mode \"pooled\" is not supported by the wasmkit engine"
        }
    }

    /// Each run is a fresh instance: nothing a run does is visible to the next.
    @Test func runsAreIndependent() async throws {
        let (first, second, third) = try await Blocking.run {
            let compiled = try WasmKitEngine.shared.compile(
                try ExampleModules.bytes("probes/echo.wasm"), name: "echo.wasm")
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
    }

    /// A module with no WASI imports at all runs too.
    @Test func moduleWithoutImports() async throws {
        let execution = try await Blocking.run {
            try WasmKitEngine.shared.compile(TestModules.minimalCommand, name: "minimal.wasm").run(
                WasmInvocation(stdin: []))
        }
        #expect(execution.termination == .exited(code: 0))
        #expect(execution.stdout.isEmpty)
    }
}
