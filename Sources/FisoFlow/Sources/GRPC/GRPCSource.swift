import FisoGRPC
import FisoJSON
import Foundation
import NIOCore

/// `source.type: grpc` settings.
public struct GRPCSourceSettings: SourceSettings, Equatable {
    public static let defaultAddress = ListenAddress(host: "0.0.0.0", port: 9000)
    public static let defaultMaxPendingAcks = 256
    public static let defaultMaxPayloadBytes = 1 << 20

    public var listenAddress: ListenAddress
    /// Server certificate and key; with `caFile`, clients must present certificates (mutual TLS).
    public var tls: TLSFiles?
    /// Events of one stream read but not yet acknowledged before the stream stops reading.
    public var maxPendingAcks: Int
    /// Larger payloads get a `PAYLOAD_TOO_LARGE` Ack.
    public var maxPayloadBytes: Int
    /// Events of one stream in the pipeline at once. 1 (the default) delivers a stream's events to
    /// the sink strictly in order; more trades that order for throughput (Acks stay in order).
    public var maxConcurrentEvents: Int = 1
    /// Which metadata and event headers become event headers (`forwardHeaders`, `dropHeaders`).
    public var headerPolicy: HeaderPolicy = .standard
}

/// A certificate and key, an optional CA and server name, for TLS servers and clients.
public struct TLSFiles: Sendable, Equatable {
    public var certificateFile: String?
    public var keyFile: String?
    public var caFile: String?
    public var serverName: String?

    /// Reads `tls: {certFile, keyFile, caFile, serverName}`; `requireCertificate` for servers.
    static func read(_ node: ConfigNode, requireCertificate: Bool) -> TLSFiles? {
        if node.isMissing { return nil }
        let keys =
            requireCertificate ? ["certFile", "keyFile", "caFile"] : ["certFile", "keyFile", "caFile", "serverName"]
        guard let block = node.mapping(allowedKeys: keys) else { return nil }
        let files = TLSFiles(
            certificateFile: block["certFile"].string(), keyFile: block["keyFile"].string(),
            caFile: block["caFile"].string(), serverName: block["serverName"].string()
        )
        if requireCertificate {
            if files.certificateFile == nil { block["certFile"].problem("is required for a TLS server") }
            if files.keyFile == nil { block["keyFile"].problem("is required for a TLS server") }
        } else if (files.certificateFile == nil) != (files.keyFile == nil) {
            block.problem("certFile and keyFile go together")
        }
        return files
    }
}

extension GRPCSourceSettings {
    public static let typeName = "grpc"
    public static let configKeys =
        ["listenAddr", "tls", "maxPendingAcks", "maxPayloadBytes", "maxConcurrentEvents"] + HeaderPolicy.configKeys

    public var listener: ListenerClaim? { ListenerClaim(address: listenAddress, sharing: .exclusive) }

    public static func parse(_ config: ConfigMapping, context: ConfigContext) -> Self? {
        var settings = GRPCSourceSettings(
            listenAddress: GRPCSourceSettings.defaultAddress, tls: nil,
            maxPendingAcks: GRPCSourceSettings.defaultMaxPendingAcks,
            maxPayloadBytes: GRPCSourceSettings.defaultMaxPayloadBytes
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
        if let limit = config["maxPayloadBytes"].byteSize(minimum: 1) { settings.maxPayloadBytes = limit }
        if let limit = config["maxConcurrentEvents"].int(range: 1...100_000) {
            if limit > settings.maxPendingAcks {
                config["maxConcurrentEvents"].problem("may not exceed maxPendingAcks (\(settings.maxPendingAcks))")
            }
            settings.maxConcurrentEvents = limit
        }
        settings.headerPolicy = HeaderPolicy.read(config)
        return settings
    }

    public func makeComponent(context: FlowBuildContext) async throws -> any EventSource {
        GRPCSource(settings: self, flowName: context.flow.name, gracePeriod: context.shutdownTimeout)
    }
}

/// Serves `fiso.flow.v1.EventService` (unary and streaming) and the gRPC health service; every
/// event runs through the flow and its Ack reports the outcome.
struct GRPCSource: EventSource {
    let settings: GRPCSourceSettings
    let flowName: String
    let gracePeriod: Duration

    var description: String { "grpc \(settings.listenAddress)" }

    func run(pipeline: Pipeline, lifecycle: SourceLifecycle) async throws {
        let tls = settings.tls.flatMap { files -> GRPCServerTLS? in
            guard let certificate = files.certificateFile, let key = files.keyFile else { return nil }
            return GRPCServerTLS(certificateFile: certificate, keyFile: key, clientCAFile: files.caFile)
        }
        let server = GRPCEventServer(
            configuration: GRPCServerConfiguration(
                address: HostPort(host: settings.listenAddress.host, port: settings.listenAddress.port), tls: tls
            ),
            options: EventIngestService.Options(
                maxPendingAcks: settings.maxPendingAcks, maxConcurrentEventsPerStream: settings.maxConcurrentEvents,
                maxPayloadBytes: settings.maxPayloadBytes
            )
        ) { incoming in
            await Self.handle(incoming, pipeline: pipeline, flowName: flowName, headerPolicy: settings.headerPolicy)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            do {
                _ = try await server.listeningPort()
            } catch {
                group.cancelAll()
                throw error
            }
            server.setServing(true)
            lifecycle.markStarted()
            try? await lifecycle.waitForStopRequest()
            await server.shutdown(gracePeriod: gracePeriod)
            try await group.waitForAll()
        }
        try? await pipeline.drain()  // cancelled: the runtime reports what was still in flight
    }

    static func handle(
        _ incoming: IncomingEvent, pipeline: Pipeline, flowName: String, headerPolicy: HeaderPolicy = .standard
    ) async -> EventAck {
        let headers = headerPolicy.headers(
            from: incoming.headers, keepingPrefixed: EventDecoder.Binding.http.headerPrefix)
        let event: Event
        switch EventDecoder.event(
            from: incoming.payload, named: "payload", contentType: incoming.contentType, headers: headers,
            binding: .http, flow: flowName,
            origin: [("grpc.call", incoming.call.rawValue), ("grpc.peer", incoming.peer)]
        ) {
        case .success(let decoded): event = decoded
        case .failure(let failure):
            pipeline.recordRejected()
            return .failed(code: failure.error.code.rawValue, message: failure.error.message)
        }
        switch await pipeline.process(event, context: DeliveryContext(deadline: incoming.deadline)) {
        case .delivered(let id, let reply):
            return .delivered(cloudEventID: id, sinkReply: reply.status.map { reply.message(status: $0) })
        case .deadLettered(let error), .failed(let error):
            let sinkReply = error.downstreamReply.flatMap { reply in reply.status.map { reply.message(status: $0) } }
            return .failed(code: error.code.rawValue, message: error.message, sinkReply: sinkReply)
        }
    }
}

extension SinkReply {
    /// The reply as the gRPC Ack carries it.
    func message(status: Int) -> SinkReplyMessage {
        SinkReplyMessage(
            statusCode: status, body: body.map { Array($0.readableBytesView) } ?? [],
            contentType: headers.first { $0.name.caseInsensitiveEquals("content-type") }?.value
        )
    }
}
