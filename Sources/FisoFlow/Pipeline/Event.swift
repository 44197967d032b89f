import FisoJSON
import Foundation

/// One event on its way through a flow.
public struct Event: Sendable {
    /// The event body as JSON.
    public var payload: JSONValue
    public var headers: EventHeaders
    /// Ties the logs of one event together across services; forwarded to the sink.
    public var correlationID: String
    /// The CloudEvent attributes this event has: those of the incoming CloudEvent when the
    /// payload is one, otherwise the values the envelope will get.
    public var attributes: CloudEventAttributes
    /// What the source knows about where the event came from (e.g. `http.path`, `kafka.topic`,
    /// `kafka.partition`, `kafka.offset`). Logged with every message about the event.
    public var origin: [(key: String, value: String)]
    /// Variables the source adds for expressions, e.g. `kafka` (topic, partition, offset, key,
    /// timestamp) for events read from Kafka.
    public var variables: JSONObject
    /// The bytes as received, when the source has them; a dead-letter record carries these rather
    /// than the re-serialized payload.
    public var rawPayload: [UInt8]?

    public init(
        payload: JSONValue, headers: EventHeaders = [:], correlationID: String,
        attributes: CloudEventAttributes, origin: [(key: String, value: String)] = [], variables: JSONObject = [:],
        rawPayload: [UInt8]? = nil
    ) {
        self.payload = payload
        self.headers = headers
        self.correlationID = correlationID
        self.attributes = attributes
        self.origin = origin
        self.variables = variables
        self.rawPayload = rawPayload
    }
}

/// The CloudEvents 1.0 context attributes the runtime sets or reads.
public struct CloudEventAttributes: Sendable, Equatable {
    public var id: String
    public var source: String
    public var type: String
    public var time: Date
    public var subject: String?
    public var dataContentType: String?
    public var dataSchema: String?
    /// Extension attributes of an incoming CloudEvent (kept on the way out), and those the flow sets.
    public var extensions: JSONObject
    /// `time` as the incoming CloudEvent wrote it, so it goes out unchanged.
    var timeText: String?
    /// False for an incoming CloudEvent without `time`: the outgoing one has none either.
    var hasTime = true
    /// The data is binary, carried as base64 text (`data_base64` in structured mode).
    public var dataIsBase64: Bool

    public init(
        id: String, source: String, type: String, time: Date, subject: String? = nil,
        dataContentType: String? = nil, dataSchema: String? = nil, extensions: JSONObject = [:],
        dataIsBase64: Bool = false
    ) {
        self.id = id
        self.source = source
        self.type = type
        self.time = time
        self.subject = subject
        self.dataContentType = dataContentType
        self.dataSchema = dataSchema
        self.extensions = extensions
        self.dataIsBase64 = dataIsBase64
    }

    /// The attributes a new envelope gets for an event of `flow` received at `time`.
    public static func defaults(flow: String, time: Date = Date()) -> CloudEventAttributes {
        CloudEventAttributes(
            id: RandomUUID.make(), source: "fiso-flow/\(flow)", type: CloudEvent.defaultType, time: time,
            dataContentType: CloudEvent.defaultDataContentType
        )
    }
}
