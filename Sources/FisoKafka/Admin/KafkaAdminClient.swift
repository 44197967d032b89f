internal import CRdKafka
import Logging

/// Cluster administration for tests, start-up validation and tooling: connectivity checks,
/// metadata, topic creation, watermarks. Requests run on a dedicated thread.
public final class KafkaAdminClient: Sendable {
    private let handle: KafkaClientHandle
    private let worker: BlockingWorker
    private let poller: MainQueuePoller

    /// Creates the client (connections are made lazily); throws configuration errors.
    public init(
        configuration: KafkaClientConfiguration,
        logger: Logger = Logger(label: "fiso.kafka.admin")
    ) throws(KafkaError) {
        var builder = try RdKafkaConfigurationBuilder()
        try configuration.apply(to: &builder, reserved: KafkaClientConfiguration.reservedProperties)
        let context = ClientContext(logger: logger, role: "admin client", brokers: configuration.brokers)
        let handle = try KafkaClientHandle(type: RD_KAFKA_PRODUCER, configuration: builder, context: context)
        self.handle = handle
        self.worker = BlockingWorker(name: "fiso-kafka-admin-calls")
        self.poller = MainQueuePoller(handle: handle, threadName: "fiso-kafka-admin-poll") {}
    }

    deinit {
        poller.stop()
    }

    /// Checks that a broker answers a metadata request within `timeout`; throws a `.connection`
    /// error naming the brokers and librdkafka's last broker error otherwise.
    public func checkConnectivity(timeout: Duration = .seconds(10)) async throws(KafkaError) {
        let handle = self.handle
        _ = try await worker.run(cancelled: "the connectivity check was cancelled") { _ in
            handle.metadata(allTopics: false, timeout: timeout)
        }
    }

    /// Brokers and all topics with their partitions.
    public func metadata(timeout: Duration = .seconds(10)) async throws(KafkaError) -> KafkaClusterMetadata {
        let handle = self.handle
        return try await worker.run(cancelled: "the metadata request was cancelled") { _ in
            handle.metadata(allTopics: true, timeout: timeout)
        }
    }

    /// The number of partitions of `topic`; throws an `.admin` error with code
    /// `unknownTopicOrPartition` when it does not exist. (Asks for all topics so that the
    /// request cannot auto-create the topic.)
    public func partitionCount(of topic: String, timeout: Duration = .seconds(10)) async throws(KafkaError) -> Int {
        let metadata = try await metadata(timeout: timeout)
        guard let found = metadata.topics.first(where: { $0.name == topic }), found.error == nil else {
            throw KafkaError(
                kind: .admin,
                message: "topic '\(topic)' does not exist",
                code: .unknownTopicOrPartition
            )
        }
        return found.partitions.count
    }

    /// Creates a topic. `replicationFactor` -1 uses the broker's default. Throws with code
    /// `topicAlreadyExists` if it exists (see `ensureTopic`).
    public func createTopic(
        _ name: String,
        partitions: Int32,
        replicationFactor: Int32 = -1,
        configuration: [String: String] = [:],
        timeout: Duration = .seconds(30)
    ) async throws(KafkaError) {
        try validateTopicName(name)
        guard partitions >= 1 else {
            throw KafkaError(
                kind: .invalidArgument, message: "a topic needs at least one partition (got \(partitions))")
        }
        let handle = self.handle
        try await worker.run(
            cancelled: "the wait for the creation of topic '\(name)' was cancelled; the topic may still be created"
        ) { _ -> Result<Void, KafkaError> in
            Self.createTopic(
                handle: handle,
                name: name,
                partitions: partitions,
                replicationFactor: replicationFactor,
                configuration: configuration,
                timeout: timeout
            )
        }
    }

    /// Creates a topic unless it exists. Returns `true` if it was created.
    @discardableResult
    public func ensureTopic(
        _ name: String,
        partitions: Int32,
        replicationFactor: Int32 = -1,
        timeout: Duration = .seconds(30)
    ) async throws(KafkaError) -> Bool {
        do {
            try await createTopic(name, partitions: partitions, replicationFactor: replicationFactor, timeout: timeout)
            return true
        } catch  where error.code == .topicAlreadyExists {
            return false
        }
    }

    /// The low (oldest retained) and high (next to be written) offsets of a partition.
    public func watermarks(
        of partition: KafkaTopicPartition,
        timeout: Duration = .seconds(10)
    ) async throws(KafkaError) -> (low: Int64, high: Int64) {
        let handle = self.handle
        let result = try await worker.run(cancelled: "the watermark query for \(partition) was cancelled") {
            _ -> Result<[Int64], KafkaError> in
            handle.watermarks(of: partition, timeout: timeout).map { [$0.low, $0.high] }
        }
        return (result[0], result[1])
    }

    private static func createTopic(
        handle: KafkaClientHandle,
        name: String,
        partitions: Int32,
        replicationFactor: Int32,
        configuration: [String: String],
        timeout: Duration
    ) -> Result<Void, KafkaError> {
        let raw = handle.pointer.raw
        var errorText = [CChar](repeating: 0, count: 512)
        func text() -> String { errorText.withUnsafeBufferPointer { String(cString: $0.baseAddress!) } }

        guard let newTopic = rd_kafka_NewTopic_new(name, partitions, replicationFactor, &errorText, errorText.count)
        else {
            return .failure(KafkaError(kind: .invalidArgument, message: "topic '\(name)': \(text())"))
        }
        defer { rd_kafka_NewTopic_destroy(newTopic) }
        for (key, value) in configuration.sorted(by: { $0.key < $1.key }) {
            let code = rd_kafka_NewTopic_set_config(newTopic, key, value)
            if code != RD_KAFKA_RESP_ERR_NO_ERROR {
                return .failure(KafkaError.from(code, kind: .invalidArgument, operation: "topic config '\(key)'"))
            }
        }
        guard let options = rd_kafka_AdminOptions_new(raw, RD_KAFKA_ADMIN_OP_CREATETOPICS) else {
            return .failure(KafkaError(kind: .admin, message: "librdkafka could not allocate admin options"))
        }
        defer { rd_kafka_AdminOptions_destroy(options) }
        let timeoutMilliseconds = Int32(milliseconds(timeout))
        _ = rd_kafka_AdminOptions_set_request_timeout(options, timeoutMilliseconds, &errorText, errorText.count)
        _ = rd_kafka_AdminOptions_set_operation_timeout(options, timeoutMilliseconds, &errorText, errorText.count)
        guard let queue = rd_kafka_queue_new(raw) else {
            return .failure(KafkaError(kind: .admin, message: "librdkafka could not allocate a queue"))
        }
        defer { rd_kafka_queue_destroy(queue) }

        var topics: [OpaquePointer?] = [newTopic]
        rd_kafka_CreateTopics(raw, &topics, 1, options, queue)
        // librdkafka times the request out itself; the margin only guards against a lost event.
        guard let event = rd_kafka_queue_poll(queue, timeoutMilliseconds + 5000) else {
            return .failure(
                handle.connectionError(
                    RD_KAFKA_RESP_ERR__TIMED_OUT, operation: "create topic '\(name)'", timeout: timeout)
            )
        }
        defer { rd_kafka_event_destroy(event) }
        let eventError = rd_kafka_event_error(event)
        if eventError != RD_KAFKA_RESP_ERR_NO_ERROR {
            if eventError == RD_KAFKA_RESP_ERR__TIMED_OUT || eventError == RD_KAFKA_RESP_ERR__TRANSPORT {
                return .failure(
                    handle.connectionError(eventError, operation: "create topic '\(name)'", timeout: timeout))
            }
            let message = rd_kafka_event_error_string(event).map { String(cString: $0) } ?? ""
            return .failure(
                KafkaError(
                    kind: .admin,
                    message: "create topic '\(name)' failed: \(message)",
                    code: KafkaErrorCode(eventError)
                )
            )
        }
        guard let result = rd_kafka_event_CreateTopics_result(event) else {
            return .failure(KafkaError(kind: .admin, message: "create topic '\(name)': unexpected result event"))
        }
        var count = 0
        guard let results = rd_kafka_CreateTopics_result_topics(result, &count), count > 0,
            let topicResult = results[0]
        else {
            return .failure(KafkaError(kind: .admin, message: "create topic '\(name)': empty result"))
        }
        let code = rd_kafka_topic_result_error(topicResult)
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else {
            let message = rd_kafka_topic_result_error_string(topicResult).map { String(cString: $0) }
            return .failure(
                KafkaError(
                    kind: .admin,
                    message: "create topic '\(name)' failed: \(message ?? KafkaErrorCode(code).text)",
                    code: KafkaErrorCode(code)
                )
            )
        }
        return .success(())
    }
}
