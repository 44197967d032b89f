internal import CRdKafka
import NIOConcurrencyHelpers

/// The consumer's librdkafka queue references. Messages of assigned partitions are routed to one
/// message queue, apart from the consumer queue that carries rebalances, commit results and
/// errors: when the buffer is full the poll thread stops reading messages (librdkafka then stops
/// fetching at its `queued.min.messages` / `queued.max.messages.kbytes` bounds) but keeps
/// serving the group protocol.
///
/// Only short, non-blocking C calls are made under its lock, and it is never held together with
/// the state machine's lock.
final class ConsumerQueues: Sendable {
    private struct References {
        var client: RdKafkaPointer?
        var messages: RdKafkaQueuePointer?
        var partitions: [KafkaTopicPartition: RdKafkaQueuePointer] = [:]
    }

    /// The client is cleared before the handle is destroyed; the lock is held while the pointers
    /// are used from other threads (waking), so they cannot go away meanwhile.
    private let references = NIOLockedValueBox(References())

    init() {}

    func attach(_ handle: RdKafkaPointer) { references.withLockedValue { $0.client = handle } }

    func detach() { references.withLockedValue { $0.client = nil } }

    /// Poll thread, before subscribing: creates the message queue.
    func openMessageQueue() -> RdKafkaQueuePointer? {
        references.withLockedValue { references in
            guard let client = references.client, let queue = rd_kafka_queue_new(client.raw) else { return nil }
            references.messages = RdKafkaQueuePointer(raw: queue)
            return references.messages
        }
    }

    /// Poll thread, after closing: releases every queue reference.
    func close() {
        references.withLockedValue { references in
            for queue in references.partitions.values { rd_kafka_queue_destroy(queue.raw) }
            references.partitions = [:]
            if let messages = references.messages { rd_kafka_queue_destroy(messages.raw) }
            references.messages = nil
        }
    }

    /// Routes the messages of newly assigned partitions to the message queue.
    func route(_ partitions: [KafkaTopicPartition], handle: OpaquePointer) {
        references.withLockedValue { references in
            guard let messages = references.messages else { return }
            for partition in partitions where references.partitions[partition] == nil {
                guard let queue = rd_kafka_queue_get_partition(handle, partition.topic, partition.partition) else {
                    continue
                }
                rd_kafka_queue_forward(queue, messages.raw)
                references.partitions[partition] = RdKafkaQueuePointer(raw: queue)
            }
        }
    }

    /// Gives revoked partitions back to librdkafka's default routing (the consumer queue).
    func restoreRouting(_ partitions: [KafkaTopicPartition], handle: OpaquePointer) {
        references.withLockedValue { references in
            let consumerQueue = rd_kafka_queue_get_consumer(handle)
            defer { if let consumerQueue { rd_kafka_queue_destroy(consumerQueue) } }
            for partition in partitions {
                guard let queue = references.partitions.removeValue(forKey: partition) else { continue }
                rd_kafka_queue_forward(queue.raw, consumerQueue)
                rd_kafka_queue_destroy(queue.raw)
            }
        }
    }

    /// Interrupts the poll thread's wait in either queue so it looks at requests at once.
    func wakePollThread() {
        references.withLockedValue { references in
            guard let client = references.client else { return }
            if let queue = rd_kafka_queue_get_consumer(client.raw) {
                rd_kafka_queue_yield(queue)
                rd_kafka_queue_destroy(queue)
            }
            if let messages = references.messages { rd_kafka_queue_yield(messages.raw) }
        }
    }
}
