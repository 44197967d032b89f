import FisoGRPC
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import GRPCProtobuf
import Testing

/// Serializes events normally, except one whose id is "garbage": its bytes are not protobuf.
private struct CorruptingSerializer: MessageSerializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: Fiso_Flow_V1_Event) throws -> Bytes {
        if message.id == "garbage" { return Bytes([0xFF, 0xFF, 0xFF, 0xFF]) }
        return try ProtobufSerializer<Fiso_Flow_V1_Event>().serialize(message)
    }
}

@Suite("Stream protocol errors")
struct StreamProtocolErrorTests {
    private func stream(
        _ events: [Fiso_Flow_V1_Event], client: GRPCClient<HTTP2ClientTransport.Posix>
    ) async throws -> StreamOutcome {
        try await EventClient(wrapping: client).stream(
            request: StreamingClientRequest { writer in
                for event in events { try await writer.write(event) }
            },
            serializer: CorruptingSerializer(), deserializer: ProtobufDeserializer<Fiso_Flow_V1_Ack>()
        ) { response in
            var acks: [Fiso_Flow_V1_Ack] = []
            do {
                for try await ack in response.messages { acks.append(ack) }
            } catch let error as RPCError {
                return StreamOutcome(acks: acks, error: error)
            }
            return StreamOutcome(acks: acks, error: nil)
        }
    }

    @Test("An undecodable message ends the stream with INVALID_ARGUMENT after the Acks before it")
    func undecodableMessage() async throws {
        var events = (1...5).map(numberedEvent)
        events[3].id = "garbage"
        let streamed = events
        let outcome = try await withEventServer(handler: echoHandler) { _, port in
            try await withConnection(port: port) { connection in try await stream(streamed, client: connection) }
        }
        #expect(outcome.acks.map(\.eventID) == ["e-1", "e-2", "e-3"])
        #expect(outcome.error?.code == .invalidArgument)
    }

    @Test("An event over maxPayloadBytes gets PAYLOAD_TOO_LARGE and the stream goes on")
    func payloadLimit() async throws {
        var events = (1...4).map(numberedEvent)
        events[2].payload = Data(#"{"big":"\#(String(repeating: "x", count: 4096))"}"#.utf8)
        let streamed = events
        let outcome = try await withEventServer(options: .init(maxPayloadBytes: 1024), handler: echoHandler) {
            _, port in
            try await withConnection(port: port) { connection in try await stream(streamed, client: connection) }
        }
        #expect(outcome.error == nil)
        #expect(outcome.acks.map(\.eventID) == ["e-1", "e-2", "e-3", "e-4"])
        #expect(outcome.acks.map(\.status) == [.ok, .ok, .rejected, .ok])
        #expect(outcome.acks[2].errorCode == "PAYLOAD_TOO_LARGE")
    }

    @Test("A message over the transport's limit fails the call")
    func transportMessageLimit() async throws {
        let server = GRPCEventServer(
            configuration: GRPCServerConfiguration(
                address: HostPort(host: "127.0.0.1", port: 0), maxRequestMessageBytes: 1024
            ),
            handler: echoHandler
        )
        var events = (1...4).map(numberedEvent)
        events[2].payload = Data(#"{"big":"\#(String(repeating: "x", count: 4096))"}"#.utf8)
        let streamed = events
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            let port = try await server.listeningPort()
            let (outcome, unaryError) = try await withConnection(port: port) { connection in
                let outcome = try await stream(streamed, client: connection)
                let unaryError = await #expect(throws: RPCError.self) {
                    _ = try await EventClient(wrapping: connection).send(streamed[2])
                }
                return (outcome, unaryError)
            }
            // The transport resets the stream: its Acks are lost, the client sees an error.
            #expect(outcome.error != nil)
            #expect(outcome.acks.count <= 2)
            print(
                "transport limit: stream \(String(describing: outcome.error)), unary \(String(describing: unaryError))")
            #expect(unaryError != nil)
            await server.shutdown(gracePeriod: .seconds(2))
            try await group.waitForAll()
        }
    }
}
