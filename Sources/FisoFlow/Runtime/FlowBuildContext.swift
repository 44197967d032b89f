import AsyncHTTPClient
import Logging

/// What component factories get when a flow is built: the flow's definition and the resources
/// shared by all flows of the process.
public struct FlowBuildContext: Sendable {
    public let flow: FlowDefinition
    public let metrics: FlowMetrics
    public let logger: Logger
    let shared: SharedResources

    public var httpClient: HTTPClient { shared.httpClient }
    /// Kafka clients shared by the flows of this runtime.
    public var kafka: KafkaClients { shared.kafka }
    /// How long a stopping source may take to finish what it is doing (`FISO_SHUTDOWN_TIMEOUT`).
    public var shutdownTimeout: Duration { shared.shutdownTimeout }
    /// The flow's expression language: CEL with the event variables and those of its source.
    public var expressions: FlowExpressions {
        FlowExpressions(sourceVariables: type(of: flow.source.settings).expressionVariables)
    }
    var ingress: HTTPIngress { shared.ingress }
    var standardOutput: StandardOutput { shared.standardOutput }
}

/// Resources every flow of one runtime uses.
struct SharedResources: Sendable {
    let registry: ComponentRegistry
    let httpClient: HTTPClient
    let ingress: HTTPIngress
    let standardOutput: StandardOutput
    let shutdownTimeout: Duration
    let kafka: KafkaClients
}
