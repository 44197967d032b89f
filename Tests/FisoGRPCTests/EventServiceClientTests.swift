import FisoGRPC
import Foundation
import GRPCCore
import NIOConcurrencyHelpers
import Testing

/// An EventService that fails the first `failures` calls with `code`, then acknowledges; it records
/// what it received.
private final class ScriptedEventService: Fiso_Flow_V1_EventService.ServiceProtocol, Sendable {
    struct Received: Sendable {
        var event: Fiso_Flow_V1_Event
        var metadata: [String: String]
        var peer: String
    }

    let failures: Int
    let code: RPCError.Code
    let delay: Duration?
    let received = NIOLockedValueBox<[Received]>([])

    init(failures: Int = 0, code: RPCError.Code = .unavailable, delay: Duration? = nil) {
        self.failures = failures
        self.code = code
        self.delay = delay
    }

    func send(
        request: ServerRequest<Fiso_Flow_V1_Event>, context: ServerContext
    ) async throws -> ServerResponse<Fiso_Flow_V1_Ack> {
        var metadata: [String: String] = [:]
        for (key, value) in request.metadata {
            if case .string(let text) = value { metadata[key] = text }
        }
        let call = received.withLockedValue { calls in
            calls.append(Received(event: request.message, metadata: metadata, peer: context.remotePeer))
            return calls.count
        }
        if let delay { try await Task.sleep(for: delay) }
        if call <= failures { throw RPCError(code: code, message: "scripted failure \(call)") }
        var ack = Fiso_Flow_V1_Ack.delivered(cloudEventID: "ce-\(call)")
        ack.eventID = request.message.id
        return ServerResponse(message: ack)
    }

    func stream(
        request: StreamingServerRequest<Fiso_Flow_V1_Event>, context: ServerContext
    ) async throws -> StreamingServerResponse<Fiso_Flow_V1_Ack> {
        StreamingServerResponse(error: RPCError(code: .unimplemented, message: "not in this test"))
    }
}

@Suite("EventServiceClient (the gRPC sink's client)")
struct EventServiceClientTests {
    private func client(port: Int, timeout: Duration = .seconds(30)) throws -> EventServiceClient {
        try EventServiceClient(
            configuration: EventClientConfiguration(target: HostPort(host: "127.0.0.1", port: port), timeout: timeout)
        )
    }

    @Test("UNAVAILABLE is retryable: a retry loop gets through on the third call")
    func retryAfterUnavailable() async throws {
        let service = ScriptedEventService(failures: 2, code: .unavailable)
        try await withServer(services: [service]) { port in
            let client = try client(port: port)
            var failures: [EventDeliveryFailure] = []
            var delivered: Fiso_Flow_V1_Ack?
            for _ in 1...5 {
                do throws(EventDeliveryFailure) {
                    delivered = try await client.send(
                        payload: Array(#"{"a":1}"#.utf8), id: "ce-9", contentType: "application/cloudevents+json"
                    )
                    break
                } catch {
                    failures.append(error)
                    guard error.isRetryable else { break }
                }
            }
            await client.shutdown()
            #expect(failures.count == 2)
            #expect(failures.allSatisfy { $0.isRetryable && $0.rpcCode == .unavailable })
            #expect(failures.first?.message.contains("scripted failure 1") == true)
            #expect(delivered?.cloudEventID == "ce-3")
            #expect(delivered?.eventID == "ce-9")
            // One connection carried all three calls.
            let peers = Set(service.received.withLockedValue { $0.map(\.peer) })
            #expect(peers.count == 1)
        }
    }

    @Test(
        "Status codes: UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED retry; others are permanent",
        arguments: [
            (RPCError.Code.unavailable, true), (.resourceExhausted, true), (.deadlineExceeded, true),
            (.invalidArgument, false), (.internalError, false), (.permissionDenied, false), (.unimplemented, false),
            (.notFound, false), (.unauthenticated, false),
        ]
    )
    func classification(code: RPCError.Code, retryable: Bool) async throws {
        let service = ScriptedEventService(failures: 1, code: code)
        try await withServer(services: [service]) { port in
            let client = try client(port: port)
            let failure = await #expect(throws: EventDeliveryFailure.self) {
                _ = try await client.send(payload: Array("{}".utf8), id: nil, contentType: "application/json")
            }
            await client.shutdown()
            #expect(failure?.rpcCode == code)
            #expect(failure?.isRetryable == retryable)
        }
    }

    @Test("A call that outlives its deadline fails with retryable DEADLINE_EXCEEDED")
    func deadline() async throws {
        let service = ScriptedEventService(delay: .seconds(2))
        try await withServer(services: [service]) { port in
            let client = try client(port: port, timeout: .milliseconds(200))
            let failure = await #expect(throws: EventDeliveryFailure.self) {
                _ = try await client.send(payload: Array("{}".utf8), id: nil, contentType: "")
            }
            await client.shutdown()
            #expect(failure?.rpcCode == .deadlineExceeded)
            #expect(failure?.isRetryable == true)
        }
    }

    @Test("No server listening: retryable UNAVAILABLE")
    func connectionRefused() async throws {
        // Bind a port, then stop the server so nothing listens there any more.
        let port = try await withServer(services: [ScriptedEventService()]) { port in port }
        let client = try client(port: port)
        let failure = await #expect(throws: EventDeliveryFailure.self) {
            _ = try await client.send(payload: Array("{}".utf8), id: nil, contentType: "")
        }
        await client.shutdown()
        #expect(failure?.rpcCode == .unavailable)
        #expect(failure?.isRetryable == true)
    }

    @Test("Ack failures: UNAVAILABLE retries, REJECTED and FAILED are permanent")
    func ackClassification() async throws {
        let handler: EventHandler = { event in
            switch String(decoding: event.payload, as: UTF8.self) {
            case "busy": .failed(code: "OVERLOADED", message: "too many events")
            case "bad": .failed(code: "INVALID_JSON", message: "not JSON")
            case "sink": .failed(code: "SINK_DELIVERY_FAILED", message: "downstream 500")
            default: .delivered(cloudEventID: "ok")
            }
        }
        try await withEventServer(handler: handler) { _, port in
            let client = try client(port: port)
            for (payload, status, retryable) in [
                ("busy", Fiso_Flow_V1_Ack.Status.unavailable, true), ("bad", .rejected, false),
                ("sink", .failed, false),
            ] {
                let failure = await #expect(throws: EventDeliveryFailure.self) {
                    _ = try await client.send(payload: Array(payload.utf8), id: "x", contentType: "")
                }
                #expect(failure?.rpcCode == nil)
                #expect(failure?.ack?.status == status)
                #expect(failure?.isRetryable == retryable)
                #expect(failure?.message.contains(failure?.ack?.errorCode ?? "?") == true)
            }
            let ack = try await client.send(payload: Array("{}".utf8), id: "x", contentType: "")
            #expect(ack.status == .ok)
            await client.shutdown()
        }
    }

    @Test("Headers travel as metadata and in the event; reserved and invalid ones only in the event")
    func headersAsMetadata() async throws {
        let service = ScriptedEventService()
        let headers: [(name: String, value: String)] = [
            ("X-Correlation-ID", "corr-1"), ("traceparent", "00-abc-def-01"), ("Content-Type", "text/plain"),
            ("X-Unicode", "grüße"), ("Bad Name", "v"), ("grpc-timeout", "1S"),
        ]
        try await withServer(services: [service]) { port in
            let client = try client(port: port)
            _ = try await client.send(
                payload: Array(#"{"a":1}"#.utf8), id: "ce-1", contentType: "application/cloudevents+json",
                headers: headers
            )
            await client.shutdown()
        }
        let received = try #require(service.received.withLockedValue { $0.first })
        #expect(received.metadata["x-correlation-id"] == "corr-1")
        #expect(received.metadata["traceparent"] == "00-abc-def-01")
        #expect(received.metadata["content-type"] != "text/plain")
        #expect(received.metadata["x-unicode"] == nil)
        #expect(received.metadata["bad name"] == nil)
        #expect(received.event.headers["X-Correlation-ID"] == "corr-1")
        #expect(received.event.headers["X-Unicode"] == "grüße")
        #expect(received.event.headers.count == headers.count)
        #expect(received.event.id == "ce-1")
        #expect(received.event.contentType == "application/cloudevents+json")
        #expect(String(decoding: received.event.payload, as: UTF8.self) == #"{"a":1}"#)
    }

    @Test("After shutdown, sends fail permanently")
    func sendAfterShutdown() async throws {
        let client = try client(port: 1)
        await client.shutdown()
        let failure = await #expect(throws: EventDeliveryFailure.self) {
            _ = try await client.send(payload: Array("{}".utf8), id: nil, contentType: "")
        }
        #expect(failure?.isRetryable == false)
    }
}
