import Testing

@testable import FisoKafka

@Suite("Kafka configuration")
struct ConfigurationTests {
    let cluster = KafkaClientConfiguration(brokers: ["127.0.0.1:9092"])

    private func configurationError(_ body: () throws -> Void) -> KafkaError? {
        do {
            try body()
            return nil
        } catch let error as KafkaError {
            return error
        } catch {
            Issue.record("expected a KafkaError, got \(error)")
            return nil
        }
    }

    @Test("valid configurations pass librdkafka's checks, including passed-through properties")
    func valid() throws {
        var tuned = cluster
        tuned.properties = [
            "socket.keepalive.enable": "true", "security.protocol": "plaintext", "fetch.wait.max.ms": "50",
        ]
        try tuned.validate()
        try KafkaConsumerConfiguration(cluster: tuned, groupID: "g", topics: ["a", "b.c_d-1"]).validate()
        try KafkaProducerConfiguration(cluster: tuned, transactionalID: "tx-1").validate()
        try KafkaProducerConfiguration(cluster: tuned, acks: .leader, idempotent: false).validate()
    }

    @Test("an unknown property fails with librdkafka's own text")
    func unknownProperty() {
        var cluster = self.cluster
        cluster.properties = ["no.such.property": "1"]
        let error = configurationError { try cluster.validate() }
        #expect(error?.kind == .configuration)
        #expect(error?.property == "no.such.property")
        #expect(error?.message.contains("No such configuration property") == true, "\(String(describing: error))")
    }

    @Test("an invalid value fails with librdkafka's own text; secrets are not echoed")
    func invalidValue() {
        var cluster = self.cluster
        cluster.properties = ["socket.timeout.ms": "soon"]
        let error = configurationError { try cluster.validate() }
        #expect(error?.property == "socket.timeout.ms")
        #expect(error?.message.contains("'soon'") == true)
        #expect(error?.message.contains("Invalid value") == true, "\(String(describing: error))")

        cluster.properties = ["security.protocol": "carrier-pigeon"]
        let protocolError = configurationError { try cluster.validate() }
        #expect(protocolError?.message.contains("carrier-pigeon") == true)

        #expect(RdKafkaConfigurationBuilder.isSensitive("sasl.password"))
        #expect(RdKafkaConfigurationBuilder.isSensitive("ssl.key.password"))
        #expect(RdKafkaConfigurationBuilder.isSensitive("sasl.oauthbearer.config"))
        #expect(!RdKafkaConfigurationBuilder.isSensitive("security.protocol"))
    }

    @Test("properties controlled by typed settings are rejected with the setting's name")
    func reserved() {
        for (key, setting) in [
            ("bootstrap.servers", "brokers"), ("enable.auto.commit", "always false"), ("group.id", "groupID"),
            ("auto.offset.reset", "startOffset"), ("session.timeout.ms", "sessionTimeout"),
        ] {
            var cluster = self.cluster
            cluster.properties = [key: "x"]
            let error = configurationError {
                try KafkaConsumerConfiguration(cluster: cluster, groupID: "g", topics: ["t"]).validate()
            }
            #expect(error?.property == key)
            #expect(error?.message.contains(setting) == true, "\(String(describing: error))")
        }
        for key in ["acks", "enable.idempotence", "transactional.id", "message.timeout.ms", "linger.ms"] {
            var cluster = self.cluster
            cluster.properties = [key: "1"]
            let error = configurationError { try KafkaProducerConfiguration(cluster: cluster).validate() }
            #expect(error?.property == key)
        }
    }

    @Test("typed settings are checked before connecting")
    func typedSettings() {
        let cluster = KafkaClientConfiguration(brokers: ["a:1"])
        let cases: [(String, () throws -> Void)] = [
            ("no brokers", { try KafkaClientConfiguration(brokers: []).validate() }),
            ("broker without port", { try KafkaClientConfiguration(brokers: ["kafka-0"]).validate() }),
            ("broker port out of range", { try KafkaClientConfiguration(brokers: ["h:70000"]).validate() }),
            ("brokers joined by comma", { try KafkaClientConfiguration(brokers: ["a:1,b:2"]).validate() }),
            ("empty client id", { try KafkaClientConfiguration(brokers: ["a:1"], clientID: "").validate() }),
            (
                "empty group",
                {
                    try KafkaConsumerConfiguration(cluster: cluster, groupID: "", topics: ["t"]).validate()
                }
            ),
            (
                "no topics",
                {
                    try KafkaConsumerConfiguration(cluster: cluster, groupID: "g", topics: []).validate()
                }
            ),
            (
                "invalid topic name",
                {
                    try KafkaConsumerConfiguration(cluster: cluster, groupID: "g", topics: ["a b"]).validate()
                }
            ),
            (
                "negative start offset",
                {
                    try KafkaConsumerConfiguration(
                        cluster: cluster, groupID: "g", topics: ["t"], startOffset: .offset(-3)
                    ).validate()
                }
            ),
            (
                "zero session timeout",
                {
                    try KafkaConsumerConfiguration(
                        cluster: cluster, groupID: "g", topics: ["t"], sessionTimeout: .zero
                    ).validate()
                }
            ),
            (
                "zero buffer",
                {
                    try KafkaConsumerConfiguration(
                        cluster: cluster, groupID: "g", topics: ["t"], maxBufferedMessages: 0
                    ).validate()
                }
            ),
            (
                "idempotence without acks=all",
                {
                    try KafkaProducerConfiguration(cluster: cluster, acks: .leader).validate()
                }
            ),
            (
                "transactions without idempotence",
                {
                    try KafkaProducerConfiguration(
                        cluster: cluster, acks: .all, idempotent: false, transactionalID: "t"
                    ).validate()
                }
            ),
            (
                "empty transactional id",
                {
                    try KafkaProducerConfiguration(cluster: cluster, transactionalID: "").validate()
                }
            ),
        ]
        for (name, check) in cases {
            let error = configurationError(check)
            #expect(error != nil, "\(name) must be rejected")
            #expect(error?.message.isEmpty == false)
        }
    }

    @Test("startOffset and acks parse from configuration text")
    func parsing() throws {
        #expect(try KafkaStartOffset(parsing: "earliest") == .earliest)
        #expect(try KafkaStartOffset(parsing: "latest") == .latest)
        #expect(try KafkaStartOffset(parsing: "42") == .offset(42))
        #expect(try KafkaStartOffset(parsing: "0") == .offset(0))
        for bad in ["-1", "soon", "", "4.5"] {
            #expect(throws: KafkaError.self) { try KafkaStartOffset(parsing: bad) }
        }
        #expect(try KafkaAcks(parsing: "all") == .all)
        #expect(try KafkaAcks(parsing: "-1") == .all)
        #expect(try KafkaAcks(parsing: "1") == .leader)
        #expect(try KafkaAcks(parsing: "0") == .none)
        #expect(throws: KafkaError.self) { try KafkaAcks(parsing: "2") }
    }

    @Test("client creation reports librdkafka's cross-property errors")
    func creationErrors() {
        var cluster = self.cluster
        // Valid on its own, rejected by rd_kafka_new for an idempotent producer.
        cluster.properties = ["max.in.flight.requests.per.connection": "10"]
        let error = configurationError {
            _ = try KafkaProducer(configuration: KafkaProducerConfiguration(cluster: cluster), logger: testLogger("t"))
        }
        #expect(error?.kind == .configuration)
        #expect(error?.message.contains("max.in.flight") == true, "\(String(describing: error))")
    }

    @Test("milliseconds conversion clamps to librdkafka's range")
    func milliseconds() {
        #expect(FisoKafka.milliseconds(.seconds(2)) == 2000)
        #expect(FisoKafka.milliseconds(.microseconds(1500)) == 1)
        #expect(FisoKafka.milliseconds(.seconds(Int64.max / 2)) == Int(Int32.max))
        #expect(FisoKafka.milliseconds(.seconds(-1)) == 0)
    }

    @Test("the event queue removes messages of given partitions and reports the lowest offsets")
    func eventQueue() {
        var queue = EventQueue()
        let p0 = KafkaTopicPartition(topic: "t", partition: 0)
        func message(_ partition: Int32, _ offset: Int64) -> KafkaConsumerEvent {
            .message(
                KafkaMessage(
                    topic: "t", partition: partition, offset: offset, key: nil, value: nil, headers: [], timestamp: nil)
            )
        }
        queue.append(.partitionsAssigned([p0]))
        queue.append(message(0, 5))
        queue.append(message(1, 9))
        queue.append(message(0, 6))
        #expect(queue.messageCount == 3)
        #expect(queue.removeMessages(of: [p0]) == [p0: 5])
        #expect(queue.messageCount == 1)
        guard case .partitionsAssigned = queue.popFirst() else {
            Issue.record("rebalance events stay in order")
            return
        }
        guard case .message(let remaining) = queue.popFirst() else {
            Issue.record("the other partition's message stays")
            return
        }
        #expect(remaining.partition == 1)
        if queue.popFirst() != nil { Issue.record("the queue is empty") }
        #expect(queue.isEmpty)
    }
}
