import FisoWasm
import FisoWasmTestSupport
import FisoWasmTooling
import Foundation
import Testing

/// `fiso-flow wasm configmap NAME MODULE... [--namespace NS] [--gzip]`: the same ConfigMap as
/// `kubectl create configmap NAME --from-file=... [-n NS] --dry-run=client -o yaml`.
@Suite struct ConfigMapTests {
    @Test func singleModuleAsKubectlPrintsIt() throws {
        let path = ExampleModules.path("enrich-c/enrich.wasm")
        let bytes = try ExampleModules.bytes("enrich-c/enrich.wasm")
        let entries = try WasmConfigMap.entries(from: [path], gzip: false)
        let yaml = try WasmConfigMap.render(name: "wasm-enrich-module", namespace: "production", entries: entries)
        #expect(
            yaml == """
                apiVersion: v1
                binaryData:
                  enrich.wasm: \(Data(bytes).base64EncodedString())
                kind: ConfigMap
                metadata:
                  name: wasm-enrich-module
                  namespace: production

                """
        )
    }

    @Test func keysAreSortedAndNamedLikeFromFile() throws {
        let entries = try WasmConfigMap.entries(
            from: [
                ExampleModules.path("enrich-zig/enrich.wasm"),
                "validate.wasm=" + ExampleModules.path("faults/exit-1.wasm"),
                "a-first.wasm=" + ExampleModules.path("faults/trap.wasm"),
            ],
            gzip: false
        )
        let yaml = try WasmConfigMap.render(name: "wasm-modules", namespace: nil, entries: entries)
        let keys = yaml.split(separator: "\n").filter { $0.hasPrefix("  ") && $0.contains(".wasm: ") }
            .map { $0.trimmingCharacters(in: .whitespaces).split(separator: ":")[0] }
        #expect(keys == ["a-first.wasm", "enrich.wasm", "validate.wasm"])
        #expect(!yaml.contains("namespace:"))
        // Every value decodes back to the file.
        for line in yaml.split(separator: "\n") where line.contains(".wasm: ") {
            let parts = line.trimmingCharacters(in: .whitespaces).components(separatedBy: ": ")
            let decoded = try #require(Data(base64Encoded: parts[1]))
            let key = parts[0]
            let source =
                key == "enrich.wasm"
                ? "enrich-zig/enrich.wasm" : key == "validate.wasm" ? "faults/exit-1.wasm" : "faults/trap.wasm"
            #expect([UInt8](decoded) == (try ExampleModules.bytes(source)))
        }
    }

    /// --gzip stores each module compressed under the same key; the runtime loads it as it is.
    @Test func gzipKeepsTheKeyAndLoads() async throws {
        let entries = try WasmConfigMap.entries(from: [ExampleModules.path("enrich-c/enrich.wasm")], gzip: true)
        #expect(entries.first?.key == "enrich.wasm")
        #expect(entries.first?.bytes.starts(with: [0x1f, 0x8b]) == true)
        let yaml = try WasmConfigMap.render(name: "wasm-modules", namespace: "production", entries: entries)
        let value = try #require(yaml.split(separator: "\n").first { $0.hasPrefix("  enrich.wasm: ") })
        let stored = try #require(Data(base64Encoded: String(value.dropFirst("  enrich.wasm: ".count))))

        // Mount it (write the key's bytes under the key's name) and run it.
        let directory = try TemporaryDirectory()
        try directory.write("enrich.wasm", [UInt8](stored))
        let executor = WasmExecutor(threadCount: 1)
        defer { executor.shutdown() }
        let transformer = try await WasmTransformer.load(
            path: directory.file("enrich.wasm"), configuration: .testing(), executor: executor)
        #expect(transformer.version.isGzipped)
        let result = try await transformer.execute(stdin: Array(GuideExample.input.utf8))
        #expect(String(decoding: result.execution.stdout, as: UTF8.self) == GuideExample.output)
    }

    /// Over 1 MiB: refused, with advice (here: gzip would not be enough either).
    @Test func tooLargeIsRefusedWithAdvice() async throws {
        let (entries, outcome) = try await Blocking.run {
            let entries = try WasmConfigMap.entries(from: [ExampleModules.path("enrich-go/enrich.wasm")], gzip: false)
            return (
                entries,
                Result { () throws(WasmConfigMapError) in
                    try WasmConfigMap.render(name: "wasm-modules", namespace: nil, entries: entries)
                }
            )
        }
        guard case .failure(.tooLarge(let total, let advice)) = outcome else {
            Issue.record("expected tooLarge, got \(outcome)")
            return
        }
        #expect(total == entries[0].bytes.count)
        #expect(advice.contains("Even with --gzip"))
        #expect(advice.contains("-ldflags=\"-s -w\""))
        #expect(advice.contains("init container"))
    }

    /// When --gzip would make it fit, the advice says so.
    @Test func adviceSuggestsGzipWhenItWouldFit() async throws {
        // About 2 MiB of a module that compresses well: its own bytes repeated.
        let module = try ExampleModules.bytes("enrich-c/enrich.wasm")
        let large = Array((0..<60).map { _ in module }.joined())
        let outcome = try await Blocking.run {
            Result { () throws(WasmConfigMapError) in
                try WasmConfigMap.render(
                    name: "wasm-modules", namespace: nil, entries: [WasmConfigMap.Entry(key: "big.wasm", bytes: large)])
            }
        }
        guard case .failure(.tooLarge(_, let advice)) = outcome else {
            Issue.record("expected tooLarge, got \(outcome)")
            return
        }
        #expect(advice.hasPrefix("With --gzip it is "))
        #expect(advice.contains("and fits"))
    }

    @Test func invalidInputsAreRefused() throws {
        #expect(throws: WasmConfigMapError.invalidKey("bad key.wasm")) {
            try WasmConfigMap.entries(
                from: ["bad key.wasm=" + ExampleModules.path("enrich-c/enrich.wasm")], gzip: false)
        }
        #expect(throws: WasmConfigMapError.duplicateKey("enrich.wasm")) {
            try WasmConfigMap.entries(
                from: [ExampleModules.path("enrich-c/enrich.wasm"), ExampleModules.path("enrich-zig/enrich.wasm")],
                gzip: false
            )
        }
        #expect(throws: WasmConfigMapError.invalidName("Wasm_Modules")) {
            try WasmConfigMap.render(name: "Wasm_Modules", namespace: nil, entries: [])
        }
        #expect(throws: WasmConfigMapError.self) {
            try WasmConfigMap.entries(from: [ExampleModules.path("enrich-cases.jsonl")], gzip: false)
        }
        #expect(throws: WasmConfigMapError.self) {
            try WasmConfigMap.entries(from: ["/nonexistent/x.wasm"], gzip: false)
        }
    }

    @Test func base64MatchesFoundation() {
        for length in 0..<20 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            #expect(WasmConfigMap.base64(bytes) == Data(bytes).base64EncodedString())
        }
    }
}
