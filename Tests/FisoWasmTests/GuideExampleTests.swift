import FisoJSON
import FisoWasm
import FisoWasmTestSupport
import Foundation
import Testing

/// The deployment guide's "Local Testing" example, on all three builds of the enrich module.
@Suite struct GuideExampleTests {
    /// `echo '<input>' | fiso-flow wasm run enrich.wasm` prints exactly the guide's output line:
    /// `wasm run` passes the module's stdout through, and the module (like the Go original, whose
    /// json.Encoder ends its output with a newline) prints the line and "\n".
    @Test(arguments: ExampleModules.fastEnrich)
    func rawStdoutIsByteIdenticalToTheGuide(module: String) async throws {
        let executor = WasmExecutor(threadCount: 2)
        defer { executor.shutdown() }
        let transformer = try await WasmTransformer.load(
            path: ExampleModules.path(module),
            configuration: .testing(),
            executor: executor
        )
        let result = try await transformer.execute(stdin: Array((GuideExample.input + "\n").utf8))
        #expect(result.execution.termination == .exited(code: 0))
        #expect(String(decoding: result.execution.stdout, as: UTF8.self) == GuideExample.output)
        #expect(result.execution.stderr.isEmpty)
    }

    @Test func goExampleIsByteIdenticalToTheGuide() async throws {
        let transformer = try await CompiledGoModule.shared.transformer(executor: CompiledGoModule.executor)
        let result = try await transformer.execute(stdin: Array((GuideExample.input + "\n").utf8))
        #expect(result.execution.termination == .exited(code: 0))
        #expect(String(decoding: result.execution.stdout, as: UTF8.self) == GuideExample.output)
        print("enrich-go: one call took \(result.timing.running) in this build")
    }

    /// Through the interceptor path: payload and headers decoded from the module's output.
    @Test(arguments: ExampleModules.fastEnrich + ["enrich-c/enrich.wasm.gz"])
    func transformDecodesTheGuideOutput(module: String) async throws {
        let executor = WasmExecutor(threadCount: 2)
        defer { executor.shutdown() }
        let transformer = try await WasmTransformer.load(
            path: ExampleModules.path(module),
            configuration: .testing(),
            executor: executor
        )
        let output = try await transformer.transform(GuideExample.transformInput)
        #expect(
            output.payload
                == [
                    "amount": 99.99, "order_id": "123", "processed_by": "wasm-module",
                    "timestamp": "2024-01-15T10:00:00Z",
                ]
        )
        #expect(Array(output.payload.objectKeys) == ["amount", "order_id", "processed_by", "timestamp"])
        #expect(output.headers == ["X-WASM-Processed": "true"])
        #expect(output.moduleReturnedHeaders)
        #expect(output.timing.total >= output.timing.running)
        #expect(output.version?.generation == 1)
    }

    /// A gzip-compressed module is recognised by its magic bytes, whatever its name.
    @Test func gzipModuleLoadsUnderAPlainName() async throws {
        let directory = try TemporaryDirectory()
        try directory.write("enrich.wasm", try ExampleModules.bytes("enrich-c/enrich.wasm.gz"))
        let executor = WasmExecutor(threadCount: 2)
        defer { executor.shutdown() }
        let transformer = try await WasmTransformer.load(
            path: directory.file("enrich.wasm"),
            configuration: .testing(),
            executor: executor
        )
        #expect(transformer.version.isGzipped)
        #expect(transformer.version.moduleSize == (try ExampleModules.bytes("enrich-c/enrich.wasm")).count)
        #expect(transformer.version.fileSize < transformer.version.moduleSize)
        let plain = try await WasmTransformer.load(
            path: ExampleModules.path("enrich-c/enrich.wasm"),
            configuration: .testing(),
            executor: executor
        )
        #expect(transformer.version.contentHash == plain.version.contentHash)
        let result = try await transformer.execute(stdin: Array(GuideExample.input.utf8))
        #expect(String(decoding: result.execution.stdout, as: UTF8.self) == GuideExample.output)
    }

    /// The C and Zig builds agree byte for byte with each other on every input of
    /// examples/modules/enrich-cases.jsonl (build.sh checks the Go original against them under
    /// Wasmtime), including the inputs they must refuse.
    @Test func cAndZigBuildsAgreeOnEveryCase() async throws {
        let cases = try String(contentsOfFile: ExampleModules.path("enrich-cases.jsonl"), encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: true)
        #expect(cases.count >= 10)
        let executor = WasmExecutor(threadCount: 2)
        defer { executor.shutdown() }
        // Generous: under ThreadSanitizer on a busy machine the number-heavy case takes minutes.
        let c = try await WasmTransformer.load(
            path: ExampleModules.path("enrich-c/enrich.wasm"), configuration: .testing(timeout: .seconds(900)),
            executor: executor)
        let zig = try await WasmTransformer.load(
            path: ExampleModules.path("enrich-zig/enrich.wasm"), configuration: .testing(timeout: .seconds(900)),
            executor: executor)
        var refused = 0
        for line in cases {
            let stdin = Array(line.utf8)
            let fromC = try await c.execute(stdin: stdin).execution
            let fromZig = try await zig.execute(stdin: stdin).execution
            #expect(fromC.termination == fromZig.termination, "\(line)")
            #expect(fromC.stdout == fromZig.stdout, "\(line)")
            if fromC.termination == .exited(code: 1) {
                refused += 1
                #expect(fromC.stdout.isEmpty)
                #expect(String(decoding: fromC.stderr, as: UTF8.self).hasPrefix("enrich: "))
            }
        }
        #expect(refused >= 5)
    }
}

extension JSONValue {
    var objectKeys: [String] {
        if case .object(let members) = self { return Array(members.keys) }
        return []
    }
}
