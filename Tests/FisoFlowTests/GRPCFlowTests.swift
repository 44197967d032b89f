import FisoFlow
import FisoFlowTestSupport
import FisoGRPC
import FisoJSON
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import NIOConcurrencyHelpers
import Testing

private typealias EventClient = Fiso_Flow_V1_EventService.Client<HTTP2ClientTransport.Posix>
private typealias HealthClient = Grpc_Health_V1_Health.Client<HTTP2ClientTransport.Posix>

/// A plaintext gRPC connection to 127.0.0.1:`port` for the duration of `body`.
private func withConnection<T: Sendable>(
    port: Int, _ body: @Sendable (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> T
) async throws -> T {
    try await withGRPCClient(
        transport: .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)
    ) { client in
        try await body(client)
    }
}

private func grpcFlow(name: String, port: Int, sink: String, extra: String = "") -> String {
    "name: \(name)\nsource: {type: grpc, config: {listenAddr: \"127.0.0.1:\(port)\", maxPendingAcks: 64}}\n\(sink)\n\(extra)"
}

/// Runs a test EventService on a free port that records events and answers with `answer`.
private func withTestEventServer<T: Sendable>(
    answer: @escaping @Sendable (Int, IncomingEvent) -> EventAck,
    _ body: @Sendable (_ port: Int, _ received: @Sendable () -> [IncomingEvent]) async throws -> T
) async throws -> T {
    let received = NIOLockedValueBox<[IncomingEvent]>([])
    let server = GRPCEventServer(
        configuration: GRPCServerConfiguration(address: HostPort(host: "127.0.0.1", port: 0))
    ) { event in
        let number = received.withLockedValue { list in
            list.append(event)
            return list.count
        }
        return answer(number, event)
    }
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await server.run() }
        let port = try await server.listeningPort()
        server.setServing(true)
        let result = try await body(port) { received.withLockedValue { $0 } }
        await server.shutdown(gracePeriod: .seconds(5))
        try await group.waitForAll()
        return result
    }
}

@Suite struct GRPCFlowTests {
    @Test func aGRPCSourceDeliversToAnHTTPSinkAndAcksWithTheReply() async throws {
        try await withTestReceiver({ _, _ in .init(status: 201, body: #"{"stored":1}"#) }) { receiver in
            let directory = try TemporaryDirectory()
            let port = try freePort()
            try directory.write(
                "g.yaml",
                grpcFlow(name: "g", port: port, sink: "sink: {type: http, config: {url: \"\(receiver.url)\"}}"))
            try await withRunningServer(directory: directory.path) { _ in
                try await withConnection(port: port) { connection in
                    let client = EventClient(wrapping: connection)
                    let ack = try await client.send(
                        Fiso_Flow_V1_Event(
                            payload: Array(#"{"order":1}"#.utf8), id: "e-1", headers: ["X-Correlation-ID": "g-1"])
                    )
                    #expect(ack.status == .ok)
                    #expect(ack.eventID == "e-1")
                    #expect(ack.sinkReply.statusCode == 201)
                    #expect(String(decoding: ack.sinkReply.body, as: UTF8.self) == #"{"stored":1}"#)
                    let delivered = try #require(receiver.requests.first)
                    #expect(delivered.json?["data"] == ["order": 1])
                    #expect(delivered.json?["id"]?.stringValue == ack.cloudEventID)
                    #expect(delivered.header("X-Correlation-ID") == "g-1")

                    let health = try await HealthClient(wrapping: connection).check(Grpc_Health_V1_HealthCheckRequest())
                    #expect(health.status == .serving)
                }
            }
        }
    }

    @Test func cloudEventsArriveStructuredOrBinaryAndKeepTheirIdentity() async throws {
        try await withTestReceiver { receiver in
            let directory = try TemporaryDirectory()
            let port = try freePort()
            try directory.write(
                "g.yaml",
                grpcFlow(
                    name: "g", port: port, sink: "sink: {type: http, config: {url: \"\(receiver.url)\"}}",
                    extra: "transform: {fields: {order: data.order_id, tenant: extensions.tenant}}"))
            try await withRunningServer(directory: directory.path) { _ in
                try await withConnection(port: port) { connection in
                    let client = EventClient(wrapping: connection)
                    let structured =
                        #"{"specversion":"1.0","id":"ce-s","source":"/shop","type":"order.created","#
                        + #""tenant":"acme","data":{"order_id":"o-1"}}"#
                    var event = Fiso_Flow_V1_Event(payload: Array(structured.utf8), id: "e-1")
                    event.contentType = "application/cloudevents+json"
                    #expect(try await client.send(event).status == .ok)
                    let binary = Fiso_Flow_V1_Event(
                        payload: Array(#"{"order_id":"o-2"}"#.utf8), id: "e-2",
                        headers: [
                            "ce-specversion": "1.0", "ce-id": "ce-b", "ce-source": "/shop", "ce-type": "order.created",
                            "ce-tenant": "globex",
                        ])
                    #expect(try await client.send(binary).status == .ok)
                    var old = Fiso_Flow_V1_Event(
                        payload: Array(structured.replacingOccurrences(of: "\"1.0\"", with: "\"0.3\"").utf8), id: "e-3")
                    old.contentType = "application/cloudevents+json"
                    let refused = try await client.send(old)
                    #expect(refused.status == .rejected)
                    #expect(refused.errorCode == "INVALID_CLOUDEVENT")

                    let delivered = receiver.requests.compactMap(\.json)
                    #expect(delivered.count == 2)
                    #expect(delivered.map { $0["id"]?.stringValue } == ["ce-s", "ce-b"])
                    #expect(delivered.map { $0["tenant"]?.stringValue } == ["acme", "globex"])
                    #expect(
                        delivered.map { $0["data"] } == [
                            ["order": "o-1", "tenant": "acme"], ["order": "o-2", "tenant": "globex"],
                        ])
                    #expect(
                        receiver.requests.allSatisfy { request in
                            !request.headers.keys.contains { $0.lowercased().hasPrefix("ce-") }
                        })
                }
            }
        }
    }

    @Test func tenThousandEventsOnOneStreamArriveInOrderWithOneAckEach() async throws {
        let directory = try TemporaryDirectory()
        let port = try freePort()
        let devNull = open("/dev/null", O_WRONLY)
        defer { close(devNull) }
        try directory.write("g.yaml", grpcFlow(name: "g", port: port, sink: "sink: {type: stdout}"))
        let count = 10_000
        try await withRunningServer(directory: directory.path, standardOutput: StandardOutput(descriptor: devNull)) {
            server in
            let acks = try await withConnection(port: port) { connection in
                try await EventClient(wrapping: connection).stream(
                    requestProducer: { writer in
                        for number in 1...count {
                            var event = Fiso_Flow_V1_Event(payload: Array(#"{"n":\#(number)}"#.utf8), id: "e-\(number)")
                            if number == 5000 { event.payload = Data("not json".utf8) }
                            try await writer.write(event)
                        }
                    },
                    onResponse: { response in
                        var acks: [Fiso_Flow_V1_Ack] = []
                        for try await ack in response.messages { acks.append(ack) }
                        return acks
                    }
                )
            }
            #expect(acks.count == count)
            #expect(acks.map(\.eventID) == (1...count).map { "e-\($0)" })
            #expect(acks.map(\.sequence) == (1...count).map { UInt64($0) })
            let failed = acks.filter { $0.status != .ok }
            #expect(failed.map(\.eventID) == ["e-5000"], "the bad event gets an error Ack and the stream goes on")
            #expect(failed.first?.errorCode == "INVALID_JSON")
            #expect(server.metric(#"fiso_flow_events_total{flow="g",status="success"}"#) == Double(count - 1))
            #expect(server.metric(#"fiso_flow_events_total{flow="g",status="rejected"}"#) == 1)
        }
    }

    @Test func concurrentEventsOfAStreamAreEachDeliveredOnceAndAckedInOrder() async throws {
        try await withTestReceiver { receiver in
            let directory = try TemporaryDirectory()
            let port = try freePort()
            try directory.write(
                "c.yaml",
                """
                name: c
                source: {type: grpc, config: {listenAddr: "127.0.0.1:\(port)", maxPendingAcks: 64, maxConcurrentEvents: 16}}
                sink: {type: http, config: {url: "\(receiver.url)"}}
                """
            )
            let count = 400
            try await withRunningServer(directory: directory.path) { _ in
                let acks = try await withConnection(port: port) { connection in
                    try await EventClient(wrapping: connection).stream(
                        requestProducer: { writer in
                            for number in 1...count {
                                try await writer.write(
                                    Fiso_Flow_V1_Event(payload: Array(#"{"n":\#(number)}"#.utf8), id: "e-\(number)")
                                )
                            }
                        },
                        onResponse: { response in
                            var acks: [Fiso_Flow_V1_Ack] = []
                            for try await ack in response.messages { acks.append(ack) }
                            return acks
                        }
                    )
                }
                #expect(acks.map(\.eventID) == (1...count).map { "e-\($0)" }, "Acks stay in stream order")
                #expect(acks.allSatisfy { $0.status == .ok })
                let delivered = receiver.requests.compactMap { $0.json?["data"]?["n"] }
                #expect(delivered.count == count)
                #expect(Set(delivered.map { "\($0)" }).count == count, "each event reaches the sink once")
            }
        }
    }

    @Test func anHTTPSourceDeliversToAGRPCSink() async throws {
        try await withTestEventServer(answer: { number, _ in .delivered(cloudEventID: "remote-\(number)") }) {
            grpcPort, received in
            let directory = try TemporaryDirectory()
            try directory.write(
                "h.yaml",
                """
                name: h
                source: {type: http, config: {listenAddr: "127.0.0.1:0", path: /in}}
                sink: {type: grpc, config: {target: "127.0.0.1:\(grpcPort)", timeout: 5s}}
                """
            )
            try await withRunningServer(directory: directory.path) { server in
                let reply = try await server.post(
                    "/in", #"{"to":"grpc"}"#, headers: [("X-Correlation-ID", "h-1"), ("X-Tenant", "acme")])
                #expect(reply.status == 202)
                let event = try #require(received().first)
                let cloudEvent = try JSONValue(parsing: event.payload)
                #expect(cloudEvent["data"] == ["to": "grpc"])
                #expect(event.id == cloudEvent["id"]?.stringValue)
                #expect(event.contentType == "application/cloudevents+json")
                #expect(event.header("X-Correlation-ID") == "h-1")
                #expect(event.header("X-Tenant") == "acme")
            }
        }
    }

    @Test func theGRPCSinkRetriesUnavailableAndStopsOnPermanentErrors() async throws {
        try await withTestEventServer(answer: { number, event in
            if event.header("X-Mode") == "reject" {
                return .failed(code: "TRANSFORM_FAILED", message: "no")
            }
            return number <= 2 ? .failed(code: "UNAVAILABLE", message: "busy") : .delivered(cloudEventID: "ok")
        }) { grpcPort, received in
            let directory = try TemporaryDirectory()
            try directory.write(
                "h.yaml",
                """
                name: h
                source: {type: http, config: {listenAddr: "127.0.0.1:0", path: /in}}
                sink: {type: grpc, config: {target: "127.0.0.1:\(grpcPort)"}}
                errorHandling: {maxRetries: 3, backoff: {initial: 10ms}}
                """
            )
            try await withRunningServer(directory: directory.path) { server in
                let retried = try await server.post("/in", "{}")
                #expect(retried.status == 202)
                #expect(received().count == 3)
                #expect(server.metric(#"fiso_flow_sink_retries_total{flow="h"}"#) == 2)

                let rejected = try await server.post("/in", "{}", headers: [("X-Mode", "reject")])
                #expect(rejected.status == 502)
                #expect(received().count == 4, "a permanent refusal is not retried")
            }
        }
    }

    @Test func twoGRPCSourcesCannotShareAPort() throws {
        let directory = try TemporaryDirectory()
        try directory.write("a.yaml", grpcFlow(name: "a", port: 9555, sink: "sink: {type: stdout}"))
        try directory.write("b.yaml", grpcFlow(name: "b", port: 9555, sink: "sink: {type: stdout}"))
        let snapshot = try ConfigSnapshot.read(directory: directory.path, kafkaConfigPath: "/nonexistent").get()
        let loaded = FlowLoader(kafkaConfigPath: "/nonexistent").load(snapshot)
        #expect(loaded.flows.count == 1)
        #expect(
            loaded.problems[directory.file("b.yaml")]?.first?.message.contains("only http sources share a port") == true
        )
    }
}
