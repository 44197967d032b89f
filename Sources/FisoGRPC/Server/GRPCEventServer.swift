/// A gRPC server for one event source: `fiso.flow.v1.EventService` backed by a handler, plus the
/// standard health service.
///
/// Typical use by a source:
/// ```swift
/// let server = GRPCEventServer(configuration: configuration, options: options) { event in ... }
/// try await withThrowingTaskGroup(of: Void.self) { group in
///     group.addTask { try await server.run() }
///     _ = try await server.listeningPort()     // throws when it cannot bind
///     server.setServing(true)                   // health: SERVING
///     await stopRequested()
///     await server.shutdown(gracePeriod: .seconds(10))
///     try await group.waitForAll()
/// }
/// ```
public final class GRPCEventServer: Sendable {
    /// The event service; its statistics show pending Acks and open streams.
    public let eventService: EventIngestService
    /// The health service; `NOT_SERVING` until ``setServing(_:)``.
    public let health: HealthService
    private let runner: GRPCServerRunner

    /// - Parameters:
    ///   - configuration: Address, TLS and limits. With `options.maxPayloadBytes` set, the
    ///     transport's message limit is raised to at least twice that plus 64 KiB, so that a
    ///     payload a little over the limit gets a `PAYLOAD_TOO_LARGE` Ack instead of a reset call.
    ///   - options: Stream limits (pending Acks, handler concurrency, payload size).
    ///   - handler: Turns each event into its Ack.
    public init(
        configuration: GRPCServerConfiguration, options: EventIngestService.Options = .init(),
        handler: @escaping EventHandler
    ) {
        var configuration = configuration
        if let payloadLimit = options.maxPayloadBytes {
            let overhead = 64 << 10
            let wanted = payloadLimit > (Int.max - overhead) / 2 ? Int.max : payloadLimit * 2 + overhead
            configuration.maxRequestMessageBytes = max(configuration.maxRequestMessageBytes, wanted)
        }
        eventService = EventIngestService(options: options, handler: handler)
        health = HealthService(services: [ServiceNames.eventService])
        runner = GRPCServerRunner(configuration: configuration, services: [eventService, health])
    }

    public var configuration: GRPCServerConfiguration { runner.configuration }

    /// Binds and serves until ``shutdown(gracePeriod:)`` finished; see ``GRPCServerRunner/run()``.
    public func run() async throws { try await runner.run() }

    /// The bound port once listening; throws when the server failed to start.
    public func listeningPort() async throws(GRPCServerError) -> Int { try await runner.listeningPort() }

    /// Reports the event service (and the server) as `SERVING` or `NOT_SERVING` to health checks.
    public func setServing(_ serving: Bool) { health.setServing(serving) }

    /// Drains and stops: health turns `NOT_SERVING`, no new calls are accepted, streams acknowledge
    /// what they have read and end with `UNAVAILABLE`, health watches end, and calls in flight get
    /// up to `gracePeriod` before they are cancelled. Returns once the server stopped.
    public func shutdown(gracePeriod: Duration) async {
        health.setServing(false)
        runner.beginShutdown()
        eventService.drain()
        health.finishWatches()
        await runner.shutdown(gracePeriod: gracePeriod)
    }
}
