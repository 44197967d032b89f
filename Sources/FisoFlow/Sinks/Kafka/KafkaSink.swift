import FisoCEL
import FisoJSON
import FisoKafka

/// Produces each CloudEvent to a topic, with the event's headers as record headers and a key
/// computed by CEL, in the Kafka protocol binding's structured mode (the event as JSON, `content-type:
/// application/cloudevents+json`) or binary mode (`ce_*` headers, the data as the value,
/// `content-type` = `datacontenttype`). A delivery succeeds once the broker acknowledged the record
/// (`requiredAcks`).
///
/// Inside a Kafka transaction (`commitPolicy: kafka_transaction`), the record is handed to the
/// transaction instead; the source produces and commits the transaction's records together.
struct KafkaSink: EventSink {
    static let contentType = "application/cloudevents+json"

    let topic: String
    let key: CELProgram?
    let keyVariables: Set<String>
    let writer: KafkaRecordWriter
    /// The flow commits through Kafka transactions: records must go to the open transaction.
    let transactional: Bool
    let mode: CloudEventMode

    init(settings: KafkaSinkSettings, context: FlowBuildContext) throws {
        guard let cluster = context.flow.kafkaClusters[settings.cluster] else {
            throw FlowFactory.BuildError(description: "Kafka cluster \(settings.cluster) is not defined")
        }
        topic = settings.topic
        if let source = settings.key {
            do throws(CELCompileError) {
                let program = try context.expressions.compile(source)
                key = program
                keyVariables = program.freeIdentifiers
            } catch {
                throw FlowFactory.BuildError(description: "sink.config.key: \(FlowFileParser.describe(error))")
            }
        } else {
            key = nil
            keyVariables = []
        }
        let acks: KafkaAcks =
            switch settings.requiredAcks {
            case .all: .all
            case .leader: .leader
            case .none: .none
            }
        writer = context.kafka.writer(
            for: try KafkaClusterSettings.producerConfiguration(cluster, acks: acks, idempotent: settings.idempotent)
        )
        transactional = context.flow.errorHandling.commitPolicy == .kafkaTransaction
        mode = context.flow.cloudEvents.mode
        if !transactional {
            do {
                try writer.prepare()
            } catch {
                throw FlowFactory.BuildError(description: "sink: the Kafka producer cannot be created: \(error)")
            }
        }
    }

    func deliver(_ event: OutboundEvent, context: DeliveryContext) async throws -> SinkReply {
        let record = try makeRecord(event)
        if let transaction = context.transaction {
            transaction.enqueue(record)
            return .none
        }
        if transactional {
            throw SinkError(
                "internal error: a kafka_transaction flow delivered outside a transaction", isRetryable: false)
        }
        do {
            _ = try await writer.produce(record)
        } catch {
            // A producer that must be recreated is replaced for the next attempt.
            throw SinkError("\(error)", isRetryable: (error.isRetriable && !error.isFatal) || error.requiresNewProducer)
        }
        return .none
    }

    func makeRecord(_ event: OutboundEvent) throws(SinkError) -> KafkaProducerRecord {
        var headers: [KafkaHeader] = []
        headers.reserveCapacity(event.headers.count + 1)
        // The binding's own headers come from the CloudEvent only, never from event headers.
        for (name, value) in event.headers
        where !name.caseInsensitiveEquals("content-type") && !name.lowercased().hasPrefix("ce_") {
            headers.append(KafkaHeader(name: name, text: value))
        }
        let value: [UInt8]
        switch mode {
        case .structured:
            headers.append(KafkaHeader(name: "content-type", text: Self.contentType))
            value = event.body
        case .binary:
            for (name, text) in event.cloudEvent.binaryModeHeaders(prefix: "ce_", percentEncoding: false) {
                headers.append(KafkaHeader(name: name, text: text))
            }
            let data = event.cloudEvent.binaryModeData()
            headers.append(KafkaHeader(name: "content-type", text: data.contentType))
            value = data.bytes
        }
        return KafkaProducerRecord(topic: topic, key: try recordKey(for: event), value: value, headers: headers)
    }

    /// The key expression's value as bytes: strings as UTF-8, numbers and booleans as their JSON text,
    /// bytes as they are; `null` sends no key.
    private func recordKey(for event: OutboundEvent) throws(SinkError) -> [UInt8]? {
        guard let key else { return nil }
        let value: CELValue
        do {
            value = try key.evaluate(FlowExpressions.activation(for: event.event, needed: keyVariables))
        } catch {
            throw SinkError("the record key expression failed: \(error)", isRetryable: false)
        }
        switch value {
        case .null: return nil
        case .string(let text): return Array(text.utf8)
        case .bytes(let bytes): return bytes
        case .int, .uint, .double, .bool:
            do {
                return Array(try value.jsonValue().jsonText.utf8)
            } catch {
                throw SinkError("the record key expression failed: \(error)", isRetryable: false)
            }
        default:
            throw SinkError(
                "the record key must be a string, number, boolean, bytes or null, got \(value.runtimeType.name)",
                isRetryable: false
            )
        }
    }

    func shutdown() async {
        // The producer is shared by the runtime's flows and closed by the runtime.
    }
}
