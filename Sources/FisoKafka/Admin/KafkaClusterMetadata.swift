internal import CRdKafka

/// A snapshot of cluster metadata.
public struct KafkaClusterMetadata: Hashable, Sendable {
    /// A broker of the cluster.
    public struct Broker: Hashable, Sendable {
        /// The broker id.
        public var id: Int32
        /// The advertised host.
        public var host: String
        /// The advertised port.
        public var port: Int
    }

    /// A partition of a topic.
    public struct Partition: Hashable, Sendable {
        /// The partition number.
        public var id: Int32
        /// The leader broker id (-1 when there is none).
        public var leader: Int32
        /// Replica broker ids.
        public var replicas: [Int32]
        /// In-sync replica broker ids.
        public var inSyncReplicas: [Int32]
        /// The broker's error for this partition, if any.
        public var error: KafkaErrorCode?
    }

    /// A topic.
    public struct Topic: Hashable, Sendable {
        /// The topic name.
        public var name: String
        /// Its partitions, by id.
        public var partitions: [Partition]
        /// The broker's error for this topic, if any (for example `unknownTopicOrPartition`).
        public var error: KafkaErrorCode?
    }

    /// The brokers.
    public var brokers: [Broker]
    /// The topics (empty when only brokers were requested).
    public var topics: [Topic]
    /// The broker that answered.
    public var originatingBrokerID: Int32

    /// The topic named `name`, if the metadata lists it without error.
    public func topic(named name: String) -> Topic? {
        topics.first { $0.name == name && $0.error == nil }
    }

    init(_ metadata: rd_kafka_metadata) {
        brokers = (0..<Int(metadata.broker_cnt)).map { index in
            let broker = metadata.brokers[index]
            return Broker(id: broker.id, host: String(cString: broker.host), port: Int(broker.port))
        }
        topics = (0..<Int(metadata.topic_cnt)).map { index in
            let topic = metadata.topics[index]
            let partitions = (0..<Int(topic.partition_cnt)).map { partitionIndex in
                let partition = topic.partitions[partitionIndex]
                return Partition(
                    id: partition.id,
                    leader: partition.leader,
                    replicas: (0..<Int(partition.replica_cnt)).map { partition.replicas[$0] },
                    inSyncReplicas: (0..<Int(partition.isr_cnt)).map { partition.isrs[$0] },
                    error: partition.err == RD_KAFKA_RESP_ERR_NO_ERROR ? nil : KafkaErrorCode(partition.err)
                )
            }
            return Topic(
                name: String(cString: topic.topic),
                partitions: partitions.sorted { $0.id < $1.id },
                error: topic.err == RD_KAFKA_RESP_ERR_NO_ERROR ? nil : KafkaErrorCode(topic.err)
            )
        }
        originatingBrokerID = metadata.orig_broker_id
    }
}
