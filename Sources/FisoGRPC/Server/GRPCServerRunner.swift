import FisoConcurrency
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import NIOConcurrencyHelpers

/// Where and how a gRPC server listens.
public struct GRPCServerConfiguration: Sendable {
    /// The address to bind; port 0 picks a free port (see ``GRPCServerRunner/listeningPort()``).
    public var address: HostPort
    /// TLS for every connection; nil serves plaintext HTTP/2.
    public var tls: GRPCServerTLS?
    /// The largest request message accepted; larger ones fail the call with `RESOURCE_EXHAUSTED`.
    public var maxRequestMessageBytes: Int

    public static let defaultMaxRequestMessageBytes = 4 << 20

    public init(
        address: HostPort, tls: GRPCServerTLS? = nil,
        maxRequestMessageBytes: Int = Self.defaultMaxRequestMessageBytes
    ) {
        self.address = address
        self.tls = tls
        self.maxRequestMessageBytes = maxRequestMessageBytes
    }
}

/// A server certificate and key (PEM files), and optionally a CA (PEM) whose certificates clients
/// must present (mutual TLS).
public struct GRPCServerTLS: Sendable, Equatable {
    public var certificateFile: String
    public var keyFile: String
    /// When set, clients must present a certificate issued by this CA.
    public var clientCAFile: String?

    public init(certificateFile: String, keyFile: String, clientCAFile: String? = nil) {
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.clientCAFile = clientCAFile
    }

    func transportSecurity() throws(GRPCConfigurationError) -> HTTP2ServerTransport.Posix.TransportSecurity {
        let chain = try PEMFile.read(certificateFile, what: "TLS certificate")
        let key = try PEMFile.read(keyFile, what: "TLS private key")
        let certificates: [TLSConfig.CertificateSource] = [.bytes(chain, format: .pem)]
        let privateKey: TLSConfig.PrivateKeySource = .bytes(key, format: .pem)
        guard let clientCAFile else {
            return .tls(certificateChain: certificates, privateKey: privateKey)
        }
        let ca = try PEMFile.read(clientCAFile, what: "TLS client CA")
        return .mTLS(certificateChain: certificates, privateKey: privateKey) { config in
            config.trustRoots = .certificates([.bytes(ca, format: .pem)])
        }
    }
}

/// Reads PEM files with errors that name the file.
enum PEMFile {
    static func read(_ path: String, what: String) throws(GRPCConfigurationError) -> [UInt8] {
        let contents: Data
        do {
            contents = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw GRPCConfigurationError("cannot read \(what) file \(path): \(error.localizedDescription)")
        }
        guard let text = String(data: contents, encoding: .utf8), text.contains("-----BEGIN ") else {
            throw GRPCConfigurationError("\(what) file \(path) is not PEM (no \"-----BEGIN\" line)")
        }
        return Array(contents)
    }
}

/// The server could not start or failed while running.
public struct GRPCServerError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Runs a gRPC server (HTTP/2 over NIO, optional TLS) for a set of services.
///
/// ``run()`` binds, serves and returns once the server stopped; ``listeningPort()`` waits until
/// it is bound; ``shutdown(gracePeriod:)`` stops accepting calls, lets the calls in flight finish
/// for up to the grace period and then cancels the rest.
public final class GRPCServerRunner: Sendable {
    public let configuration: GRPCServerConfiguration
    private let services: [any RegistrableRPCService]
    private let state = NIOLockedValueBox(State())
    private let forcedStop = AsyncSignal<Void>()
    /// The bound port or why there is none; fired once, by `settle`.
    private let portOutcome = AsyncSignal<Result<Int, GRPCServerError>>()
    private let finished = AsyncSignal<Void>()

    private enum Phase {
        case idle
        /// `run()` was called and sets up the transport.
        case preparing
        case starting(GRPCServer<HTTP2ServerTransport.Posix>)
        case listening(GRPCServer<HTTP2ServerTransport.Posix>, port: Int)
        case failed(GRPCServerError)
        case stopped
    }

    private struct State {
        var phase = Phase.idle
        var shutdownRequested = false

        /// The answer for ``listeningPort()``, once there is one.
        var portResult: Result<Int, GRPCServerError>? {
            switch phase {
            case .idle, .preparing, .starting: nil
            case .listening(_, let port): .success(port)
            case .failed(let error): .failure(error)
            case .stopped: .failure(GRPCServerError(message: "the gRPC server is stopped"))
            }
        }
    }

    /// - Parameters:
    ///   - configuration: Address, TLS and limits.
    ///   - services: What the server serves.
    public init(configuration: GRPCServerConfiguration, services: [any RegistrableRPCService]) {
        self.configuration = configuration
        self.services = services
    }

    /// Binds and serves until ``shutdown(gracePeriod:)`` finished. Throws ``GRPCServerError`` when
    /// the address cannot be bound or TLS cannot be set up, and ``GRPCConfigurationError`` for an
    /// unusable address or certificate file.
    public func run() async throws {
        enum Claim { case run, stopped, alreadyRunning }
        let claim: Claim = state.withLockedValue { state in
            switch state.phase {
            case .idle where !state.shutdownRequested:
                state.phase = .preparing
                return .run
            case .idle, .stopped, .failed: return .stopped
            case .preparing, .starting, .listening: return .alreadyRunning
            }
        }
        switch claim {
        case .run: break
        case .stopped:
            settle(.stopped)
            return
        case .alreadyRunning:
            throw GRPCServerError(message: "the gRPC server on \(configuration.address) is already running")
        }
        defer { finished.fire() }

        let transport: HTTP2ServerTransport.Posix
        do {
            transport = try makeTransport()
        } catch {
            settle(.failed(GRPCServerError(message: error.message)))
            throw error
        }
        let server = GRPCServer(transport: transport, services: services)
        let proceed: Bool = state.withLockedValue { state in
            guard !state.shutdownRequested else { return false }
            state.phase = .starting(server)
            return true
        }
        guard proceed else {
            settle(.stopped)
            return
        }

        do {
            try await withThrowingTaskGroup(of: Bool.self) { group in
                group.addTask {
                    try await server.serve()
                    return true
                }
                group.addTask {
                    if let address = try? await transport.listeningAddress, let port = Self.port(of: address) {
                        self.settle(.listening(server, port: port))
                    }
                    return false
                }
                group.addTask {
                    _ = try? await self.forcedStop.wait()
                    return true
                }
                while let serverEnded = try await group.next() {
                    if serverEnded { break }
                }
                group.cancelAll()
            }
        } catch {
            let failure = GRPCServerError(
                message: "gRPC server on \(configuration.address) failed: \(Self.describe(error))"
            )
            settle(.failed(failure))
            throw failure
        }
        settle(.stopped)
    }

    /// The bound port, once the server listens (the chosen one for port 0). Throws when the server
    /// failed to start or is stopped.
    public func listeningPort() async throws(GRPCServerError) -> Int {
        // The current answer when there is one (the server may have stopped since it bound).
        if let current = state.withLockedValue({ $0.portResult }) { return try current.get() }
        // `run()` always settles the port (bound, failed or stopped), so this wait may ignore
        // cancellation.
        return try await portOutcome.waitIgnoringCancellation().get()
    }

    /// Stops accepting new calls and connections (HTTP/2 GOAWAY); calls in flight go on. Returns at
    /// once.
    public func beginShutdown() {
        let server: GRPCServer<HTTP2ServerTransport.Posix>? = state.withLockedValue { state in
            state.shutdownRequested = true
            switch state.phase {
            case .starting(let server), .listening(let server, _): return server
            case .idle, .preparing, .failed, .stopped: return nil
            }
        }
        server?.beginGracefulShutdown()
    }

    /// Stops the server gracefully: no new calls; calls in flight get up to `gracePeriod` to finish,
    /// then they are cancelled. Returns once ``run()`` has returned (or at once if it never ran).
    public func shutdown(gracePeriod: Duration) async {
        beginShutdown()
        let running: Bool = state.withLockedValue { state in
            switch state.phase {
            case .preparing, .starting, .listening: return true
            case .idle:
                state.phase = .stopped
                return false
            case .failed, .stopped: return false
            }
        }
        settle(nil)
        guard running else { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { _ = try? await self.finished.wait() }
            group.addTask { try? await Task.sleep(for: gracePeriod) }
            await group.next()
            group.cancelAll()
        }
        if !finished.isFired {
            forcedStop.fire()
            _ = try? await finished.wait()
        }
    }

    /// Moves to `phase` (unless the phase is already final) and answers ``listeningPort()`` once
    /// there is an answer.
    private func settle(_ phase: Phase?) {
        let result: Result<Int, GRPCServerError>? = state.withLockedValue { state in
            if let phase {
                switch (state.phase, phase) {
                case (.failed, _), (.stopped, _): break
                case (.listening, .listening): break
                default: state.phase = phase
                }
            }
            return state.portResult
        }
        if let result { portOutcome.fire(result) }
    }

    private func makeTransport() throws(GRPCConfigurationError) -> HTTP2ServerTransport.Posix {
        let address = try configuration.address.bindAddress()
        let security = try configuration.tls?.transportSecurity() ?? .plaintext
        let maxRequestMessageBytes = configuration.maxRequestMessageBytes
        return HTTP2ServerTransport.Posix(
            address: address, transportSecurity: security,
            config: .defaults { config in
                config.rpc.maxRequestPayloadSize = maxRequestMessageBytes
            }
        )
    }

    private static func port(of address: GRPCNIOTransportCore.SocketAddress) -> Int? {
        if let ipv4 = address.ipv4 { return ipv4.port }
        if let ipv6 = address.ipv6 { return ipv6.port }
        return nil
    }

    /// The innermost useful description of a transport error (e.g. "Address already in use").
    static func describe(_ error: any Error) -> String {
        if let runtime = error as? RuntimeError {
            if let cause = runtime.cause { return "\(runtime.message) (\(describe(cause)))" }
            return runtime.message
        }
        return "\(error)"
    }
}
