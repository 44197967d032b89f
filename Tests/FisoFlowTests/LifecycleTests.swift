import FisoFlow
import FisoJSON
import Foundation
import Synchronization
import Testing

/// Sends requests from `workers` concurrent loops until `stop` is set; returns every status seen.
private func load(
    _ server: RunningServer, path: String, workers: Int = 4, stop: Stop
) async -> [Int] {
    await withTaskGroup(of: [Int].self) { group in
        for worker in 0..<workers {
            group.addTask {
                var statuses: [Int] = []
                var sequence = 0
                while !stop.isSet {
                    sequence += 1
                    let status = (try? await server.post(path, #"{"worker":\#(worker),"n":\#(sequence)}"#).status) ?? -1
                    statuses.append(status)
                }
                return statuses
            }
        }
        var all: [Int] = []
        for await statuses in group { all += statuses }
        return all
    }
}

final class Stop: Sendable {
    private let flag = Mutex(false)
    var isSet: Bool { flag.withLock { $0 } }
    func set() { flag.withLock { $0 = true } }
}

@Suite struct ReadinessTests {
    @Test func readyzIsUnavailableUntilEveryFlowStarted() async throws {
        let gate = TestGate()
        var components = ComponentRegistry.standard
        components.sources.append(.gated(gate))
        let directory = try TemporaryDirectory()
        try directory.write("gated.yaml", "name: gated\nsource: {type: gated}\nsink: {type: stdout}\n")
        try await withRunningServer(directory: directory.path, components: components, waitForReady: false) { server in
            try await waitUntil("the metrics port is bound") { server.server.metricsPort.port != nil }
            let starting = try await server.get(port: server.metricsPort, "/readyz")
            #expect(starting.status == 503)
            #expect(try JSONValue(parsing: starting.body)["phase"] == "starting")
            let health = try await server.get(port: server.metricsPort, "/healthz")
            #expect(health.status == 200, "alive while starting")
            gate.open()
            try await waitUntil("readyz answers 200") {
                (try? await server.get(port: server.metricsPort, "/readyz").status) == 200
            }
            let ready = try JSONValue(parsing: try await server.get(port: server.metricsPort, "/readyz").body)
            #expect(ready["flows"]?["gated"]?["state"] == "running")
        }
    }

    @Test func readyzIsUnavailableWhileDraining() async throws {
        try await withTestReceiver({ _, _ in .init(status: 200, body: "{}", delay: .milliseconds(1500)) }) { receiver in
            let directory = try TemporaryDirectory()
            try directory.write("slow.yaml", httpFlow(name: "slow", sinkURL: receiver.url))
            let observed = Mutex<[Int]>([])
            try await withRunningServer(directory: directory.path) { server in
                #expect(try await server.get(port: server.metricsPort, "/readyz").status == 200)
                async let reply = server.post("/in", "{}")
                try await waitUntil("the receiver holds the event") { receiver.count == 1 }
                let metricsPort = server.metricsPort
                let client = server.client
                Task {
                    // Shut down while the event is in flight; readiness must drop at once.
                    await server.server.shutdown()
                }
                try await waitUntil("readyz answers 503") {
                    let status = try? await server.get(port: metricsPort, "/readyz").status
                    if let status { observed.withLock { $0.append(status) } }
                    return status == 503
                }
                _ = client
                let finished = try await reply
                #expect(finished.status == 200, "the event in flight completes during the drain")
            }
            #expect(observed.withLock { $0.last } == 503)
        }
    }
}

@Suite struct ReloadTests {
    @Test func changingAFlowFileUnderLoadLosesNoRequest() async throws {
        try await withTestReceiver { first in
            try await withTestReceiver { second in
                let directory = try TemporaryDirectory()
                try directory.write("f.yaml", httpFlow(name: "f", sinkURL: first.url))
                try await withRunningServer(directory: directory.path) { server in
                    let stop = Stop()
                    async let statuses = load(server, path: "/in", stop: stop)
                    try await waitUntil("events reach the first sink") { first.count >= 20 }
                    try directory.write("f.yaml", httpFlow(name: "f", sinkURL: second.url))
                    try await waitUntil("events reach the second sink") { second.count >= 20 }
                    stop.set()
                    let all = await statuses
                    #expect(all.allSatisfy { $0 == 200 }, "statuses other than 200: \(all.filter { $0 != 200 })")
                    #expect(first.count + second.count == all.count)
                    #expect(server.metric(#"fiso_flow_config_reloads_total{result="success"}"#) == 1)
                }
            }
        }
    }

    @Test func aConfigMapDataSwapReloadsUnderLoad() async throws {
        try await withTestReceiver { first in
            try await withTestReceiver { second in
                let configMap = try ConfigMapDirectory(["flow.yaml": httpFlow(name: "cm", sinkURL: first.url)])
                try await withRunningServer(directory: configMap.path) { server in
                    let stop = Stop()
                    async let statuses = load(server, path: "/in", stop: stop)
                    try await waitUntil("events reach the first sink") { first.count >= 20 }
                    try configMap.update(["flow.yaml": httpFlow(name: "cm", sinkURL: second.url)])
                    try await waitUntil("events reach the second sink") { second.count >= 20 }
                    stop.set()
                    let all = await statuses
                    #expect(all.allSatisfy { $0 == 200 }, "statuses other than 200: \(all.filter { $0 != 200 })")
                    #expect(first.count + second.count == all.count)
                }
            }
        }
    }

    @Test func anInvalidNewVersionKeepsTheRunningFlow() async throws {
        try await withTestReceiver { receiver in
            let directory = try TemporaryDirectory()
            try directory.write("f.yaml", httpFlow(name: "f", sinkURL: receiver.url))
            try await withRunningServer(directory: directory.path) { server in
                try directory.write("f.yaml", "name: f\nsource: {type: http, config: {listenAddr: nowhere}}\n")
                try await waitUntil("the reload is refused") {
                    server.metric(#"fiso_flow_config_reloads_total{result="error"}"#) == 1
                }
                let reply = try await server.post("/in", "{}")
                #expect(reply.status == 200)
                #expect(receiver.count == 1)
                // Fixing the file applies it.
                try directory.write("f.yaml", httpFlow(name: "f", path: "/fixed", sinkURL: receiver.url))
                try await waitUntil("the fixed version runs") {
                    (try? await server.post("/fixed", "{}").status) == 200
                }
            }
        }
    }

    @Test func addingAndRemovingFilesStartsAndStopsFlows() async throws {
        try await withTestReceiver { receiver in
            let directory = try TemporaryDirectory()
            try directory.write("a.yaml", httpFlow(name: "a", path: "/a", sinkURL: receiver.url))
            try await withRunningServer(directory: directory.path) { server in
                try directory.write("b.yaml", httpFlow(name: "b", path: "/b", sinkURL: receiver.url))
                try await waitUntil("flow b runs") { (try? await server.post("/b", "{}").status) == 200 }
                try directory.remove("b.yaml")
                try await waitUntil("flow b is gone") { (try? await server.post("/b", "{}").status) == 404 }
                let stillThere = try await server.post("/a", "{}")
                #expect(stillThere.status == 200)
                let ready = try JSONValue(parsing: try await server.get(port: server.metricsPort, "/readyz").body)
                #expect(ready["flows"]?["b"] == nil)
            }
        }
    }

    @Test func aFlowThatFailsToStartDoesNotStopTheOthers() async throws {
        let gate = TestGate()
        var registry = ComponentRegistry.standard
        registry.sources.append(.gated(gate, failing: true))
        let components = registry
        try await withTestReceiver { receiver in
            let directory = try TemporaryDirectory()
            try directory.write("broken.yaml", "name: broken\nsource: {type: gated}\nsink: {type: stdout}\n")
            try directory.write("good.yaml", httpFlow(name: "good", sinkURL: receiver.url))
            try await withRunningServer(directory: directory.path, components: components) { server in
                let reply = try await server.post("/in", "{}")
                #expect(reply.status == 200)
                let report = try JSONValue(parsing: try await server.get(port: server.metricsPort, "/readyz").body)
                #expect(report["flows"]?["broken"]?["state"] == "failed")
                #expect(report["flows"]?["good"]?["state"] == "running")
            }
        }
    }
}

/// A gate a test opens to let the `gated` test source finish starting.
final class TestGate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func open() {
        let waiters = state.withLock { state in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func wait() async {
        await withCheckedContinuation { continuation in
            let open = state.withLock { state in
                if state.open { return true }
                state.waiters.append(continuation)
                return false
            }
            if open { continuation.resume() }
        }
    }
}

struct GatedSourceSettings: SourceSettings {}

struct GatedSource: EventSource {
    let gate: TestGate
    let failing: Bool
    var description: String { "gated" }

    struct StartFailure: Error, CustomStringConvertible {
        var description: String { "the gated source was told to fail" }
    }

    func run(pipeline: Pipeline, lifecycle: SourceLifecycle) async throws {
        if failing { throw StartFailure() }
        await gate.wait()
        lifecycle.markStarted()
        await lifecycle.waitForStopRequest()
        await pipeline.drain()
    }
}

extension SourceType {
    /// A source that starts only when the test opens its gate (or fails at once).
    static func gated(_ gate: TestGate, failing: Bool = false) -> SourceType {
        SourceType(
            name: "gated", configKeys: [], parse: { _, _ in GatedSourceSettings() },
            makeSource: { _, _ in GatedSource(gate: gate, failing: failing) }
        )
    }
}
