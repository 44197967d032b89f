/// `sink.type: grpc` settings.
public struct GRPCSinkSettings: SinkSettings, Equatable {
    public static let defaultTimeout = Duration.seconds(10)

    /// `host:port` of the EventService.
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
            if (try? ListenAddress(parsing: target)) == nil || target.hasPrefix(":") {
                config["target"].problem("\"\(target)\" is not host:port")
            }
            let timeout = config["timeout"].duration(minimum: .milliseconds(1)) ?? GRPCSinkSettings.defaultTimeout
            return GRPCSinkSettings(
                target: target, timeout: timeout, tls: TLSFiles.read(config["tls"], requireCertificate: false)
            )
        },
        makeSink: nil
    )
}
