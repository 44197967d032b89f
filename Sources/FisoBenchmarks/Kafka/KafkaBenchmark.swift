import ArgumentParser
import CRdKafka
import FisoFlow
import FisoJSON
import FisoKafka
import FisoKafkaTesting
import Foundation
import Logging
import NIOConcurrencyHelpers
import Prometheus

/// Kafka → (6-field CEL transform) → Kafka through the fiso-flow runtime, against a raw librdkafka
/// consume-and-produce loop on the same broker with the same client settings (the baseline).
struct KafkaBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kafka",
        abstract: "Kafka → CEL → Kafka flow throughput against a raw librdkafka consume-and-produce loop.",
        discussion: """
            Starts a memory-only tansu broker on a free port (or uses --brokers), fills an input topic with \
            --events JSON records (key and one header each), then copies them to a fresh output topic, \
            alternating: (1) a raw loop that polls a librdkafka consumer and produces every record with \
            rd_kafka_produceva (headers and key passed on, offsets committed asynchronously every 1000 records), \
            run twice: without a bound on unacknowledged records (the baseline) and with at most --max-in-flight × \
            --partitions, as the flow; (2) the fiso-flow runtime in this process with a kafka source, a 6-field CEL transform \
            and a kafka sink (CloudEvents JSON records, key from CEL, default commit policy sink_or_dlq). Both \
            use a new consumer group with startOffset earliest, acks=all, an idempotent producer and \
            linger.ms=5. The rate of a run is its record count divided by the time from the first output record's \
            producer timestamp to the moment the last record was acknowledged (the raw loop's delivery \
            callback; the flow's events_total metric reaching the count), so group joins and start-up are not \
            counted; every run is checked to have written each record. The best round of each is reported. The \
            headline baseline is the raw loop without an in-flight bound (the machine's limit); the loop bounded \
            like the flow is reported beside it. Needs the librdkafka of \
            scripts/kafka/setup.sh: run through scripts/kafka/run.sh.
            """
    )

    @Option(help: "Records in the input topic (each run copies all of them).") var events: Int = 100_000
    @Option(help: "Partitions of the input and output topics.") var partitions: Int32 = 4
    @Option(help: "Rounds per contender.") var rounds: Int = 2
    @Option(
        help:
            "The flow's maxInFlight per partition; the baseline keeps at most this times --partitions records unacknowledged."
    )
    var maxInFlight: Int = 64
    @Option(help: "host:port of a running Kafka-protocol broker instead of a local tansu.") var brokers: String?

    func run() async throws {
        if let brokers {
            try await measure(address: brokers)
        } else {
            let broker = try await LocalKafkaBroker.start()
            do {
                try await measure(address: broker.address)
            } catch {
                await broker.stop()
                throw error
            }
            await broker.stop()
        }
    }

    private func measure(address: String) async throws {
        let bench = KafkaBenchEnvironment(address: address, partitions: partitions)
        let input = try await bench.createTopic("bench-in")
        print("filling \(input) with \(events) records (\(partitions) partitions) on \(address)")
        try await bench.fill(input, count: events)

        var best: [String: Double] = [:]
        for round in 1...max(1, rounds) {
            let rawOutput = try await bench.createTopic("bench-raw-out")
            let rawGroup = "bench-raw-\(UUID().uuidString.prefix(8))"
            let cap = maxInFlight * Int(partitions)
            let rawEnd = try await Task.detached { [events] in
                try RawLibrdkafkaLoop.run(
                    brokers: address, input: input, output: rawOutput, group: rawGroup, count: events,
                    maxUnacknowledged: cap
                )
            }.value
            let raw = try await bench.rate(of: rawOutput, count: events, finishedAt: rawEnd)

            let unboundedOutput = try await bench.createTopic("bench-raw-unbounded-out")
            let unboundedGroup = "bench-raw-\(UUID().uuidString.prefix(8))"
            let unboundedEnd = try await Task.detached { [events] in
                try RawLibrdkafkaLoop.run(
                    brokers: address, input: input, output: unboundedOutput, group: unboundedGroup, count: events,
                    maxUnacknowledged: nil
                )
            }.value
            let unbounded = try await bench.rate(of: unboundedOutput, count: events, finishedAt: unboundedEnd)

            let flowOutput = try await bench.createTopic("bench-flow-out")
            let flowEnd = try await bench.runFlow(
                input: input, output: flowOutput, count: events, maxInFlight: maxInFlight
            )
            let flowRate = try await bench.rate(of: flowOutput, count: events, finishedAt: flowEnd)
            print(
                "round \(round): raw librdkafka loop \(Int(raw)) records/s; fiso-flow kafka→cel→kafka \(Int(flowRate)) "
                    + "records/s; raw loop without an in-flight bound \(Int(unbounded)) records/s"
            )
            best["unbounded"] = max(best["unbounded"] ?? 0, unbounded)
            best["raw"] = max(best["raw"] ?? 0, raw)
            best["flow"] = max(best["flow"] ?? 0, flowRate)
        }
        let raw = best["raw"] ?? 0
        let flow = best["flow"] ?? 0
        let unbounded = best["unbounded"] ?? 0
        func ratio(_ value: Double, _ base: Double) -> String { String(format: "%.3f", base > 0 ? value / base : 0) }
        // The headline compares with the raw loop at its best (no in-flight bound): what the machine
        // and broker can do. The bounded loop shows how much of the gap the bound itself explains.
        print("")
        print("contender                              records/s   vs baseline")
        print("raw librdkafka loop (baseline)      \(pad(Int(unbounded), 12))        1.000")
        print("fiso-flow kafka→cel→kafka           \(pad(Int(flow), 12))        \(ratio(flow, unbounded))")
        print("raw loop, bounded like the flow     \(pad(Int(raw), 12))        \(ratio(raw, unbounded))")
        print("throughput ratio (flow / raw loop): \(ratio(flow, unbounded))  (goal ≥ 0.35)")
        print(
            "baseline_records_per_s=\(Int(unbounded)) flow_records_per_s=\(Int(flow)) ratio=\(ratio(flow, unbounded)) goal=0.35 "
                + "bounded_raw_records_per_s=\(Int(raw)) ratio_to_bounded=\(ratio(flow, raw))"
        )
    }

    private func pad(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return String(repeating: " ", count: max(0, width - text.count)) + text
    }
}

/// The broker side of the benchmark: topics, input records, the flow, and the output check.
struct KafkaBenchEnvironment: Sendable {
    let address: String
    let partitions: Int32

    static let sessionTimeoutMilliseconds = 2000

    var cluster: KafkaClientConfiguration { KafkaClientConfiguration(brokers: [address], clientID: "fiso-bench") }

    var logger: Logger {
        var logger = Logger(label: "fiso-bench-kafka")
        logger.logLevel = .error
        return logger
    }

    func createTopic(_ prefix: String) async throws -> String {
        let name = "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
        let admin = try KafkaAdminClient(configuration: cluster, logger: logger)
        try await admin.createTopic(name, partitions: partitions, replicationFactor: 1)
        return name
    }

    /// Produces `count` JSON records of about 200 bytes, each with a key and one header.
    func fill(_ topic: String, count: Int) async throws {
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(cluster: cluster, deliveryTimeout: .seconds(60)), logger: logger
        )
        let chunk = 5000
        var start = 0
        while start < count {
            let records = (start..<min(count, start + chunk)).map { index -> KafkaProducerRecord in
                let value: JSONValue = [
                    "id": .int(Int64(index)), "customer": .string("customer-\(index % 1000)"),
                    "amount": .int(Int64(index % 10_000)), "currency": "EUR",
                    "items": [["sku": "A-1", "qty": 2], ["sku": "B-7", "qty": 1]], "note": "benchmark order record",
                ]
                return KafkaProducerRecord(
                    topic: topic, key: Array("customer-\(index % 1000)".utf8), value: value.serialized(),
                    headers: [KafkaHeader(name: "x-tenant", text: "acme")]
                )
            }
            for result in await producer.produce(batch: records) { _ = try result.get() }
            start += chunk
        }
        await producer.shutdown()
    }

    /// Reads `topic` until `count` records arrived; records per second from the first record's
    /// producer timestamp to `finishedAt` (milliseconds since 1970).
    func rate(of topic: String, count: Int, finishedAt: Int64, timeout: Duration = .seconds(300)) async throws -> Double
    {
        var clusterWithSession = cluster
        clusterWithSession.properties = ["heartbeat.interval.ms": "300"]
        let configuration = KafkaConsumerConfiguration(
            cluster: clusterWithSession, groupID: "bench-check-\(UUID().uuidString.prefix(8))", topics: [topic],
            startOffset: .earliest, sessionTimeout: .milliseconds(Self.sessionTimeoutMilliseconds), commitInterval: nil,
            commitOnRevoke: false, maxBufferedMessages: 20_000, shutdownDrainTimeout: .zero
        )
        let consumer = try KafkaConsumer(configuration: configuration, logger: logger)
        let span = NIOLockedValueBox<(count: Int, first: Int64)>((0, .max))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await consumer.run() }
            group.addTask {
                var iterator = consumer.events.makeAsyncIterator()
                while true {
                    let batch = try await iterator.nextBatch(maxCount: 2000)
                    if batch.isEmpty { return }
                    span.withLockedValue { span in
                        for case .message(let message) in batch {
                            span.count += 1
                            span.first = min(span.first, message.timestamp?.milliseconds ?? .max)
                        }
                    }
                }
            }
            let deadline = ContinuousClock.now + timeout
            while span.withLockedValue({ $0.count }) < count, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            consumer.triggerShutdown()
            try await group.waitForAll()
        }
        let (received, first) = span.withLockedValue { ($0.count, $0.first) }
        guard received >= count else {
            throw ValidationError("only \(received) of \(count) records arrived in \(topic)")
        }
        return Double(count) / (Double(max(1, finishedAt - first)) / 1000)
    }

    /// Runs the fiso-flow runtime with the Kafka → 6-field CEL → Kafka flow until it delivered
    /// `count` events; returns when that happened (milliseconds since 1970).
    func runFlow(input: String, output: String, count: Int, maxInFlight: Int) async throws -> Int64 {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fiso-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try Self.flowFile(address: address, input: input, output: output, maxInFlight: maxInFlight).write(
            to: directory.appendingPathComponent("bench.yaml"), atomically: true, encoding: .utf8
        )
        let registry = PrometheusCollectorRegistry()
        let server = FisoFlowServer(
            configuration: RuntimeConfiguration(
                configDirectory: directory.path, kafkaConfigPath: "/nonexistent",
                metricsAddress: ListenAddress(host: "127.0.0.1", port: 0)
            ),
            metricsRegistry: registry, logger: logger
        )
        let sample = Array(#"fiso_flow_events_total{flow="kafka-bench",status="success"} "#.utf8)
        return try await withThrowingTaskGroup(of: Int64?.self) { group in
            group.addTask {
                try await server.run()
                return nil
            }
            let deadline = ContinuousClock.now + .seconds(600)
            var buffer: [UInt8] = []
            var finished: Int64?
            while ContinuousClock.now < deadline {
                buffer.removeAll(keepingCapacity: true)
                registry.emit(into: &buffer)
                if let value = Self.metric(sample, in: buffer), value >= Double(count) {
                    finished = Int64(Date().timeIntervalSince1970 * 1000)
                    break
                }
                try await Task.sleep(for: .milliseconds(5))
            }
            await server.shutdown()
            try await group.waitForAll()
            guard let finished else { throw ValidationError("the flow did not deliver \(count) events in time") }
            return finished
        }
    }

    /// The value of the sample line starting with `prefix` in Prometheus text.
    static func metric(_ prefix: [UInt8], in text: [UInt8]) -> Double? {
        guard let start = text.firstRange(of: prefix)?.upperBound else { return nil }
        let end = text[start...].firstIndex(of: UInt8(ascii: "\n")) ?? text.endIndex
        return Double(String(decoding: text[start..<end], as: UTF8.self))
    }

    static func flowFile(address: String, input: String, output: String, maxInFlight: Int) -> String {
        """
        name: kafka-bench
        source:
          type: kafka
          config:
            cluster: bench
            topic: \(input)
            consumerGroup: bench-flow-\(UUID().uuidString.prefix(8))
            startOffset: earliest
            maxInFlight: \(maxInFlight)
        transform:
          fields:
            id: data.id
            customer: data.customer
            cents: data.amount * 100
            currency: data.currency
            items: size(data.items)
            partition: kafka.partition
        sink:
          type: kafka
          config:
            cluster: bench
            topic: \(output)
            key: kafka.key
        kafka:
          clusters:
            bench:
              brokers: ["\(address)"]
              config:
                session.timeout.ms: "\(sessionTimeoutMilliseconds)"
                heartbeat.interval.ms: "300"
        """
    }
}

/// The baseline: one thread polls a librdkafka consumer and produces each record to the output topic
/// (same key, value and headers) with a librdkafka producer, until every record was acknowledged.
enum RawLibrdkafkaLoop {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Delivery counts, updated by librdkafka's delivery callback on the polling thread.
    struct Deliveries {
        var succeeded = 0
        var failed = 0
    }

    /// Returns when the last record was acknowledged (milliseconds since 1970).
    static func run(
        brokers: String, input: String, output: String, group: String, count: Int, maxUnacknowledged: Int?
    ) throws -> Int64 {
        let consumer = try makeClient(
            RD_KAFKA_CONSUMER,
            [
                "bootstrap.servers": brokers, "group.id": group, "enable.auto.commit": "false",
                "enable.auto.offset.store": "false", "auto.offset.reset": "earliest",
                "session.timeout.ms": String(KafkaBenchEnvironment.sessionTimeoutMilliseconds),
                "heartbeat.interval.ms": "300", "client.id": "fiso-bench-raw",
            ],
            deliveries: nil
        )
        defer { rd_kafka_destroy(consumer) }
        let deliveries = UnsafeMutablePointer<Deliveries>.allocate(capacity: 1)
        deliveries.initialize(to: Deliveries())
        defer { deliveries.deallocate() }
        let producer = try makeClient(
            RD_KAFKA_PRODUCER,
            [
                "bootstrap.servers": brokers, "acks": "all", "enable.idempotence": "true", "linger.ms": "5",
                "message.timeout.ms": "30000", "client.id": "fiso-bench-raw",
            ],
            deliveries: deliveries
        )
        defer { rd_kafka_destroy(producer) }
        rd_kafka_poll_set_consumer(consumer)

        let topics = rd_kafka_topic_partition_list_new(1)
        defer { rd_kafka_topic_partition_list_destroy(topics) }
        rd_kafka_topic_partition_list_add(topics, input, -1)
        let subscribed = rd_kafka_subscribe(consumer, topics)
        guard subscribed == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw Failure(description: "subscribe failed: \(String(cString: rd_kafka_err2str(subscribed)))")
        }
        var consumed = 0
        let deadline = ContinuousClock.now + .seconds(600)
        while deliveries.pointee.succeeded < count {
            guard ContinuousClock.now < deadline else { throw Failure(description: "the raw loop timed out") }
            if deliveries.pointee.failed > 0 { throw Failure(description: "a raw produce failed") }
            let unacknowledged = consumed - deliveries.pointee.succeeded
            guard consumed < count, unacknowledged < (maxUnacknowledged ?? .max) else {
                rd_kafka_poll(producer, 1)
                continue
            }
            guard let message = rd_kafka_consumer_poll(consumer, 100) else {
                rd_kafka_poll(producer, 0)
                continue
            }
            defer { rd_kafka_message_destroy(message) }
            if message.pointee.err != RD_KAFKA_RESP_ERR_NO_ERROR { continue }
            var headers: OpaquePointer?
            _ = rd_kafka_message_detach_headers(message, &headers)
            while true {
                let error = fiso_rdk_produce(
                    producer, output, -1, message.pointee.key, message.pointee.key_len,
                    message.pointee.key != nil ? 1 : 0,
                    message.pointee.payload, message.pointee.len, message.pointee.payload != nil ? 1 : 0, headers, nil
                )
                guard let error else { break }
                let code = rd_kafka_error_code(error)
                rd_kafka_error_destroy(error)
                guard code == RD_KAFKA_RESP_ERR__QUEUE_FULL else {
                    if let headers { rd_kafka_headers_destroy(headers) }
                    throw Failure(description: "produce failed: \(String(cString: rd_kafka_err2str(code)))")
                }
                rd_kafka_poll(producer, 10)
            }
            rd_kafka_poll(producer, 0)
            consumed += 1
            if consumed % 1000 == 0 || consumed == count {
                _ = rd_kafka_commit_message(consumer, message, 1)
            }
        }
        let finished = Int64(Date().timeIntervalSince1970 * 1000)
        rd_kafka_flush(producer, 10_000)
        rd_kafka_consumer_close(consumer)
        return finished
    }

    private static func text(_ characters: [CChar]) -> String {
        String(decoding: characters.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func makeClient(
        _ type: rd_kafka_type_t, _ properties: [String: String], deliveries: UnsafeMutablePointer<Deliveries>?
    ) throws -> OpaquePointer {
        let configuration = rd_kafka_conf_new()
        var errorText = [CChar](repeating: 0, count: 512)
        for (name, value) in properties
        where rd_kafka_conf_set(configuration, name, value, &errorText, errorText.count) != RD_KAFKA_CONF_OK {
            rd_kafka_conf_destroy(configuration)
            throw Failure(description: "\(name): \(text(errorText))")
        }
        if let deliveries {
            rd_kafka_conf_set_opaque(configuration, UnsafeMutableRawPointer(deliveries))
            rd_kafka_conf_set_dr_msg_cb(configuration) { _, message, opaque in
                guard let message, let counts = opaque?.assumingMemoryBound(to: Deliveries.self) else { return }
                if message.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR {
                    counts.pointee.succeeded += 1
                } else {
                    counts.pointee.failed += 1
                }
            }
        }
        guard let client = rd_kafka_new(type, configuration, &errorText, errorText.count) else {
            rd_kafka_conf_destroy(configuration)
            throw Failure(description: "rd_kafka_new: \(text(errorText))")
        }
        return client
    }
}
