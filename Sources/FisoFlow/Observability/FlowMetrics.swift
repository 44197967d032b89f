import Prometheus

/// Every metric the runtime exports, named in one place (`fiso_flow_*`).
public enum MetricNames {
    static func descriptor(_ name: String, unit: String, help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "fiso", subsystem: "flow", metricName: name, unitName: unit, helpText: help)
    }

    static var events: MetricNameDescriptor {
        descriptor(
            "events", unit: "total",
            help: "Events handled, by outcome: success, error (took the error path) or rejected (invalid input)"
        )
    }
    static var eventDuration: MetricNameDescriptor {
        descriptor(
            "event_duration", unit: "seconds", help: "Time from receiving an event to its final outcome"
        )
    }
    static var transformErrors: MetricNameDescriptor {
        descriptor(
            "transform_errors", unit: "total",
            help: "Events that failed in a pipeline stage: transform, interceptor or cloudevent"
        )
    }
    static var sinkRetries: MetricNameDescriptor {
        descriptor("sink_retries", unit: "total", help: "Delivery attempts repeated after a failure")
    }
    static var eventsInFlight: MetricNameDescriptor {
        descriptor("events_in_flight", unit: "", help: "Events received and not yet finished")
    }
    static var interceptorErrors: MetricNameDescriptor {
        descriptor(
            "interceptor_errors", unit: "total", help: "Interceptor failures by module and reason"
        )
    }
    static var interceptorDuration: MetricNameDescriptor {
        descriptor(
            "interceptor_duration", unit: "seconds", help: "Time one interceptor call took, by module"
        )
    }
    static var moduleReloads: MetricNameDescriptor {
        descriptor(
            "module_reloads", unit: "total", help: "WASM module reloads after the file changed, by result"
        )
    }
    static var configReloads: MetricNameDescriptor {
        descriptor(
            "config_reloads", unit: "total", help: "Flow file changes applied (success) or refused (error)"
        )
    }
    static var temporalAlreadyRunning: MetricNameDescriptor {
        descriptor(
            "temporal_already_running", unit: "total",
            help: "Temporal starts answered with an already running workflow of the same id (counted as delivered)"
        )
    }
    static var flowsRunning: MetricNameDescriptor {
        descriptor("flows_running", unit: "", help: "Flows currently taking events")
    }
    static var deadLetters: MetricNameDescriptor {
        descriptor(
            "dead_letters", unit: "total", help: "Events written to the dead-letter topic, by error code"
        )
    }

    /// Buckets from 250 µs to 30 s: WASM calls and local sinks sit at the low end, retried
    /// deliveries at the high end.
    static let latencyBuckets: [Duration] = [
        .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
        .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10), .seconds(30),
    ]
}

/// The metrics of one flow, created once when the flow is built so the hot path only increments.
public struct FlowMetrics: Sendable {
    public let flow: String
    let registry: PrometheusCollectorRegistry
    let succeeded: Counter
    let failed: Counter
    let rejected: Counter
    let duration: DurationHistogram
    let sinkRetries: Counter
    let inFlight: Gauge
    let transformErrors: Counter
    let interceptorStageErrors: Counter
    let cloudEventErrors: Counter

    public init(flow: String, registry: PrometheusCollectorRegistry) {
        self.flow = flow
        self.registry = registry
        let flowLabel = [("flow", flow)]
        succeeded = registry.makeCounter(descriptor: MetricNames.events, labels: flowLabel + [("status", "success")])
        failed = registry.makeCounter(descriptor: MetricNames.events, labels: flowLabel + [("status", "error")])
        rejected = registry.makeCounter(descriptor: MetricNames.events, labels: flowLabel + [("status", "rejected")])
        duration = registry.makeDurationHistogram(
            descriptor: MetricNames.eventDuration, labels: flowLabel, buckets: MetricNames.latencyBuckets
        )
        sinkRetries = registry.makeCounter(descriptor: MetricNames.sinkRetries, labels: flowLabel)
        inFlight = registry.makeGauge(descriptor: MetricNames.eventsInFlight, labels: flowLabel)
        transformErrors = registry.makeCounter(
            descriptor: MetricNames.transformErrors, labels: flowLabel + [("stage", "transform")]
        )
        interceptorStageErrors = registry.makeCounter(
            descriptor: MetricNames.transformErrors, labels: flowLabel + [("stage", "interceptor")]
        )
        cloudEventErrors = registry.makeCounter(
            descriptor: MetricNames.transformErrors, labels: flowLabel + [("stage", "cloudevent")]
        )
    }

    func stageErrors(_ stage: FlowError.Stage) -> Counter? {
        switch stage {
        case .transform: transformErrors
        case .interceptor: interceptorStageErrors
        case .cloudevent: cloudEventErrors
        case .sink: nil
        }
    }

    /// Counts one interceptor failure by module and reason (error path only, so looked up lazily).
    public func recordInterceptorError(module: String, reason: String) {
        registry.makeCounter(
            descriptor: MetricNames.interceptorErrors, labels: [("flow", flow), ("module", module), ("reason", reason)]
        ).increment()
    }

    /// The latency histogram of one interceptor module.
    public func interceptorDuration(module: String) -> DurationHistogram {
        registry.makeDurationHistogram(
            descriptor: MetricNames.interceptorDuration, labels: [("flow", flow), ("module", module)],
            buckets: MetricNames.latencyBuckets
        )
    }

    public func recordDeadLetter(code: FlowError.Code) {
        registry.makeCounter(
            descriptor: MetricNames.deadLetters, labels: [("flow", flow), ("code", code.rawValue)]
        ).increment()
    }

    public func recordModuleReload(module: String, success: Bool) {
        registry.makeCounter(
            descriptor: MetricNames.moduleReloads,
            labels: [("flow", flow), ("module", module), ("result", success ? "success" : "error")]
        ).increment()
    }
}
