import FisoFlowTestSupport
import FisoJSON
import Foundation
import Testing

@testable import FisoFlow

/// Flow files written for the Go original (lsm/fiso v0.19.0) must validate and run here with the
/// same meaning. These files use its spellings; docs/coming-from-go.md lists the mapping.
@Suite struct GoOriginalFlowTests {
    private func parse(_ text: String) -> Result<FlowDefinition, ConfigError> {
        FlowFileParser(kafkaConfigPath: "kafka.yaml").parse(text, file: "go.yaml")
    }

    @Test func aKafkaSourceMayListItsBrokersAndUseSaramaOffsetNames() throws {
        let text = """
            name: order-events
            source:
              type: kafka
              config:
                brokers:
                  - kafka-1:9092
                  - kafka-2:9092
                topic: orders
                consumerGroup: fiso-order-flow
                startOffset: newest
            sink:
              type: kafka
              config:
                brokers: [kafka-1:9092, kafka-2:9092]
                topic: orders-out
            errorHandling:
              deadLetterTopic: fiso-dlq-order-events
              maxRetries: 5
              backoff: exponential
            """
        let flow = try parse(text).get()
        let source = try #require(flow.source.settings as? KafkaSourceSettings)
        #expect(source.startOffset == .latest)
        let cluster = try #require(flow.kafkaClusters[source.cluster])
        #expect(cluster.brokers == ["kafka-1:9092", "kafka-2:9092"])
        #expect(flow.sink.settings.kafkaCluster == source.cluster, "the same broker list is the same cluster")
        #expect(DeadLetterRouting.destination(for: flow)?.cluster == source.cluster)

        for (written, meant) in [("oldest", KafkaSourceSettings.StartOffset.earliest), ("1", .offset(1))] {
            let variant = try parse(
                text.replacingOccurrences(of: "startOffset: newest", with: "startOffset: \(written)")
            )
            .get()
            #expect((variant.source.settings as? KafkaSourceSettings)?.startOffset == meant)
        }
        guard case .failure(let error) = parse(text.replacingOccurrences(of: "kafka-2:9092\n", with: "kafka-2\n"))
        else {
            Issue.record("a broker without a port is refused")
            return
        }
        #expect(error.problems.contains { $0.path == "source.config.brokers" && $0.message.contains("host:port") })
    }

    @Test func clusterAuthAndTLSBecomeLibrdkafkaProperties() throws {
        let text = """
            name: secure
            kafka:
              clusters:
                main:
                  brokers: [kafka:9093]
                  auth: {mechanism: SCRAM-SHA-512, username: fiso, password: s3cret}
                  tls: {enabled: true, caFile: /etc/ca.pem, skipVerify: true}
                  config: {security.protocol: SASL_SSL}
            source: {type: kafka, config: {cluster: main, topic: in, consumerGroup: g}}
            sink: {type: stdout}
            """
        let properties = try #require(try parse(text).get().kafkaClusters["main"]?.properties)
        #expect(properties["sasl.mechanism"] == "SCRAM-SHA-512")
        #expect(properties["sasl.username"] == "fiso")
        #expect(properties["sasl.password"] == "s3cret")
        #expect(properties["security.protocol"] == "SASL_SSL")
        #expect(properties["ssl.ca.location"] == "/etc/ca.pem")
        #expect(properties["enable.ssl.certificate.verification"] == "false")
        let oauth = text.replacingOccurrences(
            of: "auth: {mechanism: SCRAM-SHA-512, username: fiso, password: s3cret}",
            with: "auth: {mechanism: OAUTHBEARER, oauth: {provider: azure, clientId: x, scope: y}}")
        guard case .failure(let error) = parse(oauth) else {
            Issue.record("OAUTHBEARER is refused with a reason")
            return
        }
        #expect(error.problems.contains { $0.path.hasSuffix("auth.oauth") && $0.message.contains("not supported") })
    }

    @Test func theWasmRuntimeChoiceIsAcceptedAndIgnored() throws {
        let text = """
            name: transform-flow
            source: {type: http, config: {listenAddr: ":8081", path: /ingest}}
            interceptors:
              - type: wasm
                config:
                  module: /etc/fiso/modules/transform.wasm
                  runtime: wasmer
            sink: {type: http, config: {url: "http://user-service:8082", method: POST}}
            """
        let flow = try parse(text).get()
        let wasm = try #require(flow.interceptors.first?.settings as? WasmInterceptorSettings)
        #expect(wasm.ignoredRuntime == "wasmer")
        guard case .failure = parse(text.replacingOccurrences(of: "runtime: wasmer", with: "runtime: v8")) else {
            Issue.record("an unknown runtime is still an error")
            return
        }
    }

    @Test func nestedTransformFieldsAndPathShorthandsBuildTheSameEvent() async throws {
        try await withTestReceiver { receiver in
            let directory = try TemporaryDirectory()
            try directory.write(
                "go.yaml",
                httpFlow(
                    name: "go", sinkURL: receiver.url,
                    extra: """
                        transform:
                          fields:
                            order_id: data.legacy_id
                            event_type: '"order.created"'
                            order:
                              id: data.legacy_id
                              total: data.subtotal + data.tax
                              customer:
                                name: $.customer.name
                            status: '"processed"'
                        cloudevents:
                          type: order.created
                          subject: "$.legacy_id"
                          id: $.meta.event-id
                        """
                )
            )
            try await withRunningServer(directory: directory.path) { server in
                let reply = try await server.post(
                    "/in",
                    #"{"legacy_id":"L-9","subtotal":10,"tax":2,"customer":{"name":"ada"},"meta":{"event-id":"evt-1"}}"#)
                #expect(reply.status == 200)
                let event = try #require(receiver.requests.first?.json)
                #expect(event["subject"] == "L-9")
                #expect(event["id"] == "evt-1")
                #expect(event["type"] == "order.created")
                #expect(
                    event["data"]
                        == [
                            "order_id": "L-9", "event_type": "order.created",
                            "order": ["id": "L-9", "total": 12, "customer": ["name": "ada"]], "status": "processed",
                        ])
            }
        }
    }

    @Test func aPathShorthandToAMissingFieldIsAClearError() async throws {
        try await withTestReceiver { receiver in
            let directory = try TemporaryDirectory()
            try directory.write(
                "go.yaml", httpFlow(name: "go", sinkURL: receiver.url, extra: "cloudevents: {subject: $.nope}"))
            try await withRunningServer(directory: directory.path) { server in
                let reply = try await server.post("/in", #"{"legacy_id":"L-9"}"#)
                #expect(reply.status == 422)
                #expect(reply.body.contains("CLOUDEVENT_FAILED"))
                #expect(receiver.count == 0)
            }
        }
    }
}
