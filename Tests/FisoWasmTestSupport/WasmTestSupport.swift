import FisoJSON
import FisoWasm
import Foundation
import Testing

/// The committed example and fault modules (examples/modules), found from this file's real path so
/// that the tests work from the main package and from a development package that symlinks them.
package enum ExampleModules {
    package static let directory: String = {
        let thisFile = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        return thisFile.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("examples/modules").path
    }()

    package static func path(_ relativePath: String) -> String {
        directory + "/" + relativePath
    }

    package static func bytes(_ relativePath: String) throws -> [UInt8] {
        try [UInt8](Data(contentsOf: URL(fileURLWithPath: path(relativePath))))
    }

    /// The C and Zig builds of the guide's example (fast on every engine and build mode).
    package static let fastEnrich = ["enrich-c/enrich.wasm", "enrich-zig/enrich.wasm"]
}

/// The guide's local-test input and its expected output (Go's json.Encoder ends it with "\n").
package enum GuideExample {
    package static let input = #"{"payload":{"order_id":"123","amount":99.99},"headers":{},"direction":"inbound"}"#
    package static let output =
        #"{"payload":{"amount":99.99,"order_id":"123","processed_by":"wasm-module","timestamp":"2024-01-15T10:00:00Z"},"headers":{"X-WASM-Processed":"true"}}"#
        + "\n"

    package static var transformInput: WasmTransformInput {
        WasmTransformInput(payload: ["order_id": "123", "amount": 99.99], headers: [:], direction: "inbound")
    }
}

/// A module that took long to compile in a debug build (the standard-Go example: seconds), shared
/// by the tests that need it.
package actor CompiledGoModule {
    package static let shared = CompiledGoModule()
    private var transformer: WasmTransformer?

    /// The Go example, loaded once with a timeout generous enough for debug and sanitizer builds.
    package func transformer(executor: WasmExecutor) async throws -> WasmTransformer {
        if let transformer { return transformer }
        let loaded = try await WasmTransformer.load(
            path: ExampleModules.path("enrich-go/enrich.wasm"),
            configuration: WasmModuleConfiguration(timeout: .seconds(300)),
            executor: executor
        )
        transformer = loaded
        return loaded
    }

    package static let executor = WasmExecutor(threadCount: 2, name: "test-go")
}

/// A temporary directory removed when the test ends.
package final class TemporaryDirectory: Sendable {
    package let path: String

    package init() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("fiso-wasm-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        path = base.path
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }

    package func file(_ name: String) -> String { path + "/" + name }

    package func write(_ name: String, _ bytes: [UInt8]) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: file(name)))
    }
}

/// Generous settings for tests that are not about limits: debug and ThreadSanitizer builds of the
/// interpreter are 10–50 times slower than release builds.
extension WasmModuleConfiguration {
    package static func testing(
        timeout: Duration = .seconds(120),
        environment: [String: String] = [:],
        maxConcurrency: Int = 4
    ) -> WasmModuleConfiguration {
        WasmModuleConfiguration(timeout: timeout, environment: environment, maxConcurrency: maxConcurrency)
    }
}

/// Runs `body` and returns the `WasmError` it throws, recording an issue if it throws none.
package func expectWasmError(
    _ sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> Void
) async -> WasmError? {
    do {
        try await body()
        Issue.record("expected a WasmError, but the call succeeded", sourceLocation: sourceLocation)
    } catch let error as WasmError {
        return error
    } catch {
        Issue.record("expected a WasmError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

/// Waits until `condition` holds or `limit` passes; returns how long it took, or nil on timeout.
package func waitUntil(limit: Duration, _ condition: () -> Bool) async throws -> Duration? {
    let clock = ContinuousClock()
    let start = clock.now
    while !condition() {
        if clock.now - start > limit { return nil }
        try await Task.sleep(for: .milliseconds(2))
    }
    return clock.now - start
}

extension Duration {
    package var milliseconds: Double {
        Double(components.seconds) * 1000 + Double(components.attoseconds) * 1e-15
    }
}

/// Hand-assembled modules for the cases the example modules do not cover (WAT in comments).
package enum TestModules {
    /// `(module (import "env" "log" (func $log (param i32))) (memory (export "memory") 1)
    ///  (func (export "_start") (call $log (i32.const 1))))`
    package static let unknownImport: [UInt8] = [
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x60, 0x01, 0x7f, 0x00, 0x60, 0x00, 0x00,
        0x02, 0x0b, 0x01, 0x03, 0x65, 0x6e, 0x76, 0x03, 0x6c, 0x6f, 0x67, 0x00, 0x00, 0x03, 0x02, 0x01, 0x01, 0x05,
        0x03, 0x01, 0x00, 0x01, 0x07, 0x13, 0x02, 0x06, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 0x02, 0x00, 0x06, 0x5f,
        0x73, 0x74, 0x61, 0x72, 0x74, 0x00, 0x01, 0x0a, 0x08, 0x01, 0x06, 0x00, 0x41, 0x01, 0x10, 0x00, 0x0b,
    ]

    /// `(module (memory (export "memory") 1) (func (export "_initialize")))`: a WASI reactor.
    package static let reactor: [UInt8] = [
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00, 0x03, 0x02, 0x01, 0x00,
        0x05, 0x03, 0x01, 0x00, 0x01, 0x07, 0x18, 0x02, 0x06, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 0x02, 0x00, 0x0b,
        0x5f, 0x69, 0x6e, 0x69, 0x74, 0x69, 0x61, 0x6c, 0x69, 0x7a, 0x65, 0x00, 0x00, 0x0a, 0x04, 0x01, 0x02, 0x00,
        0x0b,
    ]

    /// Imports `wasi_snapshot_preview1.fd_write` with the wrong type `(param i32)`.
    package static let wrongSignature: [UInt8] = [
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x60, 0x01, 0x7f, 0x00, 0x60, 0x00, 0x00,
        0x02, 0x23, 0x01, 0x16, 0x77, 0x61, 0x73, 0x69, 0x5f, 0x73, 0x6e, 0x61, 0x70, 0x73, 0x68, 0x6f, 0x74, 0x5f,
        0x70, 0x72, 0x65, 0x76, 0x69, 0x65, 0x77, 0x31, 0x08, 0x66, 0x64, 0x5f, 0x77, 0x72, 0x69, 0x74, 0x65, 0x00,
        0x00, 0x03, 0x02, 0x01, 0x01, 0x05, 0x03, 0x01, 0x00, 0x01, 0x07, 0x13, 0x02, 0x06, 0x6d, 0x65, 0x6d, 0x6f,
        0x72, 0x79, 0x02, 0x00, 0x06, 0x5f, 0x73, 0x74, 0x61, 0x72, 0x74, 0x00, 0x01, 0x0a, 0x04, 0x01, 0x02, 0x00,
        0x0b,
    ]

    /// `(module (memory (export "memory") 1) (func (export "_start") (i32.const 1)))`: well formed,
    /// but the function body leaves a value its type does not return, so it fails validation.
    package static let invalidFunctionBody: [UInt8] = [
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00, 0x03, 0x02, 0x01, 0x00,
        0x05, 0x03, 0x01, 0x00, 0x01, 0x07, 0x13, 0x02, 0x06, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 0x02, 0x00, 0x06,
        0x5f, 0x73, 0x74, 0x61, 0x72, 0x74, 0x00, 0x00, 0x0a, 0x06, 0x01, 0x04, 0x00, 0x41, 0x01, 0x0b,
    ]

    /// `(module (memory (export "memory") 1) (func (export "_start")))`: does nothing, exits 0,
    /// writes nothing.
    package static let minimalCommand: [UInt8] = [
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00, 0x03, 0x02, 0x01, 0x00,
        0x05, 0x03, 0x01, 0x00, 0x01, 0x07, 0x13, 0x02, 0x06, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 0x02, 0x00, 0x06,
        0x5f, 0x73, 0x74, 0x61, 0x72, 0x74, 0x00, 0x00, 0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b,
    ]
}

/// Threads for the tests' blocking work (compiling, running a module directly on an engine), so
/// that it never occupies Swift's cooperative thread pool, on which the other tests' awaits
/// resume — exactly the rule the runtime follows.
package enum Blocking {
    package static let executor = WasmExecutor(threadCount: 2, name: "test-blocking")

    package static func run<Result: Sendable>(_ work: @escaping @Sendable () throws -> Result) async throws -> Result {
        try await executor.run(work)
    }
}
