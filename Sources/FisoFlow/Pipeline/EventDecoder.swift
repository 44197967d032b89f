import FisoJSON

/// Turns received bytes into an event. Every source decodes through here, so events from HTTP,
/// gRPC and Kafka get their correlation id, CloudEvent attributes and `INVALID_JSON` errors the
/// same way.
enum EventDecoder {
    /// Bytes that cannot become an event, with the event they would have been (payload `null`), so
    /// that a Kafka record can still be dead-lettered with its headers and origin.
    struct Failure: Error {
        var event: Event
        var error: FlowError
    }

    /// The event whose payload is `bytes` parsed as JSON.
    ///
    /// - Parameters:
    ///   - bytes: the body; nil for a record without a value (a Kafka tombstone).
    ///   - name: what the bytes are, for the error message: "request body", "record value" …
    ///   - rawPayload: the bytes to keep with the event for its dead letter, when the source has
    ///     them as an array already (copying them only for that would cost every event).
    static func event(
        from bytes: (some Collection<UInt8>)?, named name: String, headers: EventHeaders, flow: String,
        origin: [(key: String, value: String)], variables: JSONObject = [:], rawPayload: [UInt8]? = nil
    ) -> Result<Event, Failure> {
        let correlationID = CorrelationID.of(headers)
        let reason: String
        if let bytes {
            do {
                let payload = try JSONValue(parsing: bytes)
                return .success(
                    Event(
                        payload: payload, headers: headers, correlationID: correlationID,
                        attributes: CloudEvent.attributes(of: payload) ?? .defaults(flow: flow), origin: origin,
                        variables: variables, rawPayload: rawPayload
                    )
                )
            } catch {
                reason = "\(name) is not valid JSON: \(error)"
            }
        } else {
            reason = "\(name) is null (a tombstone), not JSON"
        }
        let event = Event(
            payload: .null, headers: headers, correlationID: correlationID, attributes: .defaults(flow: flow),
            origin: origin, variables: variables, rawPayload: rawPayload
        )
        return .failure(Failure(event: event, error: FlowError(.invalidJSON, reason)))
    }
}
