import FisoJSON
import Foundation
import Logging
import NIOConcurrencyHelpers
import Prometheus
import Testing

@testable import FisoFlow

/// A sink that fails every delivery (retryably) and records the context of each attempt.
private final class RefusingSink: EventSink {
    let contexts = NIOLockedValueBox<[DeliveryContext]>([])

    func deliver(_ event: OutboundEvent, context: DeliveryContext) async throws -> SinkReply {
        contexts.withLockedValue { $0.append(context) }
        throw SinkError("downstream is down", isRetryable: true)
    }

    func shutdown() async {}
}

private func pipeline(sink: any EventSink, retries: Int, backoff: Duration) -> Pipeline {
    Pipeline(
        flowName: "context", transform: nil, interceptors: [], cloudEvents: nil, sink: sink,
        errorHandling: ErrorHandlingPolicy(
            maxRetries: retries,
            backoff: BackoffPolicy(kind: .constant, initial: backoff, maximum: backoff, multiplier: 1, jitter: 0)
        ),
        metrics: FlowMetrics(flow: "context", registry: PrometheusCollectorRegistry()),
        logger: Logger(label: "test")
    )
}

private func event(headers: EventHeaders = [:]) -> Event {
    Event(
        payload: ["order": 1], headers: headers, correlationID: "c", attributes: .defaults(flow: "context")
    )
}

@Suite struct DeliveryContextTests {
    @Test func traceParentIsParsedStrictly() throws {
        let trace = try #require(TraceContext(traceParent: "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"))
        #expect(trace.traceID == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(trace.parentID == "00f067aa0ba902b7")
        #expect(trace.flags == 1)
        #expect(TraceContext(traceParent: "00-00000000000000000000000000000000-00f067aa0ba902b7-01") == nil)
        #expect(TraceContext(traceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01") == nil)
        #expect(TraceContext(traceParent: "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01") == nil)
        #expect(TraceContext(traceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7") == nil)
        #expect(TraceContext(traceParent: "not a trace") == nil)
    }

    @Test func attemptsAreCutToTheDeadline() {
        let now = ContinuousClock.now
        #expect(DeliveryContext().attemptTimeout(within: .seconds(10), now: now) == .seconds(10))
        let soon = DeliveryContext(deadline: now + .seconds(2))
        #expect(soon.attemptTimeout(within: .seconds(10), now: now) == .seconds(2))
        #expect(soon.attemptTimeout(within: .seconds(1), now: now) == .seconds(1))
        #expect(soon.attemptTimeout(within: .seconds(10), now: now + .seconds(3)) == nil)
    }

    @Test func theSinkSeesEachAttemptAndTheTraceContext() async {
        let sink = RefusingSink()
        let outcome = await pipeline(sink: sink, retries: 2, backoff: .milliseconds(1)).process(
            event(headers: ["traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"])
        )
        guard case .failed(let error) = outcome else {
            Issue.record("expected a failure, got \(outcome)")
            return
        }
        #expect(error.attempts == 3)
        let contexts = sink.contexts.withLockedValue { $0 }
        #expect(contexts.map(\.attempt) == [1, 2, 3])
        #expect(contexts.allSatisfy { $0.trace?.traceID == "4bf92f3577b34da6a3ce929d0e0e4736" })
    }

    @Test func noRetryStartsAfterTheCallersDeadline() async {
        let sink = RefusingSink()
        let started = ContinuousClock.now
        // Five retries a second apart would take five seconds; the caller waits 300 ms.
        let outcome = await pipeline(sink: sink, retries: 5, backoff: .seconds(1)).process(
            event(), context: DeliveryContext(deadline: .now + .milliseconds(300))
        )
        guard case .failed(let error) = outcome else {
            Issue.record("expected a failure, got \(outcome)")
            return
        }
        #expect(sink.contexts.withLockedValue { $0.count } == 1)
        #expect(error.message.contains("deadline leaves no time to retry"))
        #expect(ContinuousClock.now - started < .seconds(3), "it waited for a retry")
    }
}
