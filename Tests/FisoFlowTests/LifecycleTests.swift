import FisoConcurrency
import FisoFlow
import FisoFlowTestSupport
import FisoJSON
import Foundation
import NIOConcurrencyHelpers
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
    private let flag = NIOLockedValueBox(false)
    var isSet: Bool { flag.withLockedValue { $0 } }
    func set() { flag.withLockedValue { $0 = true } }
}

@Suite struct ReadinessTests {
    @Test func readyzIsUnavailableUntilEveryFlowStarted() async throws {
        let (gateName, gate) = TestGates.make()
        var components = ComponentRegistry.standard
        components.sources.append(GatedSourceSettings.self)
        let directory = try TemporaryDirectory()
        try directory.write(
            "gated.yaml", "name: gated\nsource: {type: gated, config: {gate: \(gateName)}}\nsink: {type: stdout}\n")
        try await withRunningServer(directory: directory.path, components: components, waitForReady: false) { server in
            try await waitUntil("the metrics port is bound") { server.server.metricsPort.port != nil }
            let starting = try await server.get(port: server.metricsPort, "/readyz")
            #expect(starting.status == 503)
            #expect(try JSONValue(parsing: starting.body)["phase"] == "starting")
            let health = try await server.get(port: server.metricsPort, "/healthz")
            #expect(health.status == 200, "alive while starting")
            gate.fire()
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
            let observed = NIOLockedValueBox<[Int]>([])
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
                    if let status { observed.withLockedValue { $0.append(status) } }
                    return status == 503
                }
                _ = client
                let finished = try await reply
                #expect(finished.status == 200, "the event in flight completes during the drain")
            }
            #expect(observed.withLockedValue { $0.last } == 503)
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
        let (gateName, _) = TestGates.make(failing: true)
        var registry = ComponentRegistry.standard
        registry.sources.append(GatedSourceSettings.self)
        let components = registry
        try await withTestReceiver { receiver in
            let directory = try TemporaryDirectory()
            try directory.write(
                "broken.yaml",
                "name: broken\nsource: {type: gated, config: {gate: \(gateName)}}\nsink: {type: stdout}\n")
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

/// Gates a test opens to let a `gated` test source finish starting, by name, so that a flow file
/// can say which gate its source waits for: `source: {type: gated, config: {gate: NAME}}`.
enum TestGates {
    private static let gates = NIOLockedValueBox<[String: (gate: AsyncSignal<Void>, failing: Bool)]>([:])

    /// A new gate; `failing` makes the source fail at once instead of waiting.
    static func make(failing: Bool = false) -> (name: String, gate: AsyncSignal<Void>) {
        let name = "gate-\(UInt64.random(in: 0...UInt64.max))"
        let gate = AsyncSignal<Void>()
        gates.withLockedValue { $0[name] = (gate, failing) }
        return (name, gate)
    }

    static func named(_ name: String) -> (gate: AsyncSignal<Void>, failing: Bool)? {
        gates.withLockedValue { $0[name] }
    }
}

/// `source.type: gated`: a source that starts only when its test opens the gate (or fails at once).
struct GatedSourceSettings: SourceSettings {
    static let typeName = "gated"
    static let configKeys = ["gate"]
    let gate: AsyncSignal<Void>
    let failing: Bool

    static func parse(_ config: ConfigMapping, context: ConfigContext) -> Self? {
        guard let name = config["gate"].requiredString() else { return nil }
        guard let entry = TestGates.named(name) else {
            config["gate"].problem("no test gate \(name)")
            return nil
        }
        return GatedSourceSettings(gate: entry.gate, failing: entry.failing)
    }

    func makeComponent(context: FlowBuildContext) async throws -> any EventSource {
        GatedSource(gate: gate, failing: failing)
    }
}

struct GatedSource: EventSource {
    let gate: AsyncSignal<Void>
    let failing: Bool
    var description: String { "gated" }

    struct StartFailure: Error, CustomStringConvertible {
        var description: String { "the gated source was told to fail" }
    }

    func run(pipeline: Pipeline, lifecycle: SourceLifecycle) async throws {
        if failing { throw StartFailure() }
        try await gate.wait()
        lifecycle.markStarted()
        try? await lifecycle.waitForStopRequest()
        try? await pipeline.drain()
    }
}
