import FisoGRPC
import FisoTemporal
import FisoTemporalTesting
import Foundation
import GRPCCore
import Testing

/// The client against a real in-memory Temporal (`temporal server start-dev`), checked with the
/// Temporal CLI.
@Suite("Temporal client against temporal server start-dev", .serialized)
struct TemporalClientTests {
    static func json(_ text: String) -> TemporalPayload { .json(Array(text.utf8)) }

    @Test("a start carries json/plain inputs the server records; the same request id starts one run")
    func startAndDeduplicate() async throws {
        let server = try await TemporalDevServer.start()
        let client = try TemporalClient(connection: server.connection)
        do {
            let version = try await client.systemInfo(timeout: .seconds(5))
            #expect(!version.isEmpty)
            let start = WorkflowStart(
                workflowID: "client-start-1", workflowType: "ProcessOrder", taskQueue: "orders",
                input: [Self.json(#"{"order_id":"o-1","amount":12.5}"#), Self.json(#""second""#)],
                requestID: "request-1", header: ["x-correlation-id": Self.json(#""corr-1""#)]
            )
            let first = try await client.startWorkflow(start, timeout: .seconds(5))
            guard case .started(let runID) = first else {
                Issue.record("expected a start, got \(first)")
                return
            }
            // A retry with the same request id is the same start: same run, no second workflow.
            let again = try await client.startWorkflow(start, timeout: .seconds(5))
            #expect(again == .started(runID: runID))
            // Another request for the running workflow id: already running, not an error.
            var other = start
            other.requestID = "request-2"
            #expect(try await client.startWorkflow(other, timeout: .seconds(5)) == .alreadyRunning)

            let input = try await server.payloads(
                of: "client-start-1", eventType: "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED",
                attributes: "workflowExecutionStartedEventAttributes")
            #expect(input.count == 2)
            let order = input.first as? [String: Any]
            #expect(order?["order_id"] as? String == "o-1")
            #expect(order?["amount"] as? Double == 12.5)
            #expect(input.last as? String == "second")
            let description = try await server.describeWorkflow("client-start-1")
            let info = description["workflowExecutionInfo"] as? [String: Any]
            #expect((info?["type"] as? [String: Any])?["name"] as? String == "ProcessOrder")
            #expect((info?["execution"] as? [String: Any])?["runId"] as? String == runID)
            let history = try await server.history("client-start-1")
            #expect(
                history.filter { ($0["eventType"] as? String) == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED" }.count == 1)
        } catch {
            Issue.record("\(error)")
        }
        await client.shutdown()
        await server.stop()
    }

    @Test("a signal reaches a running workflow; a missing workflow is NOT_FOUND and permanent")
    func signal() async throws {
        let server = try await TemporalDevServer.start()
        let client = try TemporalClient(connection: server.connection)
        do {
            _ = try await server.cli([
                "workflow", "start", "--workflow-id", "client-signal-1", "--type", "WaitForSignal", "--task-queue",
                "signals",
            ])
            try await client.signalWorkflow(
                WorkflowSignal(
                    workflowID: "client-signal-1", signalName: "order-update",
                    input: [Self.json(#"{"status":"paid"}"#)],
                    requestID: "signal-request-1"),
                timeout: .seconds(5))
            let input = try await server.payloads(
                of: "client-signal-1", eventType: "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED",
                attributes: "workflowExecutionSignaledEventAttributes")
            #expect((input.first as? [String: Any])?["status"] as? String == "paid")

            let error = await #expect(throws: TemporalCallError.self) {
                try await client.signalWorkflow(
                    WorkflowSignal(workflowID: "no-such-workflow", signalName: "x", input: [], requestID: "r"),
                    timeout: .seconds(5))
            }
            #expect(error?.code == .notFound)
            #expect(error?.isRetryable == false)
        } catch {
            Issue.record("\(error)")
        }
        await client.shutdown()
        await server.stop()
    }

    @Test("sustained load keeps one connection: the server's PINGs do not trip swift-nio-http2's flood limit")
    func sustainedLoad() async throws {
        let server = try await TemporalDevServer.start()
        let client = try TemporalClient(connection: server.connection)
        // grpc-go sends about one PING per call; without HTTP2PingResponder the connection was
        // closed after every ~200 and all calls in flight failed with UNAVAILABLE.
        let workers = 8
        let callsPerWorker = 75
        let failures = await withTaskGroup(of: [String].self) { group in
            for worker in 0..<workers {
                group.addTask {
                    var failures: [String] = []
                    for call in 0..<callsPerWorker {
                        let start = WorkflowStart(
                            workflowID: "load-\(worker)-\(call)", workflowType: "Load", taskQueue: "load",
                            input: [Self.json(#"{"n":\#(call)}"#)], requestID: "load-\(worker)-\(call)")
                        do {
                            _ = try await client.startWorkflow(start, timeout: .seconds(10))
                        } catch {
                            failures.append("\(error)")
                        }
                    }
                    return failures
                }
            }
            return await group.reduce(into: []) { $0 += $1 }
        }
        #expect(
            failures.isEmpty, "\(failures.count) of \(workers * callsPerWorker) calls failed: \(failures.prefix(3))")
        await client.shutdown()
        await server.stop()
    }

    @Test("an unreachable frontend is UNAVAILABLE, which is retryable")
    func unreachable() async throws {
        let port = try TemporalDevServer.freePort()
        let client = try TemporalClient(connection: TemporalConnection(target: HostPort(host: "127.0.0.1", port: port)))
        let error = await #expect(throws: TemporalCallError.self) {
            _ = try await client.systemInfo(timeout: .seconds(3))
        }
        #expect(error?.isRetryable == true)
        #expect(TemporalCallError.isRetryable(.deadlineExceeded))
        #expect(TemporalCallError.isRetryable(.resourceExhausted))
        #expect(!TemporalCallError.isRetryable(.invalidArgument))
        #expect(!TemporalCallError.isRetryable(.permissionDenied))
        await client.shutdown()
    }
}

/// What the client sends that the real server does not show: metadata.
@Suite("Temporal client metadata")
struct TemporalClientMetadataTests {
    @Test("an API key goes as authorization: Bearer, with the namespace header")
    func apiKey() async throws {
        let frontend = try await RecordingTemporalFrontend.start()
        var connection = frontend.connection
        connection.credentials = StaticTemporalCredentials("secret-key")
        let client = try TemporalClient(connection: connection)
        _ = try await client.startWorkflow(
            WorkflowStart(workflowID: "w", workflowType: "T", taskQueue: "q", input: [], requestID: "r"),
            timeout: .seconds(5))
        let call = try #require(frontend.calls.last)
        #expect(call.method == "StartWorkflowExecution")
        #expect(call.value("authorization") == "Bearer secret-key")
        #expect(call.value("temporal-namespace") == "default")
        await client.shutdown()
        await frontend.stop()
    }

    @Test("a token file is read on every call")
    func tokenFile() async throws {
        let frontend = try await RecordingTemporalFrontend.start()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("token-\(UUID().uuidString)").path
        try "first\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        var connection = frontend.connection
        connection.credentials = FileTemporalCredentials(path: path)
        let client = try TemporalClient(connection: connection)
        _ = try await client.systemInfo(timeout: .seconds(5))
        try "second".write(toFile: path, atomically: true, encoding: .utf8)
        _ = try await client.systemInfo(timeout: .seconds(5))
        #expect(frontend.calls.map { $0.value("authorization") } == ["Bearer first", "Bearer second"])
        await client.shutdown()
        await frontend.stop()
    }

    @Test("failures are classified by status code")
    func classification() async throws {
        let frontend = try await RecordingTemporalFrontend.start()
        let client = try TemporalClient(connection: frontend.connection)
        let start = WorkflowStart(workflowID: "w", workflowType: "T", taskQueue: "q", input: [], requestID: "r")
        for (code, retryable) in [
            (RPCError.Code.unavailable, true), (.resourceExhausted, true), (.invalidArgument, false),
            (.permissionDenied, false),
        ] {
            frontend.failNext(code)
            let error = await #expect(throws: TemporalCallError.self) {
                _ = try await client.startWorkflow(start, timeout: .seconds(5))
            }
            #expect(error?.code == code)
            #expect(error?.isRetryable == retryable)
        }
        frontend.failNext(.alreadyExists)
        #expect(try await client.startWorkflow(start, timeout: .seconds(5)) == .alreadyRunning)
        await client.shutdown()
        await frontend.stop()
    }
}
