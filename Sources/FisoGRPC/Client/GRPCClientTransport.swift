import GRPCNIOTransportHTTP2
import NIOCore
import NIOHTTP2

extension HTTP2ClientTransport.Posix {
    /// The transport of every gRPC client of the runtime (the grpc and temporal sinks): plaintext
    /// or `tls` (its PEM files are read now), `tls.serverName` as the authority, and the server's
    /// PINGs answered before swift-nio-http2's flood limit closes a busy connection (see
    /// ``HTTP2PingResponder``). `configure` adjusts the rest.
    package static func fisoClient(
        target: HostPort, tls: GRPCClientTLS?, configure: (inout Config) -> Void = { _ in }
    ) throws(GRPCConfigurationError) -> HTTP2ClientTransport.Posix {
        let security = try tls?.transportSecurity() ?? .plaintext
        var config = Config.defaults
        if let serverName = tls?.serverName { config.http2.authority = serverName }
        config.channelDebuggingCallbacks.onCreateTCPConnection = { channel in
            channel.eventLoop.submit {
                let pipeline = channel.pipeline.syncOperations
                let http2 = try pipeline.handler(type: NIOHTTP2Handler.self)
                try pipeline.addHandler(HTTP2PingResponder(), position: .before(http2))
            }
        }
        configure(&config)
        do {
            return try HTTP2ClientTransport.Posix(
                target: target.clientTarget(), transportSecurity: security, config: config)
        } catch {
            throw GRPCConfigurationError(
                "cannot set up a gRPC client for \(target): \(GRPCServerRunner.describe(error))")
        }
    }
}
