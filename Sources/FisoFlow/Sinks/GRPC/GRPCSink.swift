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

extension SinkType {
    public static let grpc = SinkType(
        name: "grpc",
        configKeys: ["target", "timeout", "tls"],
        parse: { config, _ in
            guard let target = config["target"].requiredString() else { return nil }
            if (try? HostPort(parsing: target)) == nil || target.hasPrefix(":") {
                config["target"].problem("\"\(target)\" is not host:port")
            }
            let timeout = config["timeout"].duration(minimum: .milliseconds(1)) ?? GRPCSinkSettings.defaultTimeout
            return GRPCSinkSettings(
                target: target, timeout: timeout, tls: TLSFiles.read(config["tls"], requireCertificate: false)
            )
        },
        makeSink: { settings, _ in
            guard let settings = settings as? GRPCSinkSettings else { throw SettingsMismatch(expected: "grpc") }
            return try GRPCSink(settings: settings)
        }
    )
}

/// Sends each CloudEvent with `EventService.Send`, headers as metadata. `UNAVAILABLE`,
/// `RESOURCE_EXHAUSTED`, `DEADLINE_EXCEEDED` (and an Ack saying the receiver is unavailable) are
/// retried by the pipeline; other failures are permanent.
struct GRPCSink: EventSink {
    let client: EventServiceClient
    let target: String

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
    }

    func deliver(_ event: OutboundEvent) async throws -> SinkReply {
        do {
            let ack = try await client.send(
                payload: event.body, id: event.cloudEvent.id, contentType: "application/cloudevents+json",
                headers: event.headers.fields
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
