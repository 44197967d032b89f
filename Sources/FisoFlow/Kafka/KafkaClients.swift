import FisoKafka
import Logging
import Synchronization

/// The Kafka clients one runtime shares between its flows (producers for sinks and dead-letter
/// topics), created on first use and closed when the runtime stops.
public final class KafkaClients: Sendable {
    private let logger: Logger
    private let producers = Mutex<[ProducerKey: KafkaProducer]>([:])

    struct ProducerKey: Hashable {
        var cluster: String
        var transactionalID: String?
    }

    init(logger: Logger) {
        self.logger = logger
    }

    /// Flushes and closes every client.
    func shutdown() async {
        let all = producers.withLock { producers in
            defer { producers = [:] }
            return Array(producers.values)
        }
        for producer in all { await producer.shutdown() }
    }
}
