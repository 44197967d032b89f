import FisoFlow
import FisoFlowTestSupport
import FisoGRPC
import FisoJSON
import FisoTemporal
import FisoTemporalTesting
import Foundation
import GRPCCore
import Testing

/// How the temporal sink treats each class of frontend failure: retried with one request id, or
/// permanent and dead-lettered with the status in the `fiso-error-*` headers.
@Suite("Temporal sink failures", .serialized)
struct TemporalFailureTests {
    @Test("retryable codes are retried with the same request id; permanent ones are dead-lettered at once")
    func retriesAndDeadLetters() async throws {
        try await FlowTestBroker.with { broker in
            let dlq = try await broker.createTopic("temporal-dlq")
            let frontend = try await RecordingTemporalFrontend.start()
            let directory = try TemporaryDirectory()
            try directory.write(
                "f.yaml",
                temporalFlow(
                    name: "tfail", hostPort: frontend.address, sink: ["taskQueue: q", "workflowType: W"],
                    extra: "errorHandling:\n  deadLetterTopic: \(dlq)\n  deadLetterCluster: test\n  maxRetries: 5\n"
                        + "  backoff: {initial: 20ms, max: 100ms}\n" + broker.clusterBlock()))
            @Sendable func starts() -> [RecordingTemporalFrontend.Call] {
                frontend.calls.filter { $0.method == "StartWorkflowExecution" }
            }
            do {
                try await withRunningServer(directory: directory.path) { server in
                    for code in [RPCError.Code.unavailable, .deadlineExceeded, .resourceExhausted] {
                        let before = starts().count
                        frontend.failNext(code, times: 2)
                        let response = try await server.post("/in", #"{"retried":"\#(code)"}"#)
                        #expect((200..<300).contains(response.status), "\(code): \(response.body)")
                        let attempts = starts().dropFirst(before)
                        #expect(attempts.count == 3, "\(code)")
                        #expect(Set(attempts.map(\.requestID)).count == 1, "\(code): one request id for every attempt")
                    }
                    #expect(server.metric("fiso_flow_sink_retries_total{flow=\"tfail\"}") == 6)

                    for code in [RPCError.Code.notFound, .permissionDenied, .invalidArgument] {
                        let before = starts().count
                        frontend.failNext(code)
                        let response = try await server.post("/in", #"{"permanent":"\#(code)"}"#)
                        #expect(response.status == 502, "\(code): \(response.body)")
                        #expect(
                            response.headers.contains {
                                $0.0.lowercased() == "x-fiso-dead-lettered" && $0.1 == "true"
                            }, "\(code)")
                        #expect(starts().count == before + 1, "\(code) is not retried")
                    }
                    #expect(server.metric("fiso_flow_sink_retries_total{flow=\"tfail\"}") == 6)
                }
                let dead = try await broker.read(3, from: dlq)
                #expect(dead.count == 3)
                for (record, code) in zip(dead, ["NOT_FOUND", "PERMISSION_DENIED", "INVALID_ARGUMENT"]) {
                    #expect(record.header("fiso-error-code") == "SINK_DELIVERY_FAILED")
                    let message = record.header("fiso-error-message") ?? ""
                    #expect(message.contains("StartWorkflowExecution") && message.contains(code), "\(message)")
                    #expect(record.valueJSON?["permanent"] != nil)
                }
            } catch {
                Issue.record("\(error)")
            }
            await frontend.stop()
        }
    }
}
