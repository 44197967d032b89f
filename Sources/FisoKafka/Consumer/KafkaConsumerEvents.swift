import DequeModule

/// What a `KafkaConsumer` delivers, in order.
public enum KafkaConsumerEvent: Sendable {
    /// A message. Call `KafkaConsumer.markProcessed(_:)` with its receipt once it reached its
    /// final outcome; only then can its offset be committed.
    case message(KafkaMessage)
    /// Partitions were assigned to this consumer. Their messages follow.
    case partitionsAssigned([KafkaTopicPartition])
    /// Partitions were revoked (or lost). Processed offsets were committed first (unless
    /// `commitOnRevoke` is off or the assignment was lost); messages of these partitions that are
    /// still in flight should be dropped: their receipts no longer count, and another group
    /// member will receive them again. No further message of these partitions is delivered
    /// unless they are assigned again.
    case partitionsRevoked([KafkaTopicPartition])
}

/// The consumer's event stream. It has one reader at a time; it ends when the consumer shuts
/// down and throws the consumer's fatal error if it fails.
public struct KafkaConsumerEvents: AsyncSequence, Sendable {
    public typealias Element = KafkaConsumerEvent

    let state: ConsumerState

    /// Iterates the events.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let state: ConsumerState

        /// The next event, or `nil` after shutdown. Throws `CancellationError` when the waiting
        /// task is cancelled and the consumer's error when it failed.
        public mutating func next() async throws -> KafkaConsumerEvent? {
            try await state.nextEvent()
        }

        /// Waits for the next event and returns it with the events already buffered behind it,
        /// at most `maxCount` in all (one wake-up for many messages, for throughput). Empty after
        /// shutdown.
        public mutating func nextBatch(maxCount: Int) async throws -> [KafkaConsumerEvent] {
            try await state.nextEvents(maxCount: maxCount)
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(state: state) }
}

/// The consumer's buffer: events in order, counting the messages among them.
struct EventQueue {
    private var items = Deque<KafkaConsumerEvent>()
    private(set) var messageCount = 0

    var isEmpty: Bool { items.isEmpty }

    mutating func append(_ event: KafkaConsumerEvent) {
        if case .message = event { messageCount += 1 }
        items.append(event)
    }

    mutating func popFirst() -> KafkaConsumerEvent? {
        guard let event = items.popFirst() else { return nil }
        if case .message = event { messageCount -= 1 }
        return event
    }

    /// Removes the messages of `partitions`; returns the lowest removed offset per partition.
    mutating func removeMessages(of partitions: Set<KafkaTopicPartition>) -> [KafkaTopicPartition: Int64] {
        guard !partitions.isEmpty, messageCount > 0 else { return [:] }
        var lowest: [KafkaTopicPartition: Int64] = [:]
        items.removeAll { event in
            guard case .message(let message) = event, partitions.contains(message.topicPartition) else { return false }
            lowest[message.topicPartition] = min(lowest[message.topicPartition] ?? message.offset, message.offset)
            messageCount -= 1
            return true
        }
        return lowest
    }

    /// Removes every message; returns the lowest removed offset per partition.
    mutating func removeAllMessages() -> [KafkaTopicPartition: Int64] {
        var partitions = Set<KafkaTopicPartition>()
        for event in items {
            if case .message(let message) = event { partitions.insert(message.topicPartition) }
        }
        return removeMessages(of: partitions)
    }
}
