import FisoJSON
import Foundation
import NIOCore

/// `transform.fields`: computes a new payload from an event.
public protocol PayloadTransform: Sendable {
    /// The new payload; throws a readable error that the pipeline reports as `TRANSFORM_FAILED`.
    func transform(_ event: Event) throws -> JSONValue
}

/// `cloudevents` overrides: adjusts the envelope using the event as it arrived (before transform).
public protocol CloudEventCustomizing: Sendable {
    /// Throws a readable error that the pipeline reports as `CLOUDEVENT_FAILED`.
    func customize(_ cloudEvent: inout CloudEvent, original: Event) throws
}

/// One step of the interceptor chain (a WASM module, for instance).
public protocol Interceptor: Sendable {
    /// A short name for logs and metrics (e.g. the module file name).
    var name: String { get }
    /// The event after this step. Throws ``InterceptorFailure`` (or any error) when it fails.
    func intercept(_ event: Event) async throws -> Event
    /// Picks up changes of what the interceptor depends on (a module file); called periodically.
    func checkForUpdates() async
    /// Releases what the interceptor holds once no event uses it any more.
    func shutdown() async
}

extension Interceptor {
    public func checkForUpdates() async {}
}

/// An interceptor's failure, classified for metrics (`reason`) and logs.
public struct InterceptorFailure: Error, Sendable, CustomStringConvertible {
    public var interceptor: String
    public var reason: String
    public var message: String

    public init(interceptor: String, reason: String, message: String) {
        self.interceptor = interceptor
        self.reason = reason
        self.message = message
    }

    public var description: String { message }
}

/// What a sink sends back. Sinks without a reply (stdout, Kafka) return ``SinkReply/none``.
public struct SinkReply: Sendable {
    /// The downstream HTTP status, when the sink speaks HTTP.
    public var status: Int?
    public var headers: [(name: String, value: String)]
    public var body: ByteBuffer?

    public init(status: Int?, headers: [(name: String, value: String)] = [], body: ByteBuffer? = nil) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public static let none = SinkReply(status: nil)
}

/// A failed delivery attempt, saying whether trying again could help.
public struct SinkError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var isRetryable: Bool
    /// How long the downstream asked us to wait (`Retry-After`).
    public var retryAfter: Duration?
    /// The downstream's answer for a refused event, passed back to synchronous callers.
    public var reply: SinkReply?
    /// The HTTP status a synchronous caller should get (e.g. 504 for a timeout).
    public var httpStatus: Int?

    public init(
        _ message: String, isRetryable: Bool, retryAfter: Duration? = nil, reply: SinkReply? = nil,
        httpStatus: Int? = nil
    ) {
        self.message = message
        self.isRetryable = isRetryable
        self.retryAfter = retryAfter
        self.reply = reply
        self.httpStatus = httpStatus
    }

    public var description: String { message }
}

/// The envelope ready for the sink.
public struct OutboundEvent: Sendable {
    /// The event after transform and interceptors (sinks that compute a key or route read it).
    public var event: Event
    public var cloudEvent: CloudEvent
    /// The serialized CloudEvent (structured mode JSON).
    public var body: [UInt8]
    /// Event headers after the interceptors, plus `X-Correlation-ID`.
    public var headers: EventHeaders
    public var correlationID: String
    public var flow: String
}

/// Where a flow delivers events.
public protocol EventSink: Sendable {
    /// Delivers one event; `context` carries what the source knows about it (a Kafka transaction to
    /// join, the caller's deadline) and the attempt number. Throws ``SinkError`` (any other error
    /// counts as retryable).
    func deliver(_ event: OutboundEvent, context: DeliveryContext) async throws -> SinkReply
    /// Flushes and releases what the sink holds once no event uses it any more.
    func shutdown() async
}

/// A failed event on its way to the dead-letter topic.
public struct DeadLetter: Sendable {
    /// The payload as received (or re-serialized when the source kept no bytes).
    public var payload: [UInt8]
    /// The headers the event arrived with.
    public var headers: EventHeaders
    public var error: FlowError
    public var flow: String
    public var correlationID: String
    public var failedAt: Date
    /// Where the event came from (`kafka.topic`, `kafka.partition`, `kafka.offset`, …).
    public var origin: [(key: String, value: String)]

    public init(
        payload: [UInt8], headers: EventHeaders, error: FlowError, flow: String, correlationID: String,
        failedAt: Date = Date(), origin: [(key: String, value: String)] = []
    ) {
        self.payload = payload
        self.headers = headers
        self.error = error
        self.flow = flow
        self.correlationID = correlationID
        self.failedAt = failedAt
        self.origin = origin
    }
}

/// Writes failed events somewhere safe (the dead-letter topic).
public protocol DeadLetterPublishing: Sendable {
    /// Succeeds only once the dead letter is stored (e.g. acknowledged by the broker).
    func publish(_ letter: DeadLetter) async throws
}
