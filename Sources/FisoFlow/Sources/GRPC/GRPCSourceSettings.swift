/// `source.type: grpc` settings.
public struct GRPCSourceSettings: SourceSettings, Equatable {
    public static let defaultAddress = ListenAddress(host: "0.0.0.0", port: 9000)
    public static let defaultMaxPendingAcks = 256

    public var listenAddress: ListenAddress
    public var tls: TLSFiles?
    /// Events of one stream in flight (not yet acknowledged) before the stream stops reading.
    public var maxPendingAcks: Int
}

/// A certificate and key for a TLS server, plus an optional CA for clients.
public struct TLSFiles: Sendable, Equatable {
    public var certificateFile: String?
    public var keyFile: String?
    public var caFile: String?
    public var serverName: String?

    /// Reads `tls: {certFile, keyFile, caFile, serverName}`; `requireCertificate` for servers.
    static func read(_ node: ConfigNode, requireCertificate: Bool) -> TLSFiles? {
        if node.isMissing { return nil }
        guard let block = node.mapping(allowedKeys: ["certFile", "keyFile", "caFile", "serverName"]) else {
            return nil
        }
        let files = TLSFiles(
            certificateFile: block["certFile"].string(), keyFile: block["keyFile"].string(),
            caFile: block["caFile"].string(), serverName: block["serverName"].string()
        )
        if requireCertificate {
            if files.certificateFile == nil { block["certFile"].problem("is required for a TLS server") }
            if files.keyFile == nil { block["keyFile"].problem("is required for a TLS server") }
        }
        if (files.certificateFile == nil) != (files.keyFile == nil) {
            block.problem("certFile and keyFile go together")
        }
        return files
    }
}

extension SourceType {
    public static let grpc = SourceType(
        name: "grpc",
        configKeys: ["listenAddr", "tls", "maxPendingAcks"],
        parse: { config, _ in
            var settings = GRPCSourceSettings(
                listenAddress: GRPCSourceSettings.defaultAddress, tls: nil,
                maxPendingAcks: GRPCSourceSettings.defaultMaxPendingAcks
            )
            if let text = config["listenAddr"].string() {
                do {
                    settings.listenAddress = try ListenAddress(parsing: text)
                } catch {
                    config["listenAddr"].problem("\(error)")
                }
            }
            settings.tls = TLSFiles.read(config["tls"], requireCertificate: true)
            if let limit = config["maxPendingAcks"].int(range: 1...100_000) { settings.maxPendingAcks = limit }
            return settings
        },
        makeSource: nil
    )
}
