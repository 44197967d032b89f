import Logging
import Prometheus
import ServiceLifecycle
import UnixSignals

/// The whole server process: the observability endpoints and the flow runtime in one service
/// group. On a shutdown signal the runtime drains first; the metrics port stays up until it is done.
public final class FisoFlowServer: Sendable {
    public let runtime: FlowRuntime
    public let observability: ObservabilityServer
    public let metricsPort: ObservabilityServer.BoundPort
    private let group: ServiceGroup

    /// With `handlesShutdownSignals`, SIGTERM and SIGINT start the graceful shutdown.
    public init(
        configuration: RuntimeConfiguration,
        metricsRegistry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(),
        logger: Logger = Logger(label: "fiso-flow"), standardOutput: StandardOutput = StandardOutput(),
        handlesShutdownSignals: Bool = false
    ) {
        let status = RuntimeStatus()
        runtime = FlowRuntime(
            configuration: configuration, metricsRegistry: metricsRegistry, status: status, logger: logger,
            standardOutput: standardOutput
        )
        metricsPort = ObservabilityServer.BoundPort()
        observability = ObservabilityServer(
            address: configuration.metricsAddress, registry: metricsRegistry, status: status, logger: logger,
            boundPort: metricsPort
        )
        var groupConfiguration = ServiceGroupConfiguration(
            services: [
                .init(service: observability),
                .init(service: runtime, successTerminationBehavior: .gracefullyShutdownGroup),
            ],
            gracefulShutdownSignals: handlesShutdownSignals ? [.sigterm, .sigint] : [],
            logger: logger
        )
        groupConfiguration.maximumGracefulShutdownDuration = configuration.shutdownTimeout
        group = ServiceGroup(configuration: groupConfiguration)
    }

    /// Runs until a shutdown signal (or ``shutdown()``) and the drain that follows. Throws
    /// ``FlowRuntime/StartupError`` when no flow could start.
    public func run() async throws {
        try await group.run()
    }

    /// Starts a graceful shutdown, as SIGTERM does.
    public func shutdown() async {
        await group.triggerGracefulShutdown()
    }
}
