import FisoKafka
import Foundation
import Logging

/// Which dead-letter publisher a flow gets, from its `errorHandling` and source.
///
/// - A kafka source with `commitPolicy: sink_or_dlq` (the default) always has one:
///   `deadLetterTopic` (default `fiso-dlq-<flow name>`) on `deadLetterCluster` (default the
///   source's cluster).
/// - A kafka source with `sink` or `kafka_transaction` has none: its offsets wait for the sink.
/// - Other sources have one only when `deadLetterCluster` is set (topic: `deadLetterTopic`, default
///   `fiso-dlq-<flow name>`); otherwise their errors go back to the caller.
enum DeadLetterRouting {
    static func defaultTopic(flow: String) -> String { "fiso-dlq-\(flow)" }

    /// Where a flow's dead letters go: cluster name and topic, or nil.
    static func destination(for definition: FlowDefinition) -> (cluster: String, topic: String)? {
        let policy = definition.errorHandling
        if let sourceCluster = definition.source.settings.kafkaCluster {
            guard policy.commitPolicy == .sinkOrDeadLetter else { return nil }
            return (
                policy.deadLetterCluster ?? sourceCluster, policy.deadLetterTopic ?? defaultTopic(flow: definition.name)
            )
        }
        guard let cluster = policy.deadLetterCluster else { return nil }
        return (cluster, policy.deadLetterTopic ?? defaultTopic(flow: definition.name))
    }

    /// The publisher for `definition`, or nil when its errors are not dead-lettered.
    static func publisher(for definition: FlowDefinition, context: FlowBuildContext) throws -> (
        any DeadLetterPublishing
    )? {
        guard let (clusterName, topic) = destination(for: definition) else { return nil }
        guard let cluster = definition.kafkaClusters[clusterName] else {
            throw FlowFactory.BuildError(description: "dead-letter cluster \(clusterName) is not defined")
        }
        let configuration = try KafkaClusterSettings.producerConfiguration(cluster)
        return KafkaDeadLetterPublisher(
            topic: topic, writer: context.kafka.writer(for: configuration), flow: definition.name
        )
    }
}

/// Writes failed events to a dead-letter topic: the original payload and key, the original headers
/// and `fiso-*` headers that say what failed. Succeeds only once the broker acknowledged the record.
struct KafkaDeadLetterPublisher: DeadLetterPublishing {
    let topic: String
    let writer: KafkaRecordWriter
    let flow: String

    /// Longest `fiso-error-message` value; longer messages are cut.
    static let maxMessageBytes = 4096

    func publish(_ letter: DeadLetter) async throws {
        // A task cancelled at shutdown abandons its event instead of dead-lettering it: the event
        // was not processed and a Kafka source delivers it again.
        try Task.checkCancellation()
        _ = try await writer.produce(Self.record(for: letter, topic: topic))
    }

    static func record(for letter: DeadLetter, topic: String) -> KafkaProducerRecord {
        var headers: [KafkaHeader] = []
        // The original headers, minus earlier fiso-* headers (an event re-read from a dead-letter
        // topic that fails again gets fresh ones, not two of each).
        for (name, value) in letter.headers where !name.lowercased().hasPrefix("fiso-") {
            headers.append(KafkaHeader(name: name, text: value))
        }
        if letter.headers[CorrelationID.headerName] == nil {
            headers.append(KafkaHeader(name: CorrelationID.headerName, text: letter.correlationID))
        }
        var key: [UInt8]?
        var origin: [KafkaHeader] = []
        for (name, value) in letter.origin {
            switch name {
            case KafkaOrigin.topic: origin.append(KafkaHeader(name: "fiso-original-topic", text: value))
            case KafkaOrigin.partition: origin.append(KafkaHeader(name: "fiso-original-partition", text: value))
            case KafkaOrigin.offset: origin.append(KafkaHeader(name: "fiso-original-offset", text: value))
            case KafkaOrigin.key: key = Array(value.utf8)
            case KafkaOrigin.base64Key: key = Data(base64Encoded: value).map { Array($0) }
            default: origin.append(KafkaHeader(name: "fiso-origin-\(name)", text: value))
            }
        }
        headers += origin
        var message = letter.error.message
        if message.utf8.count > maxMessageBytes {
            message = String(decoding: message.utf8.prefix(maxMessageBytes), as: UTF8.self) + "…"
        }
        headers += [
            KafkaHeader(name: "fiso-error-code", text: letter.error.code.rawValue),
            KafkaHeader(name: "fiso-error-message", text: message),
            KafkaHeader(name: "fiso-retry-count", text: String(max(0, letter.error.attempts - 1))),
            KafkaHeader(name: "fiso-failed-at", text: RFC3339.format(letter.failedAt)),
            KafkaHeader(name: "fiso-flow-name", text: letter.flow),
        ]
        return KafkaProducerRecord(topic: topic, key: key, value: letter.payload, headers: headers)
    }
}
