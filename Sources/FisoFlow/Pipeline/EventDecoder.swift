import FisoJSON
import Foundation

/// Turns received bytes into events. Every source decodes through here, so events from HTTP,
/// gRPC and Kafka get their correlation id, CloudEvent reading and `INVALID_JSON` /
/// `INVALID_CLOUDEVENT` errors the same way.
///
/// An incoming CloudEvent — structured (`application/cloudevents+json`, or a JSON body that is
/// one), binary (`ce-*` / `ce_*` headers) or, over HTTP, a batch — becomes an event whose payload
/// is the CloudEvent's data and whose attributes (with extensions) are the CloudEvent's; the
/// binding's transport headers are consumed. Anything else is a plain JSON payload.
enum EventDecoder {
    /// Bytes that cannot become an event, with the event they would have been (payload `null`), so
    /// that a Kafka record can still be dead-lettered with its headers and origin.
    struct Failure: Error {
        var event: Event
        var error: FlowError
    }

    /// How a transport carries CloudEvents in binary mode.
    struct Binding: Sendable {
        /// The attribute headers' prefix.
        var headerPrefix: String
        /// Header values are percent-encoded (the HTTP binding).
        var percentEncoded: Bool

        static let http = Binding(headerPrefix: "ce-", percentEncoded: true)
        static let kafka = Binding(headerPrefix: "ce_", percentEncoded: false)
    }

    /// The event of one message.
    ///
    /// - Parameters:
    ///   - bytes: the body; nil for a record without a value (a Kafka tombstone).
    ///   - name: what the bytes are, for error messages: "request body", "record value" …
    ///   - contentType: the message's content type (HTTP `Content-Type`, Kafka `content-type`
    ///     header, gRPC `content_type`).
    ///   - rawPayload: the bytes to keep with the event for its dead letter, when the source has
    ///     them as an array already (copying them only for that would cost every event).
    static func event(
        from bytes: (some Collection<UInt8>)?, named name: String, contentType: String? = nil,
        headers: EventHeaders, binding: Binding, flow: String, origin: [(key: String, value: String)],
        variables: JSONObject = [:], rawPayload: [UInt8]? = nil
    ) -> Result<Event, Failure> {
        var eventHeaders = headers
        eventHeaders.removeAll(prefixed: binding.headerPrefix)
        let correlationID = CorrelationID.of(eventHeaders)
        func event(_ payload: JSONValue, _ attributes: CloudEventAttributes) -> Event {
            Event(
                payload: payload, headers: eventHeaders, correlationID: correlationID, attributes: attributes,
                origin: origin, variables: variables, rawPayload: rawPayload
            )
        }
        do throws(FlowError) {
            if headers[binding.headerPrefix + "specversion"] != nil {
                let attributes = try CloudEvent.readBinary(
                    headers: headers, prefix: binding.headerPrefix, percentDecoding: binding.percentEncoded,
                    contentType: contentType
                )
                let (data, isBase64) = try binaryData(bytes, contentType: contentType, name: name)
                var withData = attributes
                withData.dataIsBase64 = isBase64
                return .success(event(data, withData))
            }
            guard let bytes else { throw FlowError(.invalidJSON, "\(name) is null (a tombstone), not JSON") }
            let payload = try parseJSON(bytes, name: name)
            let declared = contentType.map { CloudEvent.mediaType($0) == "application/cloudevents+json" } ?? false
            if case .object(let object) = payload, declared || CloudEvent.claimsToBeCloudEvent(object) {
                let (attributes, data) = try CloudEvent.readStructured(object)
                return .success(event(data, attributes))
            }
            if declared {
                throw FlowError(.invalidCloudEvent, "not a valid CloudEvent: a structured event is a JSON object")
            }
            return .success(event(payload, .defaults(flow: flow)))
        } catch {
            return .failure(Failure(event: event(.null, .defaults(flow: flow)), error: error))
        }
    }

    /// The events of an HTTP batch (`application/cloudevents-batch+json`): a JSON array of
    /// structured-mode CloudEvents. Fails as a whole when any element is not a valid CloudEvent,
    /// so a batch is taken entirely or not at all.
    static func batch(
        from bytes: some Collection<UInt8>, headers: EventHeaders, flow: String,
        origin: [(key: String, value: String)]
    ) -> Result<[Event], FlowError> {
        var eventHeaders = headers
        eventHeaders.removeAll(prefixed: Binding.http.headerPrefix)
        do throws(FlowError) {
            guard case .array(let elements) = try parseJSON(bytes, name: "request body") else {
                throw FlowError(.invalidCloudEvent, "not a valid CloudEvent batch: the body must be a JSON array")
            }
            var events: [Event] = []
            events.reserveCapacity(elements.count)
            for (index, element) in elements.enumerated() {
                guard case .object(let object) = element else {
                    throw FlowError(.invalidCloudEvent, "batch element \(index) is not a JSON object")
                }
                let attributes: CloudEventAttributes
                let data: JSONValue
                do {
                    (attributes, data) = try CloudEvent.readStructured(object)
                } catch {
                    throw FlowError(.invalidCloudEvent, "batch element \(index): \(error.message)")
                }
                events.append(
                    Event(
                        payload: data, headers: eventHeaders, correlationID: CorrelationID.of(eventHeaders),
                        attributes: attributes, origin: origin + [("cloudevents.batch_index", String(index))]
                    )
                )
            }
            return .success(events)
        } catch {
            return .failure(error)
        }
    }

    private static func parseJSON(_ bytes: some Collection<UInt8>, name: String) throws(FlowError) -> JSONValue {
        do {
            return try JSONValue(parsing: bytes)
        } catch {
            throw FlowError(.invalidJSON, "\(name) is not valid JSON: \(error)")
        }
    }

    /// A binary-mode body as the event's data: JSON for JSON content types (and none), text for
    /// textual ones, base64 text for anything else.
    private static func binaryData(
        _ bytes: (some Collection<UInt8>)?, contentType: String?, name: String
    ) throws(FlowError) -> (JSONValue, isBase64: Bool) {
        guard let bytes, !bytes.isEmpty else { return (.null, false) }
        guard let contentType else { return (try parseJSON(bytes, name: name), false) }
        if CloudEvent.isJSON(contentType: contentType) { return (try parseJSON(bytes, name: name), false) }
        let media = CloudEvent.mediaType(contentType)
        let isText =
            media.hasPrefix("text/") || media.hasSuffix("+xml") || media == "application/xml"
            || media == "application/x-www-form-urlencoded"
        if isText, let text = String(validating: Array(bytes), as: UTF8.self) { return (.string(text), false) }
        return (.string(Data(bytes).base64EncodedString()), true)
    }
}
