import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Synchronization

/// Where and how an ``EventServiceClient`` connects.
public struct EventClientConfiguration: Sendable {
    /// The server's `host:port`.
    public var target: HostPort
    /// The deadline of each call.
    public var timeout: Duration
    /// TLS; nil connects in plaintext HTTP/2.
    public var tls: GRPCClientTLS?
    /// The largest Ack accepted.
    public var maxResponseMessageBytes: Int

    public init(
        target: HostPort, timeout: Duration = .seconds(10), tls: GRPCClientTLS? = nil,
        maxResponseMessageBytes: Int = 4 << 20
    ) {
        self.target = target
        self.timeout = timeout
        self.tls = tls
        self.maxResponseMessageBytes = maxResponseMessageBytes
    }
}

/// Client TLS: whom to trust, an optional client certificate, and the name to expect.
public struct GRPCClientTLS: Sendable, Equatable {
    /// CA certificates (PEM) to trust; nil trusts the system's roots.
    public var caFile: String?
    /// A client certificate (PEM) for mutual TLS, with ``keyFile``.
    public var certificateFile: String?
    public var keyFile: String?
    /// The server name to send (SNI, `:authority`) and to verify the certificate against, instead
    /// of the target's host.
    public var serverName: String?
    /// Accept any server certificate (development only).
    public var skipVerify: Bool

    public init(
        caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil, serverName: String? = nil,
        skipVerify: Bool = false
    ) {
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.serverName = serverName
        self.skipVerify = skipVerify
    }

    /// The transport's TLS settings; reads (and checks) the PEM files now.
    package func transportSecurity() throws(GRPCConfigurationError) -> HTTP2ClientTransport.Posix.TransportSecurity {
        if (certificateFile == nil) != (keyFile == nil) {
            throw GRPCConfigurationError("a TLS client certificate needs both certFile and keyFile")
        }
        var tls = HTTP2ClientTransport.Posix.TransportSecurity.TLS.defaults
        if let caFile {
            tls.trustRoots = .certificates([.bytes(try PEMFile.read(caFile, what: "TLS CA"), format: .pem)])
        }
        if let certificateFile, let keyFile {
            tls.certificateChain = [.bytes(try PEMFile.read(certificateFile, what: "TLS certificate"), format: .pem)]
            tls.privateKey = .bytes(try PEMFile.read(keyFile, what: "TLS private key"), format: .pem)
        }
        if skipVerify { tls.serverCertificateVerification = .noVerification }
        return .tls(tls)
    }
}

/// Why a `Send` did not deliver an event, and whether trying again can help.
public struct EventDeliveryFailure: Error, Sendable, CustomStringConvertible {
    /// The gRPC status code of a failed call (e.g. `UNAVAILABLE`); nil when the call succeeded but
    /// the server's Ack reported a failure.
    public var rpcCode: RPCError.Code?
    /// The server's Ack, when it answered with a non-OK one.
    public var ack: Fiso_Flow_V1_Ack?
    public var message: String
    /// True for `UNAVAILABLE`, `RESOURCE_EXHAUSTED`, `DEADLINE_EXCEEDED` and for Acks with status
    /// `UNAVAILABLE` (the server did not take the event); everything else is permanent.
    public var isRetryable: Bool

    public var description: String { message }

    public init(rpcCode: RPCError.Code?, ack: Fiso_Flow_V1_Ack?, message: String, isRetryable: Bool) {
        self.rpcCode = rpcCode
        self.ack = ack
        self.message = message
        self.isRetryable = isRetryable
    }

    /// Whether a failed call with this status code is worth retrying.
    public static func isRetryable(_ code: RPCError.Code) -> Bool {
        code == .unavailable || code == .resourceExhausted || code == .deadlineExceeded
    }

    /// Whether an Ack with this status is worth sending again.
    public static func isRetryable(_ status: Fiso_Flow_V1_Ack.Status) -> Bool {
        status == .unavailable
    }

    init(rpcError: RPCError, target: HostPort) {
        rpcCode = rpcError.code
        ack = nil
        var message = "gRPC call to \(target) failed: \(rpcError.code.canonicalName)"
        if !rpcError.message.isEmpty { message += ": \(rpcError.message)" }
        if let cause = rpcError.cause { message += " (\(GRPCServerRunner.describe(cause)))" }
        self.message = message
        isRetryable = Self.isRetryable(rpcError.code)
    }

    init(ack: Fiso_Flow_V1_Ack, target: HostPort) {
        rpcCode = nil
        self.ack = ack
        let code = ack.errorCode.isEmpty ? "\(ack.status)" : ack.errorCode
        message = "\(target) did not deliver the event: \(code)"
        if !ack.errorMessage.isEmpty { message += ": \(ack.errorMessage)" }
        isRetryable = Self.isRetryable(ack.status)
    }
}

/// Calls `fiso.flow.v1.EventService.Send` on one target, reusing its HTTP/2 connection for every
/// call.
///
/// The client runs its connections in a task it owns from creation until ``shutdown()``; calls
/// made after ``shutdown()`` fail with a permanent error.
public final class EventServiceClient: Sendable {
    public let configuration: EventClientConfiguration
    private let grpcClient: GRPCClient<HTTP2ClientTransport.Posix>
    private let service: Fiso_Flow_V1_EventService.Client<HTTP2ClientTransport.Posix>
    private let connections: Task<Void, Never>
    private let shutDown = Atomic(false)

    /// Checks the configuration (TLS files are read now) and starts connecting lazily.
    public init(configuration: EventClientConfiguration) throws(GRPCConfigurationError) {
        self.configuration = configuration
        let transport = try HTTP2ClientTransport.Posix.fisoClient(
            target: configuration.target, tls: configuration.tls)
        let grpcClient = GRPCClient(transport: transport)
        self.grpcClient = grpcClient
        service = Fiso_Flow_V1_EventService.Client(wrapping: grpcClient)
        // The connections live as long as this client; `shutdown()` ends them and waits.
        connections = Task { try? await grpcClient.runConnections() }
    }

    /// Sends one event with `Send`; `headers` also go as call metadata (see
    /// ``HeaderMetadata/metadata(from:)``). Returns the server's Ack when it delivered the event.
    public func send(
        _ event: Fiso_Flow_V1_Event, headers: [(name: String, value: String)] = [],
        timeout: Duration? = nil
    ) async throws(EventDeliveryFailure) -> Fiso_Flow_V1_Ack {
        if shutDown.load(ordering: .relaxed) {
            throw EventDeliveryFailure(
                rpcError: RPCError(code: .failedPrecondition, message: "the client is shut down"),
                target: configuration.target
            )
        }
        var options = CallOptions.defaults
        options.timeout = timeout ?? configuration.timeout
        options.maxResponseMessageBytes = configuration.maxResponseMessageBytes
        let ack: Fiso_Flow_V1_Ack
        do {
            ack = try await service.send(event, metadata: HeaderMetadata.metadata(from: headers), options: options)
        } catch let error as RPCError {
            throw EventDeliveryFailure(rpcError: error, target: configuration.target)
        } catch {
            throw EventDeliveryFailure(
                rpcError: RPCError(code: .unknown, message: "\(error)"), target: configuration.target
            )
        }
        guard ack.status == .ok else { throw EventDeliveryFailure(ack: ack, target: configuration.target) }
        return ack
    }

    /// Sends one event built from its parts: headers go both into `Event.headers` and the call's
    /// metadata.
    public func send(
        payload: some Sequence<UInt8>, id: String?, contentType: String,
        headers: [(name: String, value: String)] = [], timeout: Duration? = nil
    ) async throws(EventDeliveryFailure) -> Fiso_Flow_V1_Ack {
        var map: [String: String] = [:]
        for (name, value) in headers {
            if let existing = map[name] { map[name] = existing + ", " + value } else { map[name] = value }
        }
        let event = Fiso_Flow_V1_Event(payload: payload, id: id, headers: map, contentType: contentType)
        return try await send(event, headers: headers, timeout: timeout)
    }

    /// Lets calls in flight finish, closes the connections and returns once they are closed.
    public func shutdown() async {
        shutDown.store(true, ordering: .relaxed)
        grpcClient.beginGracefulShutdown()
        await connections.value
    }
}
