import Logging
import Prometheus

/// A flow built from its definition, not yet started.
struct BuiltFlow: Sendable {
    let definition: FlowDefinition
    let pipeline: Pipeline
    let source: any EventSource
}

/// Turns a ``FlowDefinition`` into a pipeline and a source, using the component registry.
struct FlowFactory: Sendable {
    let registry: ComponentRegistry
    let metricsRegistry: PrometheusCollectorRegistry
    let shared: SharedResources
    let logger: Logger
    /// Builds `transform` and `cloudevents` stages; nil where the build has no expression language.
    let expressionStages: (any ExpressionStageBuilding)?

    struct BuildError: Error, CustomStringConvertible {
        var description: String
    }

    func build(_ definition: FlowDefinition) async throws -> BuiltFlow {
        var logger = logger
        logger[metadataKey: "flow"] = .string(definition.name)
        let metrics = FlowMetrics(flow: definition.name, registry: metricsRegistry)
        let context = FlowBuildContext(flow: definition, metrics: metrics, logger: logger, shared: shared)

        guard let sinkType = registry.sink(named: definition.sink.type), let makeSink = sinkType.makeSink else {
            throw BuildError(description: "sink type \(definition.sink.type) is not available")
        }
        guard let sourceType = registry.source(named: definition.source.type),
            let makeSource = sourceType.makeSource
        else {
            throw BuildError(description: "source type \(definition.source.type) is not available")
        }
        var interceptors: [any Interceptor] = []
        do {
            for interceptor in definition.interceptors {
                guard let type = registry.interceptor(named: interceptor.type), let make = type.makeInterceptor else {
                    throw BuildError(description: "interceptor type \(interceptor.type) is not available")
                }
                interceptors.append(try await make(interceptor.settings, context))
            }
        } catch {
            for built in interceptors { await built.shutdown() }
            throw error
        }
        var transform: (any PayloadTransform)?
        var cloudEvents: (any CloudEventCustomizing)?
        if definition.transform != nil || !definition.cloudEvents.isEmpty {
            guard let expressionStages else {
                throw BuildError(description: "transform and cloudevents need CEL, which this build lacks")
            }
            transform = try definition.transform.map { try expressionStages.makeTransform($0) }
            cloudEvents = definition.cloudEvents.isEmpty ? nil : try expressionStages.makeOverrides(definition.cloudEvents)
        }
        let sink = try await makeSink(definition.sink.settings, context)
        let source = try await makeSource(definition.source.settings, context)
        let maxInFlight = (definition.source.settings as? HTTPSourceSettings)?.maxInFlight ?? .max
        let pipeline = Pipeline(
            flowName: definition.name, transform: transform, interceptors: interceptors, cloudEvents: cloudEvents,
            sink: sink, errorHandling: definition.errorHandling, metrics: metrics, logger: logger,
            maxInFlight: maxInFlight
        )
        return BuiltFlow(definition: definition, pipeline: pipeline, source: source)
    }
}

/// Builds the expression-driven stages of a flow (`transform.fields`, `cloudevents`).
public protocol ExpressionStageBuilding: Sendable {
    func makeTransform(_ transform: TransformDefinition) throws -> any PayloadTransform
    func makeOverrides(_ overrides: CloudEventOverrides) throws -> any CloudEventCustomizing
}
