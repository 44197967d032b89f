import FisoConcurrency
import FisoJSON
import FisoQuantities
import Foundation
import Logging
import NIOConcurrencyHelpers
import Prometheus

/// How one event ended.
public enum EventOutcome: Sendable {
    /// The sink accepted the event; `reply` is its answer (status and body for HTTP sinks).
    case delivered(cloudEventID: String, reply: SinkReply)
    /// The event took the error path and is stored in the dead-letter topic.
    case deadLettered(FlowError)
    /// The event took the error path and is not stored anywhere (no dead-letter topic, or writing
    /// to it failed as well).
    case failed(FlowError)
}

/// One flow's processing chain: transform → interceptors → CloudEvent → sink, with retries,
/// metrics and logs. Sources hand events to ``process(_:)``; a pipeline is safe to call from many
/// tasks at once and keeps count of the events in flight so a stopping flow can drain.
public final class Pipeline: Sendable {
    public let flowName: String
    let transform: (any PayloadTransform)?
    let interceptors: [any Interceptor]
    let cloudEvents: (any CloudEventCustomizing)?
    let sink: any EventSink
    let deadLetters: (any DeadLetterPublishing)?
    let errorHandling: ErrorHandlingPolicy
    let metrics: FlowMetrics
    let logger: Logger
    let maxInFlight: Int
    private let state = NIOLockedValueBox(State())
    /// Fired once the flow stopped admitting events and the last admitted one finished.
    private let drained = AsyncSignal<Void>()

    private struct State {
        var inFlight = 0
        var acceptingEvents = true
    }

    public init(
        flowName: String, transform: (any PayloadTransform)?, interceptors: [any Interceptor],
        cloudEvents: (any CloudEventCustomizing)?, sink: any EventSink,
        deadLetters: (any DeadLetterPublishing)? = nil, errorHandling: ErrorHandlingPolicy,
        metrics: FlowMetrics, logger: Logger, maxInFlight: Int = .max
    ) {
        self.flowName = flowName
        self.transform = transform
        self.interceptors = interceptors
        self.cloudEvents = cloudEvents
        self.sink = sink
        self.deadLetters = deadLetters
        self.errorHandling = errorHandling
        self.metrics = metrics
        self.maxInFlight = maxInFlight
        var logger = logger
        logger[metadataKey: "flow"] = .string(flowName)
        self.logger = logger
    }

    // MARK: Admission and draining

    /// Reserves a place for one event. Returns the reason when the flow takes no more events now.
    func admit() -> FlowError? {
        let refusal: FlowError? = state.withLockedValue { state in
            guard state.acceptingEvents else {
                return FlowError(.unavailable, "flow \(flowName) is stopping; retry shortly")
            }
            guard state.inFlight < maxInFlight else {
                return FlowError(.overloaded, "flow \(flowName) has \(maxInFlight) events in flight; retry shortly")
            }
            state.inFlight += 1
            return nil
        }
        if refusal == nil { metrics.inFlight.increment() }
        return refusal
    }

    private func release() {
        metrics.inFlight.decrement()
        let isDrained = state.withLockedValue { state in
            state.inFlight -= 1
            return state.inFlight == 0 && !state.acceptingEvents
        }
        if isDrained { drained.fire() }
    }

    public var eventsInFlight: Int { state.withLockedValue { $0.inFlight } }

    /// Stops admitting events and returns once every admitted event finished.
    ///
    /// - Throws: `CancellationError` when the calling task is cancelled first (the drain ran out of
    ///   time); ``eventsInFlight`` then tells how many events were still running.
    public func drain() async throws(CancellationError) {
        let isDrained = state.withLockedValue { state in
            state.acceptingEvents = false
            return state.inFlight == 0
        }
        if isDrained { drained.fire() }
        try await drained.wait()
    }

    /// Lets the interceptors pick up changed files (e.g. a new module version).
    public func checkForUpdates() async {
        for interceptor in interceptors { await interceptor.checkForUpdates() }
    }

    /// Releases the sink and interceptors. Call after ``drain()``.
    public func shutdown() async {
        for interceptor in interceptors { await interceptor.shutdown() }
        await sink.shutdown()
    }

    /// Counts an event a source refused before it became an event (bad JSON, too large).
    public func recordRejected() {
        metrics.rejected.increment()
    }

    // MARK: Processing

    /// Runs one event through the flow. Admission is part of the call: an event the flow cannot take
    /// now fails with `OVERLOADED` or `UNAVAILABLE`. `context` says what the source knows about the
    /// event's delivery (a Kafka transaction, the caller's deadline).
    public func process(_ event: Event, context: DeliveryContext = DeliveryContext()) async -> EventOutcome {
        if let refusal = admit() {
            metrics.rejected.increment()
            return .failed(refusal)
        }
        defer { release() }
        let start = ContinuousClock.now
        do {
            var context = context
            if context.trace == nil { context.trace = TraceContext.of(event.headers) }
            let (cloudEventID, reply) = try await run(event, context: context)
            metrics.succeeded.increment()
            metrics.duration.record(ContinuousClock.now - start)
            if logger.logLevel <= .debug {
                eventLogger(for: event).debug("event delivered", metadata: ["ce_id": .string(cloudEventID)])
            }
            return .delivered(cloudEventID: cloudEventID, reply: reply)
        } catch {
            metrics.failed.increment()
            metrics.duration.record(ContinuousClock.now - start)
            if let stage = error.stage { metrics.stageErrors(stage)?.increment() }
            eventLogger(for: event).error(
                "event failed",
                metadata: [
                    "code": .string(error.code.rawValue), "error": .string(error.message),
                    "attempts": .stringConvertible(error.attempts),
                ]
            )
            return await deadLetter(event, error: error)
        }
    }

    /// The flow's logger with the event's correlation id and origin. Built only for messages that
    /// are logged: setting logger metadata costs more than the rest of a small event's processing.
    private func eventLogger(for event: Event) -> Logger {
        var logger = logger
        logger[metadataKey: "correlation_id"] = .string(event.correlationID)
        for (key, value) in event.origin { logger[metadataKey: key] = .string(value) }
        return logger
    }

    /// Sends an event that failed (in the pipeline, or at the source before it became an event, e.g.
    /// bytes that are not JSON) to the dead-letter topic, when the flow has one.
    public func deadLetter(_ event: Event, error: FlowError) async -> EventOutcome {
        guard let deadLetters else { return .failed(error) }
        let letter = DeadLetter(
            payload: event.rawPayload ?? event.payload.serialized(), headers: event.headers, error: error,
            flow: flowName, correlationID: event.correlationID, origin: event.origin
        )
        do {
            try await deadLetters.publish(letter)
            metrics.recordDeadLetter(code: error.code)
            return .deadLettered(error)
        } catch {
            eventLogger(for: event).error(
                "dead-letter write failed",
                metadata: ["code": .string(letter.error.code.rawValue), "error": .string("\(error)")]
            )
            var failure = letter.error
            failure.message += "; writing it to the dead-letter topic failed too: \(error)"
            return .failed(failure)
        }
    }

    private func run(_ original: Event, context: DeliveryContext) async throws(FlowError) -> (String, SinkReply) {
        var event = original
        if let transform {
            do {
                event.payload = try transform.transform(event)
            } catch {
                throw FlowError(.transformFailed, "transform failed: \(error)")
            }
        }
        for interceptor in interceptors {
            do {
                event = try await interceptor.intercept(event)
            } catch let failure as InterceptorFailure {
                metrics.recordInterceptorError(module: failure.interceptor, reason: failure.reason)
                throw FlowError(.interceptorFailed, "interceptor \(failure.interceptor) failed: \(failure.message)")
            } catch {
                metrics.recordInterceptorError(module: interceptor.name, reason: "error")
                throw FlowError(.interceptorFailed, "interceptor \(interceptor.name) failed: \(error)")
            }
        }
        var cloudEvent =
            CloudEvent(passingThrough: event.payload)
            ?? CloudEvent(attributes: original.attributes, data: event.payload)
        if let cloudEvents {
            do {
                try cloudEvents.customize(&cloudEvent, original: original)
            } catch {
                throw FlowError(.cloudEventFailed, "cloudevents override failed: \(error)")
            }
        }
        var headers = event.headers
        headers[CorrelationID.headerName] = event.correlationID
        let outbound = OutboundEvent(
            event: event, cloudEvent: cloudEvent, body: cloudEvent.serialized(), headers: headers,
            correlationID: event.correlationID, flow: flowName
        )
        let reply = try await deliverWithRetries(outbound, of: original, context: context)
        return (cloudEvent.id, reply)
    }

    private func deliverWithRetries(
        _ outbound: OutboundEvent, of original: Event, context: DeliveryContext
    ) async throws(FlowError) -> SinkReply {
        var generator = SystemRandomNumberGenerator()
        var context = context
        var attempt = 0
        while true {
            attempt += 1
            context.attempt = attempt
            let failure: SinkError
            do {
                return try await sink.deliver(outbound, context: context)
            } catch let error as SinkError {
                failure = error
            } catch {
                failure = SinkError("\(error)", isRetryable: true)
            }
            let retriesUsed = attempt - 1
            guard failure.isRetryable, retriesUsed < errorHandling.maxRetries, !Task.isCancelled else {
                let summary =
                    attempt > 1 ? "delivery failed after \(attempt) attempts: \(failure.message)" : failure.message
                throw FlowError(
                    .sinkDeliveryFailed, summary,
                    httpStatus: failure.reply?.status ?? failure.httpStatus ?? 502,
                    attempts: attempt, downstreamReply: failure.reply
                )
            }
            var wait = errorHandling.backoff.delay(beforeRetry: attempt, using: &generator)
            if let asked = failure.retryAfter { wait = min(max(asked, wait), errorHandling.backoff.maximum) }
            if let deadline = context.deadline, ContinuousClock.now + wait >= deadline {
                // The caller stops waiting before the retry could start.
                throw FlowError(
                    .sinkDeliveryFailed,
                    "delivery failed after \(attempt) attempt\(attempt == 1 ? "" : "s") and the caller's deadline "
                        + "leaves no time to retry: \(failure.message)",
                    httpStatus: failure.reply?.status ?? failure.httpStatus ?? 502,
                    attempts: attempt, downstreamReply: failure.reply
                )
            }
            eventLogger(for: original).warning(
                "sink delivery failed, retrying",
                metadata: [
                    "error": .string(failure.message), "attempt": .stringConvertible(attempt),
                    "retry_in": .string(GoDuration.format(wait)),
                ]
            )
            metrics.sinkRetries.increment()
            do {
                try await Task.sleep(for: wait)
            } catch {
                throw FlowError(
                    .sinkDeliveryFailed, "delivery abandoned during shutdown: \(failure.message)",
                    attempts: attempt
                )
            }
        }
    }
}
