import FisoJSON
import FisoKafka
import Foundation

/// The `origin` keys of events read from Kafka (logged with every message about the event, and
/// turned into `fiso-original-*` headers of dead-letter records).
enum KafkaOrigin {
    static let topic = "kafka.topic"
    static let partition = "kafka.partition"
    static let offset = "kafka.offset"
    /// The record key, when it is UTF-8 text.
    static let key = "kafka.key"
    /// The record key in base64, when it is not UTF-8 text.
    static let base64Key = "kafka.key.base64"
}

/// Turns Kafka records into events.
///
/// - `payload`: the record value parsed as JSON, or the data of a CloudEvent (Kafka protocol
///   binding: binary mode with `ce_*` headers, structured with `content-type:
///   application/cloudevents+json`); `rawPayload`: the value's bytes.
/// - `headers`: the record headers the source's header policy admits (repeated names joined with
///   ", ", null values left out; `ce_*` headers are consumed).
/// - `correlationID`: from `X-Correlation-ID` or `traceparent`, as for HTTP.
/// - `variables["kafka"]`: `{topic, partition, offset, key, timestamp, headers}` for CEL.
/// - `origin`: `kafka.topic`, `kafka.partition`, `kafka.offset` and `kafka.key` for logs.
enum KafkaEventDecoder {
    /// The event of `message`, or the event (with a `null` payload) and why it cannot be processed.
    static func event(
        from message: KafkaMessage, flow: String, headerPolicy: HeaderPolicy = .standard
    ) -> Result<Event, EventDecoder.Failure> {
        let prefix = EventDecoder.Binding.kafka.headerPrefix
        let headers = headerPolicy.headers(
            from: message.headers.lazy.compactMap { header in header.text.map { (name: header.name, value: $0) } },
            keepingPrefixed: prefix)
        var headerMap = JSONObject()
        // The binding's headers are attributes, consumed by the decoder: not for `kafka.headers`.
        for (name, value) in headers where !name.lowercased().hasPrefix(prefix) { headerMap[name] = .string(value) }
        let contentType = message.headers.first { $0.name.caseInsensitiveEquals("content-type") }?.text
        let key = message.key.map { String(decoding: $0, as: UTF8.self) }
        var origin: [(key: String, value: String)] = [
            (KafkaOrigin.topic, message.topic), (KafkaOrigin.partition, String(message.partition)),
            (KafkaOrigin.offset, String(message.offset)),
        ]
        if let bytes = message.key {
            if let text = String(validating: bytes, as: UTF8.self) {
                origin.append((KafkaOrigin.key, text))
            } else {
                origin.append((KafkaOrigin.base64Key, Data(bytes).base64EncodedString()))
            }
        }
        let timestamp: JSONValue =
            message.timestamp.map {
                .string(RFC3339.format(Date(timeIntervalSince1970: Double($0.milliseconds) / 1000)))
            } ?? .null
        let variables: JSONObject = [
            "kafka": .object([
                "topic": .string(message.topic), "partition": .int(Int64(message.partition)),
                "offset": .int(message.offset), "key": key.map { .string($0) } ?? .null, "timestamp": timestamp,
                "headers": .object(headerMap),
            ])
        ]
        return EventDecoder.event(
            from: message.value, named: "record value", contentType: contentType, headers: headers,
            binding: .kafka, flow: flow, origin: origin, variables: variables, rawPayload: message.value ?? []
        )
    }
}
