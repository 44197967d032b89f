import FisoGRPC

/// `sink.type: grpc` settings.
public struct GRPCSinkSettings: SinkSettings, Equatable {
    public static let defaultTimeout = Duration.seconds(10)

    /// `host:port` of an EventService.
    public var target: String
    /// Deadline of one call.
    public var timeout: Duration
    public var tls: TLSFiles?
}

extension GRPCSinkSettings {
    public static let typeName = "grpc"
    public static let configKeys = ["target", "timeout", "tls"]

    public static func parse(_ config: ConfigMapping, context: ConfigContext) -> Self? {
        guard let target = config["target"].requiredString() else { return nil }
        if (try? HostPort(parsing: target)) == nil || target.hasPrefix(":") {
            config["target"].problem("\"\(target)\" is not host:port")
        }
        let timeout = config["timeout"].duration(minimum: .milliseconds(1)) ?? GRPCSinkSettings.defaultTimeout
        return GRPCSinkSettings(
            target: target, timeout: timeout, tls: TLSFiles.read(config["tls"], requireCertificate: false)
        )
    }

    public func makeComponent(context: FlowBuildContext) async throws -> any EventSink {
        try GRPCSink(settings: self)
    }
}

/// Sends each CloudEvent with `EventService.Send`, headers as metadata. `UNAVAILABLE`,
/// `RESOURCE_EXHAUSTED`, `DEADLINE_EXCEEDED` (and an Ack saying the receiver is unavailable) are
/// retried by the pipeline; other failures are permanent.
struct GRPCSink: EventSink {
    let client: EventServiceClient
    let target: String
    let timeout: Duration

    init(settings: GRPCSinkSettings) throws {
        let tls = settings.tls.map {
            GRPCClientTLS(
                caFile: $0.caFile, certificateFile: $0.certificateFile, keyFile: $0.keyFile, serverName: $0.serverName)
        }
        do {
            client = try EventServiceClient(
                configuration: EventClientConfiguration(
                    target: try HostPort(parsing: settings.target), timeout: settings.timeout, tls: tls
                )
            )
        } catch {
            throw SinkError(
                "cannot set up the gRPC client for \(settings.target): \(error.message)", isRetryable: false)
        }
        target = settings.target
        timeout = settings.timeout
    }

    func deliver(_ event: OutboundEvent, context: DeliveryContext) async throws -> SinkReply {
        guard let timeout = context.attemptTimeout(within: timeout) else {
            throw SinkError("the caller's deadline passed before the delivery to \(target)", isRetryable: false)
        }
        do {
            let ack = try await client.send(
                payload: event.body, id: event.cloudEvent.id, contentType: "application/cloudevents+json",
                headers: event.headers.fields, timeout: timeout
            )
            guard ack.isDelivered else {
                throw SinkError(
                    "\(target) refused the event: \(ack.errorCode): \(ack.errorMessage)",
                    isRetryable: ack.status == .unavailable
                )
            }
            return .none
        } catch let failure as EventDeliveryFailure {
            throw SinkError("\(target): \(failure.message)", isRetryable: failure.isRetryable)
        }
    }

    func shutdown() async {
        await client.shutdown()
    }
}
