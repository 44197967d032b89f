import FisoKafka
import NIOConcurrencyHelpers

/// The records one Kafka transaction will write, collected while its events run through the flow.
///
/// With `commitPolicy: kafka_transaction` the source runs a batch of records through the pipeline
/// inside an open transaction; the kafka sink does not produce each record itself but hands it to
/// the batch, through the slot the source passes in the event's ``DeliveryContext``. The source
/// then produces the whole batch at once, adds the consumed offsets and commits: the commit is the
/// acknowledgement.
final class KafkaTransactionBatch: Sendable {
    private let records: NIOLockedValueBox<[Int: KafkaProducerRecord]> = NIOLockedValueBox([:])

    /// Records the output of event number `index` (a retried delivery replaces it).
    func set(_ record: KafkaProducerRecord, at index: Int) {
        records.withLockedValue { $0[index] = record }
    }

    /// The records in the order of the events that produced them.
    var orderedRecords: [KafkaProducerRecord] {
        records.withLockedValue { records in records.keys.sorted().compactMap { records[$0] } }
    }
}

/// Where the kafka sink puts a record when the event runs inside a Kafka transaction.
struct KafkaTransactionSlot: Sendable {
    let batch: KafkaTransactionBatch
    let index: Int

    func enqueue(_ record: KafkaProducerRecord) { batch.set(record, at: index) }
}
