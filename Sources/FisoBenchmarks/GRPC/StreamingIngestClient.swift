import FisoGRPC
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Synchronization

/// What one streaming-ingest measurement saw.
struct StreamingIngestResult: Sendable {
    /// Per-event latency from writing the event to reading its Ack, and the wall time of the run.
    var latency: LatencyStatistics
    /// Events sent.
    var events: Int
    /// Acks with a status other than OK.
    var failedAcks: Int
    /// Events without an Ack when their stream ended.
    var missingAcks: Int
    /// Acks that did not come in the order of their events.
    var outOfOrderAcks: Int

    /// Events acknowledged per second of wall time.
    var eventsPerSecond: Double { latency.throughput }
}

/// Sends events over `fiso.flow.v1.EventService/Stream` and times their Acks.
///
/// Every stream keeps at most `window` events unacknowledged (a closed loop, so the latency is that
/// of a loaded server and not of an ever-growing queue). An event's id carries its send time, so
/// the Ack alone tells its latency.
enum StreamingIngestClient {
    /// Sends `events` events split over `streams` concurrent streams on one HTTP/2 connection and
    /// waits for every Ack.
    static func measure(
        target: HostPort, events: Int, streams: Int, window: Int = 256, payload: [UInt8]
    ) async throws -> StreamingIngestResult {
        let streams = max(1, min(streams, events))
        let transport = try HTTP2ClientTransport.Posix(
            target: target.host.contains(":")
                ? ResolvableTargets.IPv6(addresses: [.init(host: target.host, port: target.port)])
                : ResolvableTargets.DNS(host: target.host, port: target.port),
            transportSecurity: .plaintext
        )
        return try await withGRPCClient(transport: transport) { grpcClient in
            let client = Fiso_Flow_V1_EventService.Client(wrapping: grpcClient)
            let payload = Data(payload)
            let origin = ContinuousClock.now
            let start = ContinuousClock.now
            let perStream = try await withThrowingTaskGroup(of: StreamTally.self) { group in
                for index in 0..<streams {
                    let count = events / streams + (index < events % streams ? 1 : 0)
                    group.addTask {
                        try await runStream(
                            client: client, events: count, window: max(1, window), payload: payload, origin: origin
                        )
                    }
                }
                var tallies: [StreamTally] = []
                for try await tally in group { tallies.append(tally) }
                return tallies
            }
            let elapsed = ContinuousClock.now - start
            return StreamingIngestResult(
                latency: LatencyStatistics(nanoseconds: perStream.flatMap(\.latencies), elapsed: elapsed),
                events: events, failedAcks: perStream.reduce(0) { $0 + $1.failed },
                missingAcks: perStream.reduce(0) { $0 + $1.missing },
                outOfOrderAcks: perStream.reduce(0) { $0 + $1.outOfOrder }
            )
        }
    }

    struct StreamTally: Sendable {
        var latencies: [Int64] = []
        var failed = 0
        var missing = 0
        var outOfOrder = 0
    }

    private static func runStream(
        client: Fiso_Flow_V1_EventService.Client<HTTP2ClientTransport.Posix>, events: Int, window: Int,
        payload: Data, origin: ContinuousClock.Instant
    ) async throws -> StreamTally {
        guard events > 0 else { return StreamTally() }
        // One credit per event that may be in flight; every Ack returns one.
        let (credits, creditInput) = AsyncStream.makeStream(of: Void.self)
        for _ in 0..<window { creditInput.yield() }
        return try await client.stream(
            requestProducer: { writer in
                var iterator = credits.makeAsyncIterator()
                var event = Fiso_Flow_V1_Event()
                event.payload = payload
                event.contentType = "application/json"
                for sequence in 1...events {
                    guard await iterator.next() != nil else { return }
                    let sentAt = (ContinuousClock.now - origin).nanoseconds
                    event.id = "\(sequence):\(sentAt)"
                    try await writer.write(event)
                }
            },
            onResponse: { response in
                defer { creditInput.finish() }
                var tally = StreamTally()
                tally.latencies.reserveCapacity(events)
                var expected = 1
                for try await ack in response.messages {
                    let now = (ContinuousClock.now - origin).nanoseconds
                    let parts = ack.eventID.split(separator: ":")
                    if parts.count == 2, let sequence = Int(parts[0]), let sentAt = Int64(parts[1]) {
                        tally.latencies.append(now - sentAt)
                        if sequence != expected { tally.outOfOrder += 1 }
                        expected = sequence + 1
                    }
                    if ack.status != .ok { tally.failed += 1 }
                    creditInput.yield()
                }
                tally.missing = events - tally.latencies.count
                return tally
            }
        )
    }
}

extension Duration {
    fileprivate var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
