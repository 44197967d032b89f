import ArgumentParser
import FisoGRPC
import GRPCCore

/// Streaming ingest over `fiso.flow.v1.EventService/Stream`: events per second and per-event Ack
/// latency against a bare gRPC echo service (the baseline), and in the same run against
/// FisoGRPC's event service with a handler that acknowledges at once, and against a pipeline at
/// `--target` when one is given.
struct GRPCBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grpc",
        abstract: "Streaming gRPC ingest throughput and Ack latency against a bare gRPC echo baseline.",
        discussion: """
            Everything runs in this process on 127.0.0.1. The baseline is a bare EventService that acknowledges \
            each event as it reads it (generated code, no FisoGRPC machinery); "fiso-grpc echo" is FisoGRPC's \
            EventIngestService (ordering, pending-Ack window) with a handler that acknowledges at once; \
            "pipeline" is the fiso-flow runtime with a gRPC → (no transform) → HTTP flow into a local receiver \
            (or the gRPC source at --target). Rounds alternate the services so machine noise hits all alike; the \
            best round of each is reported.
            """
    )

    @Option(help: "Events per round and service.") var events: Int = 50_000
    @Option(help: "Concurrent streams (on one HTTP/2 connection).") var streams: Int = 1
    @Option(help: "Unacknowledged events each stream keeps in flight on the client side.") var window: Int = 256
    @Option(help: "Event payload size in bytes (a JSON document).") var payloadBytes: Int = 256
    @Option(help: "Rounds per service.") var rounds: Int = 2
    @Option(help: "maxPendingAcks of the fiso-grpc echo service and the pipeline's gRPC source.")
    var maxPendingAcks: Int = 256
    @Option(
        help: "maxConcurrentEvents of the pipeline's gRPC source (1: strict order at the sink, the default of flows)."
    )
    var pipelineConcurrency: Int = 1
    @Option(help: "host:port of a running pipeline's gRPC source to measure instead of the in-process one.")
    var target: String?

    func run() async throws {
        let payload = Self.payload(bytes: payloadBytes)
        let measure: @Sendable (HostPort) async throws -> [(name: String, result: StreamingIngestResult)] = {
            [events, streams, window, rounds, maxPendingAcks] pipelineTarget in
            try await Self.withBareEchoServer { bareTarget in
                try await Self.withFisoEchoServer(maxPendingAcks: maxPendingAcks) { fisoTarget in
                    try await Self.compare(
                        targets: [
                            ("bare gRPC echo", bareTarget), ("fiso-grpc echo", fisoTarget),
                            ("pipeline", pipelineTarget),
                        ],
                        events: events, streams: streams, window: window, payload: payload, rounds: rounds
                    )
                }
            }
        }
        let results: [(name: String, result: StreamingIngestResult)]
        if let target {
            results = try await measure(try HostPort(parsing: target))
        } else {
            results = try await GRPCPipeline.withGRPCToHTTPFlow(
                maxPendingAcks: maxPendingAcks, maxConcurrentEvents: pipelineConcurrency
            ) { port in
                try await measure(HostPort(host: "127.0.0.1", port: port))
            }
        }
        print(Self.report(results, events: events, streams: streams, window: window, payloadBytes: payloadBytes))
        if let baseline = results.first, let pipeline = results.last, baseline.result.eventsPerSecond > 0 {
            print(
                "baseline_events_per_s=\(formatted(baseline.result.eventsPerSecond, decimals: 0)) "
                    + "pipeline_events_per_s=\(formatted(pipeline.result.eventsPerSecond, decimals: 0)) "
                    + "ratio=\(formatted(pipeline.result.eventsPerSecond / baseline.result.eventsPerSecond, decimals: 3))"
            )
        }
    }

    // MARK: Reusable pieces

    /// Sends `events` events over `streams` streams to the EventService at `target` and measures
    /// events per second and per-event Ack latency. The lead's pipeline benchmark calls this after
    /// starting the runtime.
    static func measureStreamingIngest(
        target: HostPort, events: Int, streams: Int, window: Int = 256, payload: [UInt8] = payload(bytes: 256)
    ) async throws -> StreamingIngestResult {
        try await StreamingIngestClient.measure(
            target: target, events: events, streams: streams, window: window, payload: payload
        )
    }

    /// Runs the bare echo service on a free port of 127.0.0.1 for the duration of `body`.
    static func withBareEchoServer<Result: Sendable>(_ body: (HostPort) async throws -> Result) async throws -> Result {
        try await withServer(services: [BareEchoService()], body)
    }

    /// Runs FisoGRPC's event service with a handler that acknowledges at once.
    static func withFisoEchoServer<Result: Sendable>(
        maxPendingAcks: Int, _ body: (HostPort) async throws -> Result
    ) async throws -> Result {
        let service = EventIngestService(options: .init(maxPendingAcks: maxPendingAcks)) { _ in
            .delivered(cloudEventID: "bench")
        }
        return try await withServer(services: [service], body)
    }

    /// Measures every target `rounds` times, alternating, after one warm-up run each; returns the
    /// best round (highest events/s) of each target, in the order given.
    static func compare(
        targets: [(name: String, target: HostPort)], events: Int, streams: Int, window: Int, payload: [UInt8],
        rounds: Int
    ) async throws -> [(name: String, result: StreamingIngestResult)] {
        for (_, target) in targets {
            _ = try await measureStreamingIngest(
                target: target, events: max(1, events / 10), streams: streams, window: window, payload: payload
            )
        }
        var best: [StreamingIngestResult?] = Array(repeating: nil, count: targets.count)
        for round in 1...max(1, rounds) {
            var line = "round \(round):"
            for (index, (name, target)) in targets.enumerated() {
                let result = try await measureStreamingIngest(
                    target: target, events: events, streams: streams, window: window, payload: payload
                )
                line += " \(name) \(formatted(result.eventsPerSecond, decimals: 0)) events/s;"
                if best[index].map({ result.eventsPerSecond > $0.eventsPerSecond }) ?? true { best[index] = result }
            }
            print(line)
        }
        return zip(targets, best).compactMap { target, result in result.map { (target.name, $0) } }
    }

    /// A table of the results, with each one's throughput relative to the first (the baseline).
    static func report(
        _ results: [(name: String, result: StreamingIngestResult)], events: Int, streams: Int, window: Int,
        payloadBytes: Int
    ) -> String {
        var lines = [
            "gRPC streaming ingest: \(events) events of \(payloadBytes) bytes, \(streams) stream(s), window \(window)",
            pad("service", 16) + pad("events/s", 12) + pad("p50 ms", 10) + pad("p99 ms", 10) + pad("failed", 8)
                + pad("missing", 9) + pad("unordered", 11) + "vs baseline",
        ]
        let baseline = results.first?.result.eventsPerSecond ?? 0
        for (name, result) in results {
            let ratio = baseline > 0 ? result.eventsPerSecond / baseline : 0
            lines.append(
                pad(name, 16) + pad(formatted(result.eventsPerSecond, decimals: 0), 12)
                    + pad(formatted(result.latency.median.inMilliseconds, decimals: 3), 10)
                    + pad(formatted(result.latency.p99.inMilliseconds, decimals: 3), 10)
                    + pad("\(result.failedAcks)", 8) + pad("\(result.missingAcks)", 9)
                    + pad("\(result.outOfOrderAcks)", 11) + formatted(ratio * 100, decimals: 1) + "%"
            )
        }
        return lines.joined(separator: "\n")
    }

    /// A JSON object of about `bytes` bytes.
    static func payload(bytes: Int) -> [UInt8] {
        let prefix = #"{"kind":"bench","data":""#
        let suffix = #""}"#
        let filler = max(0, bytes - prefix.utf8.count - suffix.utf8.count)
        return Array((prefix + String(repeating: "x", count: filler) + suffix).utf8)
    }

    private static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }

    private static func withServer<Result: Sendable>(
        services: [any RegistrableRPCService], _ body: (HostPort) async throws -> Result
    ) async throws -> Result {
        let runner = GRPCServerRunner(
            configuration: GRPCServerConfiguration(address: HostPort(host: "127.0.0.1", port: 0)), services: services
        )
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await runner.run() }
            let port = try await runner.listeningPort()
            let result: Result
            do {
                result = try await body(HostPort(host: "127.0.0.1", port: port))
            } catch {
                await runner.shutdown(gracePeriod: .seconds(2))
                throw error
            }
            await runner.shutdown(gracePeriod: .seconds(2))
            try await group.waitForAll()
            return result
        }
    }
}

/// The baseline: `fiso.flow.v1.EventService` acknowledging every event as soon as it is read,
/// straight on the generated protocol.
struct BareEchoService: Fiso_Flow_V1_EventService.ServiceProtocol {
    func send(
        request: ServerRequest<Fiso_Flow_V1_Event>, context: ServerContext
    ) async throws -> ServerResponse<Fiso_Flow_V1_Ack> {
        ServerResponse(message: Self.ack(for: request.message))
    }

    func stream(
        request: StreamingServerRequest<Fiso_Flow_V1_Event>, context: ServerContext
    ) async throws -> StreamingServerResponse<Fiso_Flow_V1_Ack> {
        StreamingServerResponse { writer in
            for try await event in request.messages { try await writer.write(Self.ack(for: event)) }
            return [:]
        }
    }

    private static func ack(for event: Fiso_Flow_V1_Event) -> Fiso_Flow_V1_Ack {
        var ack = Fiso_Flow_V1_Ack()
        ack.eventID = event.id
        ack.status = .ok
        return ack
    }
}
