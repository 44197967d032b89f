import FisoKafka
import Logging
import NIOConcurrencyHelpers

/// The Kafka clients one runtime shares between its flows (producers for sinks and dead-letter
/// topics), created on first use and closed when the runtime stops.
///
/// Producers are shared per configuration (cluster, acks, idempotence, transactional id): every
/// sink and dead-letter topic of a cluster with the same settings writes through one librdkafka
/// producer, which batches their records together. Transactional producers are not shared; each
/// `kafka_transaction` source owns its own (see ``KafkaSource``).
public final class KafkaClients: Sendable {
    private let logger: Logger
    private let producers = NIOLockedValueBox<[KafkaProducerConfiguration: KafkaProducer]>([:])

    init(logger: Logger) {
        var logger = logger
        logger[metadataKey: "component"] = "kafka"
        self.logger = logger
    }

    /// The shared producer for `configuration`, created on first use.
    func producer(_ configuration: KafkaProducerConfiguration) throws(KafkaError) -> KafkaProducer {
        let result: Result<KafkaProducer, KafkaError> = producers.withLockedValue { producers in
            if let existing = producers[configuration] { return .success(existing) }
            do throws(KafkaError) {
                let producer = try KafkaProducer(configuration: configuration, logger: logger)
                producers[configuration] = producer
                return .success(producer)
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// A writer through the shared producer for `configuration`, for a sink or dead-letter topic to
    /// keep: it finds the producer once instead of per record.
    func writer(for configuration: KafkaProducerConfiguration) -> KafkaRecordWriter {
        KafkaRecordWriter(clients: self, configuration: configuration)
    }

    /// Forgets `producer` (it is destroyed once its last produce call returned).
    fileprivate func retire(_ producer: KafkaProducer, configuration: KafkaProducerConfiguration) {
        let removed = producers.withLockedValue { producers in
            guard producers[configuration] === producer else { return false }
            producers[configuration] = nil
            return true
        }
        if removed {
            logger.warning("Kafka producer failed permanently; the next record uses a new one")
        }
    }

    /// Producers created so far.
    var producerCount: Int { producers.withLockedValue { $0.count } }

    /// Flushes and closes every client.
    func shutdown() async {
        let all = producers.withLockedValue { producers in
            defer { producers = [:] }
            return Array(producers.values)
        }
        for producer in all { await producer.shutdown() }
    }
}

/// Produces records through the runtime's shared producer for one configuration (see
/// ``KafkaClients/writer(for:)``). A producer that failed in a way it cannot recover from (fenced,
/// fatal idempotence errors) is replaced: the next call gets a new one.
final class KafkaRecordWriter: Sendable {
    let configuration: KafkaProducerConfiguration
    private let clients: KafkaClients
    private let current = NIOLockedValueBox<KafkaProducer?>(nil)

    fileprivate init(clients: KafkaClients, configuration: KafkaProducerConfiguration) {
        self.clients = clients
        self.configuration = configuration
    }

    /// Creates the producer now rather than at the first record, so that its connection and (for an
    /// idempotent producer) its producer id are ready before events arrive.
    func prepare() throws(KafkaError) {
        _ = try producer()
    }

    /// Produces `record` and returns once the broker acknowledged it.
    func produce(_ record: KafkaProducerRecord) async throws(KafkaError) -> KafkaDeliveryReport {
        let producer = try producer()
        do {
            return try await producer.produce(record)
        } catch {
            if error.requiresNewProducer {
                clients.retire(producer, configuration: configuration)
                current.withLockedValue { if $0 === producer { $0 = nil } }
            }
            throw error
        }
    }

    private func producer() throws(KafkaError) -> KafkaProducer {
        if let cached = current.withLockedValue({ $0 }) { return cached }
        let producer = try clients.producer(configuration)
        current.withLockedValue { $0 = producer }
        return producer
    }
}

extension KafkaError {
    /// The producer that reported this cannot produce any more and must be recreated (librdkafka's
    /// fatal errors: fencing and idempotence state that cannot be repaired).
    var requiresNewProducer: Bool {
        if isFatal { return true }
        guard let code else { return false }
        return Self.producerFatalCodes.contains(code.name)
    }

    static let producerFatalCodes: Set<String> = [
        "_FATAL", "_FENCED", "PRODUCER_FENCED", "INVALID_PRODUCER_EPOCH", "OUT_OF_ORDER_SEQUENCE_NUMBER",
        "INVALID_PRODUCER_ID_MAPPING", "UNKNOWN_PRODUCER_ID",
    ]
}
