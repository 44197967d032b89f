import FisoJSON
import FisoWasm
import FisoWasmTestSupport
import Foundation
import Testing

/// Every failure class of the guide's troubleshooting section, with real modules.
@Suite struct ErrorClassTests {
    let executor = WasmExecutor(threadCount: 4, name: "errors")

    func transformer(
        _ module: String,
        _ configuration: WasmModuleConfiguration = .testing()
    ) async throws -> WasmTransformer {
        try await WasmTransformer.load(
            path: ExampleModules.path(module), configuration: configuration, executor: executor)
    }

    func call(_ module: String, _ configuration: WasmModuleConfiguration = .testing()) async throws -> WasmError? {
        let transformer = try await transformer(module, configuration)
        return await expectWasmError { _ = try await transformer.transform(GuideExample.transformInput) }
    }

    @Test func moduleNotFound() throws {
        let path = "/etc/fiso/modules/does-not-exist.wasm"
        #expect {
            _ = try WasmTransformer(path: path, executor: executor)
        } throws: { error in
            guard let error = error as? WasmError else { return false }
            return error.reason == .moduleNotFound && error.message == "wasm module not found" && error.path == path
                && error.description == "wasm module not found path=\(path)"
        }
    }

    @Test(arguments: [
        ("not WebAssembly", Array("hello, world\n".utf8), "not a WebAssembly binary"),
        ("truncated", Array(TestModules.minimalCommand.prefix(20)), "invalid module"),
        ("reactor", TestModules.reactor, "not a WASI command: no exported _start function"),
        ("unknown import", TestModules.unknownImport, "imports env.log, which is not provided"),
        ("wrong signature", TestModules.wrongSignature, "does not match WASI's (i32, i32, i32, i32) -> i32"),
        ("invalid body", TestModules.invalidFunctionBody, "invalid module"),
        ("corrupt gzip", [0x1f, 0x8b, 0x08, 0x00, 0x01, 0x02, 0x03], "does not decompress"),
        ("empty", [], "the file is empty"),
    ])
    func invalidModule(label: String, bytes: [UInt8], expected: String) throws {
        let directory = try TemporaryDirectory()
        try directory.write("module.wasm", bytes)
        #expect {
            _ = try WasmTransformer(path: directory.file("module.wasm"), executor: executor)
        } throws: { error in
            guard let error = error as? WasmError else { return false }
            return error.reason == .invalidModule && error.message.hasPrefix("wasm: invalid module: ")
                && error.description.contains(expected) && error.path == directory.file("module.wasm")
        }
    }

    @Test func exitCode() async throws {
        let error = try await call("faults/exit-1.wasm")
        #expect(error?.reason == .exitCode)
        #expect(error?.message == "wasm: exit code 1")
        #expect(error?.exitCode == 1)
        #expect(error?.module == "exit-1.wasm")
        #expect(error?.timing != nil)
    }

    @Test func exitCodeCarriesTheModuleStderr() async throws {
        let error = try await call("faults/stderr-fail.wasm")
        #expect(error?.reason == .exitCode)
        #expect(error?.message == "wasm: exit code 3")
        #expect(error?.stderr == "stderr-fail: upstream lookup refused for order 123\n")
    }

    @Test func trap() async throws {
        let error = try await call("faults/trap.wasm")
        #expect(error?.reason == .trap)
        #expect(error?.message.hasPrefix("wasm: trap: integer divide by zero") == true)
        print("trap message: \(error?.message ?? "")")
    }

    @Test(arguments: [
        ("faults/invalid-json.wasm", "wasm: invalid JSON: module output: invalid JSON at line 1, column "),
        ("faults/no-output.wasm", "wasm: invalid JSON: the module wrote nothing to stdout"),
        ("faults/missing-payload.wasm", "wasm: invalid JSON: module output has no \"payload\""),
    ])
    func invalidJSON(module: String, message: String) async throws {
        let error = try await call(module)
        #expect(error?.reason == .invalidJSON)
        #expect(error?.message.hasPrefix(message) == true, "\(error?.message ?? "")")
        print("\(module): \(error?.message ?? "")")
    }

    @Test func outOfMemory() async throws {
        let error = try await call(
            "faults/memory-bomb.wasm", WasmModuleConfiguration(timeout: .seconds(600), memoryLimitBytes: 16 << 20))
        #expect(error?.reason == .outOfMemory)
        #expect(
            error?.message.hasPrefix("wasm: out of memory: memory limit 16Mi reached") == true,
            "\(error?.message ?? "")")
        // The module saw its allocation fail at the limit (about 16 MiB minus its own data).
        let reported = error?.stderr.split(separator: " ").dropLast().last.flatMap { Int($0) } ?? -1
        #expect((12...16).contains(reported), "\(error?.stderr ?? "")")
    }

    /// A module whose initial memory is above the limit cannot even be instantiated.
    @Test func initialMemoryAboveTheLimit() async throws {
        let error = try await call(
            "enrich-c/enrich.wasm", WasmModuleConfiguration(timeout: .seconds(120), memoryLimitBytes: 64 << 10))
        #expect(error?.reason == .outOfMemory)
        print("initial memory over the limit: \(error?.message ?? "")")
    }

    @Test func outputTooLarge() async throws {
        let error = try await call("faults/huge-output.wasm")
        #expect(error?.reason == .outputTooLarge)
        #expect(error?.message == "wasm: output too large: more than 4194304 bytes on stdout")
        let small = try await call(
            "enrich-c/enrich.wasm",
            WasmModuleConfiguration(timeout: .seconds(120), maxOutputBytes: 64)
        )
        #expect(small?.reason == .outputTooLarge)
        #expect(small?.message == "wasm: output too large: more than 64 bytes on stdout")
    }

    /// The sandbox: no preopened directories, so a module cannot open host files.
    @Test func sandboxRefusesFiles() async throws {
        let error = try await call("faults/open-file.wasm")
        #expect(error?.reason == .exitCode)
        #expect(error?.message == "wasm: exit code 1")
        #expect(error?.stderr.contains("open-file: cannot open /etc/hostname") == true)
        #expect(error?.stderr.contains("open-file: cannot open enrich.wasm") == true)
    }

    /// An event payload that is not JSON never reaches the module.
    @Test func eventPayloadThatIsNotJSON() async throws {
        let transformer = try await transformer("enrich-c/enrich.wasm")
        let error = await expectWasmError {
            _ = try await transformer.transform(WasmTransformInput(payload: .json(Array("{oops".utf8))))
        }
        #expect(error?.reason == .invalidJSON)
        #expect(error?.message.hasPrefix("wasm: invalid JSON: the event payload is not JSON") == true)
    }

    @Test func everyReasonHasItsMetricsLabel() {
        #expect(
            WasmError.Reason.allCases.map(\.rawValue) == [
                "module_not_found", "invalid_module", "exit_code", "timeout", "invalid_json", "out_of_memory", "trap",
                "output_too_large",
            ]
        )
    }
}
