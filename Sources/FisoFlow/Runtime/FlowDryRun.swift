import AsyncHTTPClient
import FisoJSON
import Logging
import NIOConcurrencyHelpers
import Prometheus

/// Runs one event through a flow's transform, interceptors and CloudEvent stage without its source
/// or sink, for `fiso-flow transform test`.
public enum FlowDryRun {
    public struct Result: Sendable {
        /// The payload after `transform.fields` (the input when the flow has no transform); nil when
        /// the transform failed.
        public var transformed: JSONValue?
        /// The CloudEvent the sink would receive, when the event got that far.
        public var cloudEvent: CloudEvent?
        /// The headers the sink would receive.
        public var headers: EventHeaders
        /// Why the event would take the error path.
        public var error: FlowError?
    }

    public static func run(
        _ definition: FlowDefinition, payload: JSONValue, headers: EventHeaders = [:],
        registry: ComponentRegistry = .standard, logger: Logger = Logger(label: "fiso-flow")
    ) async throws -> Result {
        // Decoded as a source decodes it, so an input that is a CloudEvent means the same here.
        let event: Event
        switch EventDecoder.event(
            from: payload.serialized(), named: "input", headers: headers, binding: .http, flow: definition.name,
            origin: []
        ) {
        case .success(let decoded): event = decoded
        case .failure(let failure): return Result(transformed: nil, cloudEvent: nil, headers: [:], error: failure.error)
        }
        let httpClient = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            let result = try await TaskSpawner.run { spawner in
                let shared = SharedResources(
                    registry: registry, httpClient: httpClient,
                    ingress: HTTPIngress(spawner: spawner, logger: logger), standardOutput: StandardOutput(),
                    shutdownTimeout: .seconds(1), kafka: KafkaClients(logger: logger)
                )
                let factory = FlowFactory(
                    registry: registry, metricsRegistry: PrometheusCollectorRegistry(), shared: shared, logger: logger
                )
                let context = factory.context(for: definition)
                let capture = CaptureSink()
                let pipeline = try await factory.makePipeline(definition, context: context, sink: capture)
                var transformed: JSONValue? = event.payload
                if let transform = pipeline.transform {
                    transformed = try? transform.transform(event)
                }
                let outcome = await pipeline.process(event)
                await pipeline.shutdown()
                await shared.kafka.shutdown()
                let captured = capture.captured
                var error: FlowError?
                if case .failed(let failure) = outcome { error = failure }
                return Result(
                    transformed: transformed, cloudEvent: captured?.cloudEvent, headers: captured?.headers ?? [:],
                    error: error
                )
            }
            try await httpClient.shutdown()
            return result
        } catch {
            try? await httpClient.shutdown()
            throw error
        }
    }
}

/// Keeps the last event it was given instead of delivering it.
final class CaptureSink: EventSink {
    private let last = NIOLockedValueBox<OutboundEvent?>(nil)

    var captured: OutboundEvent? { last.withLockedValue { $0 } }

    func deliver(_ event: OutboundEvent, context: DeliveryContext) async throws -> SinkReply {
        last.withLockedValue { $0 = event }
        return .none
    }

    func shutdown() async {}
}
