import FisoFlow
import FisoFlowTestSupport
import FisoJSON
import FisoTemporal
import FisoTemporalTesting
import Foundation
import Testing

/// A flow with an HTTP source on a free port and a temporal sink; `sink` lines go under `config:`.
func temporalFlow(name: String, hostPort: String, sink: [String], extra: String = "") -> String {
    var lines = [
        "name: \(name)", "source:", "  type: http", "  config:", "    listenAddr: \"127.0.0.1:0\"", "    path: /in",
        "sink:", "  type: temporal", "  config:", "    hostPort: \"\(hostPort)\"",
    ]
    lines += sink.map { "    " + $0 }
    return lines.joined(separator: "\n") + "\n" + extra
}

/// HTTP source → temporal sink against a real in-memory Temporal, checked with the Temporal CLI.
@Suite("Temporal sink flows", .serialized)
struct TemporalFlowTests {
    static let started = "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"
    static let startedAttributes = "workflowExecutionStartedEventAttributes"

    @Test("start with params and a template id; start without params and a CEL id")
    func startModes() async throws {
        let temporal = try await TemporalDevServer.start()
        let directory = try TemporaryDirectory()
        try directory.write(
            "params.yaml",
            temporalFlow(
                name: "params", hostPort: temporal.address,
                sink: [
                    "taskQueue: orders", "workflowType: ProcessOrder", "workflowIdExpr: \"order-{{.order_id}}\"",
                    "params:", "  - expr: data.order_id", "  - expr: data.amount * 2", "  - expr: data.customer",
                ]))
        try directory.write(
            "plain.yaml",
            temporalFlow(
                name: "plain", hostPort: temporal.address,
                sink: [
                    "taskQueue: orders", "workflowType: ProcessOrder", "workflowIdExpr: '\"cel-\" + data.order_id'",
                ]
            ).replacingOccurrences(of: "path: /in", with: "path: /plain"))
        do {
            try await withRunningServer(directory: directory.path) { server in
                let body = #"{"order_id":"o-1","amount":21,"customer":{"id":"c-9"}}"#
                let first = try await server.post("/in", body)
                #expect((200..<300).contains(first.status), "\(first.body)")
                let input = try await temporal.payloads(
                    of: "order-o-1", eventType: Self.started, attributes: Self.startedAttributes)
                #expect(input.count == 3)
                #expect(input.first as? String == "o-1")
                #expect((input.dropFirst().first as? NSNumber)?.intValue == 42)
                #expect((input.last as? [String: Any])?["id"] as? String == "c-9")

                let second = try await server.post("/plain", #"{"order_id":"o-2","note":"hi"}"#)
                #expect((200..<300).contains(second.status), "\(second.body)")
                let whole = try await temporal.payloads(
                    of: "cel-o-2", eventType: Self.started, attributes: Self.startedAttributes)
                // Without params the one argument is the whole CloudEvent, as the Go original sends it.
                #expect(whole.count == 1)
                let cloudEvent = whole.first as? [String: Any]
                #expect(cloudEvent?["specversion"] as? String == "1.0")
                #expect(cloudEvent?["source"] as? String == "fiso-flow/plain")
                #expect((cloudEvent?["id"] as? String)?.isEmpty == false)
                let data = cloudEvent?["data"] as? [String: Any]
                #expect(data?["order_id"] as? String == "o-2")
                #expect(data?["note"] as? String == "hi")
            }
        } catch {
            Issue.record("\(error)")
        }
        await temporal.stop()
    }

    @Test("a plain workflow id; the same CloudEvent twice (same request id) starts one workflow")
    func deduplicatedStart() async throws {
        let temporal = try await TemporalDevServer.start()
        let directory = try TemporaryDirectory()
        try directory.write(
            "f.yaml",
            temporalFlow(
                name: "dedup", hostPort: temporal.address,
                sink: ["taskQueue: q", "workflowType: Once", "workflowIdExpr: fixed-order-workflow"]))
        do {
            try await withRunningServer(directory: directory.path) { server in
                let event = #"{"specversion":"1.0","id":"ce-42","source":"test","type":"t","data":{"n":1}}"#
                for _ in 0..<2 {
                    let response = try await server.post(
                        "/in", event, headers: [("Content-Type", "application/cloudevents+json")])
                    #expect((200..<300).contains(response.status), "\(response.body)")
                }
                #expect(try await temporal.count(of: Self.started, in: "fixed-order-workflow") == 1)
                let list = try await temporal.cli(["workflow", "list", "-o", "json"])
                let runs = try JSONSerialization.jsonObject(with: Data(list.utf8)) as? [[String: Any]] ?? []
                #expect(runs.count == 1)
                let input = try await temporal.payloads(
                    of: "fixed-order-workflow", eventType: Self.started, attributes: Self.startedAttributes)
                let cloudEvent = input.first as? [String: Any]
                #expect(cloudEvent?["id"] as? String == "ce-42")
                #expect((cloudEvent?["data"] as? [String: Any])?["n"] as? Int == 1)
            }
        } catch {
            Issue.record("\(error)")
        }
        await temporal.stop()
    }

    @Test("signal mode reaches a running workflow; a missing workflow is a permanent HTTP error")
    func signals() async throws {
        let temporal = try await TemporalDevServer.start()
        _ = try await temporal.cli([
            "workflow", "start", "--workflow-id", "waiting-o-7", "--type", "WaitForSignal", "--task-queue", "signals",
        ])
        let directory = try TemporaryDirectory()
        try directory.write(
            "f.yaml",
            temporalFlow(
                name: "signal", hostPort: temporal.address,
                sink: [
                    "taskQueue: signals", "workflowType: WaitForSignal", "mode: signal", "signalName: order-update",
                    "workflowIdExpr: \"waiting-{{.order_id}}\"",
                ],
                extra: "errorHandling: {maxRetries: 5, backoff: {initial: 10ms}}\n"))
        do {
            try await withRunningServer(directory: directory.path) { server in
                let ok = try await server.post("/in", #"{"order_id":"o-7","status":"paid"}"#)
                #expect((200..<300).contains(ok.status), "\(ok.body)")
                let input = try await temporal.payloads(
                    of: "waiting-o-7", eventType: "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED",
                    attributes: "workflowExecutionSignaledEventAttributes")
                // The signal carries the whole CloudEvent, as a start without params does.
                let signalled = input.first as? [String: Any]
                #expect(signalled?["specversion"] as? String == "1.0")
                #expect((signalled?["data"] as? [String: Any])?["status"] as? String == "paid")

                let retriesBefore = server.metric("fiso_flow_sink_retries_total{flow=\"signal\"}") ?? 0
                let missing = try await server.post("/in", #"{"order_id":"nobody","status":"paid"}"#)
                #expect(missing.status >= 400)
                // NOT_FOUND is permanent: no retries.
                #expect((server.metric("fiso_flow_sink_retries_total{flow=\"signal\"}") ?? 0) == retriesBefore)
            }
        } catch {
            Issue.record("\(error)")
        }
        await temporal.stop()
    }

    /// A flow's state in `/readyz`.
    static func flowState(_ server: RunningServer, _ name: String) -> (state: String?, detail: String?) {
        guard case .object(let root) = server.runtime.status.report(), case .object(let flows)? = root["flows"],
            case .object(let flow)? = flows[name]
        else { return (nil, nil) }
        return (flow["state"]?.stringValue, flow["detail"]?.stringValue)
    }

    @Test("the flow fails in /readyz while the frontend is down, starts once it is up; deliveries retry")
    func serverDownThenUp() async throws {
        let port = try TemporalDevServer.freePort()
        let directory = try TemporaryDirectory()
        try directory.write(
            "f.yaml",
            temporalFlow(
                name: "down", hostPort: "127.0.0.1:\(port)",
                sink: ["taskQueue: q", "workflowType: W", "workflowIdExpr: \"w-{{.n}}\"", "timeout: 2s"],
                extra: "errorHandling: {maxRetries: 60, backoff: {initial: 200ms, max: 500ms}}\n"))
        // A second flow keeps the runtime up while the first cannot start.
        try directory.write(
            "other.yaml",
            "name: other\nsource: {type: http, config: {listenAddr: \"127.0.0.1:0\", path: /other}}\nsink: {type: stdout}\n"
        )
        try await withRunningServer(directory: directory.path, waitForReady: false) { server in
            try await waitUntil("the flow is reported failed", timeout: .seconds(30)) {
                Self.flowState(server, "down").state == "failed"
            }
            #expect(Self.flowState(server, "down").detail?.contains("Temporal frontend") == true)
            let first = try await TemporalDevServer.start(port: port)
            try await waitUntil("the flow starts once Temporal is up", timeout: .seconds(60)) {
                Self.flowState(server, "down").state == "running"
            }
            let ok = try await server.post("/in", #"{"n":1}"#)
            #expect((200..<300).contains(ok.status), "\(ok.body)")
            // Down again: the delivery retries until a new server answers on the same port.
            await first.stop()
            async let delivery = server.post("/in", #"{"n":2}"#)
            try await Task.sleep(for: .seconds(1.5))
            let second = try await TemporalDevServer.start(port: port)
            let retried = try await delivery
            #expect((200..<300).contains(retried.status), "\(retried.body)")
            #expect(try await second.count(of: Self.started, in: "w-2") == 1)
            #expect((server.metric("fiso_flow_sink_retries_total{flow=\"down\"}") ?? 0) >= 1)
            await second.stop()
        }
    }
}

/// `fiso-flow validate`: problems with field paths.
@Suite("Temporal sink configuration")
struct TemporalConfigTests {
    func problems(_ sink: [String]) -> [ConfigProblem] {
        let text = temporalFlow(name: "v", hostPort: "temporal:7233", sink: sink)
        switch FlowFileParser(registry: .standard, sharedKafkaClusters: [:], kafkaConfigPath: "kafka.yaml")
            .parse(text, file: "flow.yaml")
        {
        case .success: return []
        case .failure(let error): return error.problems
        }
    }

    @Test("a complete configuration is valid")
    func valid() {
        #expect(
            problems([
                "taskQueue: q", "workflowType: W", "namespace: orders", "timeout: 3s", "workflowIdExpr: \"{{.id}}\"",
                "params: [{expr: data.id}]", "tls: {enabled: true, skipVerify: true}", "auth: {apiKeyEnv: KEY}",
            ]).isEmpty)
    }

    @Test("missing taskQueue and workflowType are reported with their paths")
    func missing() {
        let found = problems([])
        #expect(found.contains { $0.path == "sink.config.taskQueue" })
        #expect(found.contains { $0.path == "sink.config.workflowType" })
    }

    @Test("two auth methods, azure, and signal without a name are errors")
    func authAndSignal() {
        let two = problems(["taskQueue: q", "workflowType: W", "auth: {apiKey: a, tokenFile: /t}"])
        #expect(two.contains { $0.path == "sink.config.auth" && $0.message.contains("only one auth method") })
        let mtls = problems([
            "taskQueue: q", "workflowType: W", "auth: {apiKey: a}", "tls: {certFile: /c, keyFile: /k}",
        ])
        #expect(mtls.contains { $0.path == "sink.config.auth" })
        let azure = problems(["taskQueue: q", "workflowType: W", "auth: {azure: {scope: s}}"])
        #expect(azure.contains { $0.path == "sink.config.auth.azure" && $0.message.contains("not supported") })
        let signal = problems(["taskQueue: q", "workflowType: W", "mode: signal"])
        #expect(signal.contains { $0.path == "sink.config.signalName" })
        #expect(signal.contains { $0.path == "sink.config.workflowIdExpr" })
        let template = problems(["taskQueue: q", "workflowType: W", "workflowIdExpr: \"a-{{order}}\""])
        #expect(template.contains { $0.path == "sink.config.workflowIdExpr" })
        let oidc = problems(["taskQueue: q", "workflowType: W", "auth: {oidc: {tokenURL: https://idp/token}}"])
        #expect(oidc.contains { $0.path == "sink.config.auth.oidc.clientID" })
    }
}
