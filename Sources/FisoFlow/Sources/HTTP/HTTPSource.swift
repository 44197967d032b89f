import FisoJSON
import FisoQuantities
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// `source.type: http` settings.
public struct HTTPSourceSettings: SourceSettings, Equatable {
    public static let defaultAddress = ListenAddress(host: "0.0.0.0", port: 8081)
    public static let defaultMaxBodyBytes = 1 << 20
    public static let defaultMaxInFlight = 1024

    public var listenAddress: ListenAddress
    public var path: String
    public var maxBodyBytes: Int
    /// Events of this flow in flight at once; more get 503 with `Retry-After`.
    public var maxInFlight: Int
    /// Which request headers become event headers (`forwardHeaders`, `dropHeaders`).
    public var headerPolicy: HeaderPolicy

    public init(
        listenAddress: ListenAddress = Self.defaultAddress, path: String = "/",
        maxBodyBytes: Int = Self.defaultMaxBodyBytes, maxInFlight: Int = Self.defaultMaxInFlight,
        headerPolicy: HeaderPolicy = .standard
    ) {
        self.listenAddress = listenAddress
        self.path = path
        self.maxBodyBytes = maxBodyBytes
        self.maxInFlight = maxInFlight
        self.headerPolicy = headerPolicy
    }
}

extension HTTPSourceSettings {
    public static let typeName = "http"
    public static let configKeys = ["listenAddr", "path", "maxBodyBytes", "maxInFlight"] + HeaderPolicy.configKeys
    /// Flows on one address share its listener, routed by path.
    public static let sharesListeners = true

    public var maxEventsInFlight: Int { maxInFlight }
    public var listener: ListenerClaim? {
        ListenerClaim(address: listenAddress, sharing: .routed(by: "path", value: path))
    }

    public static func parse(_ config: ConfigMapping, context: ConfigContext) -> Self? {
        var settings = HTTPSourceSettings()
        if let text = config["listenAddr"].string() {
            do {
                settings.listenAddress = try ListenAddress(parsing: text)
            } catch {
                config["listenAddr"].problem("\(error)")
            }
        }
        if let path = config["path"].string() {
            if path.hasPrefix("/"), !path.contains("?"), !path.contains("#"), !path.contains(" ") {
                settings.path = path
            } else {
                config["path"].problem("must start with '/' and contain no query, fragment or spaces")
            }
        }
        if let limit = config["maxBodyBytes"].byteSize(minimum: 1) { settings.maxBodyBytes = limit }
        if let limit = config["maxInFlight"].int(range: 1...1_000_000) { settings.maxInFlight = limit }
        settings.headerPolicy = HeaderPolicy.read(config)
        return settings
    }

    public func makeComponent(context: FlowBuildContext) async throws -> any EventSource {
        HTTPSource(settings: self, flowName: context.flow.name, ingress: context.ingress)
    }
}

/// Receives events as HTTP POST requests on a shared listener, and answers each request with the
/// event's outcome (synchronous mode).
struct HTTPSource: EventSource {
    let settings: HTTPSourceSettings
    let flowName: String
    let ingress: HTTPIngress

    var description: String { "http \(settings.listenAddress)\(settings.path)" }

    func run(pipeline: Pipeline, lifecycle: SourceLifecycle) async throws {
        let route = HTTPRoute(
            address: settings.listenAddress, path: settings.path, flowName: flowName, pipeline: pipeline,
            maxBodyBytes: settings.maxBodyBytes, headerPolicy: settings.headerPolicy
        )
        let registration = try await ingress.register(route)
        lifecycle.markStarted()
        try? await lifecycle.waitForStopRequest()
        await ingress.unregister(registration)
        try? await pipeline.drain()  // cancelled: the runtime reports what was still in flight
    }
}

/// A request's context on the ingress: Hummingbird's, plus the connection, which a request whose
/// body is too large to even read past closes.
struct IngressRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// Turns HTTP requests into events for the flow registered on the request's path.
struct HTTPIngressResponder: HTTPResponder {
    typealias Context = IngressRequestContext
    let listener: HTTPListener

    func respond(to request: Request, context: IngressRequestContext) async throws -> Response {
        let path = request.uri.path
        guard let route = listener.route(for: path) else {
            return Self.errorResponse(FlowError(.notFound, "no flow is listening on path \(path)"))
        }
        guard request.method == .post else {
            var response = Self.errorResponse(
                FlowError(.methodNotAllowed, "use POST to send events (got \(request.method.rawValue))")
            )
            response.headers[.allow] = "POST"
            return response
        }
        let pipeline = route.pipeline
        let body: ByteBuffer
        let waitsForContinue = request.headers[.expect]?.lowercased() == "100-continue"
        switch try await Self.collect(
            request.body, limit: route.maxBodyBytes, declared: request.headers[.contentLength],
            waitsForContinue: waitsForContinue)
        {
        case .complete(let collected): body = collected
        case .tooLarge(let readToEnd):
            pipeline.recordRejected()
            var response = Self.errorResponse(Self.tooLarge(route.maxBodyBytes))
            response.headers[.connection] = "close"
            if !readToEnd {
                // The client is still sending more than we read: the connection cannot go on, and
                // closing it ends the client's write at once instead of at its own timeout.
                let channel = context.channel
                channel.eventLoop.scheduleTask(in: .milliseconds(100)) { channel.close(promise: nil) }
            }
            return response
        }
        let headers = route.headerPolicy.headers(
            from: request.headers.lazy.map { (name: $0.name.rawName, value: $0.value) },
            keepingPrefixed: EventDecoder.Binding.http.headerPrefix
        )
        let contentType = request.headers[.contentType]
        if let contentType, CloudEvent.mediaType(contentType) == CloudEvent.batchContentType {
            return await Self.respondToBatch(body, headers: headers, route: route, path: path)
        }
        let event: Event
        switch EventDecoder.event(
            from: body.readableBytesView, named: "request body", contentType: contentType, headers: headers,
            binding: .http, flow: route.flowName, origin: [("http.path", path)]
        ) {
        case .success(let decoded): event = decoded
        case .failure(let failure):
            pipeline.recordRejected()
            return Self.errorResponse(failure.error)
        }
        var response = Self.response(for: await pipeline.process(event))
        if let name = HTTPField.Name(CorrelationID.headerName) { response.headers[name] = event.correlationID }
        return response
    }

    /// Runs each event of a CloudEvents batch through the flow, one after another in batch order,
    /// and answers 200 when all were delivered, 207 when some were not, with one result per event.
    static func respondToBatch(
        _ body: ByteBuffer, headers: EventHeaders, route: HTTPRoute, path: String
    ) async -> Response {
        let pipeline = route.pipeline
        let events: [Event]
        switch EventDecoder.batch(
            from: body.readableBytesView, headers: headers, flow: route.flowName, origin: [("http.path", path)]
        ) {
        case .success(let decoded): events = decoded
        case .failure(let error):
            pipeline.recordRejected()
            return errorResponse(error)
        }
        var results: [JSONValue] = []
        var allDelivered = true
        for event in events {
            switch await pipeline.process(event) {
            case .delivered(let id, _):
                results.append(["id": .string(id), "status": "delivered"])
            case .deadLettered(let error), .failed(let error):
                allDelivered = false
                results.append([
                    "id": .string(event.attributes.id), "status": "failed", "code": .string(error.code.rawValue),
                    "error": .string(error.message),
                ])
            }
        }
        return jsonResponse(status: allDelivered ? 200 : 207, ["results": .array(results)])
    }

    enum CollectedBody {
        case complete(ByteBuffer)
        /// `readToEnd`: the whole body was read (and dropped), so the answer can be read at once.
        case tooLarge(readToEnd: Bool)
    }

    /// The most a too-large body is read (and dropped) for, so that a client which sends the whole
    /// body before reading the answer — Python's urllib and requests, most SDKs, unlike curl with
    /// `Expect: 100-continue` — finishes writing and sees the 413 instead of blocking until its
    /// own timeout. Beyond it the connection is closed.
    static let discardLimit = 64 << 20

    /// The body, or `.tooLarge` once it (or its declared length) passes `limit`; the rest of a
    /// too-large body is read and dropped up to ``discardLimit``, never kept. A client that waits
    /// for `100 Continue` (curl) has sent nothing yet: it gets the 413 at once.
    static func collect(
        _ body: RequestBody, limit: Int, declared: String?, waitsForContinue: Bool
    ) async throws -> CollectedBody {
        let declaredLength = declared.flatMap { Int($0) }
        var tooLarge = (declaredLength ?? 0) > limit
        if tooLarge, waitsForContinue { return .tooLarge(readToEnd: true) }
        if tooLarge, let declaredLength, declaredLength > discardLimit { return .tooLarge(readToEnd: false) }
        var collected = ByteBuffer()
        var received = 0
        for try await chunk in body {
            received += chunk.readableBytes
            if !tooLarge, received > limit { tooLarge = true }
            if tooLarge {
                collected = ByteBuffer()
                if received > discardLimit { return .tooLarge(readToEnd: false) }
            } else if received == chunk.readableBytes {
                collected = chunk  // the usual one-chunk body: no copy
            } else {
                var chunk = chunk
                collected.writeBuffer(&chunk)
            }
        }
        return tooLarge ? .tooLarge(readToEnd: true) : .complete(collected)
    }

    static func tooLarge(_ limit: Int) -> FlowError {
        FlowError(.payloadTooLarge, "request body exceeds the flow's limit of \(ByteSize.format(limit))")
    }

    static func response(for outcome: EventOutcome) -> Response {
        switch outcome {
        case .delivered(let id, let reply):
            guard let status = reply.status else {
                return jsonResponse(status: 202, ["id": .string(id), "status": "accepted"])
            }
            return passThrough(reply, status: status)
        case .deadLettered(let error):
            var response = response(for: .failed(error))
            if let name = HTTPField.Name("X-Fiso-Dead-Lettered") { response.headers[name] = "true" }
            return response
        case .failed(let error):
            if let reply = error.downstreamReply, let status = reply.status, (400..<500).contains(status) {
                return passThrough(reply, status: status)
            }
            var response = errorResponse(error)
            if error.code == .overloaded || error.code == .unavailable {
                response.headers[.retryAfter] = "1"
            }
            return response
        }
    }

    /// The sink's answer, relayed to the caller (status, content type and body).
    static func passThrough(_ reply: SinkReply, status: Int) -> Response {
        var headers = HTTPFields()
        for (name, value) in reply.headers {
            if let fieldName = HTTPField.Name(name), relayedReplyHeaders.contains(fieldName) {
                headers[fieldName] = value
            }
        }
        return Response(
            status: HTTPResponse.Status(code: status), headers: headers,
            body: ResponseBody(byteBuffer: reply.body ?? ByteBuffer())
        )
    }

    static let relayedReplyHeaders: Set<HTTPField.Name> = [.contentType, .location, .retryAfter, .eTag]

    static func errorResponse(_ error: FlowError) -> Response {
        jsonResponse(status: error.httpStatus, ["error": .string(error.message), "code": .string(error.code.rawValue)])
    }

    static func jsonResponse(status: Int, _ object: JSONObject) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(
            status: HTTPResponse.Status(code: status), headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: JSONValue.object(object).serialized()))
        )
    }
}

/// A component factory got settings of another type; a programming error, reported not trapped.
