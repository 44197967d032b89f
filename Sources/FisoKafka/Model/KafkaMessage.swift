/// A Kafka record header. Kafka allows repeated names and null values; order is preserved.
public struct KafkaHeader: Hashable, Sendable {
    /// The header name.
    public var name: String
    /// The header value; `nil` is Kafka's null value.
    public var value: [UInt8]?

    /// Creates a header with a binary value.
    public init(name: String, value: [UInt8]?) {
        self.name = name
        self.value = value
    }

    /// Creates a header with a UTF-8 text value.
    public init(name: String, text: String) {
        self.init(name: name, value: Array(text.utf8))
    }

    /// The value decoded as UTF-8 (invalid sequences are repaired), or `nil` for a null value.
    public var text: String? { value.map { String(decoding: $0, as: UTF8.self) } }
}

/// A record timestamp.
public struct KafkaTimestamp: Hashable, Sendable {
    /// Who set the timestamp.
    public enum Kind: String, Hashable, Sendable {
        /// Set by the producer when the record was created.
        case createTime
        /// Set by the broker when it appended the record to the log.
        case logAppendTime
    }

    /// Milliseconds since the Unix epoch.
    public var milliseconds: Int64
    /// Who set the timestamp.
    public var kind: Kind

    /// Creates a timestamp.
    public init(milliseconds: Int64, kind: Kind) {
        self.milliseconds = milliseconds
        self.kind = kind
    }
}

/// Identifies a consumed message for `KafkaConsumer.markProcessed(_:)` without keeping its payload.
///
/// The receipt remembers which assignment of its partition delivered the message: after the
/// partition was revoked (and possibly assigned again) a receipt from before is ignored, so work
/// that a rebalance dropped can never move a committed offset.
public struct KafkaMessageReceipt: Hashable, Sendable, CustomStringConvertible {
    /// The partition the message came from.
    public var topicPartition: KafkaTopicPartition
    /// The message's offset.
    public var offset: Int64
    /// The assignment generation of the partition when the message was delivered.
    public var assignmentGeneration: UInt64

    /// Creates a receipt.
    public init(topicPartition: KafkaTopicPartition, offset: Int64, assignmentGeneration: UInt64) {
        self.topicPartition = topicPartition
        self.offset = offset
        self.assignmentGeneration = assignmentGeneration
    }

    public var description: String { "\(topicPartition)@\(offset)" }
}

/// A message received by a `KafkaConsumer`.
public struct KafkaMessage: Sendable {
    /// The topic it was read from.
    public var topic: String
    /// The partition it was read from.
    public var partition: Int32
    /// Its offset in the partition.
    public var offset: Int64
    /// The record key (`nil` when the record has no key).
    public var key: [UInt8]?
    /// The record value (`nil` for a null value, such as a tombstone).
    public var value: [UInt8]?
    /// The record headers, in order.
    public var headers: [KafkaHeader]
    /// The record timestamp, when the broker provides one.
    public var timestamp: KafkaTimestamp?
    /// Pass this to `KafkaConsumer.markProcessed(_:)` once the message reached its final outcome.
    public var receipt: KafkaMessageReceipt

    /// Creates a message (the consumer does this; public for tests of code that handles messages).
    public init(
        topic: String,
        partition: Int32,
        offset: Int64,
        key: [UInt8]?,
        value: [UInt8]?,
        headers: [KafkaHeader],
        timestamp: KafkaTimestamp?,
        assignmentGeneration: UInt64 = 0
    ) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.headers = headers
        self.timestamp = timestamp
        self.receipt = KafkaMessageReceipt(
            topicPartition: KafkaTopicPartition(topic: topic, partition: partition),
            offset: offset,
            assignmentGeneration: assignmentGeneration
        )
    }

    /// The partition the message came from.
    public var topicPartition: KafkaTopicPartition { receipt.topicPartition }
}

/// Where the broker stored a produced message.
public struct KafkaDeliveryReport: Hashable, Sendable, CustomStringConvertible {
    /// The topic.
    public var topic: String
    /// The partition the message was written to.
    public var partition: Int32
    /// The message's offset in that partition.
    public var offset: Int64

    /// Creates a delivery report.
    public init(topic: String, partition: Int32, offset: Int64) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
    }

    public var description: String { "\(topic)[\(partition)]@\(offset)" }
}
