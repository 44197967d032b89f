import Logging
import Prometheus

/// A flow built from its definition, not yet started.
struct BuiltFlow: Sendable {
    let definition: FlowDefinition
    let pipeline: Pipeline
    let source: any EventSource
}

/// Turns a ``FlowDefinition`` into a pipeline and a source; each component's settings build it.
struct FlowFactory: Sendable {
    let registry: ComponentRegistry
    let metricsRegistry: PrometheusCollectorRegistry
    let shared: SharedResources
    let logger: Logger

    struct BuildError: Error, CustomStringConvertible {
        var description: String
    }

    func context(for definition: FlowDefinition) -> FlowBuildContext {
        var logger = logger
        logger[metadataKey: "flow"] = .string(definition.name)
        let metrics = FlowMetrics(flow: definition.name, registry: metricsRegistry)
        return FlowBuildContext(flow: definition, metrics: metrics, logger: logger, shared: shared)
    }

    /// The pipeline and the source of a flow.
    func build(_ definition: FlowDefinition) async throws -> BuiltFlow {
        let context = context(for: definition)
        let pipeline = try await makePipeline(definition, context: context)
        do {
            let source = try await definition.source.settings.makeComponent(context: context)
            return BuiltFlow(definition: definition, pipeline: pipeline, source: source)
        } catch {
            await pipeline.shutdown()
            throw error
        }
    }

    /// The processing chain of a flow; `sink` replaces the configured sink (for dry runs).
    func makePipeline(
        _ definition: FlowDefinition, context: FlowBuildContext, sink replacement: (any EventSink)? = nil
    ) async throws -> Pipeline {
        let expressions = context.expressions
        let transform = try definition.transform.map { try CELPayloadTransform($0, expressions: expressions) }
        let cloudEvents =
            definition.cloudEvents.isEmpty
            ? nil : try CELCloudEventOverrides(definition.cloudEvents, expressions: expressions)
        let sink: any EventSink
        if let replacement {
            sink = replacement
        } else {
            sink = try await definition.sink.settings.makeComponent(context: context)
        }
        var interceptors: [any Interceptor] = []
        let deadLetters: (any DeadLetterPublishing)?
        do {
            deadLetters = try DeadLetterRouting.publisher(for: definition, context: context)
            for interceptor in definition.interceptors {
                interceptors.append(try await interceptor.settings.makeComponent(context: context))
            }
        } catch {
            for built in interceptors { await built.shutdown() }
            await sink.shutdown()
            throw error
        }
        return Pipeline(
            flowName: definition.name, transform: transform, interceptors: interceptors, cloudEvents: cloudEvents,
            sink: sink, deadLetters: deadLetters, errorHandling: definition.errorHandling, metrics: context.metrics,
            logger: context.logger,
            maxInFlight: definition.source.settings.maxEventsInFlight
        )
    }
}
