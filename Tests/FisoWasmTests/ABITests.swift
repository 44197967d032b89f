import FisoJSON
import FisoWasm
import FisoWasmTestSupport
import Foundation
import Testing

/// The guide's JSON stdin/stdout ABI and the sandbox a module runs in.
@Suite struct ABITests {
    let executor = WasmExecutor(threadCount: 2, name: "abi")

    func probe(environment: [String: String] = [:]) async throws -> JSONValue {
        let transformer = try await WasmTransformer.load(
            path: ExampleModules.path("probes/probe.wasm"),
            configuration: .testing(environment: environment),
            executor: executor
        )
        let output = try await transformer.transform(GuideExample.transformInput)
        #expect(output.headers == ["X-Probe": "1"])
        return output.payload
    }

    /// argv[0] is the module's file name; the environment is empty; no directories are open;
    /// the clocks and the random source work.
    @Test func sandboxAsSeenFromInside() async throws {
        let payload = try await probe()
        #expect(payload["argv"] == ["probe.wasm"])
        #expect(payload["env"] == [])
        #expect(payload["preopens"] == 0)
        #expect(payload["monotonic_ok"] == true)
        #expect(payload["random_ok"] == true)
        let now = Int64(Date().timeIntervalSince1970)
        guard case .int(let realtime)? = payload["realtime_s"] else {
            Issue.record("no realtime_s in \(payload)")
            return
        }
        #expect(abs(realtime - now) < 600)
        #expect(payload["stdin_bytes"] == .int(Int64(try GuideExample.transformInput.encoded().count)))
    }

    @Test func environmentFromConfiguration() async throws {
        let payload = try await probe(environment: ["REGION": "eu-west-1"])
        #expect(payload["env"] == ["REGION=eu-west-1"])
    }

    /// The stdin envelope, exactly.
    @Test func inputEnvelope() throws {
        let input = WasmTransformInput(
            payload: ["order_id": "123", "amount": 99.99],
            headers: ["Content-Type": "application/json", "X-Quote": "say \"hi\""],
            direction: "inbound"
        )
        #expect(
            String(decoding: try input.encoded(), as: UTF8.self)
                == #"{"payload":{"order_id":"123","amount":99.99},"headers":{"Content-Type":"application/json","X-Quote":"say \"hi\""},"direction":"inbound"}"#
        )
        let raw = WasmTransformInput(payload: .json(Array(#"[1, 2, {"a": null}]"#.utf8)))
        #expect(
            String(decoding: try raw.encoded(), as: UTF8.self)
                == #"{"payload":[1, 2, {"a": null}],"headers":{},"direction":"inbound"}"#)
    }

    @Test func envelopeFileParsing() throws {
        let input = try WasmTransformInput(parsingEnvelope: Array(GuideExample.input.utf8))
        #expect(String(decoding: try input.encoded(), as: UTF8.self) == GuideExample.input)
        #expect(throws: WasmError.self) { try WasmTransformInput(parsingEnvelope: Array(#"{"headers":{}}"#.utf8)) }
        #expect(throws: WasmError.self) {
            try WasmTransformInput(parsingEnvelope: Array(#"{"payload":1,"headers":{"a":1}}"#.utf8))
        }
    }

    /// Output handling, driven by a module that prints whatever its FISO_ECHO_OUTPUT says.
    @Test(
        arguments: [
            // Extra keys are ignored.
            (
                #"{"payload":{"a":1},"headers":{"h":"v"},"extra":[1,2],"direction":"outbound"}"#, #"{"a":1}"#,
                ["h": "v"], true
            ),
            // Missing or null headers keep the input's.
            (#"{"payload":{"a":1}}"#, #"{"a":1}"#, ["X-In": "1"], false),
            (#"{"payload":{"a":1},"headers":null}"#, #"{"a":1}"#, ["X-In": "1"], false),
            // Empty headers replace them (with none).
            (#"{"payload":{"a":1},"headers":{}}"#, #"{"a":1}"#, [:], true),
            // Any JSON payload, null included; surrounding whitespace is fine.
            ("  \n{\"payload\":null,\"headers\":{}}\n\n", "null", [:], true),
            (#"{"payload":[1,"two",{"three":3}],"headers":{}}"#, #"[1,"two",{"three":3}]"#, [:], true),
        ] as [(String, String, [String: String], Bool)])
    func outputDecoding(output: String, payload: String, headers: [String: String], returned: Bool) async throws {
        let transformer = try await WasmTransformer.load(
            path: ExampleModules.path("probes/echo.wasm"),
            configuration: .testing(environment: ["FISO_ECHO_OUTPUT": output]),
            executor: executor
        )
        let result = try await transformer.transform(WasmTransformInput(payload: ["in": true], headers: ["X-In": "1"]))
        #expect(result.payload == (try JSONValue(parsing: payload)))
        #expect(Dictionary(uniqueKeysWithValues: result.headers.map { ($0.key, $0.value) }) == headers)
        #expect(result.moduleReturnedHeaders == returned)
    }

    @Test(arguments: [
        (#"[1,2]"#, "module output is a JSON array, not an object"),
        (#"{"headers":{}}"#, "module output has no \"payload\""),
        (#"{"payload":1,"headers":{"n":1}}"#, "module output header \"n\" is a number, not a string"),
        (#"{"payload":1,"headers":"x"}"#, "module output \"headers\" is a string, not an object"),
        (#"{"payload":1}{"payload":2}"#, "module output: invalid JSON"),
        ("", "the module wrote nothing to stdout"),
    ])
    func badOutput(output: String, detail: String) async throws {
        let transformer = try await WasmTransformer.load(
            path: ExampleModules.path("probes/echo.wasm"),
            configuration: .testing(environment: ["FISO_ECHO_OUTPUT": output]),
            executor: executor
        )
        let error = await expectWasmError { _ = try await transformer.transform(GuideExample.transformInput) }
        #expect(error?.reason == .invalidJSON)
        #expect(error?.message.hasPrefix("wasm: invalid JSON: \(detail)") == true, "\(error?.message ?? "")")
    }

    /// With no FISO_ECHO_OUTPUT the echo module returns its input: the envelope round-trips.
    @Test func echoRoundTrip() async throws {
        let transformer = try await WasmTransformer.load(
            path: ExampleModules.path("probes/echo.wasm"),
            configuration: .testing(),
            executor: executor
        )
        let input = WasmTransformInput(payload: ["ü": "ñ", "n": 1.5e300], headers: ["b": "2", "a": "1"])
        let output = try await transformer.transform(input)
        #expect(output.payload == ["ü": "ñ", "n": 1.5e300])
        #expect(Array(output.headers.keys) == ["b", "a"])
    }

    /// The raw path used by `fiso-flow wasm run`: a non-zero exit status is a result, not an error,
    /// and stdout and stderr come back as they were written.
    @Test func rawExecution() async throws {
        let transformer = try await WasmTransformer.load(
            path: ExampleModules.path("faults/stderr-fail.wasm"),
            configuration: .testing(),
            executor: executor
        )
        let result = try await transformer.execute(stdin: [])
        #expect(result.execution.termination == .exited(code: 3))
        #expect(result.execution.stderrText == "stderr-fail: upstream lookup refused for order 123\n")
        #expect(result.timing.running > .zero)
    }

    /// Stderr is kept up to the limit and the rest counted, so a noisy module cannot fill memory.
    @Test func stderrIsBounded() async throws {
        let execution = try await Blocking.run {
            let compiled = try WasmKitEngine.shared.compile(
                try ExampleModules.bytes("faults/stderr-fail.wasm"), name: "x.wasm")
            return compiled.run(
                WasmInvocation(stdin: [], limits: WasmLimits(timeout: .seconds(60), maxStderrBytes: 10)))
        }
        #expect(execution.stderr == Array("stderr-fai".utf8))
        #expect(execution.stderrBytesDropped == 41)
        #expect(execution.stderrText == "stderr-fai… [41 more bytes dropped]")
    }
}
