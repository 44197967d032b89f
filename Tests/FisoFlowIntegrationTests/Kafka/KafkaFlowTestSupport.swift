import FisoFlow
import FisoFlowTestSupport
import FisoJSON
import FisoKafka
import FisoKafkaTesting
import Foundation
import Logging
import NIOConcurrencyHelpers
import Testing

/// A Kafka-protocol broker for one test: a memory-only tansu (`LocalKafkaBroker`) on a free port,
/// stopped when the test ends, or the broker named by `FISO_KAFKA_TEST_BROKERS`.
struct FlowTestBroker: Sendable {
    let address: String
    /// The broker process when the test started one (not with `FISO_KAFKA_TEST_BROKERS`).
    var local: LocalKafkaBroker? = nil

    /// Whether tests get a broker process of their own (which they may pause).
    static var startsLocalBroker: Bool {
        (ProcessInfo.processInfo.environment["FISO_KAFKA_TEST_BROKERS"] ?? "").isEmpty
    }

    /// tansu's group join waits half of `session.timeout.ms`; a real Kafka needs at least its
    /// `group.min.session.timeout.ms` (set `FISO_KAFKA_TEST_SESSION_TIMEOUT_MS` then).
    static let sessionTimeoutMilliseconds =
        Int(ProcessInfo.processInfo.environment["FISO_KAFKA_TEST_SESSION_TIMEOUT_MS"] ?? "") ?? 2000

    static func with<T: Sendable>(_ body: (FlowTestBroker) async throws -> T) async throws -> T {
        if let external = ProcessInfo.processInfo.environment["FISO_KAFKA_TEST_BROKERS"], !external.isEmpty {
            return try await body(FlowTestBroker(address: external))
        }
        let broker = try await LocalKafkaBroker.start()
        do {
            let result = try await body(FlowTestBroker(address: broker.address, local: broker))
            await broker.stop()
            return result
        } catch {
            await broker.stop()
            throw error
        }
    }

    var cluster: KafkaClientConfiguration { KafkaClientConfiguration(brokers: [address], clientID: "fiso-flow-tests") }

    /// The inline `kafka:` block of a flow file naming this broker `test`, with the short session
    /// the tests need; `extra` adds `config:` properties.
    func clusterBlock(extra: [String: String] = [:]) -> String {
        var properties = [
            "session.timeout.ms": String(Self.sessionTimeoutMilliseconds), "heartbeat.interval.ms": "300",
        ]
        properties.merge(extra) { $1 }
        let config = properties.sorted { $0.key < $1.key }.map { "        \($0.key): \"\($0.value)\"" }
        return (["kafka:", "  clusters:", "    test:", "      brokers: [\"\(address)\"]", "      config:"] + config)
            .joined(separator: "\n") + "\n"
    }

    func createTopic(_ prefix: String, partitions: Int32 = 1) async throws -> String {
        let name = kafkaTestName(prefix)
        try await createTopic(named: name, partitions: partitions)
        return name
    }

    func createTopic(named name: String, partitions: Int32 = 1) async throws {
        let admin = try KafkaAdminClient(configuration: cluster, logger: kafkaTestLogger)
        try await admin.createTopic(name, partitions: partitions, replicationFactor: 1)
    }

    func producer() throws -> KafkaProducer {
        try KafkaProducer(
            configuration: KafkaProducerConfiguration(cluster: cluster, deliveryTimeout: .seconds(20)),
            logger: kafkaTestLogger
        )
    }

    /// Produces `records` one after the other (so offsets follow their order).
    func produce(_ records: [KafkaProducerRecord]) async throws {
        let producer = try producer()
        for record in records { _ = try await producer.produce(record) }
        await producer.shutdown()
    }

    /// Produces `records` all at once (librdkafka batches them).
    func produceBatch(_ records: [KafkaProducerRecord]) async throws {
        let producer = try producer()
        for result in await producer.produce(batch: records) { _ = try result.get() }
        await producer.shutdown()
    }

    /// Reads records of `topic` from the beginning until `count` arrived (fails after `timeout`),
    /// then waits `settle` for unexpected extra records and returns all.
    func read(
        _ count: Int, from topic: String, timeout: Duration = .seconds(30), settle: Duration = .zero
    ) async throws -> [KafkaMessage] {
        let configuration = KafkaConsumerConfiguration(
            cluster: clusterWithTestSession, groupID: kafkaTestName("reader"), topics: [topic],
            startOffset: .earliest, sessionTimeout: .milliseconds(Self.sessionTimeoutMilliseconds),
            commitInterval: nil, commitOnRevoke: false, shutdownDrainTimeout: .zero
        )
        let consumer = try KafkaConsumer(configuration: configuration, logger: kafkaTestLogger)
        let received = NIOLockedValueBox<[KafkaMessage]>([])
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await consumer.run() }
            group.addTask {
                var iterator = consumer.events.makeAsyncIterator()
                var settleDeadline: ContinuousClock.Instant?
                while true {
                    let batch = try await iterator.nextBatch(maxCount: 500)
                    if batch.isEmpty { return }
                    let total = received.withLockedValue { list in
                        for case .message(let message) in batch { list.append(message) }
                        return list.count
                    }
                    if total >= count && settleDeadline == nil { settleDeadline = .now + settle }
                }
            }
            let deadline = ContinuousClock.now + timeout
            while received.withLockedValue({ $0.count }) < count && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            if received.withLockedValue({ $0.count }) >= count, settle > .zero { try await Task.sleep(for: settle) }
            consumer.triggerShutdown()
            try await group.waitForAll()
        }
        let messages = received.withLockedValue { $0 }
        if messages.count < count {
            throw TimedOut(what: "\(count) records arrived in \(topic) (got \(messages.count))")
        }
        return messages
    }

    var clusterWithTestSession: KafkaClientConfiguration {
        var cluster = cluster
        cluster.properties = ["heartbeat.interval.ms": "300"]
        return cluster
    }

    /// The group's committed offset per partition of `topic` (partitions without one are left out).
    func committedOffsets(group: String, topic: String, partitions: Int32) async throws -> [Int32: Int64] {
        let consumer = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(cluster: cluster, groupID: group, topics: [topic]),
            logger: kafkaTestLogger
        )
        let offsets = try await consumer.committedOffsets(
            for: (0..<partitions).map { KafkaTopicPartition(topic: topic, partition: $0) }
        )
        return Dictionary(uniqueKeysWithValues: offsets.map { ($0.partition, $0.offset) })
    }
}

let kafkaTestLogger: Logger = {
    var logger = Logger(label: "fiso-flow-kafka-tests")
    logger.logLevel =
        ProcessInfo.processInfo.environment["FISO_TEST_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) } ?? .critical
    return logger
}()

func kafkaTestName(_ prefix: String) -> String { "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())" }

/// A record whose value is `{"n": index, ...fields}`.
func numberedRecord(
    _ index: Int, topic: String, key: String? = nil, headers: [KafkaHeader] = [], partition: Int32? = nil,
    fields: JSONObject = [:]
) -> KafkaProducerRecord {
    var object: JSONObject = ["n": .int(Int64(index))]
    object.merge(fields) { $1 }
    return KafkaProducerRecord(
        topic: topic, key: key.map { Array($0.utf8) }, value: JSONValue.object(object).serialized(), headers: headers,
        partition: partition
    )
}

/// A Kafka-source flow file: `source` settings, a `sink` block and extra top-level YAML.
func kafkaSourceFlow(
    name: String, broker: FlowTestBroker, topic: String, group: String, startOffset: String = "earliest",
    sourceExtra: [String] = [], sink: String, extra: String = "", clusterConfig: [String: String] = [:]
) -> String {
    var lines = [
        "name: \(name)", "source:", "  type: kafka", "  config:", "    cluster: test", "    topic: \(topic)",
        "    consumerGroup: \(group)", "    startOffset: \"\(startOffset)\"",
    ]
    lines += sourceExtra.map { "    " + $0 }
    return lines.joined(separator: "\n") + "\n" + sink + "\n" + extra + "\n" + broker.clusterBlock(extra: clusterConfig)
}

func httpSinkBlock(_ url: String) -> String {
    "sink:\n  type: http\n  config:\n    url: \(url)"
}

func kafkaSinkBlock(topic: String, key: String? = nil) -> String {
    var text = "sink:\n  type: kafka\n  config:\n    cluster: test\n    topic: \(topic)"
    if let key { text += "\n    key: '\(key)'" }
    return text
}

extension TestReceiver.Received {
    /// The `n` of the CloudEvent's data.
    var number: Int? {
        guard case .object(let event)? = json, case .object(let data)? = event["data"], case .int(let n)? = data["n"]
        else { return nil }
        return Int(n)
    }
}

extension KafkaMessage {
    func header(_ name: String) -> String? { headers.last { $0.name.lowercased() == name.lowercased() }?.text }
    var valueJSON: JSONValue? { value.flatMap { try? JSONValue(parsing: $0) } }
    var keyText: String? { key.map { String(decoding: $0, as: UTF8.self) } }
}

extension JSONValue {
    /// The value of an integer.
    var kafkaTestInteger: Int64? {
        if case .int(let value) = self { return value }
        return nil
    }
}
