import FisoKafka
import Foundation
import Logging
import ServiceLifecycle
import Testing

/// A name no other test uses (topics and groups share one broker when
/// `FISO_KAFKA_TEST_BROKERS` is set).
func uniqueName(_ prefix: String) -> String {
    "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
}

/// Logs of the clients under test; `FISO_KAFKA_TEST_LOG_LEVEL=debug` shows them.
func testLogger(_ label: String) -> Logger {
    var logger = Logger(label: label)
    let level = ProcessInfo.processInfo.environment["FISO_KAFKA_TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:))
    logger.logLevel = level ?? .critical
    return logger
}

/// tansu's group join waits half of `session.timeout.ms`, so tests use a short one (a real
/// Kafka broker needs at least its `group.min.session.timeout.ms`, 6 s by default: set
/// `FISO_KAFKA_TEST_SESSION_TIMEOUT_MS` then).
let testSessionTimeout: Duration = .milliseconds(
    Int(ProcessInfo.processInfo.environment["FISO_KAFKA_TEST_SESSION_TIMEOUT_MS"] ?? "") ?? 2000
)

extension TestBroker {
    func admin() throws -> KafkaAdminClient {
        try KafkaAdminClient(configuration: cluster, logger: testLogger("test.admin"))
    }

    /// Creates a topic with `partitions` partitions and returns its name.
    func createTopic(_ prefix: String, partitions: Int32) async throws -> String {
        let name = uniqueName(prefix)
        try await admin().createTopic(name, partitions: partitions, replicationFactor: 1)
        return name
    }

    func producer(transactionalID: String? = nil) throws -> KafkaProducer {
        try KafkaProducer(
            configuration: KafkaProducerConfiguration(
                cluster: cluster,
                transactionalID: transactionalID,
                deliveryTimeout: .seconds(20)
            ),
            logger: testLogger("test.producer")
        )
    }

    func consumerConfiguration(
        group: String,
        topics: [String],
        startOffset: KafkaStartOffset = .earliest,
        commitInterval: Duration? = nil,
        commitOnRevoke: Bool = true,
        maxBufferedMessages: Int = 1000,
        shutdownDrainTimeout: Duration = .zero,
        properties: [String: String] = [:]
    ) -> KafkaConsumerConfiguration {
        var cluster = self.cluster
        // The heartbeat must be well below the short test session timeout.
        cluster.properties = ["heartbeat.interval.ms": "300"].merging(properties) { $1 }
        return KafkaConsumerConfiguration(
            cluster: cluster,
            groupID: group,
            topics: topics,
            startOffset: startOffset,
            sessionTimeout: testSessionTimeout,
            commitInterval: commitInterval,
            commitOnRevoke: commitOnRevoke,
            maxBufferedMessages: maxBufferedMessages,
            shutdownDrainTimeout: shutdownDrainTimeout
        )
    }

    /// Produces `count` messages with values `prefix-0`, `prefix-1`, ... (and the same keys), one
    /// after the other so that offsets follow the index, or all at once with `concurrently`
    /// (faster; librdkafka then batches them, and their order within a partition is not fixed).
    @discardableResult
    func produce(
        _ count: Int,
        to topic: String,
        prefix: String = "message",
        partition: Int32? = nil,
        concurrently: Bool = false
    ) async throws -> [KafkaDeliveryReport] {
        let producer = try producer()
        func record(_ index: Int) -> KafkaProducerRecord {
            let text = "\(prefix)-\(index)"
            return KafkaProducerRecord(
                topic: topic, key: Array(text.utf8), value: Array(text.utf8), partition: partition)
        }
        var reports: [KafkaDeliveryReport] = []
        if concurrently {
            reports = try await withThrowingTaskGroup(of: (Int, KafkaDeliveryReport).self) { group in
                for index in 0..<count {
                    let record = record(index)
                    group.addTask { (index, try await producer.produce(record)) }
                }
                var reports: [(Int, KafkaDeliveryReport)] = []
                for try await report in group { reports.append(report) }
                return reports.sorted { $0.0 < $1.0 }.map(\.1)
            }
        } else {
            for index in 0..<count { reports.append(try await producer.produce(record(index))) }
        }
        await producer.shutdown()
        return reports
    }
}

/// Runs `body` while `consumer.run()` runs; then shuts the consumer down and waits for it.
func withRunningConsumer<Result: Sendable>(
    _ consumer: KafkaConsumer,
    _ body: (KafkaConsumer) async throws -> Result
) async throws -> Result {
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await consumer.run() }
        do {
            let result = try await body(consumer)
            consumer.triggerShutdown()
            try await group.waitForAll()
            return result
        } catch {
            consumer.triggerShutdown()
            try? await group.waitForAll()
            throw error
        }
    }
}

struct TimedOut: Error, CustomStringConvertible {
    let description: String
}

/// Runs `body`, failing with `TimedOut` (and cancelling it) after `limit`.
func withTimeout<Result: Sendable>(
    _ limit: Duration,
    _ what: String,
    _ body: @escaping @Sendable () async throws -> Result
) async throws -> Result {
    try await withThrowingTaskGroup(of: Result?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else {
            throw TimedOut(description: "timed out after \(limit): \(what)")
        }
        return value
    }
}

/// Reads events until `count` messages arrived (rebalance events are skipped), or fails after
/// `limit`. Messages are not marked processed.
func receiveMessages(
    _ count: Int,
    from consumer: KafkaConsumer,
    within limit: Duration = .seconds(30)
) async throws -> [KafkaMessage] {
    try await withTimeout(limit, "waiting for \(count) messages") {
        var messages: [KafkaMessage] = []
        for try await event in consumer.events {
            if case .message(let message) = event {
                messages.append(message)
                if messages.count == count { break }
            }
        }
        return messages
    }
}

/// The next event, or `nil` if none arrives within `limit`.
func nextEvent(of consumer: KafkaConsumer, within limit: Duration) async throws -> KafkaConsumerEvent? {
    do {
        return try await withTimeout(limit, "next event") {
            var iterator = consumer.events.makeAsyncIterator()
            return try await iterator.next()
        }
    } catch is TimedOut {
        return nil
    }
}

/// Polls `condition` every 20 ms until it holds, or fails after `limit`.
func waitUntil(
    _ what: String,
    within limit: Duration = .seconds(30),
    _ condition: @escaping @Sendable () async throws -> Bool
) async throws {
    _ = try await withTimeout(limit, what) {
        while try await !condition() {
            try await Task.sleep(for: .milliseconds(20))
        }
        return true
    }
}

/// A lock-protected value that closures can share (Foundation's lock: this target does not
/// depend on swift-nio).
final class Locked<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<Result>(_ body: (inout Value) -> Result) -> Result { lock.withLock { body(&value) } }
}

extension KafkaMessage {
    var valueText: String { value.map { String(decoding: $0, as: UTF8.self) } ?? "<null>" }
}

/// Runs `services` in a swift-service-lifecycle `ServiceGroup` while `body` runs; `body` gets a
/// function that triggers the group's graceful shutdown. Returns when every service finished.
func runAsServices(
    _ services: [any Service],
    _ body: (@escaping @Sendable () -> Void) async throws -> Void
) async throws {
    let group = ServiceGroup(
        configuration: ServiceGroupConfiguration(
            services: services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) },
            logger: testLogger("test.services")
        )
    )
    try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        try await body { Task { await group.triggerGracefulShutdown() } }
        try await tasks.waitForAll()
    }
}
