import Foundation

extension Fiso_Flow_V1_Ack {
    /// An Ack for an event the flow delivered.
    /// - Parameters:
    ///   - cloudEventID: The id of the CloudEvent the sink received.
    ///   - sinkReply: The sink's answer, for sinks that reply.
    public static func delivered(cloudEventID: String, sinkReply: Fiso_Flow_V1_SinkReply? = nil) -> Self {
        var ack = Self()
        ack.status = .ok
        ack.cloudEventID = cloudEventID
        if let sinkReply { ack.sinkReply = sinkReply }
        return ack
    }

    /// An Ack for an event that failed with one of the runtime's error codes (e.g. `INVALID_JSON`).
    /// - Parameters:
    ///   - code: The runtime's error code.
    ///   - message: A readable description.
    ///   - status: The outcome class; by default ``status(forErrorCode:)`` of `code`.
    ///   - sinkReply: The sink's own answer when it refused the event (e.g. a downstream 400).
    public static func failed(
        code: String, message: String, status: Status? = nil, sinkReply: Fiso_Flow_V1_SinkReply? = nil
    ) -> Self {
        var ack = Self()
        ack.status = status ?? Self.status(forErrorCode: code)
        ack.errorCode = code
        ack.errorMessage = message
        if let sinkReply { ack.sinkReply = sinkReply }
        return ack
    }

    /// The outcome class of a runtime error code: `REJECTED` for bad input (resending it unchanged
    /// fails again), `UNAVAILABLE` when the flow did not take the event (resending later is safe),
    /// `FAILED` for everything else.
    public static func status(forErrorCode code: String) -> Status {
        switch code {
        case "INVALID_JSON", "INVALID_CLOUDEVENT", "PAYLOAD_TOO_LARGE", "TRANSFORM_FAILED", "CLOUDEVENT_FAILED":
            .rejected
        case "OVERLOADED", "UNAVAILABLE":
            .unavailable
        default:
            .failed
        }
    }

    /// True when the flow delivered the event.
    public var isDelivered: Bool { status == .ok }
}

extension Fiso_Flow_V1_SinkReply {
    /// A sink's answer: its status code (e.g. the HTTP status), body and media type.
    public init(statusCode: Int, body: some Sequence<UInt8> = [], contentType: String? = nil) {
        self.init()
        self.statusCode = Int32(clamping: statusCode)
        self.body = Data(body)
        if let contentType { self.contentType = contentType }
    }
}

extension Fiso_Flow_V1_Event {
    /// An event with a payload, optional id, headers and content type (empty means
    /// `application/json`).
    public init(
        payload: some Sequence<UInt8>, id: String? = nil, headers: [String: String] = [:], contentType: String = ""
    ) {
        self.init()
        self.payload = Data(payload)
        if let id { self.id = id }
        self.headers = headers
        self.contentType = contentType
    }
}
