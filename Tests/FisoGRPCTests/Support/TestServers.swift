import FisoGRPC
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import NIOConcurrencyHelpers

typealias EventClient = Fiso_Flow_V1_EventService.Client<HTTP2ClientTransport.Posix>
typealias HealthClient = Grpc_Health_V1_Health.Client<HTTP2ClientTransport.Posix>

/// Runs a ``GRPCEventServer`` on 127.0.0.1 with a free port for the duration of `body`, then shuts
/// it down (and fails the test if `run()` failed).
func withEventServer<Result: Sendable>(
    options: EventIngestService.Options = .init(), tls: GRPCServerTLS? = nil, serving: Bool = true,
    handler: @escaping EventHandler,
    _ body: @Sendable (GRPCEventServer, Int) async throws -> Result
) async throws -> Result {
    let server = GRPCEventServer(
        configuration: GRPCServerConfiguration(address: HostPort(host: "127.0.0.1", port: 0), tls: tls),
        options: options, handler: handler
    )
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await server.run() }
        let port = try await server.listeningPort()
        if serving { server.setServing(true) }
        let result: Result
        do {
            result = try await body(server, port)
        } catch {
            await server.shutdown(gracePeriod: .seconds(5))
            try await group.waitForAll()
            throw error
        }
        await server.shutdown(gracePeriod: .seconds(5))
        try await group.waitForAll()
        return result
    }
}

/// Runs a server for arbitrary services on 127.0.0.1 with a free port for the duration of `body`.
func withServer<Result: Sendable>(
    services: [any RegistrableRPCService], tls: GRPCServerTLS? = nil,
    _ body: @Sendable (Int) async throws -> Result
) async throws -> Result {
    let runner = GRPCServerRunner(
        configuration: GRPCServerConfiguration(address: HostPort(host: "127.0.0.1", port: 0), tls: tls),
        services: services
    )
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await runner.run() }
        let port = try await runner.listeningPort()
        let result: Result
        do {
            result = try await body(port)
        } catch {
            await runner.shutdown(gracePeriod: .seconds(5))
            try await group.waitForAll()
            throw error
        }
        await runner.shutdown(gracePeriod: .seconds(5))
        try await group.waitForAll()
        return result
    }
}

/// A plaintext gRPC connection to 127.0.0.1:`port` for the duration of `body`.
func withConnection<Result: Sendable>(
    port: Int, _ body: @Sendable (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> Result
) async throws -> Result {
    try await withGRPCClient(
        transport: .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)
    ) { client in
        try await body(client)
    }
}

/// An event whose payload is `{"n": n}` and whose id is `e-n`.
func numberedEvent(_ number: Int) -> Fiso_Flow_V1_Event {
    Fiso_Flow_V1_Event(payload: Array(#"{"n":\#(number)}"#.utf8), id: "e-\(number)")
}

/// What a stream call produced: the Acks, in arrival order, and the error that ended it, if any.
struct StreamOutcome: Sendable {
    var acks: [Fiso_Flow_V1_Ack]
    var error: RPCError?
}

/// Sends `events` on one `Stream` call and collects every Ack until the call ends.
func streamEvents(_ events: [Fiso_Flow_V1_Event], client: EventClient, metadata: Metadata = [:]) async throws
    -> StreamOutcome
{
    try await client.stream(
        metadata: metadata,
        requestProducer: { writer in
            for event in events { try await writer.write(event) }
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
}

/// A handler that echoes the event back as a delivered Ack whose CloudEvent id is the payload
/// text, and fails events whose payload is not JSON-looking (does not start with "{").
let echoHandler: EventHandler = { event in
    let text = String(decoding: event.payload, as: UTF8.self)
    guard text.hasPrefix("{") else {
        return .failed(code: "INVALID_JSON", message: "payload is not a JSON object")
    }
    return .delivered(cloudEventID: text)
}

/// Opens a gate for waiting tasks once, and counts how many are waiting.
final class Gate: Sendable {
    private let opened = NIOLockedValueBox<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let open = opened.withLockedValue { state in
                if state.open { return true }
                state.waiters.append(continuation)
                return false
            }
            if open { continuation.resume() }
        }
    }

    func open() {
        let waiters = opened.withLockedValue { state in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}

/// Polls `condition` every 10 ms for up to `timeout`; true once it holds.
func eventually(timeout: Duration = .seconds(30), _ condition: @Sendable () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}
