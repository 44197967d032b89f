import GRPCCore
import NIOConcurrencyHelpers

/// The standard gRPC health service (`grpc.health.v1.Health`), whose statuses the owner sets.
///
/// It knows the server as a whole (service name "") and the services named at creation; all start
/// `NOT_SERVING`. A flow sets `SERVING` once it is ready and `NOT_SERVING` when it drains.
/// `Watch` streams get the current status and every change; ``finishWatches()`` ends them so a
/// shutting-down server does not wait for them.
public final class HealthService: Grpc_Health_V1_Health.ServiceProtocol, Sendable {
    private struct Watcher {
        let service: String
        let continuation: AsyncStream<HealthServingStatus>.Continuation
    }

    private struct State {
        var statuses: [String: HealthServingStatus]
        var watchers: [Int: Watcher] = [:]
        var nextWatcherID = 0
        var watchesFinished = false
    }

    private let state: NIOLockedValueBox<State>

    /// - Parameter services: Fully qualified names of the services to report on, besides "" (the
    ///   server as a whole).
    public init(services: [String] = [ServiceNames.eventService]) {
        var statuses: [String: HealthServingStatus] = ["": .notServing]
        for service in services { statuses[service] = .notServing }
        state = NIOLockedValueBox(State(statuses: statuses))
    }

    /// The status of `service`, or nil when the service is unknown.
    public func status(of service: String = "") -> HealthServingStatus? {
        state.withLockedValue { $0.statuses[service] }
    }

    /// Sets the status of one service (adding it when it is new) and tells its watchers.
    public func setStatus(_ status: HealthServingStatus, for service: String) {
        let watchers: [Watcher] = state.withLockedValue { state in
            state.statuses[service] = status
            return state.watchers.values.filter { $0.service == service }
        }
        for watcher in watchers { watcher.continuation.yield(status) }
    }

    /// Sets every known service, and the server as a whole, to `SERVING` or `NOT_SERVING`.
    public func setServing(_ serving: Bool) {
        let status: HealthServingStatus = serving ? .serving : .notServing
        let watchers: [Watcher] = state.withLockedValue { state in
            for service in state.statuses.keys { state.statuses[service] = status }
            return Array(state.watchers.values)
        }
        for watcher in watchers { watcher.continuation.yield(status) }
    }

    /// Ends every `Watch` call (after the statuses already sent); later `Watch` calls get the
    /// current status and end. Call on shutdown, after setting `NOT_SERVING`.
    public func finishWatches() {
        let watchers: [Watcher] = state.withLockedValue { state in
            state.watchesFinished = true
            defer { state.watchers = [:] }
            return Array(state.watchers.values)
        }
        for watcher in watchers { watcher.continuation.finish() }
    }

    // MARK: grpc.health.v1.Health

    public func check(
        request: ServerRequest<Grpc_Health_V1_HealthCheckRequest>, context: ServerContext
    ) async throws -> ServerResponse<Grpc_Health_V1_HealthCheckResponse> {
        let service = request.message.service
        guard let status = status(of: service) else {
            throw RPCError(code: .notFound, message: "unknown service \"\(service)\"")
        }
        return ServerResponse(message: Self.response(status))
    }

    public func list(
        request: ServerRequest<Grpc_Health_V1_HealthListRequest>, context: ServerContext
    ) async throws -> ServerResponse<Grpc_Health_V1_HealthListResponse> {
        var response = Grpc_Health_V1_HealthListResponse()
        for (service, status) in state.withLockedValue({ $0.statuses }) {
            response.statuses[service] = Self.response(status)
        }
        return ServerResponse(message: response)
    }

    public func watch(
        request: ServerRequest<Grpc_Health_V1_HealthCheckRequest>, context: ServerContext
    ) async throws -> StreamingServerResponse<Grpc_Health_V1_HealthCheckResponse> {
        let service = request.message.service
        // Only the newest status matters to a watcher that reads slowly.
        let (updates, continuation) = AsyncStream.makeStream(
            of: HealthServingStatus.self, bufferingPolicy: .bufferingNewest(1)
        )
        let watcherID: Int = state.withLockedValue { state in
            continuation.yield(state.statuses[service] ?? .serviceUnknown)
            if state.watchesFinished {
                continuation.finish()
                return -1
            }
            defer { state.nextWatcherID += 1 }
            state.watchers[state.nextWatcherID] = Watcher(service: service, continuation: continuation)
            return state.nextWatcherID
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLockedValue { $0.watchers.removeValue(forKey: watcherID) }
        }
        return StreamingServerResponse { writer in
            var lastSent: HealthServingStatus?
            for await status in updates where status != lastSent {
                try await writer.write(Self.response(status))
                lastSent = status
            }
            return [:]
        }
    }

    private static func response(_ status: HealthServingStatus) -> Grpc_Health_V1_HealthCheckResponse {
        var response = Grpc_Health_V1_HealthCheckResponse()
        response.status = status
        return response
    }
}
