/// Why an event did not reach its sink, with the code callers, logs and dead-letter headers use.
public struct FlowError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, CaseIterable {
        /// The request body is not JSON (or not valid UTF-8).
        case invalidJSON = "INVALID_JSON"
        /// An incoming CloudEvent breaks the CloudEvents 1.0 rules (specversion, required attributes).
        case invalidCloudEvent = "INVALID_CLOUDEVENT"
        /// The request body is larger than the source allows.
        case payloadTooLarge = "PAYLOAD_TOO_LARGE"
        /// No flow listens on the requested path.
        case notFound = "NOT_FOUND"
        case methodNotAllowed = "METHOD_NOT_ALLOWED"
        /// The flow has as many events in flight as it allows.
        case overloaded = "OVERLOADED"
        /// The flow is stopping (shutdown or reload) and takes no new events.
        case unavailable = "UNAVAILABLE"
        /// A `transform.fields` expression failed for this event.
        case transformFailed = "TRANSFORM_FAILED"
        /// An interceptor (WASM module) failed for this event.
        case interceptorFailed = "INTERCEPTOR_FAILED"
        /// A `cloudevents` override failed for this event.
        case cloudEventFailed = "CLOUDEVENT_FAILED"
        /// The sink did not accept the event (after retries where they apply).
        case sinkDeliveryFailed = "SINK_DELIVERY_FAILED"
    }

    /// The pipeline stage an error happened in, the `stage` label of
    /// `fiso_flow_transform_errors_total`.
    public enum Stage: String, Sendable {
        case transform
        case interceptor
        case cloudevent
        case sink
    }

    public var code: Code
    public var message: String
    /// The HTTP status an HTTP caller gets for this error.
    public var httpStatus: Int
    /// Delivery attempts made before giving up (0 when the sink was never tried).
    public var attempts: Int
    /// The sink's own answer when it refused the event (e.g. a downstream 400), passed back to
    /// synchronous callers.
    public var downstreamReply: SinkReply?

    public init(
        _ code: Code, _ message: String, httpStatus: Int? = nil, attempts: Int = 0, downstreamReply: SinkReply? = nil
    ) {
        self.code = code
        self.message = message
        self.httpStatus = httpStatus ?? code.defaultHTTPStatus
        self.attempts = attempts
        self.downstreamReply = downstreamReply
    }

    public var stage: Stage? {
        switch code {
        case .transformFailed: .transform
        case .interceptorFailed: .interceptor
        case .cloudEventFailed: .cloudevent
        case .sinkDeliveryFailed: .sink
        default: nil
        }
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

extension FlowError.Code {
    public var defaultHTTPStatus: Int {
        switch self {
        case .invalidJSON, .invalidCloudEvent: 400
        case .payloadTooLarge: 413
        case .notFound: 404
        case .methodNotAllowed: 405
        case .overloaded, .unavailable: 503
        case .transformFailed, .cloudEventFailed: 422
        case .interceptorFailed: 500
        case .sinkDeliveryFailed: 502
        }
    }
}
