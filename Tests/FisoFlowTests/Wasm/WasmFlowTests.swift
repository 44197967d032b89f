import FisoFlow
import FisoFlowTestSupport
import FisoJSON
import FisoWasm
import Foundation
import Synchronization
import Testing

/// The committed example and fault modules, found from this file's real path.
private let modulesDirectory: String = {
    URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("examples/modules").path
}()

private func module(_ relativePath: String) -> String { "\(modulesDirectory)/\(relativePath)" }

/// An `interceptors:` block with one wasm interceptor per module path.
private func wasmInterceptors(_ modules: [(path: String, extra: String)]) -> String {
    var lines = ["interceptors:"]
    for (path, extra) in modules {
        lines += ["  - type: wasm", "    config:", "      module: \(path)"]
        if !extra.isEmpty { lines.append("      \(extra)") }
    }
    return lines.joined(separator: "\n") + "\n"
}

/// A counter tasks of a task group can share.
private final class SharedCounter: Sendable {
    private let count = Atomic(0)
    func increment() { count.add(1, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}

@Suite struct WasmFlowTests {
    @Test func theModulesPayloadAndHeadersReachTheHTTPSink() async throws {
        try await withTestReceiver { receiver in
            let directory = try TemporaryDirectory()
            let flow = httpFlow(
                name: "orders", path: "/orders", sinkURL: receiver.url,
                extra: wasmInterceptors([(module("enrich-c/enrich.wasm"), "")])
            )
            try directory.write("orders.yaml", flow)
            try await withRunningServer(directory: directory.path) { server in
                let reply = try await server.post("/orders", #"{"order_id":"123","amount":99.99}"#)
                #expect(reply.status == 200)
                let received = try #require(receiver.requests.first)
                #expect(received.header("X-WASM-Processed") == "true")
                let data = try #require(received.json?["data"])
                #expect(data["order_id"] == "123")
                #expect(data["amount"] == 99.99)
                #expect(data["processed_by"] == "wasm-module")
                #expect(data["timestamp"]?.stringValue?.isEmpty == false)
                #expect(received.json?["specversion"] == "1.0")
            }
        }
    }

    @Test(
        .enabled(
            if: WasmtimeEngine.isAvailable,
            "needs the Wasmtime library (scripts/setup.sh test installs it; FisoWasmTests fails without it when FISO_REQUIRE_WASMTIME=1)"
        )
    )
    func theGuidesGoModuleRunsOnWasmtimeInAFlow() async throws {
        try await withTestReceiver { receiver in
            let directory = try TemporaryDirectory()
            let flow = httpFlow(
                name: "go", sinkURL: receiver.url,
                extra: wasmInterceptors([(module("enrich-go/enrich.wasm"), "engine: wasmtime")])
            )
            try directory.write("go.yaml", flow)
            // Compiling 4 MiB of Go takes seconds, and much longer while other suites load the CPU.
            try await withRunningServer(directory: directory.path, readyTimeout: .seconds(120)) { server in
                for index in 0..<20 {
                    let reply = try await server.post("/in", #"{"order_id":"\#(index)","amount":1.5}"#)
                    #expect(reply.status == 200)
                }
                #expect(receiver.count == 20)
                let received = try #require(receiver.requests.last)
                #expect(received.header("X-WASM-Processed") == "true")
                #expect(received.json?["data"]?["processed_by"] == "wasm-module")
                #expect(received.json?["data"]?["order_id"] == "19")
            }
        }
    }

    /// A run cancelled while a flow's module still compiles ends once the compile is done. It
    /// used to hang: the flow's source was handed to a task group that had stopped taking work.
    @Test(.timeLimit(.minutes(2))) func cancellingTheRuntimeWhileAModuleCompilesEndsTheRun() async throws {
        struct TestFailed: Error {}
        try await withTestReceiver { receiver in
            let directory = try TemporaryDirectory()
            // The standard-Go module: compiling it takes the interpreter a second or more.
            let flow = httpFlow(
                name: "go", sinkURL: receiver.url,
                extra: wasmInterceptors([(module("enrich-go/enrich.wasm"), "engine: wasmkit")])
            )
            try directory.write("go.yaml", flow)
            await #expect(throws: TestFailed.self) {
                try await withRunningServer(directory: directory.path, waitForReady: false) { server in
                    try await Task.sleep(for: .milliseconds(20))
                    #expect(!server.runtime.status.isReady)
                    throw TestFailed()
                }
            }
        }
    }

    @Test func interceptorsRunInOrderAndTheLastHeadersWin() async throws {
        try await withTestReceiver { receiver in
            let directory = try TemporaryDirectory()
            // enrich adds fields and a header; the echo probe then replaces the whole envelope
            // with the one it is told to print, so the second module visibly ran after the first.
            let replacement = #"{"payload":{"step":"second"},"headers":{"X-Second":"yes"}}"#
            let flow = httpFlow(
                name: "chain", sinkURL: receiver.url,
                extra: wasmInterceptors([
                    (module("enrich-c/enrich.wasm"), ""),
                    (module("probes/echo.wasm"), "env: {FISO_ECHO_OUTPUT: '\(replacement)'}"),
                ])
            )
            try directory.write("chain.yaml", flow)
            try await withRunningServer(directory: directory.path) { server in
                let reply = try await server.post("/in", #"{"order_id":"1"}"#, headers: [("X-Tenant", "acme")])
                #expect(reply.status == 200)
                let received = try #require(receiver.requests.first)
                #expect(received.json?["data"] == ["step": "second"])
                #expect(received.header("X-Second") == "yes")
                #expect(received.header("X-WASM-Processed") == nil, "headers returned by a module replace the event's")
                #expect(received.header("X-Tenant") == nil)
            }
        }
    }

    @Test func aMissingHeadersKeyKeepsTheEventHeaders() async throws {
        try await withTestReceiver { receiver in
            let directory = try TemporaryDirectory()
            let flow = httpFlow(
                name: "keep", sinkURL: receiver.url,
                extra: wasmInterceptors([
                    (module("probes/echo.wasm"), #"env: {FISO_ECHO_OUTPUT: '{"payload":{"kept":true}}'}"#)
                ])
            )
            try directory.write("keep.yaml", flow)
            try await withRunningServer(directory: directory.path) { server in
                let reply = try await server.post("/in", "{}", headers: [("X-Tenant", "acme")])
                #expect(reply.status == 200)
                let received = try #require(receiver.requests.first)
                #expect(received.json?["data"] == ["kept": true])
                #expect(received.header("X-Tenant") == "acme")
            }
        }
    }

    @Test(arguments: [
        ("faults/exit-1.wasm", "", "exit_code", "wasm: exit code 1"),
        ("faults/infinite-loop.wasm", "timeout: 200ms", "timeout", "timeout"),
        ("faults/memory-bomb.wasm", "memoryLimit: 4Mi", "out_of_memory", "memory"),
        ("faults/trap.wasm", "", "trap", "trap"),
        ("faults/invalid-json.wasm", "", "invalid_json", "invalid JSON"),
        ("faults/missing-payload.wasm", "", "invalid_json", "payload"),
        ("faults/huge-output.wasm", "maxOutputBytes: 64Ki", "output_too_large", "output too large"),
        ("faults/open-file.wasm", "", "exit_code", "exit code"),
    ])
    func aFailingModuleTakesTheErrorPathAndIsCounted(
        path: String, extra: String, reason: String, messagePart: String
    ) async throws {
        try await withTestReceiver { receiver in
            let directory = try TemporaryDirectory()
            try directory.write(
                "f.yaml", httpFlow(name: "f", sinkURL: receiver.url, extra: wasmInterceptors([(module(path), extra)]))
            )
            try await withRunningServer(directory: directory.path) { server in
                let reply = try await server.post("/in", #"{"n":1}"#)
                #expect(reply.status == 500)
                let body = try JSONValue(parsing: reply.body)
                #expect(body["code"] == "INTERCEPTOR_FAILED")
                let message = body["error"]?.stringValue ?? ""
                #expect(message.contains(messagePart), "\(message)")
                #expect(receiver.count == 0, "nothing reaches the sink")
                let moduleName = (path as NSString).lastPathComponent
                #expect(
                    server.metric(
                        #"fiso_flow_interceptor_errors_total{flow="f",module="\#(moduleName)",reason="\#(reason)"}"#)
                        == 1
                )
                #expect(server.metric(#"fiso_flow_transform_errors_total{flow="f",stage="interceptor"}"#) == 1)
                // The flow keeps serving after a module failure.
                let again = try await server.post("/in", #"{"n":2}"#)
                #expect(again.status == 500)
                #expect(server.runtime.status.isReady)
            }
        }
    }

    /// The engines this machine can run (Wasmtime only when its library loads).
    static let availableEngines = ["wasmkit"] + (WasmtimeEngine.isAvailable ? ["wasmtime"] : [])

    @Test(arguments: availableEngines)
    func aReactorModuleServesAFlowFromReusedInstances(engine: String) async throws {
        try await withTestReceiver { receiver in
            let directory = try TemporaryDirectory()
            let extra = "mode: reactor\n      engine: \(engine)\n      maxCallsPerInstance: 5\n      concurrency: 1"
            try directory.write(
                "r.yaml",
                httpFlow(
                    name: "r", sinkURL: receiver.url,
                    extra: wasmInterceptors([(module("faults/reactor-faults.wasm"), extra)]))
            )
            try await withRunningServer(directory: directory.path) { server in
                var calls: [JSONValue] = []
                for index in 0..<7 {
                    let reply = try await server.post("/in", #"{"n":\#(index)}"#)
                    #expect(reply.status == 200)
                    let received = try #require(receiver.requests.last)
                    #expect(received.header("X-Reactor") == "faults")
                    calls.append(received.json?["data"]?["calls"] ?? .null)
                }
                // One instance (concurrency 1) counts its calls; after five it is replaced. An inline
                // call preempted past its budget also replaces its instance (on a busy machine), so
                // a count may restart early, but never skips, never passes five, and does restart after it.
                let counts = calls.compactMap { value -> Int? in
                    if case .int(let count) = value { return Int(count) }
                    return nil
                }
                #expect(counts.count == 7, "\(calls)")
                #expect(counts.first == 1)
                for (previous, count) in zip(counts, counts.dropFirst()) {
                    #expect(count == previous + 1 || count == 1, "\(counts)")
                    if previous == 5 { #expect(count == 1, "\(counts)") }
                }
                #expect(counts.allSatisfy { (1...5).contains($0) }, "\(counts)")
                #expect((counts.max() ?? 0) >= 3, "instances are reused: \(counts)")
                // A trap fails the event, recycles the instance, and the flow goes on with a fresh one.
                let trapped = try await server.post("/in", ##"{"marker":"#trap"}"##)
                #expect(trapped.status == 500)
                #expect(
                    server.metric(
                        #"fiso_flow_interceptor_errors_total{flow="r",module="reactor-faults.wasm",reason="trap"}"#)
                        == 1
                )
                let after = try await server.post("/in", #"{"n":8}"#)
                #expect(after.status == 200)
                #expect(receiver.requests.last?.json?["data"]?["calls"] == 1)
            }
        }
    }

    @Test func theGuidesExampleAsAReactorGivesTheCommandsOutput() async throws {
        try await withTestReceiver { receiver in
            let directory = try TemporaryDirectory()
            try directory.write(
                "c.yaml",
                httpFlow(
                    name: "c", path: "/c", sinkURL: receiver.url,
                    extra: wasmInterceptors([(module("enrich-c/enrich.wasm"), "")]))
            )
            try directory.write(
                "r.yaml",
                httpFlow(
                    name: "r", path: "/r", sinkURL: receiver.url,
                    extra: wasmInterceptors([(module("enrich-reactor-c/enrich.wasm"), "mode: reactor")])
                )
            )
            try await withRunningServer(directory: directory.path) { server in
                let event = #"{"order_id":"123","amount":99.99,"note":"caf\u00e9"}"#
                #expect(try await server.post("/c", event).status == 200)
                #expect(try await server.post("/r", event).status == 200)
                #expect(receiver.count == 2)
                let command = try #require(receiver.requests.first?.json?["data"])
                let reactor = try #require(receiver.requests.last?.json?["data"])
                #expect(command["processed_by"] == "wasm-module")
                #expect(command == reactor)
                #expect(receiver.requests.last?.header("X-WASM-Processed") == "true")
            }
        }
    }

    @Test func aGzipCompressedModuleLoadsDirectly() async throws {
        try await withTestReceiver { receiver in
            let directory = try TemporaryDirectory()
            // A neutral name: the engine must detect gzip by its magic bytes.
            let copy = directory.file("enrich-module")
            try FileManager.default.copyItem(atPath: module("enrich-c/enrich.wasm.gz"), toPath: copy)
            try directory.write(
                "g.yaml", httpFlow(name: "g", sinkURL: receiver.url, extra: wasmInterceptors([(copy, "")])))
            try await withRunningServer(directory: directory.path) { server in
                let reply = try await server.post("/in", #"{"order_id":"9"}"#)
                #expect(reply.status == 200)
                #expect(receiver.requests.first?.json?["data"]?["processed_by"] == "wasm-module")
            }
        }
    }

    @Test func sixteenConcurrentCallsAllSucceed() async throws {
        try await withTestReceiver { receiver in
            let directory = try TemporaryDirectory()
            try directory.write(
                "c.yaml",
                httpFlow(
                    name: "c", sinkURL: receiver.url, extra: wasmInterceptors([(module("enrich-c/enrich.wasm"), "")]))
            )
            try await withRunningServer(directory: directory.path) { server in
                let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                    for index in 0..<16 {
                        group.addTask { try await server.post("/in", #"{"order_id":"\#(index)"}"#).status }
                    }
                    return try await group.reduce(into: [Int]()) { $0.append($1) }
                }
                #expect(statuses == Array(repeating: 200, count: 16))
                let ids = Set(receiver.requests.compactMap { $0.json?["data"]?["order_id"]?.stringValue })
                #expect(ids == Set((0..<16).map(String.init)))
                #expect(receiver.requests.allSatisfy { $0.header("X-WASM-Processed") == "true" })
            }
        }
    }

    @Test func aFlowWhoseModuleIsMissingStartsOnceTheFileAppears() async throws {
        try await withTestReceiver { receiver in
            let directory = try TemporaryDirectory()
            let modules = try TemporaryDirectory()
            let path = modules.file("enrich.wasm")
            try directory.write(
                "m.yaml", httpFlow(name: "m", sinkURL: receiver.url, extra: wasmInterceptors([(path, "")])))
            // A second flow that can start: with no startable flow at all the process exits at
            // start-up (fail fast), which is not what this test is about.
            try directory.write("plain.yaml", httpFlow(name: "plain", path: "/plain", sinkURL: receiver.url))
            try await withRunningServer(directory: directory.path, waitForReady: false) { server in
                try await waitUntil("the other flow serves") { server.runtime.status.isReady && server.ingressPort > 0 }
                let readyz = try await server.get(port: server.metricsPort, "/readyz")
                #expect(readyz.status == 200, "a failed flow does not hold the others out of service")
                let report = try JSONValue(parsing: readyz.body)
                #expect(report["flows"]?["m"]?["state"] == "failed")
                #expect(report["flows"]?["m"]?["detail"]?.stringValue?.contains("wasm module not found") == true)
                #expect(try await server.post("/in", "{}").status == 404)

                try FileManager.default.copyItem(atPath: module("enrich-c/enrich.wasm"), toPath: path)
                try await waitUntil("the flow starts once its module exists") {
                    let report = try JSONValue(parsing: try await server.get(port: server.metricsPort, "/readyz").body)
                    return report["flows"]?["m"]?["state"] == "running"
                }
                let reply = try await server.post("/in", #"{"order_id":"1"}"#)
                #expect(reply.status == 200)
                #expect(receiver.requests.first?.header("X-WASM-Processed") == "true")
            }
        }
    }

    @Test func replacingTheModuleUnderLoadLosesNoRequest() async throws {
        try await withTestReceiver { receiver in
            let directory = try TemporaryDirectory()
            let modules = try ConfigMapDirectory([:])
            let enrich = try Data(contentsOf: URL(fileURLWithPath: module("enrich-c/enrich.wasm")))
            let echo = try Data(contentsOf: URL(fileURLWithPath: module("probes/echo.wasm")))
            try modules.update(binary: ["transform.wasm": enrich])
            try directory.write(
                "r.yaml",
                httpFlow(
                    name: "r", sinkURL: receiver.url,
                    extra: wasmInterceptors([("\(modules.path)/transform.wasm", "")])
                )
            )
            try await withRunningServer(directory: directory.path, reloadInterval: .milliseconds(50)) { server in
                let failures = SharedCounter()
                let sent = SharedCounter()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for worker in 0..<4 {
                        group.addTask {
                            for index in 0..<40 {
                                let reply = try await server.post("/in", #"{"order_id":"\#(worker)-\#(index)"}"#)
                                sent.increment()
                                if reply.status != 200 { failures.increment() }
                            }
                        }
                    }
                    group.addTask {
                        try await waitUntil("some requests went through", timeout: .seconds(60)) { sent.value >= 20 }
                        try modules.update(binary: ["transform.wasm": echo])
                    }
                    try await group.waitForAll()
                }
                #expect(failures.value == 0)
                #expect(
                    server.metric(#"fiso_flow_module_reloads_total{flow="r",module="transform.wasm",result="success"}"#)
                        == 1)
                // The echo module returns its input: requests after the swap are not enriched.
                let last = try await server.post("/in", #"{"order_id":"after"}"#)
                #expect(last.status == 200)
                let received = try #require(receiver.requests.last)
                #expect(received.json?["data"] == ["order_id": "after"])
                #expect(receiver.requests.first?.json?["data"]?["processed_by"] == "wasm-module")
            }
        }
    }

    @Test func aBrokenNewModuleKeepsTheOldOneRunning() async throws {
        try await withTestReceiver { receiver in
            let directory = try TemporaryDirectory()
            let modules = try TemporaryDirectory()
            let path = modules.file("enrich.wasm")
            try FileManager.default.copyItem(atPath: module("enrich-c/enrich.wasm"), toPath: path)
            try directory.write(
                "b.yaml", httpFlow(name: "b", sinkURL: receiver.url, extra: wasmInterceptors([(path, "")])))
            try await withRunningServer(directory: directory.path, reloadInterval: .milliseconds(50)) { server in
                try Data("this is not wasm".utf8).write(to: URL(fileURLWithPath: path))
                try await waitUntil("the failed reload is counted") {
                    server.metric(#"fiso_flow_module_reloads_total{flow="b",module="enrich.wasm",result="error"}"#) == 1
                }
                let reply = try await server.post("/in", #"{"order_id":"1"}"#)
                #expect(reply.status == 200)
                #expect(receiver.requests.first?.json?["data"]?["processed_by"] == "wasm-module")
            }
        }
    }
}
