import FisoConcurrency
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle

/// The HTTP listeners of all flows with an `http` source. Flows on the same address share one
/// listener and are routed by path; a reload swaps a path's flow without closing the port.
public final class HTTPIngress: Sendable {
    private let spawner: TaskSpawner
    private let logger: Logger
    private let listeners = NIOLockedValueBox<[ListenAddress: HTTPListener]>([:])
    /// Listeners that lost their last route and are closing; a new listener on the same port waits
    /// for them so the bind does not fail.
    private let closing = NIOLockedValueBox<[Int: HTTPListener]>([:])

    init(spawner: TaskSpawner, logger: Logger) {
        self.spawner = spawner
        self.logger = logger
    }

    /// Routes `route.path` on `route.address` to the route's flow, starting the listener if needed.
    /// Throws when the address cannot be bound or the path belongs to another flow.
    func register(_ route: HTTPRoute) async throws -> HTTPRouteRegistration {
        while true {
            if let stopping = closing.withLockedValue({ $0[route.address.port] }) {
                await stopping.waitUntilStopped()
                closing.withLockedValue { if $0[route.address.port] === stopping { $0[route.address.port] = nil } }
                continue
            }
            let (listener, isNew) = listeners.withLockedValue { listeners in
                if let existing = listeners[route.address] { return (existing, false) }
                let listener = HTTPListener(address: route.address, logger: logger)
                listeners[route.address] = listener
                return (listener, true)
            }
            if isNew { start(listener) }
            do {
                try await listener.waitUntilBound()
            } catch {
                listeners.withLockedValue { if $0[route.address] === listener { $0[route.address] = nil } }
                throw error
            }
            if let registration = try listener.add(route) { return registration }
            // The listener began closing between lookup and registration; try again.
        }
    }

    /// Removes a route if it is still the one registered. A listener left with no route closes.
    func unregister(_ registration: HTTPRouteRegistration) async {
        guard let listener = listeners.withLockedValue({ $0[registration.address] }) else { return }
        guard listener.remove(registration) else { return }
        listeners.withLockedValue { if $0[registration.address] === listener { $0[registration.address] = nil } }
        closing.withLockedValue { $0[registration.address.port] = listener }
        await listener.close()
    }

    /// The port a listener actually bound (differs from the configured one for port 0).
    public func boundPort(for address: ListenAddress) -> Int? {
        listeners.withLockedValue { $0[address] }?.boundPort
    }

    /// Stops every listener from accepting connections and waits for the requests in flight.
    func shutdown() async {
        let all = listeners.withLockedValue { listeners in
            defer { listeners = [:] }
            return Array(listeners.values)
        }
        await withDiscardingTaskGroup { group in
            for listener in all { group.addTask { await listener.close() } }
        }
    }

    private func start(_ listener: HTTPListener) {
        let logger = logger
        let accepted = spawner.spawn {
            let application = Application(
                responder: HTTPIngressResponder(listener: listener),
                configuration: ApplicationConfiguration(
                    address: .hostname(listener.address.host, port: listener.address.port),
                    serverName: nil,
                    reuseAddress: true
                ),
                onServerRunning: { channel in
                    listener.markBound(port: channel.localAddress?.port ?? listener.address.port)
                },
                logger: logger
            )
            let group = ServiceGroup(
                configuration: ServiceGroupConfiguration(services: [application], logger: logger)
            )
            if listener.attach(group) {
                // close() ran before the group existed; a group remembers an early trigger.
                await group.triggerGracefulShutdown()
            }
            do {
                try await group.run()
                listener.markStopped(error: nil)
            } catch {
                logger.error(
                    "http listener failed",
                    metadata: ["address": .string(listener.address.description), "error": .string("\(error)")]
                )
                listener.markStopped(error: error)
            }
        }
        if !accepted { listener.markStopped(error: CancellationError()) }
    }
}

/// One path of one listener, owned by a running flow.
struct HTTPRoute: Sendable {
    var address: ListenAddress
    var path: String
    var flowName: String
    var pipeline: Pipeline
    var maxBodyBytes: Int
    var headerPolicy: HeaderPolicy
}

/// Proof of a registration, used to remove exactly this route later.
struct HTTPRouteRegistration: Sendable {
    var address: ListenAddress
    var path: String
    var id: Int
}

/// Why a route could not be registered.
struct HTTPRouteConflict: Error, CustomStringConvertible {
    var address: ListenAddress
    var path: String
    var owner: String
    var description: String { "path \(path) on \(address) is already served by flow \(owner)" }
}

/// One bound address: its routing table and the server task's state.
final class HTTPListener: Sendable {
    let address: ListenAddress
    private let logger: Logger

    private struct State {
        var routes: [String: (route: HTTPRoute, id: Int)] = [:]
        var nextID = 0
        var closing = false
        var boundPort: Int?
        var group: ServiceGroup?
    }

    private let state = NIOLockedValueBox(State())
    /// The bound port, or why binding failed.
    private let bindOutcome = AsyncSignal<Result<Int, HTTPListenerError>>()
    private let stopped = AsyncSignal<Void>()

    init(address: ListenAddress, logger: Logger) {
        self.address = address
        self.logger = logger
    }

    var boundPort: Int? { state.withLockedValue { $0.boundPort } }

    func route(for path: String) -> HTTPRoute? {
        state.withLockedValue { $0.routes[path]?.route }
    }

    /// Adds or replaces (same flow, e.g. after a reload) the route; nil when the listener is closing.
    func add(_ route: HTTPRoute) throws -> HTTPRouteRegistration? {
        try state.withLockedValue { state in
            guard !state.closing else { return nil }
            if let existing = state.routes[route.path], existing.route.flowName != route.flowName {
                throw HTTPRouteConflict(address: address, path: route.path, owner: existing.route.flowName)
            }
            state.nextID += 1
            state.routes[route.path] = (route, state.nextID)
            return HTTPRouteRegistration(address: address, path: route.path, id: state.nextID)
        }
    }

    /// Removes the route if it is still this registration's. True when the listener is left empty
    /// and is now closing.
    func remove(_ registration: HTTPRouteRegistration) -> Bool {
        state.withLockedValue { state in
            guard state.routes[registration.path]?.id == registration.id else { return false }
            state.routes[registration.path] = nil
            guard state.routes.isEmpty, !state.closing else { return false }
            state.closing = true
            return true
        }
    }

    /// Records the server's group; true when the listener was asked to close already.
    func attach(_ group: ServiceGroup) -> Bool {
        state.withLockedValue { state in
            state.group = group
            return state.closing
        }
    }

    func markBound(port: Int) {
        state.withLockedValue { $0.boundPort = port }
        logger.info("http source listening", metadata: ["address": .string("\(address.host):\(port)")])
        bindOutcome.fire(.success(port))
    }

    func markStopped(error: (any Error)?) {
        state.withLockedValue { $0.closing = true }
        // Ignored when the listener had bound: then this is an ordinary stop.
        bindOutcome.fire(.failure(HTTPListenerError(address: address, underlying: error ?? CancellationError())))
        stopped.fire()
    }

    /// Waits for the server task to bind or fail; it always reports one or the other.
    func waitUntilBound() async throws {
        _ = try await bindOutcome.waitIgnoringCancellation().get()
    }

    func waitUntilStopped() async {
        await stopped.waitIgnoringCancellation()
    }

    /// Stops accepting connections, lets requests in flight finish, and waits until closed.
    func close() async {
        let group = state.withLockedValue { state in
            state.closing = true
            return state.group
        }
        await group?.triggerGracefulShutdown()
        await waitUntilStopped()
    }
}

struct HTTPListenerError: Error, CustomStringConvertible {
    var address: ListenAddress
    var underlying: (any Error)?
    var description: String {
        "cannot listen on \(address)" + (underlying.map { ": \($0)" } ?? "")
    }
}
