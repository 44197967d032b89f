import FisoKafka
import FisoKafkaTesting
import Foundation
import Testing

/// Tests against a real Kafka-protocol broker (tansu, started per test; see TestBroker).
@Suite("Kafka client against a broker", .timeLimit(.minutes(2)))
struct KafkaBrokerTests {
    @Test("the library reports the librdkafka it runs with")
    func libraryVersion() throws {
        #expect(!KafkaLibrary.version.isEmpty)
        #expect(KafkaLibrary.versionNumber >> 24 == 2, "librdkafka 2.x expected, got \(KafkaLibrary.version)")
        try TestBroker.requireModernLibrdkafka()
    }

    @Test("a local tansu broker answers while running and is gone after stop")
    func localBrokerLifecycle() async throws {
        let broker = try await LocalKafkaBroker.start()
        let admin = try KafkaAdminClient(configuration: broker.cluster, logger: testLogger("test.admin"))
        try await admin.checkConnectivity(timeout: .seconds(5))
        await broker.stop()
        await broker.stop()  // idempotent
        let fresh = try KafkaAdminClient(configuration: broker.cluster, logger: testLogger("test.admin"))
        do {
            try await fresh.checkConnectivity(timeout: .seconds(2))
            Issue.record("the stopped broker still answers")
        } catch {
            #expect(error.kind == .connection)
        }
    }

    @Test("admin: create topics, count partitions, refuse duplicates, report unknown topics")
    func admin() async throws {
        try await TestBroker.with { broker in
            let admin = try broker.admin()
            try await admin.checkConnectivity(timeout: .seconds(5))
            let name = uniqueName("admin")
            try await admin.createTopic(name, partitions: 3, replicationFactor: 1)
            #expect(try await admin.partitionCount(of: name) == 3)
            #expect(try await admin.ensureTopic(name, partitions: 3, replicationFactor: 1) == false)
            do {
                _ = try await admin.partitionCount(of: uniqueName("missing"))
                Issue.record("an unknown topic must fail")
            } catch let error as KafkaError {
                #expect(error.code == .unknownTopicOrPartition)
            }
            let metadata = try await admin.metadata()
            #expect(metadata.brokers.contains { "\($0.host):\($0.port)" == broker.address })
            #expect(metadata.topic(named: name)?.partitions.map(\.id) == [0, 1, 2])
        }
    }

    @Test("produce and consume one message with key, headers and timestamp")
    func roundTrip() async throws {
        try await TestBroker.with { broker in
            let topic = try await broker.createTopic("roundtrip", partitions: 2)
            let producer = try broker.producer()
            let headers = [
                KafkaHeader(name: "content-type", text: "application/json"),
                KafkaHeader(name: "trace", value: [0, 1, 2, 255]),
                KafkaHeader(name: "trace", text: "second"),
                KafkaHeader(name: "empty", value: nil),
            ]
            let before = Int64(Date().timeIntervalSince1970 * 1000)
            let report = try await producer.produce(
                topic: topic,
                key: Array("order-7".utf8),
                value: Array(#"{"id":7}"#.utf8),
                headers: headers,
                partition: 1
            )
            #expect(report.topic == topic)
            #expect(report.partition == 1)
            #expect(report.offset == 0)
            await producer.shutdown()

            let consumer = try KafkaConsumer(
                configuration: broker.consumerConfiguration(group: uniqueName("g"), topics: [topic]),
                logger: testLogger("test.consumer")
            )
            let message = try await withRunningConsumer(consumer) { consumer in
                try await receiveMessages(1, from: consumer)[0]
            }
            #expect(message.topic == topic)
            #expect(message.partition == 1)
            #expect(message.offset == 0)
            #expect(message.key == Array("order-7".utf8))
            #expect(message.valueText == #"{"id":7}"#)
            #expect(message.headers == headers)
            let timestamp = try #require(message.timestamp)
            #expect(timestamp.milliseconds >= before - 5000 && timestamp.milliseconds <= before + 60_000)
        }
    }

    @Test("batch produce and batch receive keep per-partition order and report each message")
    func batches() async throws {
        try await TestBroker.with { broker in
            let topic = try await broker.createTopic("batch", partitions: 2)
            let producer = try broker.producer()
            let records = (0..<200).map { index in
                KafkaProducerRecord(
                    topic: topic,
                    key: Array("k\(index % 7)".utf8),
                    value: Array("batch-\(index)".utf8),
                    partition: Int32(index % 2)
                )
            }
            let results = await producer.produce(batch: records + [KafkaProducerRecord(topic: "", value: [1])])
            #expect(results.count == 201)
            let reports = try results.dropLast().map { try $0.get() }
            for partition: Int32 in [0, 1] {
                let offsets = reports.filter { $0.partition == partition }.map(\.offset)
                #expect(offsets == Array(0..<100), "partition \(partition) written in batch order")
            }
            guard case .failure(let invalid) = results.last else {
                Issue.record("an invalid record fails alone")
                return
            }
            #expect(invalid.kind == .invalidArgument)
            #expect(await producer.produce(batch: []).isEmpty)
            await producer.shutdown()

            let consumer = try KafkaConsumer(
                configuration: broker.consumerConfiguration(group: uniqueName("g"), topics: [topic]),
                logger: testLogger("test.consumer")
            )
            let received = try await withRunningConsumer(consumer) { consumer in
                try await withTimeout(.seconds(30), "batch receive") {
                    var iterator = consumer.events.makeAsyncIterator()
                    var messages: [KafkaMessage] = []
                    var largestBatch = 0
                    while messages.count < 200 {
                        let batch = try await iterator.nextBatch(maxCount: 64)
                        #expect(!batch.isEmpty && batch.count <= 64)
                        largestBatch = max(largestBatch, batch.count)
                        for case .message(let message) in batch { messages.append(message) }
                    }
                    #expect(largestBatch > 1, "buffered messages come together")
                    return messages
                }
            }
            #expect(received.count == 200)
            for partition: Int32 in [0, 1] {
                let values = received.filter { $0.partition == partition }.map(\.valueText)
                #expect(values == stride(from: Int(partition), to: 200, by: 2).map { "batch-\($0)" })
            }
        }
    }

    @Test("empty and null keys and values stay distinct")
    func emptyVersusNull() async throws {
        try await TestBroker.with { broker in
            let topic = try await broker.createTopic("nulls", partitions: 1)
            let producer = try broker.producer()
            _ = try await producer.produce(topic: topic, key: nil, value: nil)
            _ = try await producer.produce(topic: topic, key: [], value: [])
            await producer.shutdown()
            let consumer = try KafkaConsumer(
                configuration: broker.consumerConfiguration(group: uniqueName("g"), topics: [topic]),
                logger: testLogger("test.consumer")
            )
            let messages = try await withRunningConsumer(consumer) { try await receiveMessages(2, from: $0) }
            #expect(messages[0].key == nil)
            #expect(messages[0].value == nil)
            #expect(messages[1].key == [])
            #expect(messages[1].value == [])
        }
    }

    @Test("N messages over 4 partitions arrive exactly once and their offsets are committed")
    func exactlyOnceHappyPath() async throws {
        try await TestBroker.with { broker in
            let count = 400
            let topic = try await broker.createTopic("happy", partitions: 4)
            try await broker.produce(count, to: topic, concurrently: true)
            let group = uniqueName("g")
            let consumer = try KafkaConsumer(
                configuration: broker.consumerConfiguration(
                    group: group, topics: [topic], commitInterval: .milliseconds(200)),
                logger: testLogger("test.consumer")
            )
            let partitions = (0..<4).map { KafkaTopicPartition(topic: topic, partition: Int32($0)) }
            try await withRunningConsumer(consumer) { consumer in
                let messages = try await receiveMessages(count, from: consumer)
                for message in messages { #expect(consumer.markProcessed(message)) }
                #expect(Set(messages.map(\.valueText)) == Set((0..<count).map { "message-\($0)" }))
                #expect(messages.count == count)
                // Per partition, offsets arrive in order.
                for partition in partitions {
                    let offsets = messages.filter { $0.topicPartition == partition }.map(\.offset)
                    #expect(offsets == offsets.sorted())
                }
                // The background commit (every 200 ms) catches up with everything processed.
                try await waitUntil("background commit of all offsets") {
                    let committed = try await consumer.committedOffsets(for: partitions)
                    return committed.map(\.offset).reduce(0, +) == Int64(count)
                }
                #expect(consumer.inFlightCount == 0)
                // Each partition is committed one past its last message.
                for entry in try await consumer.committedOffsets(for: partitions) {
                    let last = messages.filter { $0.topicPartition == entry.topicPartition }.map(\.offset).max()
                    #expect(entry.offset == (last ?? -1) + 1, "\(entry.topicPartition)")
                }
            }
        }
    }

    @Test("after a restart the group resumes at its committed offset")
    func restartResumes() async throws {
        try await TestBroker.with { broker in
            let topic = try await broker.createTopic("restart", partitions: 1)
            try await broker.produce(10, to: topic, partition: 0)
            let group = uniqueName("g")
            let first = try KafkaConsumer(
                configuration: broker.consumerConfiguration(group: group, topics: [topic]),
                logger: testLogger("test.consumer")
            )
            try await withRunningConsumer(first) { consumer in
                let messages = try await receiveMessages(10, from: consumer)
                for message in messages.prefix(6) { consumer.markProcessed(message) }
                try await consumer.commit()
            }

            try await broker.produce(5, to: topic, prefix: "later", partition: 0)
            // startOffset earliest must not matter: the group has a committed offset.
            let second = try KafkaConsumer(
                configuration: broker.consumerConfiguration(group: group, topics: [topic], startOffset: .earliest),
                logger: testLogger("test.consumer")
            )
            let resumed = try await withRunningConsumer(second) { try await receiveMessages(9, from: $0) }
            #expect(resumed.map(\.offset) == Array(6...14))
            #expect(resumed.first?.valueText == "message-6")
            #expect(resumed.last?.valueText == "later-4")
        }
    }

    @Test("a numeric start offset applies only where the group has no committed offset, clamped to the log")
    func numericStartOffset() async throws {
        try await TestBroker.with { broker in
            let topic = try await broker.createTopic("numeric", partitions: 2)
            try await broker.produce(10, to: topic, partition: 0)
            try await broker.produce(10, to: topic, prefix: "p1", partition: 1)
            let group = uniqueName("g")
            let p0 = KafkaTopicPartition(topic: topic, partition: 0)
            let p1 = KafkaTopicPartition(topic: topic, partition: 1)

            let first = try KafkaConsumer(
                configuration: broker.consumerConfiguration(group: group, topics: [topic], startOffset: .offset(7)),
                logger: testLogger("test.consumer")
            )
            try await withRunningConsumer(first) { consumer in
                let messages = try await receiveMessages(6, from: consumer)
                #expect(messages.filter { $0.partition == 0 }.map(\.offset) == [7, 8, 9])
                #expect(messages.filter { $0.partition == 1 }.map(\.offset) == [7, 8, 9])
                // Commit partition 0 only (up to offset 9 -> 9 processed means commit 8? no: 7, 8).
                for message in messages where message.partition == 0 && message.offset < 9 {
                    consumer.markProcessed(message)
                }
                try await consumer.commit()
                #expect(
                    try await consumer.committedOffsets(for: [p0, p1]) == [KafkaTopicPartitionOffset(p0, offset: 9)])
            }

            // Same group, other start offset: partition 0 resumes at its committed 9, partition 1
            // (nothing committed) starts at the new number.
            let second = try KafkaConsumer(
                configuration: broker.consumerConfiguration(group: group, topics: [topic], startOffset: .offset(4)),
                logger: testLogger("test.consumer")
            )
            try await withRunningConsumer(second) { consumer in
                let messages = try await receiveMessages(7, from: consumer)
                #expect(messages.filter { $0.partition == 0 }.map(\.offset) == [9])
                #expect(messages.filter { $0.partition == 1 }.map(\.offset) == [4, 5, 6, 7, 8, 9])
            }

            // Beyond the end: clamped to the high watermark, so only new messages arrive.
            let third = try KafkaConsumer(
                configuration: broker.consumerConfiguration(
                    group: uniqueName("g"),
                    topics: [topic],
                    startOffset: .offset(1_000)
                ),
                logger: testLogger("test.consumer")
            )
            try await withRunningConsumer(third) { consumer in
                try await waitUntil("assignment") { consumer.assignment.count == 2 }
                try await broker.produce(1, to: topic, prefix: "new", partition: 1)
                let messages = try await receiveMessages(1, from: consumer)
                #expect(messages[0].valueText == "new-0")
                #expect(messages[0].offset == 10)
            }
        }
    }

    @Test("out-of-order completion commits only the contiguous finished prefix")
    func outOfOrderCommit() async throws {
        try await TestBroker.with { broker in
            let topic = try await broker.createTopic("ooo", partitions: 1)
            try await broker.produce(10, to: topic, partition: 0)
            let partition = KafkaTopicPartition(topic: topic, partition: 0)
            let consumer = try KafkaConsumer(
                configuration: broker.consumerConfiguration(group: uniqueName("g"), topics: [topic]),
                logger: testLogger("test.consumer")
            )
            try await withRunningConsumer(consumer) { consumer in
                let messages = try await receiveMessages(10, from: consumer)
                func committed() async throws -> Int64? {
                    try await consumer.committedOffsets(for: [partition]).first?.offset
                }
                for index in [9, 7, 5, 1] { consumer.markProcessed(messages[index]) }
                try await consumer.commit()
                #expect(try await committed() == nil, "offset 0 is unfinished: nothing may be committed")
                consumer.markProcessed(messages[0])
                try await consumer.commit()
                #expect(try await committed() == 2, "0 and 1 finished, 2 not")
                for index in [2, 3, 4] { consumer.markProcessed(messages[index]) }
                try await consumer.commit()
                #expect(try await committed() == 6, "0-5 finished, 6 not")
                #expect(consumer.inFlightCount == 4, "6 unfinished; 7, 8, 9 behind it")
                for index in [8, 6] { consumer.markProcessed(messages[index]) }
                try await consumer.commit()
                #expect(try await committed() == 10)
                #expect(!consumer.markProcessed(messages[6]), "already finished")
            }
        }
    }

    @Test("pause stops delivery without skipping; resume continues at the first undelivered message")
    func pauseResume() async throws {
        try await TestBroker.with { broker in
            let topic = try await broker.createTopic("pause", partitions: 1)
            try await broker.produce(30, to: topic, partition: 0)
            let partition = KafkaTopicPartition(topic: topic, partition: 0)
            let consumer = try KafkaConsumer(
                configuration: broker.consumerConfiguration(group: uniqueName("g"), topics: [topic]),
                logger: testLogger("test.consumer")
            )
            try await withRunningConsumer(consumer) { consumer in
                let first = try await receiveMessages(5, from: consumer)
                #expect(first.map(\.offset) == [0, 1, 2, 3, 4])
                // The rest is already fetched and buffered; pausing takes it back.
                try await waitUntil("the rest is buffered") { consumer.bufferedMessageCount == 25 }
                #expect(consumer.inFlightCount == 5, "delivered and not finished")
                consumer.pause([partition])
                #expect(consumer.pausedPartitions == [partition])
                #expect(consumer.bufferedMessageCount == 0, "buffered messages of a paused partition are taken back")
                for message in first { consumer.markProcessed(message) }
                let whilePaused = try await nextEvent(of: consumer, within: .seconds(1))
                #expect(whilePaused == nil, "no message while paused: \(String(describing: whilePaused))")
                consumer.resume([partition])
                let rest = try await receiveMessages(25, from: consumer)
                #expect(rest.map(\.offset) == Array(5...29), "nothing skipped, nothing repeated")
                for message in rest { consumer.markProcessed(message) }
                try await consumer.commit()
                #expect(try await consumer.committedOffsets(for: [partition]).first?.offset == 30)
            }
        }
    }

    @Test(
        "a slow reader leaves messages in librdkafka instead of a growing buffer; every message arrives once, in order")
    func backpressure() async throws {
        try await TestBroker.with { broker in
            let topic = try await broker.createTopic("backpressure", partitions: 1)
            try await broker.produce(300, to: topic, partition: 0, concurrently: true)
            let consumer = try KafkaConsumer(
                configuration: broker.consumerConfiguration(
                    group: uniqueName("g"),
                    topics: [topic],
                    maxBufferedMessages: 10
                ),
                logger: testLogger("test.consumer")
            )
            try await withRunningConsumer(consumer) { consumer in
                let first = try await receiveMessages(1, from: consumer)
                try await Task.sleep(for: .milliseconds(300))
                // The buffer stops near its bound (10) instead of taking the whole partition.
                #expect(consumer.bufferedMessageCount <= 50, "\(consumer.bufferedMessageCount) messages buffered")
                #expect(consumer.inFlightCount == 1)
                let rest = try await receiveMessages(299, from: consumer)
                #expect((first + rest).map(\.offset) == Array(0..<300))
            }
        }
    }

    @Test(
        "two consumers in one group split the partitions and together receive everything",
        arguments: ["range", "cooperative-sticky"]
    )
    func groupScaleOut(assignmentStrategy: String) async throws {
        try await TestBroker.with { broker in
            let topic = try await broker.createTopic("scale", partitions: 4)
            let group = uniqueName("g")
            let count = 200
            let configuration = broker.consumerConfiguration(
                group: group,
                topics: [topic],
                commitInterval: .milliseconds(200),
                properties: ["partition.assignment.strategy": assignmentStrategy]
            )
            let a = try KafkaConsumer(configuration: configuration, logger: testLogger("test.consumer.a"))
            let b = try KafkaConsumer(configuration: configuration, logger: testLogger("test.consumer.b"))
            let received = Locked<[String: [KafkaMessage]]>([:])
            let revokedFromA = Locked<[KafkaTopicPartition]>([])
            @Sendable func receivedCount() -> Int { received.withLock { $0.values.map(\.count).reduce(0, +) } }

            try await withThrowingTaskGroup(of: Void.self) { readers in
                func startReader(_ name: String, _ consumer: KafkaConsumer) {
                    readers.addTask {
                        for try await event in consumer.events {
                            switch event {
                            case .message(let message):
                                consumer.markProcessed(message)
                                received.withLock { $0[name, default: []].append(message) }
                            case .partitionsRevoked(let partitions) where name == "a":
                                revokedFromA.withLock { $0 += partitions }
                            default:
                                break
                            }
                        }
                    }
                }
                try await withRunningConsumer(a) { a in
                    // One replica owns everything and processes the first half.
                    startReader("a", a)
                    try await waitUntil("the first consumer owns all partitions") { a.assignment.count == 4 }
                    try await broker.produce(count / 2, to: topic, prefix: "first", concurrently: true)
                    try await waitUntil("first half received") { receivedCount() >= count / 2 }

                    // A second replica joins: the group rebalances to two partitions each.
                    try await withRunningConsumer(b) { b in
                        startReader("b", b)
                        try await waitUntil("both consumers own two partitions") {
                            a.assignment.count == 2 && b.assignment.count == 2
                        }
                        #expect(Set(a.assignment).isDisjoint(with: b.assignment))
                        #expect(!revokedFromA.withLock { $0 }.isEmpty, "the first consumer gave partitions up")
                        try await broker.produce(count / 2, to: topic, prefix: "second", concurrently: true)
                        try await waitUntil("all messages received") { receivedCount() >= count }
                        // Nothing more arrives: no duplicates after the rebalance.
                        try await Task.sleep(for: .milliseconds(300))

                        let all = received.withLock { $0 }
                        let values = all.values.flatMap { $0.map(\.valueText) }
                        #expect(values.count == count, "no duplicates")
                        let expected = (0..<count / 2).flatMap { ["first-\($0)", "second-\($0)"] }
                        #expect(Set(values) == Set(expected))
                        let second = all.mapValues { $0.filter { $0.valueText.hasPrefix("second-") } }
                        for (name, consumer) in [("a", a), ("b", b)] {
                            let mine = second[name] ?? []
                            #expect(!mine.isEmpty, "consumer \(name) received a share after the rebalance")
                            #expect(Set(mine.map(\.topicPartition)).isSubset(of: consumer.assignment))
                        }
                    }
                }
                readers.cancelAll()
            }
        }
    }

    @Test("on revoke, processed offsets are committed and unfinished work no longer counts")
    func revokeCommitsProcessed() async throws {
        try await TestBroker.with { broker in
            let topic = try await broker.createTopic("revoke", partitions: 2)
            try await broker.produce(5, to: topic, partition: 0)
            try await broker.produce(5, to: topic, prefix: "p1", partition: 1)
            let group = uniqueName("g")
            // No background commits: only the revoke may commit.
            let configuration = broker.consumerConfiguration(group: group, topics: [topic])
            let a = try KafkaConsumer(configuration: configuration, logger: testLogger("test.consumer.a"))
            let partitions = [0, 1].map { KafkaTopicPartition(topic: topic, partition: Int32($0)) }

            try await withRunningConsumer(a) { a in
                let messages = try await receiveMessages(10, from: a)
                // Everything but the last message of each partition is processed.
                let unfinished = partitions.compactMap { partition in
                    messages.last { $0.topicPartition == partition }
                }
                for message in messages where !unfinished.contains(where: { $0.receipt == message.receipt }) {
                    a.markProcessed(message)
                }
                let b = try KafkaConsumer(configuration: configuration, logger: testLogger("test.consumer.b"))
                try await withRunningConsumer(b) { b in
                    let revoked = try await withTimeout(.seconds(30), "revoke event") {
                        for try await event in a.events {
                            if case .partitionsRevoked(let revoked) = event { return revoked }
                        }
                        return []
                    }
                    #expect(!revoked.isEmpty)
                    let committed = try await a.committedOffsets(for: partitions)
                    for partition in revoked {
                        #expect(
                            committed.first { $0.topicPartition == partition }?.offset == 4,
                            "\(partition): offsets 0-3 processed, 4 in flight"
                        )
                    }
                    for message in unfinished where revoked.contains(message.topicPartition) {
                        #expect(!a.markProcessed(message), "a receipt from before the revoke no longer counts")
                    }
                    // The unfinished message of a revoked partition is delivered again to whoever owns it now.
                    try await waitUntil("assignment settles") { a.assignment.count + b.assignment.count == 2 }
                    let redelivered = try await receiveMessages(
                        revoked.filter { b.assignment.contains($0) }.count,
                        from: b
                    )
                    #expect(redelivered.allSatisfy { $0.offset == 4 })
                }
            }
        }
    }

    @Test("transactional produce with consumer offsets commits both; an aborted transaction commits no offsets")
    func transactions() async throws {
        try await TestBroker.with { broker in
            let input = try await broker.createTopic("tx-in", partitions: 1)
            let output = try await broker.createTopic("tx-out", partitions: 1)
            try await broker.produce(5, to: input, partition: 0)
            let group = uniqueName("g")
            let partition = KafkaTopicPartition(topic: input, partition: 0)
            let consumer = try KafkaConsumer(
                configuration: broker.consumerConfiguration(group: group, topics: [input], commitOnRevoke: false),
                logger: testLogger("test.consumer")
            )
            let producer = try broker.producer(transactionalID: uniqueName("tx"))
            try await producer.initTransactions(timeout: .seconds(20))

            try await withRunningConsumer(consumer) { consumer in
                let messages = try await receiveMessages(5, from: consumer)
                try producer.beginTransaction()
                for message in messages {
                    _ = try await producer.produce(
                        topic: output,
                        key: message.key,
                        value: Array("out-\(message.valueText)".utf8),
                        headers: [KafkaHeader(name: "source-offset", text: String(message.offset))]
                    )
                    consumer.markProcessed(message)
                }
                let offsets = consumer.uncommittedOffsets()
                #expect(offsets == [KafkaTopicPartitionOffset(partition, offset: 5)])
                try await producer.sendOffsetsToTransaction(offsets, consumer: consumer)
                try await producer.commitTransaction()
                consumer.markCommitted(offsets)
                #expect(consumer.uncommittedOffsets().isEmpty)
                #expect(try await consumer.committedOffsets(for: [partition]) == offsets)

                // Aborted: the offsets sent in it are not committed.
                try await broker.produce(2, to: input, prefix: "second", partition: 0)
                let more = try await receiveMessages(2, from: consumer)
                try producer.beginTransaction()
                _ = try await producer.produce(topic: output, value: Array("discarded".utf8))
                for message in more { consumer.markProcessed(message) }
                try await producer.sendOffsetsToTransaction(consumer.uncommittedOffsets(), consumer: consumer)
                try await producer.abortTransaction()
                #expect(try await consumer.committedOffsets(for: [partition]) == offsets)
            }
            await producer.shutdown()

            let reader = try KafkaConsumer(
                configuration: broker.consumerConfiguration(group: uniqueName("g"), topics: [output]),
                logger: testLogger("test.consumer")
            )
            let outputs = try await withRunningConsumer(reader) { try await receiveMessages(5, from: $0) }
            #expect(outputs.map(\.valueText) == (0..<5).map { "out-message-\($0)" })
            #expect(outputs.map { $0.headers.first?.text } == (0..<5).map { String($0) })
        }
    }

    @Test("transactional calls on a non-transactional producer fail with librdkafka's classification")
    func transactionMisuse() async throws {
        try await TestBroker.with { broker in
            let producer = try broker.producer()
            do {
                try producer.beginTransaction()
                Issue.record("beginTransaction must fail without a transactionalID")
            } catch let error as KafkaError {
                #expect(error.kind == .transaction)
                #expect(!error.isRetriable)
                #expect(error.message.contains("begin transaction"))
            }
            await producer.shutdown()
        }
    }

    @Test("after shutdown, produce fails with a clear error")
    func produceAfterShutdown() async throws {
        try await TestBroker.with { broker in
            let topic = try await broker.createTopic("closed", partitions: 1)
            let producer = try broker.producer()
            _ = try await producer.produce(topic: topic, value: Array("before".utf8))
            await producer.shutdown()
            await producer.shutdown()  // idempotent
            do {
                _ = try await producer.produce(topic: topic, value: Array("after".utf8))
                Issue.record("produce after shutdown must fail")
            } catch let error as KafkaError {
                #expect(error.kind == .closed)
            }
        }
    }

    @Test("an unreachable broker gives a clear connection error and a failed delivery")
    func unreachableBroker() async throws {
        // Port 1 on loopback: nothing listens there, connections are refused at once.
        let cluster = KafkaClientConfiguration(brokers: ["127.0.0.1:1"])
        let admin = try KafkaAdminClient(configuration: cluster, logger: testLogger("test.admin"))
        do {
            try await admin.checkConnectivity(timeout: .seconds(2))
            Issue.record("connectivity check must fail")
        } catch {
            #expect(error.kind == .connection)
            #expect(error.message.contains("127.0.0.1:1"), "\(error)")
            #expect(
                error.message.contains("Connection refused") || error.message.contains("last broker error"), "\(error)")
        }
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(cluster: cluster, deliveryTimeout: .seconds(1)),
            logger: testLogger("test.producer")
        )
        do {
            _ = try await producer.produce(topic: "nowhere", value: Array("x".utf8))
            Issue.record("delivery must fail")
        } catch {
            #expect(error.kind == .delivery)
            #expect(error.code == .messageTimedOut, "\(error)")
            #expect(error.isRetriable)
        }
        await producer.shutdown()
    }

    @Test("shutdown flushes for a bounded time, then fails unacknowledged messages as closed")
    func shutdownFailsOutstanding() async throws {
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(
                cluster: KafkaClientConfiguration(brokers: ["127.0.0.1:1"]),
                deliveryTimeout: .seconds(60),
                shutdownFlushTimeout: .milliseconds(300)
            ),
            logger: testLogger("test.producer")
        )
        let pending = Task { () -> KafkaError? in
            do {
                _ = try await producer.produce(topic: "nowhere", value: Array("x".utf8))
                return nil
            } catch {
                return error as? KafkaError
            }
        }
        try await waitUntil("the message is outstanding") { producer.outstandingCount == 1 }
        await producer.shutdown()
        let error = await pending.value
        #expect(error?.kind == .closed, "\(String(describing: error))")
        #expect(producer.outstandingCount == 0)
    }

    @Test("the consumer runs as a swift-service-lifecycle service and leaves on graceful shutdown")
    func serviceLifecycle() async throws {
        try await TestBroker.with { broker in
            let topic = try await broker.createTopic("service", partitions: 1)
            try await broker.produce(3, to: topic, partition: 0)
            let group = uniqueName("g")
            let consumer = try KafkaConsumer(
                configuration: broker.consumerConfiguration(
                    group: group,
                    topics: [topic],
                    shutdownDrainTimeout: .seconds(5)
                ),
                logger: testLogger("test.consumer")
            )
            let producer = try broker.producer()
            try await runAsServices([producer, consumer]) { shutdown in
                let messages = try await receiveMessages(3, from: consumer)
                // Shutdown waits for the in-flight messages; they finish while it drains.
                shutdown()
                try await Task.sleep(for: .milliseconds(200))
                for message in messages { consumer.markProcessed(message) }
            }
            // The drained messages were committed on the way out.
            let check = try KafkaConsumer(
                configuration: broker.consumerConfiguration(group: group, topics: [topic]),
                logger: testLogger("test.consumer")
            )
            let partition = KafkaTopicPartition(topic: topic, partition: 0)
            let committed = try await withRunningConsumer(check) { try await $0.committedOffsets(for: [partition]) }
            #expect(committed == [KafkaTopicPartitionOffset(partition, offset: 3)])
            do {
                _ = try await producer.produce(topic: topic, value: [1])
                Issue.record("the producer service shut down with the group")
            } catch let error as KafkaError {
                #expect(error.kind == .closed)
            }
        }
    }
}
