import Foundation

/// One event as the gRPC source received it, ready for the flow.
public struct IncomingEvent: Sendable {
    /// How the event arrived.
    public enum Call: String, Sendable {
        /// `EventService.Send`.
        case unary
        /// `EventService.Stream`.
        case stream
    }

    /// The event body, as sent.
    public var payload: Data
    /// The call's metadata (without gRPC's own fields) merged with the event's `headers` map; for
    /// names that differ only in case the event's value wins. Map entries come in name order.
    public var headers: [(name: String, value: String)]
    /// `Event.id`, when the sender set one.
    public var id: String?
    /// `Event.content_type`, or `application/json` when it was empty.
    public var contentType: String
    /// The event's position in its stream, from 1 (always 1 for `Send`).
    public var sequence: UInt64
    public var call: Call
    /// The client's address, as the transport describes it (e.g. `ipv4:127.0.0.1:52100`).
    public var peer: String
    /// When the client stops waiting for the call (its `grpc-timeout`), if it set one.
    public var deadline: ContinuousClock.Instant?

    public init(
        payload: Data, headers: [(name: String, value: String)], id: String?, contentType: String,
        sequence: UInt64, call: Call, peer: String, deadline: ContinuousClock.Instant? = nil
    ) {
        self.deadline = deadline
        self.payload = payload
        self.headers = headers
        self.id = id
        self.contentType = contentType
        self.sequence = sequence
        self.call = call
        self.peer = peer
    }

    /// The media type an event has when it names none.
    public static let defaultContentType = "application/json"

    /// The value of header `name`, compared without case.
    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    init(
        message: Fiso_Flow_V1_Event, metadataHeaders: [(name: String, value: String)], sequence: UInt64,
        call: Call, peer: String, deadline: ContinuousClock.Instant?
    ) {
        self.init(
            payload: message.payload,
            headers: HeaderMetadata.merge(metadataHeaders, message.headers),
            id: message.hasID ? message.id : nil,
            contentType: message.contentType.isEmpty ? Self.defaultContentType : message.contentType,
            sequence: sequence, call: call, peer: peer, deadline: deadline
        )
    }
}
