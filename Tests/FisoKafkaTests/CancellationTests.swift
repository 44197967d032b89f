import FisoKafka
import FisoKafkaTesting
import Foundation
import Testing

/// Cancellation against a broker that stops answering: `LocalKafkaBroker.pause()` freezes tansu
/// (SIGSTOP), so connections stay open and requests get no answer, the case where waits used to
/// run into the delivery or session timeout. These tests need the local broker (not
/// `FISO_KAFKA_TEST_BROKERS`), since they freeze it.
@Suite("Kafka client cancellation against a frozen broker", .timeLimit(.minutes(2)))
struct CancellationTests {
    /// How long a cancelled wait may take to end (generous for a loaded test machine; the waits
    /// themselves end at once).
    static let promptly: Duration = .seconds(1)

    /// Runs `body` with a running local broker, resumed and stopped afterwards.
    static func withLocalBroker(_ body: (LocalKafkaBroker) async throws -> Void) async throws {
        let broker = try await LocalKafkaBroker.start()
        do {
            try await body(broker)
            broker.resume()
            await broker.stop()
        } catch {
            broker.resume()
            await broker.stop()
            throw error
        }
    }

    static func producer(
        _ broker: LocalKafkaBroker,
        shutdownFlushTimeout: Duration = .seconds(30)
    ) throws -> KafkaProducer {
        try KafkaProducer(
            configuration: KafkaProducerConfiguration(
                cluster: broker.cluster,
                deliveryTimeout: .seconds(60),
                shutdownFlushTimeout: shutdownFlushTimeout
            ),
            logger: testLogger("test.producer")
        )
    }

    static func createTopic(_ broker: LocalKafkaBroker, partitions: Int32 = 1) async throws -> String {
        let name = uniqueName("cancel")
        let admin = try KafkaAdminClient(configuration: broker.cluster, logger: testLogger("test.admin"))
        try await admin.createTopic(name, partitions: partitions, replicationFactor: 1)
        return name
    }

    /// Cancels `task` and returns how long it took to end, with its result.
    static func cancelAndTime<Success: Sendable>(_ task: Task<Success, Never>) async -> (Duration, Success) {
        let clock = ContinuousClock()
        let start = clock.now
        task.cancel()
        let value = await task.value
        return (start.duration(to: clock.now), value)
    }

    @Test("a cancelled produce ends at once with .cancelled; its late delivery report is consumed harmlessly")
    func cancelledProduce() async throws {
        try await Self.withLocalBroker { broker in
            let topic = try await Self.createTopic(broker)
            let producer = try Self.producer(broker)
            _ = try await producer.produce(topic: topic, value: Array("before".utf8))

            broker.pause()
            let pending = Task { () -> Result<KafkaDeliveryReport, KafkaError> in
                do throws(KafkaError) {
                    return .success(try await producer.produce(topic: topic, value: Array("frozen".utf8)))
                } catch {
                    return .failure(error)
                }
            }
            try await waitUntil("the message is outstanding") { producer.outstandingCount == 1 }
            try await Task.sleep(for: .milliseconds(200))
            let (elapsed, result) = await Self.cancelAndTime(pending)
            #expect(elapsed < Self.promptly, "the cancelled produce took \(elapsed)")
            guard case .failure(let error) = result else {
                Issue.record("a produce to a frozen broker succeeded")
                return
            }
            #expect(error.kind == .cancelled, "\(error)")
            #expect(error.message.contains("cancelled"), "\(error)")
            #expect(error.message.contains("may still be delivered"), "\(error)")
            // The message stays with librdkafka: still outstanding, then delivered once the broker
            // answers again, with nobody waiting for the report.
            #expect(producer.outstandingCount == 1)
            broker.resume()
            try await waitUntil("the late delivery report is consumed") { producer.outstandingCount == 0 }
            let after = try await producer.produce(topic: topic, value: Array("after".utf8))
            #expect(after.offset >= 1)
            let report = await producer.shutdown()
            #expect(report.unconfirmedMessages == 0)
            #expect(!report.flushCancelled)
        }
    }

    @Test("a cancelled batch produce returns at once with .cancelled results")
    func cancelledBatch() async throws {
        try await Self.withLocalBroker { broker in
            let topic = try await Self.createTopic(broker)
            let producer = try Self.producer(broker, shutdownFlushTimeout: .milliseconds(100))
            _ = try await producer.produce(topic: topic, value: Array("before".utf8))
            broker.pause()
            let records = (0..<5).map { KafkaProducerRecord(topic: topic, value: Array("batch-\($0)".utf8)) }
            let pending = Task { await producer.produce(batch: records) }
            try await waitUntil("the batch is outstanding") { producer.outstandingCount == 5 }
            let (elapsed, results) = await Self.cancelAndTime(pending)
            #expect(elapsed < Self.promptly, "the cancelled batch took \(elapsed)")
            #expect(results.count == 5)
            for result in results {
                guard case .failure(let error) = result else {
                    Issue.record("a batch record was acknowledged by a frozen broker")
                    continue
                }
                #expect(error.kind == .cancelled, "\(error)")
            }
            await producer.shutdown()
        }
    }

    @Test("a cancelled flush ends at once with .cancelled and leaves the messages queued")
    func cancelledFlush() async throws {
        try await Self.withLocalBroker { broker in
            let topic = try await Self.createTopic(broker)
            let producer = try Self.producer(broker, shutdownFlushTimeout: .milliseconds(100))
            _ = try await producer.produce(topic: topic, value: Array("before".utf8))
            broker.pause()
            let sending = Task { _ = try? await producer.produce(topic: topic, value: Array("frozen".utf8)) }
            try await waitUntil("the message is outstanding") { producer.outstandingCount == 1 }
            let flushing = Task { () -> KafkaError? in
                do throws(KafkaError) {
                    try await producer.flush(timeout: .seconds(30))
                    return nil
                } catch {
                    return error
                }
            }
            try await Task.sleep(for: .milliseconds(200))
            let (elapsed, error) = await Self.cancelAndTime(flushing)
            #expect(elapsed < Self.promptly, "the cancelled flush took \(elapsed)")
            #expect(error?.kind == .cancelled, "\(String(describing: error))")
            #expect(producer.outstandingCount == 1)
            let report = await producer.shutdown()
            #expect(report.unconfirmedMessages == 1)
            await sending.value
        }
    }

    @Test("shutdown cancelled while flushing stops at once, fails the rest and reports how many")
    func cancelledShutdown() async throws {
        try await Self.withLocalBroker { broker in
            let topic = try await Self.createTopic(broker)
            let producer = try Self.producer(broker, shutdownFlushTimeout: .seconds(30))
            _ = try await producer.produce(topic: topic, value: Array("before".utf8))
            broker.pause()
            let sends = (0..<3).map { index in
                Task { () -> KafkaError? in
                    do throws(KafkaError) {
                        _ = try await producer.produce(topic: topic, value: Array("frozen-\(index)".utf8))
                        return nil
                    } catch {
                        return error
                    }
                }
            }
            try await waitUntil("the messages are outstanding") { producer.outstandingCount == 3 }
            let shuttingDown = Task { await producer.shutdown() }
            try await Task.sleep(for: .milliseconds(300))  // Flushing against the frozen broker.
            let (elapsed, report) = await Self.cancelAndTime(shuttingDown)
            #expect(elapsed < Self.promptly, "the cancelled shutdown took \(elapsed)")
            #expect(report.unconfirmedMessages == 3)
            #expect(report.flushCancelled)
            for send in sends {
                let error = await send.value
                #expect(error?.kind == .closed, "\(String(describing: error))")
            }
            #expect(producer.outstandingCount == 0)
            // A later call returns the same report at once.
            #expect(await producer.shutdown() == report)
        }
    }

    @Test("a consumer whose run() is cancelled closes at once and reports the offsets it could not commit")
    func cancelledConsumerClose() async throws {
        try await Self.withLocalBroker { broker in
            let topic = try await Self.createTopic(broker)
            let producer = try Self.producer(broker)
            for index in 0..<3 { _ = try await producer.produce(topic: topic, value: Array("m-\(index)".utf8)) }
            await producer.shutdown()

            var cluster = broker.cluster
            cluster.properties = ["heartbeat.interval.ms": "300"]
            let consumer = try KafkaConsumer(
                configuration: KafkaConsumerConfiguration(
                    cluster: cluster,
                    groupID: uniqueName("g"),
                    topics: [topic],
                    startOffset: .earliest,
                    sessionTimeout: testSessionTimeout,
                    commitInterval: nil,
                    shutdownDrainTimeout: .seconds(30)
                ),
                logger: testLogger("test.consumer")
            )
            let running = Task { () -> (any Error)? in
                do {
                    try await consumer.run()
                    return nil
                } catch {
                    return error
                }
            }
            let messages = try await receiveMessages(3, from: consumer)
            for message in messages { consumer.markProcessed(message) }
            broker.pause()
            let (elapsed, error) = await Self.cancelAndTime(running)
            #expect(elapsed < Self.promptly, "the cancelled consumer took \(elapsed) to close")
            #expect(error == nil, "\(String(describing: error))")
            let report = try #require(consumer.closeReport)
            #expect(report.wasCancelled)
            #expect(report.unfinishedMessages == 0)
            #expect(
                report.unconfirmedOffsets == [
                    KafkaTopicPartitionOffset(KafkaTopicPartition(topic: topic, partition: 0), offset: 3)
                ])
        }
    }

    @Test("a cancelled commit() ends at once with .cancelled")
    func cancelledCommit() async throws {
        try await Self.withLocalBroker { broker in
            let topic = try await Self.createTopic(broker)
            let producer = try Self.producer(broker)
            _ = try await producer.produce(topic: topic, value: Array("m".utf8))
            await producer.shutdown()
            var cluster = broker.cluster
            cluster.properties = ["heartbeat.interval.ms": "300"]
            let consumer = try KafkaConsumer(
                configuration: KafkaConsumerConfiguration(
                    cluster: cluster,
                    groupID: uniqueName("g"),
                    topics: [topic],
                    startOffset: .earliest,
                    sessionTimeout: testSessionTimeout,
                    commitInterval: nil,
                    commitOnRevoke: false
                ),
                logger: testLogger("test.consumer")
            )
            let running = Task { try? await consumer.run() }
            let messages = try await receiveMessages(1, from: consumer)
            consumer.markProcessed(messages[0])
            broker.pause()
            let committing = Task { () -> KafkaError? in
                do throws(KafkaError) {
                    try await consumer.commit()
                    return nil
                } catch {
                    return error
                }
            }
            try await Task.sleep(for: .milliseconds(200))
            let (elapsed, error) = await Self.cancelAndTime(committing)
            #expect(elapsed < Self.promptly, "the cancelled commit took \(elapsed)")
            #expect(error?.kind == .cancelled, "\(String(describing: error))")
            running.cancel()
            await running.value
        }
    }
}
