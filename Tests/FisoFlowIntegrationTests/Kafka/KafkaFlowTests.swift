import FisoFlowTestSupport
import FisoJSON
import FisoKafka
import Foundation
import NIOConcurrencyHelpers
import Testing

@testable import FisoFlow

/// Flows with Kafka sources and sinks against a real Kafka-protocol broker (tansu, one per test;
/// see FlowTestBroker). Run through `scripts/kafka/run.sh swift test --filter KafkaFlowTests`.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct KafkaFlowTests {
    @Test func kafkaToHTTPDeliversEveryRecordExactlyOnceAndCommits() async throws {
        try await FlowTestBroker.with { broker in
            let topic = try await broker.createTopic("orders", partitions: 4)
            let group = kafkaTestName("g")
            let count = 200
            try await broker.produceBatch(
                (0..<count).map {
                    numberedRecord(
                        $0, topic: topic, key: "customer-\($0 % 10)",
                        headers: [
                            KafkaHeader(name: "X-Tenant", text: "acme"),
                            KafkaHeader(name: "X-Correlation-ID", text: "corr-\($0)"),
                        ]
                    )
                }
            )
            try await withTestReceiver { receiver in
                let directory = try TemporaryDirectory()
                try directory.write(
                    "k.yaml",
                    kafkaSourceFlow(
                        name: "k2h", broker: broker, topic: topic, group: group, sink: httpSinkBlock(receiver.url)
                    )
                )
                try await withRunningServer(directory: directory.path) { server in
                    try await waitUntil("\(count) events arrived", timeout: .seconds(30)) { receiver.count >= count }
                    try await Task.sleep(for: .milliseconds(300))  // nothing more may come
                    #expect(server.metric(#"fiso_flow_events_total{flow="k2h",status="success"}"#) == Double(count))
                }
                let numbers = receiver.requests.compactMap(\.number)
                #expect(numbers.count == count, "each record delivered once")
                #expect(Set(numbers) == Set(0..<count))
                let first = try #require(receiver.requests.first { $0.number == 7 })
                #expect(first.header("X-Tenant") == "acme")
                #expect(first.header("X-Correlation-ID") == "corr-7")
                #expect(first.header("Content-Type")?.hasPrefix("application/cloudevents+json") == true)
                #expect(first.json?["source"] == "fiso-flow/k2h")
            }
            let committed = try await broker.committedOffsets(group: group, topic: topic, partitions: 4)
            #expect(committed.values.reduce(0, +) == Int64(count), "stopping commits every processed record")
        }
    }

    @Test func failedEventsGoToTheDeadLetterTopicWithFisoHeaders() async throws {
        try await FlowTestBroker.with { broker in
            let topic = try await broker.createTopic("payments", partitions: 2)
            try await broker.createTopic(named: "fiso-dlq-pay")
            let group = kafkaTestName("g")
            var records = (0..<6).map {
                numberedRecord(
                    $0, topic: topic, key: "k\($0)", headers: [KafkaHeader(name: "X-Origin", text: "shop")],
                    fields: ["amount": .int(Int64($0 * 10)), "refuse": .bool($0 == 2)]
                )
            }
            // A record the transform cannot handle, and one that is not JSON.
            records.append(numberedRecord(6, topic: topic, key: "k6", fields: ["amount": "ten", "refuse": false]))
            records.append(KafkaProducerRecord(topic: topic, key: Array("k7".utf8), value: Array("not json".utf8)))
            try await broker.produce(records)
            let refusedValue = records[2].value

            try await withTestReceiver({ _, request in
                request.json?["data"]?["refuse"] == true
                    ? .init(status: 400, body: #"{"error":"refused"}"#) : .init(status: 200)
            }) { receiver in
                let directory = try TemporaryDirectory()
                try directory.write(
                    "p.yaml",
                    kafkaSourceFlow(
                        name: "pay", broker: broker, topic: topic, group: group, sink: httpSinkBlock(receiver.url),
                        extra: """
                            transform:
                              fields:
                                n: data.n
                                refuse: data.refuse
                                cents: data.amount * 100
                            errorHandling:
                              maxRetries: 1
                              backoff: {initial: 10ms, max: 20ms}
                            """
                    )
                )
                try await withRunningServer(directory: directory.path) { server in
                    let dead = try await broker.read(3, from: "fiso-dlq-pay", settle: .milliseconds(300))
                    #expect(dead.count == 3)
                    let byCode = Dictionary(grouping: dead) { $0.header("fiso-error-code") ?? "" }
                    let refused = try #require(byCode["SINK_DELIVERY_FAILED"]?.first)
                    #expect(refused.keyText == "k2")
                    #expect(refused.value == refusedValue, "the original payload")
                    #expect(refused.header("X-Origin") == "shop")
                    #expect(refused.header("fiso-original-topic") == topic)
                    #expect(refused.header("fiso-original-partition") != nil)
                    #expect(refused.header("fiso-original-offset") != nil)
                    #expect(refused.header("fiso-flow-name") == "pay")
                    #expect(refused.header("fiso-retry-count") == "0", "a 400 is not retried")
                    #expect(refused.header("fiso-error-message")?.contains("400") == true)
                    #expect(refused.header("fiso-failed-at").flatMap(RFC3339.parse) != nil)
                    #expect(refused.header("X-Correlation-ID") != nil)

                    let transform = try #require(byCode["TRANSFORM_FAILED"]?.first)
                    #expect(transform.keyText == "k6")
                    #expect(transform.header("fiso-error-message")?.contains("cents") == true)
                    let invalid = try #require(byCode["INVALID_JSON"]?.first)
                    #expect(invalid.value == Array("not json".utf8))
                    #expect(invalid.keyText == "k7")

                    try await waitUntil("the good events arrived") { receiver.count >= 6 }
                    let delivered = Set(
                        receiver.requests.filter { $0.json?["data"]?["refuse"] == false }.compactMap(\.number))
                    #expect(delivered == [0, 1, 3, 4, 5])
                    #expect(
                        server.metric(#"fiso_flow_dead_letters_total{flow="pay",code="SINK_DELIVERY_FAILED"}"#) == 1)
                }
            }
            let committed = try await broker.committedOffsets(group: group, topic: topic, partitions: 2)
            #expect(committed.values.reduce(0, +) == 8, "dead-lettered records are committed too")
        }
    }

    @Test func sinkOrDLQRetriesWhenTheDeadLetterWriteFailsAndSkipsNothing() async throws {
        try await FlowTestBroker.with { broker in
            let topic = try await broker.createTopic("retry", partitions: 1)
            let dlq = kafkaTestName("dlq")
            let group = kafkaTestName("g")
            try await broker.produce(
                (0..<5).map { numberedRecord($0, topic: topic, fields: ["refuse": .bool($0 == 1)]) })
            try await withTestReceiver({ _, request in
                request.json?["data"]?["refuse"] == true ? .init(status: 422) : .init(status: 200)
            }) { receiver in
                let directory = try TemporaryDirectory()
                try directory.write(
                    "r.yaml",
                    kafkaSourceFlow(
                        name: "retry", broker: broker, topic: topic, group: group, sink: httpSinkBlock(receiver.url),
                        extra: "errorHandling:\n  deadLetterTopic: \(dlq)\n  backoff: {initial: 50ms, max: 200ms}",
                        // The dead-letter topic does not exist yet: writes fail after 500 ms.
                        clusterConfig: ["message.timeout.ms": "500", "allow.auto.create.topics": "false"]
                    )
                )
                try await withRunningServer(directory: directory.path) { server in
                    try await waitUntil("the refused event was tried several times") {
                        receiver.requests.filter { $0.number == 1 }.count >= 3
                    }
                    let stuck = try await broker.committedOffsets(group: group, topic: topic, partitions: 1)
                    #expect((stuck[0] ?? 0) <= 1, "nothing is committed past the event without an outcome")
                    try await broker.createTopic(named: dlq)
                    let dead = try await broker.read(1, from: dlq, timeout: .seconds(20))
                    #expect(dead.first?.valueJSON?["n"] == 1)
                    try await waitUntil("the later events arrived") {
                        Set(receiver.requests.compactMap(\.number)).isSuperset(of: [0, 2, 3, 4])
                    }
                }
                // Stopping commits what finished: everything, now that the dead letter is written.
                let committed = try await broker.committedOffsets(group: group, topic: topic, partitions: 1)
                #expect(committed[0] == 5)
            }
        }
    }

    @Test func sinkPolicyPausesRetriesAndRedeliversAfterRestartSkippingNothing() async throws {
        try await FlowTestBroker.with { broker in
            let topic = try await broker.createTopic("strict", partitions: 1)
            let group = kafkaTestName("g")
            let count = 10
            try await broker.produce((0..<count).map { numberedRecord($0, topic: topic) })
            let sinkWorks = NIOLockedValueBox(false)
            try await withTestReceiver({ _, request in
                sinkWorks.withLockedValue { $0 } || request.number != 3 ? .init(status: 200) : .init(status: 503)
            }) { receiver in
                let directory = try TemporaryDirectory()
                try directory.write(
                    "s.yaml",
                    kafkaSourceFlow(
                        name: "strict", broker: broker, topic: topic, group: group, sink: httpSinkBlock(receiver.url),
                        extra:
                            "errorHandling:\n  commitPolicy: sink\n  maxRetries: 0\n  backoff: {initial: 20ms, max: 100ms}"
                    )
                )
                try await withRunningServer(directory: directory.path) { _ in
                    try await waitUntil("event 3 was retried") {
                        receiver.requests.filter { $0.number == 3 }.count >= 3
                    }
                }
                let afterFirstRun = try await broker.committedOffsets(group: group, topic: topic, partitions: 1)
                #expect(afterFirstRun[0] == 3, "committed up to the failing event, not past it")

                sinkWorks.withLockedValue { $0 = true }
                let before = receiver.count
                try await withRunningServer(directory: directory.path) { _ in
                    try await waitUntil("events 3 to 9 were delivered after the restart") {
                        Set(receiver.requests.dropFirst(before).compactMap(\.number)) == Set(3..<count)
                    }
                    // (A rebalance may hand records out again before the commit; they then come twice.)
                    try await waitUntil("the offsets are committed") {
                        try await Task.sleep(for: .milliseconds(200))
                        return try await broker.committedOffsets(group: group, topic: topic, partitions: 1)[0]
                            == Int64(count)
                    }
                }
                let redelivered = receiver.requests.dropFirst(before).compactMap(\.number)
                #expect(redelivered.min() == 3, "the restart resumes at the committed offset")
                #expect(Set(redelivered) == Set(3..<count))
            }
        }
    }

    @Test func aRestartResumesAtTheCommittedOffsets() async throws {
        try await FlowTestBroker.with { broker in
            let topic = try await broker.createTopic("resume", partitions: 2)
            let group = kafkaTestName("g")
            try await withTestReceiver { receiver in
                let directory = try TemporaryDirectory()
                try directory.write(
                    "r.yaml",
                    kafkaSourceFlow(
                        name: "resume", broker: broker, topic: topic, group: group, sink: httpSinkBlock(receiver.url))
                )
                try await broker.produceBatch((0..<50).map { numberedRecord($0, topic: topic) })
                try await withRunningServer(directory: directory.path) { _ in
                    try await waitUntil("the first 50 arrived") { receiver.count >= 50 }
                }
                try await broker.produceBatch((50..<100).map { numberedRecord($0, topic: topic) })
                try await withRunningServer(directory: directory.path) { _ in
                    try await waitUntil("the next 50 arrived") { receiver.count >= 100 }
                    try await Task.sleep(for: .milliseconds(300))
                }
                let numbers = receiver.requests.compactMap(\.number)
                #expect(numbers.count == 100, "a graceful stop commits everything: no record comes twice")
                #expect(Set(numbers) == Set(0..<100))
            }
        }
    }

    @Test func aNumericStartOffsetSkipsEarlierRecords() async throws {
        try await FlowTestBroker.with { broker in
            let topic = try await broker.createTopic("offset", partitions: 1)
            try await broker.produce((0..<20).map { numberedRecord($0, topic: topic) })
            try await withTestReceiver { receiver in
                let directory = try TemporaryDirectory()
                try directory.write(
                    "o.yaml",
                    kafkaSourceFlow(
                        name: "offset", broker: broker, topic: topic, group: kafkaTestName("g"), startOffset: "12",
                        sink: httpSinkBlock(receiver.url)
                    )
                )
                try await withRunningServer(directory: directory.path) { _ in
                    try await waitUntil("8 events arrived") { receiver.count >= 8 }
                    try await Task.sleep(for: .milliseconds(300))
                }
                #expect(receiver.requests.compactMap(\.number).sorted() == Array(12..<20))
            }
        }
    }

    @Test func twoReplicasInOneGroupSplitThePartitionsAndDeliverEverything() async throws {
        try await FlowTestBroker.with { broker in
            let topic = try await broker.createTopic("shared", partitions: 4)
            let group = kafkaTestName("g")
            try await withTestReceiver { receiver in
                let flow = kafkaSourceFlow(
                    name: "scale", broker: broker, topic: topic, group: group, sink: httpSinkBlock(receiver.url)
                )
                let first = try TemporaryDirectory()
                let second = try TemporaryDirectory()
                try first.write("scale.yaml", flow)
                try second.write("scale.yaml", flow)
                let produced = NIOLockedValueBox(0)
                let sample = #"fiso_flow_events_total{flow="scale",status="success"}"#
                try await withRunningServer(directory: first.path) { one in
                    try await withRunningServer(directory: second.path) { two in
                        // Produce in rounds until both replicas have taken part (the second join
                        // rebalances the group), then some more.
                        var extraRounds = 3
                        for round in 0..<150 {
                            let start = round * 20
                            try await broker.produceBatch((start..<start + 20).map { numberedRecord($0, topic: topic) })
                            produced.withLockedValue { $0 = start + 20 }
                            try await Task.sleep(for: .milliseconds(150))
                            if (one.metric(sample) ?? 0) > 0, (two.metric(sample) ?? 0) > 0 {
                                extraRounds -= 1
                                if extraRounds == 0 { break }
                            }
                        }
                        let total = produced.withLockedValue { $0 }
                        try await waitUntil("every event arrived", timeout: .seconds(30)) {
                            Set(receiver.requests.compactMap(\.number)).count >= total
                        }
                        #expect((one.metric(sample) ?? 0) > 0, "the first replica processed events")
                        #expect((two.metric(sample) ?? 0) > 0, "the second replica processed events")
                    }
                }
                #expect(Set(receiver.requests.compactMap(\.number)) == Set(0..<produced.withLockedValue { $0 }))
            }
        }
    }

    @Test func httpToKafkaWithKeyAndHeaders() async throws {
        try await FlowTestBroker.with { broker in
            let topic = try await broker.createTopic("out", partitions: 3)
            let directory = try TemporaryDirectory()
            try directory.write(
                "h.yaml",
                """
                name: h2k
                source:
                  type: http
                  config: {listenAddr: "127.0.0.1:0", path: /orders}
                \(kafkaSinkBlock(topic: topic, key: "data.customer"))
                \(broker.clusterBlock())
                """
            )
            try await withRunningServer(directory: directory.path) { server in
                for index in 0..<3 {
                    let reply = try await server.post(
                        "/orders", #"{"customer":"c-\#(index)","total":\#(index)}"#,
                        headers: [("X-Tenant", "acme"), ("X-Correlation-ID", "corr-\(index)")]
                    )
                    #expect(reply.status == 202)
                    #expect(reply.body.contains(#""status":"accepted""#))
                }
            }
            let records = try await broker.read(3, from: topic)
            let record = try #require(records.first { $0.keyText == "c-1" })
            #expect(record.header("content-type") == "application/cloudevents+json")
            #expect(record.header("X-Tenant") == "acme")
            #expect(record.header("X-Correlation-ID") == "corr-1")
            let event = try #require(record.valueJSON)
            #expect(event["specversion"] == "1.0")
            #expect(event["source"] == "fiso-flow/h2k")
            #expect(event["data"] == ["customer": "c-1", "total": 1])
            #expect(Set(records.compactMap(\.keyText)) == ["c-0", "c-1", "c-2"])
        }
    }

    @Test func httpSourceErrorsGoToANamedDeadLetterTopic() async throws {
        try await FlowTestBroker.with { broker in
            let dlq = try await broker.createTopic("http-dlq")
            try await withTestReceiver({ _, _ in .init(status: 400, body: #"{"error":"no"}"#) }) { receiver in
                let directory = try TemporaryDirectory()
                try directory.write(
                    "h.yaml",
                    httpFlow(
                        name: "hdlq", path: "/in", sinkURL: receiver.url,
                        extra: "errorHandling:\n  deadLetterTopic: \(dlq)\n  deadLetterCluster: test\n"
                            + broker.clusterBlock()
                    )
                )
                try await withRunningServer(directory: directory.path) { server in
                    let reply = try await server.post("/in", #"{"id":1}"#, headers: [("X-Correlation-ID", "c-9")])
                    #expect(reply.status == 400)
                    #expect(reply.headers.contains { $0.0.lowercased() == "x-fiso-dead-lettered" && $0.1 == "true" })
                }
            }
            let record = try #require(try await broker.read(1, from: dlq).first)
            #expect(record.valueJSON == ["id": 1])
            #expect(record.header("fiso-error-code") == "SINK_DELIVERY_FAILED")
            #expect(record.header("fiso-origin-http.path") == "/in")
            #expect(record.header("X-Correlation-ID") == "c-9")
            #expect(record.header("fiso-original-topic") == nil)
        }
    }

    @Test func kafkaToKafkaWithKafkaVariablesKeyAndHeaders() async throws {
        try await FlowTestBroker.with { broker in
            let input = try await broker.createTopic("in", partitions: 2)
            let output = try await broker.createTopic("out", partitions: 2)
            let records = (0..<4).map {
                numberedRecord(
                    $0, topic: input, key: "key-\($0)", headers: [KafkaHeader(name: "x-tenant", text: "t\($0)")],
                    partition: Int32($0 % 2)
                )
            }
            try await broker.produce(records)
            let directory = try TemporaryDirectory()
            try directory.write(
                "k.yaml",
                kafkaSourceFlow(
                    name: "k2k", broker: broker, topic: input, group: kafkaTestName("g"),
                    sink: kafkaSinkBlock(topic: output, key: #"data.key + "-out""#),
                    extra: """
                        transform:
                          fields:
                            n: data.n
                            topic: kafka.topic
                            partition: kafka.partition
                            offset: kafka.offset
                            key: kafka.key
                            tenant: kafka.headers["x-tenant"]
                            stamped: kafka.timestamp != null
                        """
                )
            )
            try await withRunningServer(directory: directory.path) { server in
                let out = try await broker.read(4, from: output)
                #expect(out.count == 4)
                for record in out {
                    let data = try #require(record.valueJSON?["data"])
                    let n = try #require(data["n"]?.kafkaTestInteger)
                    #expect(data["topic"] == .string(input))
                    #expect(data["partition"] == .int(Int64(n % 2)))
                    #expect(data["offset"] == .int(Int64(n / 2)))
                    #expect(data["key"] == .string("key-\(n)"))
                    #expect(data["tenant"] == .string("t\(n)"))
                    #expect(data["stamped"] == true)
                    #expect(record.keyText == "key-\(n)-out")
                    #expect(record.header("x-tenant") == "t\(n)")
                    #expect(record.header("content-type") == "application/cloudevents+json")
                    #expect(record.header("X-Correlation-ID") != nil)
                }
                #expect(server.metric(#"fiso_flow_events_total{flow="k2k",status="success"}"#) == 4)
            }
        }
    }

    @Test func theTransactionPathCommitsOutputsAndOffsetsTogether() async throws {
        try await FlowTestBroker.with { broker in
            let input = try await broker.createTopic("tx-in", partitions: 2)
            let output = try await broker.createTopic("tx-out", partitions: 2)
            let group = kafkaTestName("g")
            let count = 120
            try await broker.produceBatch((0..<count).map { numberedRecord($0, topic: input, key: "k\($0)") })
            // First run: every event fails (division by zero), so every transaction aborts and its
            // records are read again; second run: all succeed.
            let directory = try TemporaryDirectory()
            func writeFlow(n: String) throws {
                try directory.write(
                    "t.yaml",
                    kafkaSourceFlow(
                        name: "tx", broker: broker, topic: input, group: group,
                        sink: kafkaSinkBlock(topic: output, key: "kafka.key"),
                        extra: """
                            transform:
                              fields:
                                n: \(n)
                            errorHandling:
                              commitPolicy: kafka_transaction
                              transactionalId: fiso-tx-test
                              backoff: {initial: 100ms, max: 300ms}
                            """
                    )
                )
            }
            try writeFlow(n: "data.n / 0")
            try await withRunningServer(directory: directory.path) { server in
                try await waitUntil("aborted records were read and failed again", timeout: .seconds(60)) {
                    (server.metric(#"fiso_flow_events_total{flow="tx",status="error"}"#) ?? 0) > Double(count)
                }
                let early = try await broker.committedOffsets(group: group, topic: input, partitions: 2)
                #expect(early.values.reduce(0, +) == 0, "aborted transactions commit no offsets")
            }
            try writeFlow(n: "data.n")
            try await withRunningServer(directory: directory.path) { _ in
                let out = try await broker.read(count, from: output, timeout: .seconds(60), settle: .milliseconds(300))
                let numbers = out.compactMap { $0.valueJSON?["data"]?["n"]?.kafkaTestInteger }
                #expect(Set(numbers) == Set((0..<count).map(Int64.init)))
                #expect(numbers.count == count, "each record written once")
                #expect(out.allSatisfy { $0.keyText == "k\($0.valueJSON?["data"]?["n"]?.kafkaTestInteger ?? -1)" })
                try await waitUntil("the transactions committed every offset") {
                    try await broker.committedOffsets(group: group, topic: input, partitions: 2).values.reduce(0, +)
                        == Int64(count)
                }
            }
            // Offsets of this policy are committed by the transactions only (not when stopping).
            let committed = try await broker.committedOffsets(group: group, topic: input, partitions: 2)
            #expect(committed.values.reduce(0, +) == Int64(count))
        }
    }

    @Test func aBrokenLibrdkafkaPropertyIsAValidationError() throws {
        let directory = try TemporaryDirectory()
        let base = """
            name: bad
            source:
              type: kafka
              config: {cluster: c, topic: t, consumerGroup: g}
            sink: {type: stdout}
            kafka:
              clusters:
                c:
                  brokers: ["127.0.0.1:9092"]
                  config:

            """
        try directory.write("a.yaml", base + "        socket.timeout.ms: soon\n")
        try directory.write(
            "b.yaml",
            base.replacingOccurrences(of: "name: bad", with: "name: bad2") + "        no.such.property: \"1\"\n")
        try directory.write(
            "c.yaml", base.replacingOccurrences(of: "name: bad", with: "name: bad3") + "        acks: \"1\"\n")
        try directory.write(
            "d.yaml",
            base.replacingOccurrences(of: "name: bad", with: "name: good")
                + "        session.timeout.ms: \"2000\"\n        security.protocol: SASL_SSL\n"
        )
        let snapshot = try ConfigSnapshot.read(directory: directory.path, kafkaConfigPath: "/nonexistent").get()
        let loaded = FlowLoader(kafkaConfigPath: "/nonexistent").load(snapshot)
        let messages = { (file: String) in loaded.problems[directory.file(file)]?.map(\.message) ?? [] }
        #expect(messages("a.yaml").contains { $0.contains("socket.timeout.ms") })
        #expect(messages("b.yaml").contains { $0.contains("no.such.property") })
        #expect(messages("c.yaml").contains { $0.contains("requiredAcks") })
        #expect(messages("d.yaml").isEmpty)
        #expect(loaded.flows[directory.file("d.yaml")] != nil)
    }

    @Test func deadLetterDestinationsFollowTheSourceAndCommitPolicy() throws {
        let clusters =
            "kafka:\n  clusters:\n    c: {brokers: [\"127.0.0.1:9092\"]}\n    d: {brokers: [\"127.0.0.1:9093\"]}\n"
        let kafka = "source:\n  type: kafka\n  config: {cluster: c, topic: t, consumerGroup: g}\nsink: {type: stdout}\n"
        let http = "source: {type: http, config: {path: /in}}\nsink: {type: stdout}\n"
        /// `cluster/topic` of the flow's dead letters, or nil.
        func destination(_ text: String) throws -> String? {
            let definition = try FlowFileParser().parse(text + clusters, file: "f.yaml").get()
            return DeadLetterRouting.destination(for: definition).map { "\($0.cluster)/\($0.topic)" }
        }
        #expect(try destination("name: a\n" + kafka) == "c/fiso-dlq-a")
        #expect(
            try destination("name: b\n" + kafka + "errorHandling: {deadLetterTopic: x, deadLetterCluster: d}\n")
                == "d/x"
        )
        #expect(try destination("name: c\n" + kafka + "errorHandling: {commitPolicy: sink}\n") == nil)
        #expect(try destination("name: h\n" + http) == nil, "HTTP errors go back to the caller")
        #expect(try destination("name: h\n" + http + "errorHandling: {deadLetterCluster: d}\n") == "d/fiso-dlq-h")
        #expect(
            try destination("name: h\n" + http + "errorHandling: {deadLetterTopic: y, deadLetterCluster: d}\n") == "d/y"
        )
    }

    @Test func theSinkKeyExpressionIsCheckedWhenTheFlowIsValidated() throws {
        let text = """
            name: k
            source: {type: http}
            sink:
              type: kafka
              config: {cluster: c, topic: t, key: "data.("}
            kafka:
              clusters:
                c: {brokers: ["127.0.0.1:9092"]}
            """
        let result = FlowFileParser().parse(text, file: "k.yaml")
        guard case .failure(let error) = result else {
            Issue.record("a key that does not compile must be a validation error")
            return
        }
        #expect(error.problems.contains { $0.path == "sink.config.key" && $0.message.contains("CEL error") })
    }
}
