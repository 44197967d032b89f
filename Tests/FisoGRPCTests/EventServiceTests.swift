import FisoGRPC
import Foundation
import GRPCCore
import NIOConcurrencyHelpers
import Synchronization
import Testing

@Suite("EventService over real HTTP/2")
struct EventServiceTests {
    @Test("Send: the handler sees payload, headers, id and content type; the Ack comes back")
    func unaryRoundTrip() async throws {
        let seen = NIOLockedValueBox<[IncomingEvent]>([])
        let handler: EventHandler = { event in
            seen.withLockedValue { $0.append(event) }
            var reply = Fiso_Flow_V1_SinkReply(statusCode: 201, body: Array("created".utf8), contentType: "text/plain")
            reply.statusCode = 201
            return .delivered(cloudEventID: "ce-1", sinkReply: reply)
        }
        try await withEventServer(handler: handler) { _, port in
            try await withConnection(port: port) { connection in
                let client = EventClient(wrapping: connection)
                var event = Fiso_Flow_V1_Event(
                    payload: Array(#"{"order":42}"#.utf8), id: "evt-7",
                    headers: ["X-Correlation-ID": "map-wins", "X-Only-In-Map": "m"]
                )
                event.contentType = ""
                var metadata = Metadata()
                metadata.addString("from-metadata", forKey: "x-correlation-id")
                metadata.addString("tenant-a", forKey: "x-tenant")
                let ack = try await client.send(event, metadata: metadata)

                #expect(ack.status == .ok)
                #expect(ack.eventID == "evt-7")
                #expect(ack.sequence == 1)
                #expect(ack.cloudEventID == "ce-1")
                #expect(ack.hasSinkReply)
                #expect(ack.sinkReply.statusCode == 201)
                #expect(String(decoding: ack.sinkReply.body, as: UTF8.self) == "created")
                #expect(ack.sinkReply.contentType == "text/plain")
            }
        }
        let events = seen.withLockedValue { $0 }
        #expect(events.count == 1)
        let event = try #require(events.first)
        #expect(String(decoding: event.payload, as: UTF8.self) == #"{"order":42}"#)
        #expect(event.id == "evt-7")
        #expect(event.contentType == "application/json")
        #expect(event.call == .unary)
        #expect(event.sequence == 1)
        #expect(event.header("x-tenant") == "tenant-a")
        #expect(event.header("X-Correlation-ID") == "map-wins")
        #expect(event.header("x-only-in-map") == "m")
        #expect(event.headers.filter { $0.name.lowercased() == "x-correlation-id" }.count == 1)
        // gRPC's own metadata does not become event headers.
        #expect(event.header("content-type") == nil)
        #expect(event.header("te") == nil)
        #expect(event.header("user-agent") == nil)
        #expect(!event.headers.contains { $0.name.hasPrefix("grpc-") || $0.name.hasPrefix(":") })
        #expect(event.peer.contains("127.0.0.1"))
    }

    @Test("Stream: 10,000 events arrive in order, each with exactly one Ack, in order")
    func tenThousandInOrder() async throws {
        let count = 10_000
        let handled = NIOLockedValueBox<[UInt64]>([])
        let handler: EventHandler = { event in
            handled.withLockedValue { $0.append(event.sequence) }
            return .delivered(cloudEventID: "ce-\(event.sequence)")
        }
        let outcome = try await withEventServer(options: .init(maxPendingAcks: 64), handler: handler) { _, port in
            try await withConnection(port: port) { connection in
                try await streamEvents((1...count).map(numberedEvent), client: EventClient(wrapping: connection))
            }
        }
        #expect(outcome.error == nil)
        #expect(outcome.acks.count == count)
        #expect(outcome.acks.map(\.sequence) == (1...count).map { UInt64($0) })
        #expect(outcome.acks.map(\.eventID) == (1...count).map { "e-\($0)" })
        #expect(outcome.acks.allSatisfy { $0.status == .ok && $0.cloudEventID == "ce-\($0.sequence)" })
        // The handler saw every event once, in stream order.
        #expect(handled.withLockedValue { $0 } == (1...count).map { UInt64($0) })
    }

    @Test("Stream with concurrent handling still acknowledges in order")
    func concurrentHandlingKeepsAckOrder() async throws {
        let count = 2_000
        let handler: EventHandler = { event in
            // Later events finish first now and then.
            if event.sequence % 7 == 0 { try? await Task.sleep(for: .microseconds(300)) }
            return .delivered(cloudEventID: "ce-\(event.sequence)")
        }
        let options = EventIngestService.Options(maxPendingAcks: 32, maxConcurrentEventsPerStream: 16)
        let outcome = try await withEventServer(options: options, handler: handler) { _, port in
            try await withConnection(port: port) { connection in
                try await streamEvents((1...count).map(numberedEvent), client: EventClient(wrapping: connection))
            }
        }
        #expect(outcome.error == nil)
        #expect(outcome.acks.map(\.eventID) == (1...count).map { "e-\($0)" })
    }

    @Test("Stream: a bad event gets an error Ack and the stream goes on")
    func badEventDoesNotEndTheStream() async throws {
        var events = (1...20).map(numberedEvent)
        events[4].payload = Data("not json".utf8)
        events[11].payload = Data("{broken".utf8)  // starts like JSON: this handler accepts it
        events[15].payload = Data("<xml/>".utf8)
        let streamed = events
        let outcome = try await withEventServer(handler: echoHandler) { _, port in
            try await withConnection(port: port) { connection in
                try await streamEvents(streamed, client: EventClient(wrapping: connection))
            }
        }
        #expect(outcome.error == nil)
        #expect(outcome.acks.count == 20)
        let failed = outcome.acks.filter { $0.status != .ok }
        #expect(failed.map(\.eventID) == ["e-5", "e-16"])
        #expect(
            failed.allSatisfy { $0.status == .rejected && $0.errorCode == "INVALID_JSON" && !$0.errorMessage.isEmpty })
        #expect(outcome.acks.map(\.sequence) == (1...20).map { UInt64($0) })
    }

    @Test("Stream: a slow handler never has more than maxPendingAcks unacknowledged events")
    func backpressureBoundsPendingEvents() async throws {
        let maxPending = 8
        let gate = Gate()
        let inHandler = Atomic<Int>(0)
        let handler: EventHandler = { event in
            inHandler.add(1, ordering: .relaxed)
            await gate.wait()
            try? await Task.sleep(for: .milliseconds(1))
            return .delivered(cloudEventID: "ce-\(event.sequence)")
        }
        let options = EventIngestService.Options(maxPendingAcks: maxPending, maxConcurrentEventsPerStream: maxPending)
        try await withEventServer(options: options, handler: handler) { server, port in
            try await withConnection(port: port) { connection in
                let client = EventClient(wrapping: connection)
                async let outcome = streamEvents((1...300).map(numberedEvent), client: client)

                // The server fills its window and then stops reading, although 300 events were sent.
                let filled = await eventually { server.eventService.statistics.pendingAcks == maxPending }
                #expect(filled)
                try await Task.sleep(for: .milliseconds(200))
                #expect(server.eventService.statistics.pendingAcks == maxPending)
                #expect(server.eventService.statistics.eventsReceived == maxPending)
                #expect(inHandler.load(ordering: .relaxed) == maxPending)

                gate.open()
                let result = try await outcome
                #expect(result.error == nil)
                #expect(result.acks.count == 300)
                #expect(result.acks.map(\.eventID) == (1...300).map { "e-\($0)" })
            }
            let statistics = server.eventService.statistics
            #expect(statistics.peakPendingAcksPerStream == maxPending)
            #expect(statistics.pendingAcks == 0)
            #expect(statistics.acksSent == 300)
        }
    }

    @Test("Stream: with the default options the handler sees one event at a time, in order")
    func sequentialHandlingByDefault() async throws {
        let active = Atomic<Int>(0)
        let peak = Atomic<Int>(0)
        let order = NIOLockedValueBox<[UInt64]>([])
        let handler: EventHandler = { event in
            let now = active.add(1, ordering: .relaxed).newValue
            _ = peak.max(now, ordering: .relaxed)
            order.withLockedValue { $0.append(event.sequence) }
            try? await Task.sleep(for: .microseconds(200))
            active.subtract(1, ordering: .relaxed)
            return .delivered(cloudEventID: "x")
        }
        let outcome = try await withEventServer(handler: handler) { _, port in
            try await withConnection(port: port) { connection in
                try await streamEvents((1...200).map(numberedEvent), client: EventClient(wrapping: connection))
            }
        }
        #expect(outcome.acks.count == 200)
        #expect(peak.load(ordering: .relaxed) == 1)
        #expect(order.withLockedValue { $0 } == (1...200).map { UInt64($0) })
    }

    @Test("Stream metadata reaches every event of the stream; the event's own headers win")
    func streamMetadataBecomesHeaders() async throws {
        let seen = NIOLockedValueBox<[IncomingEvent]>([])
        let handler: EventHandler = { event in
            seen.withLockedValue { $0.append(event) }
            return .delivered(cloudEventID: "x")
        }
        var events = (1...3).map(numberedEvent)
        events[1].headers = ["X-Source": "event-2"]
        events[2].contentType = "application/cloudevents+json"
        var metadata = Metadata()
        metadata.addString("stream", forKey: "x-source")
        metadata.addString("abc", forKey: "x-correlation-id")
        let (streamed, streamMetadata) = (events, metadata)
        _ = try await withEventServer(handler: handler) { _, port in
            try await withConnection(port: port) { connection in
                try await streamEvents(streamed, client: EventClient(wrapping: connection), metadata: streamMetadata)
            }
        }
        let received = seen.withLockedValue { $0 }.sorted { $0.sequence < $1.sequence }
        #expect(received.map { $0.header("x-source") } == ["stream", "event-2", "stream"])
        #expect(received.allSatisfy { $0.header("x-correlation-id") == "abc" && $0.call == .stream })
        #expect(
            received.map(\.contentType) == ["application/json", "application/json", "application/cloudevents+json"])
    }

    @Test("Draining: streams acknowledge what they read, then end with UNAVAILABLE; new calls are refused")
    func drainEndsStreamsAfterTheirAcks() async throws {
        let firstEventSeen = Gate()
        let release = Gate()
        let handler: EventHandler = { event in
            if event.sequence == 1 { firstEventSeen.open() }
            await release.wait()
            return .delivered(cloudEventID: "ce-\(event.sequence)")
        }
        try await withEventServer(options: .init(maxPendingAcks: 4), handler: handler) { server, port in
            try await withConnection(port: port) { connection in
                let client = EventClient(wrapping: connection)
                let events = (1...50).map(numberedEvent)
                async let outcome = client.stream(
                    requestProducer: { writer in
                        for event in events { try await writer.write(event) }
                        // Keep the request side open, as a long-lived producer would.
                        try await Task.sleep(for: .seconds(30))
                    },
                    onResponse: { response in
                        var acks: [Fiso_Flow_V1_Ack] = []
                        do {
                            for try await ack in response.messages { acks.append(ack) }
                        } catch let error as RPCError {
                            return StreamOutcome(acks: acks, error: error)
                        }
                        return StreamOutcome(acks: acks, error: nil)
                    }
                )
                await firstEventSeen.wait()
                #expect(await eventually { server.eventService.statistics.pendingAcks == 4 })
                server.eventService.drain()
                release.open()
                let result = try await outcome
                // Every event the server read was acknowledged, in order; then the stream ended.
                #expect(result.acks.count == 4)
                #expect(result.acks.map(\.eventID) == ["e-1", "e-2", "e-3", "e-4"])
                #expect(result.acks.allSatisfy { $0.status == .ok })
                #expect(result.error?.code == .unavailable)

                await #expect(throws: RPCError.self) {
                    _ = try await client.send(numberedEvent(99))
                }
                let refused = try await streamEvents([numberedEvent(100)], client: client)
                #expect(refused.acks.isEmpty)
                #expect(refused.error?.code == .unavailable)
            }
        }
    }
}
