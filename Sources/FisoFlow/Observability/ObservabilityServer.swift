import FisoJSON
import HTTPTypes
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Prometheus
import ServiceLifecycle

/// The metrics port: `GET /metrics` (Prometheus text), `GET /healthz` (alive) and `GET /readyz`
/// (200 while every flow is taking events, 503 during start-up and drain).
public struct ObservabilityServer: Service {
    let address: ListenAddress
    let registry: PrometheusCollectorRegistry
    let status: RuntimeStatus
    let logger: Logger
    let boundPort: BoundPort

    /// The port the server bound, known once it runs (useful with port 0).
    public final class BoundPort: Sendable {
        private let value = NIOLockedValueBox<Int?>(nil)
        public init() {}
        public var port: Int? { value.withLockedValue { $0 } }
        func set(_ port: Int) { value.withLockedValue { $0 = port } }
    }

    public init(
        address: ListenAddress, registry: PrometheusCollectorRegistry, status: RuntimeStatus, logger: Logger,
        boundPort: BoundPort = BoundPort()
    ) {
        self.address = address
        self.registry = registry
        self.status = status
        self.logger = logger
        self.boundPort = boundPort
    }

    public func run() async throws {
        let router = Router()
        let registry = registry
        let status = status
        router.get("/metrics") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(
                status: .ok, headers: headers,
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        router.get("/healthz") { _, _ in
            Self.json(.ok, ["status": "ok"])
        }
        router.get("/readyz") { _, _ in
            Self.json(status.isReady ? .ok : .serviceUnavailable, status.report())
        }
        let boundPort = boundPort
        let logger = logger
        let address = address
        let application = Application(
            router: router,
            configuration: ApplicationConfiguration(
                address: .hostname(address.host, port: address.port), serverName: nil, reuseAddress: true
            ),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? address.port
                boundPort.set(port)
                logger.info(
                    "metrics and health endpoints listening", metadata: ["address": .string("\(address.host):\(port)")])
            },
            logger: logger
        )
        try await application.run()
    }

    static func json(_ status: HTTPResponse.Status, _ value: JSONValue) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(
            status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: value.serialized())))
    }
}
