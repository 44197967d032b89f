import FisoFlowTestSupport
import FisoWasm
import Foundation
import Testing

@testable import FisoFlow

/// Parses one flow file with the standard registry and the given shared Kafka clusters.
private func parse(
    _ text: String, clusters: [String: KafkaClusterDefinition] = [:], registry: ComponentRegistry = .standard
) -> Result<FlowDefinition, ConfigError> {
    FlowFileParser(registry: registry, sharedKafkaClusters: clusters, kafkaConfigPath: "kafka.yaml")
        .parse(text, file: "flow.yaml")
}

private func problems(
    _ text: String, clusters: [String: KafkaClusterDefinition] = [:], registry: ComponentRegistry = .standard
) -> [ConfigProblem] {
    switch parse(text, clusters: clusters, registry: registry) {
    case .success: []
    case .failure(let error): error.problems
    }
}

private let minimal = """
    name: orders
    source:
      type: http
      config:
        listenAddr: ":8081"
        path: /ingest
    sink:
      type: stdout
    """

@Suite struct FlowFileParsingTests {
    @Test func readsAMinimalFlowWithDefaults() throws {
        let flow = try parse(minimal).get()
        #expect(flow.name == "orders")
        #expect(flow.file == "flow.yaml")
        let source = try #require(flow.source.settings as? HTTPSourceSettings)
        #expect(source.listenAddress == ListenAddress(host: "0.0.0.0", port: 8081))
        #expect(source.path == "/ingest")
        #expect(source.maxBodyBytes == 1 << 20)
        #expect(flow.sink.type == "stdout")
        #expect(flow.errorHandling.maxRetries == 3)
        #expect(flow.errorHandling.commitPolicy == .sinkOrDeadLetter)
        #expect(flow.errorHandling.backoff == .default)
        #expect(flow.interceptors.isEmpty)
        #expect(flow.cloudEvents.isEmpty)
    }

    @Test func readsEverySectionOfAFullFlow() throws {
        let text = """
            name: order-processing
            kafka:
              clusters:
                inline:
                  brokers: [b1:9092, b2:9092]
                  config:
                    security.protocol: SASL_SSL
            source:
              type: kafka
              config:
                cluster: main
                topic: orders
                consumerGroup: fiso-orders
                startOffset: "42"
                maxInFlight: 8
            interceptors:
              - type: wasm
                config:
                  module: /etc/fiso/modules/enrich.wasm
                  timeout: 250ms
                  memoryLimit: 64Mi
                  env: {MODE: strict}
                  maxOutputBytes: 1Mi
              - type: wasm
                config:
                  module: /etc/fiso/modules/enrich-reactor.wasm
                  mode: reactor
                  maxCallsPerInstance: 500
                  recycleMemoryAbove: 16Mi
            sink:
              type: kafka
              config:
                cluster: inline
                topic: orders-out
            errorHandling:
              deadLetterTopic: orders-dlq
              maxRetries: 5
              backoff: {type: constant, initial: 50ms, max: 1s}
              commitPolicy: sink_or_dlq
            """
        let flow = try parse(
            text, clusters: ["main": KafkaClusterDefinition(brokers: ["k:9092"])], registry: .standard
        ).get()
        let source = try #require(flow.source.settings as? KafkaSourceSettings)
        #expect(source.cluster == "main")
        #expect(source.topics == ["orders"])
        #expect(source.consumerGroup == "fiso-orders")
        #expect(source.startOffset == .offset(42))
        #expect(source.maxInFlight == 8)
        let sink = try #require(flow.sink.settings as? KafkaSinkSettings)
        #expect(sink.cluster == "inline" && sink.topic == "orders-out" && sink.idempotent && sink.requiredAcks == .all)
        let wasm = try #require(flow.interceptors.first?.settings as? WasmInterceptorSettings)
        #expect(wasm.module == "/etc/fiso/modules/enrich.wasm")
        #expect(wasm.configuration.timeout == .milliseconds(250))
        #expect(wasm.configuration.memoryLimitBytes == 64 << 20)
        #expect(wasm.configuration.environment == ["MODE": "strict"])
        #expect(wasm.configuration.maxOutputBytes == 1 << 20)
        #expect(wasm.configuration.mode == .command)
        let reactor = try #require(flow.interceptors.last?.settings as? WasmInterceptorSettings)
        #expect(reactor.configuration.mode == .reactor)
        #expect(reactor.configuration.maxCallsPerInstance == 500)
        #expect(reactor.configuration.recycleMemoryBytes == 16 << 20)
        #expect(flow.errorHandling.deadLetterTopic == "orders-dlq")
        #expect(flow.errorHandling.maxRetries == 5)
        #expect(flow.errorHandling.backoff.kind == .constant)
        #expect(flow.errorHandling.backoff.initial == .milliseconds(50))
        #expect(flow.errorHandling.backoff.maximum == .seconds(1))
        #expect(flow.errorHandling.commitPolicy == .sinkOrDeadLetter)
        #expect(flow.kafkaClusters["inline"]?.brokers == ["b1:9092", "b2:9092"])
        #expect(flow.kafkaClusters["inline"]?.properties == ["security.protocol": "SASL_SSL"])
        #expect(flow.kafkaClusters["main"] != nil)
    }

    @Test func inlineClustersWinOverTheSharedFile() throws {
        let text = minimal + "\nkafka:\n  clusters:\n    main:\n      brokers: [inline:9092]\n"
        let flow = try parse(text, clusters: ["main": KafkaClusterDefinition(brokers: ["shared:9092"])]).get()
        #expect(flow.kafkaClusters["main"]?.brokers == ["inline:9092"])
    }

    @Test func reportsEveryProblemOfAFileAtOnce() {
        let found = problems(
            """
            name: "bad name!"
            source:
              type: http
              config:
                listenAddr: "nope"
                path: ingest
            sink:
              type: http
              config:
                url: ftp://x
                method: DELETE
            errorHandling:
              maxRetries: -1
            """
        )
        let paths = Set(found.map(\.path))
        #expect(
            paths == [
                "name", "source.config.listenAddr", "source.config.path", "sink.config.url",
                "errorHandling.maxRetries",
            ]
        )
        #expect(found.allSatisfy { $0.file == "flow.yaml" && $0.line != nil })
    }

    struct Case: Sendable, CustomStringConvertible {
        var description: String
        var yaml: String
        var path: String
        var message: String
    }

    static let cases: [Case] = [
        Case(
            description: "missing name", yaml: minimal.replacingOccurrences(of: "name: orders\n", with: ""),
            path: "name", message: "is required"),
        Case(
            description: "missing source", yaml: "name: a\nsink: {type: stdout}", path: "source", message: "is required"
        ),
        Case(description: "missing sink", yaml: "name: a\nsource: {type: http}", path: "sink", message: "is required"),
        Case(
            description: "unknown top-level field", yaml: minimal + "\nsinks: {}", path: "sinks",
            message: "did you mean \"sink\"?"),
        Case(
            description: "unknown source type", yaml: minimal.replacingOccurrences(of: "type: http", with: "type: ftp"),
            path: "source.type", message: "unknown source type \"ftp\""),
        Case(
            description: "unknown sink type", yaml: minimal.replacingOccurrences(of: "type: stdout", with: "type: s3"),
            path: "sink.type", message: "unknown sink type \"s3\""),
        Case(
            description: "unknown config key",
            yaml: minimal.replacingOccurrences(of: "path: /ingest", with: "pth: /ingest"), path: "source.config.pth",
            message: "did you mean \"path\"?"),
        Case(
            description: "bad listen address", yaml: minimal.replacingOccurrences(of: "\":8081\"", with: "localhost"),
            path: "source.config.listenAddr", message: "invalid listen address"),
        Case(
            description: "bad body limit",
            yaml: minimal.replacingOccurrences(of: "path: /ingest", with: "path: /ingest\n    maxBodyBytes: lots"),
            path: "source.config.maxBodyBytes", message: "invalid size"),
        Case(
            description: "http sink without url",
            yaml: minimal.replacingOccurrences(of: "type: stdout", with: "type: http"), path: "sink.config.url",
            message: "is required"),
        Case(
            description: "bad sink timeout",
            yaml: minimal.replacingOccurrences(
                of: "type: stdout", with: "type: http\n  config: {url: \"http://x\", timeout: 5}"),
            path: "sink.config.timeout", message: "invalid duration"),
        Case(
            description: "bad header",
            yaml: minimal.replacingOccurrences(
                of: "type: stdout", with: "type: http\n  config: {url: \"http://x\", headers: {\"Bad Name\": v}}"),
            path: "sink.config.headers", message: "not a valid HTTP header"),
        Case(
            description: "transform without fields", yaml: minimal + "\ntransform: {}", path: "transform.fields",
            message: "is required"),
        Case(
            description: "interceptor without type", yaml: minimal + "\ninterceptors:\n  - config: {module: x.wasm}",
            path: "interceptors[0].type", message: "is required"),
        Case(
            description: "wasm without module", yaml: minimal + "\ninterceptors:\n  - type: wasm",
            path: "interceptors[0].config.module", message: "is required"),
        Case(
            description: "grpc concurrency over the Ack window",
            yaml:
                "name: g\nsource: {type: grpc, config: {maxPendingAcks: 8, maxConcurrentEvents: 9}}\nsink: {type: stdout}",
            path: "source.config.maxConcurrentEvents", message: "may not exceed maxPendingAcks (8)"),
        Case(
            description: "wasm bad engine",
            yaml: minimal + "\ninterceptors:\n  - type: wasm\n    config: {module: a.wasm, engine: v8}",
            path: "interceptors[0].config.engine", message: "must be one of"),
        Case(
            description: "wasm bad mode",
            yaml: minimal + "\ninterceptors:\n  - type: wasm\n    config: {module: a.wasm, mode: pooled}",
            path: "interceptors[0].config.mode", message: "must be one of command, reactor"),
        Case(
            description: "wasm pool setting in command mode",
            yaml: minimal + "\ninterceptors:\n  - type: wasm\n    config: {module: a.wasm, maxCallsPerInstance: 5}",
            path: "interceptors[0].config.maxCallsPerInstance", message: "applies only to mode: reactor"),
        Case(
            description: "wasm recycle bound above the memory limit",
            yaml: minimal
                + "\ninterceptors:\n  - type: wasm\n    config: {module: a.wasm, mode: reactor, memoryLimit: 1Mi, recycleMemoryAbove: 2Mi}",
            path: "interceptors[0].config", message: "recycleMemoryAbove must not be above memoryLimit"),
        Case(
            description: "retries out of range", yaml: minimal + "\nerrorHandling: {maxRetries: 1000}",
            path: "errorHandling.maxRetries", message: "between 0 and 100"),
        Case(
            description: "bad backoff", yaml: minimal + "\nerrorHandling: {backoff: linear}",
            path: "errorHandling.backoff", message: "must be one of exponential, constant"),
        Case(
            description: "backoff initial over max",
            yaml: minimal + "\nerrorHandling: {backoff: {initial: 5s, max: 1s}}", path: "errorHandling.backoff.initial",
            message: "must not exceed max"),
        Case(
            description: "bad commit policy", yaml: minimal + "\nerrorHandling: {commitPolicy: always}",
            path: "errorHandling.commitPolicy", message: "must be one of sink, sink_or_dlq, kafka_transaction"),
        Case(
            description: "commit policy on an http source", yaml: minimal + "\nerrorHandling: {commitPolicy: sink}",
            path: "errorHandling.commitPolicy", message: "applies only to kafka sources"),
        Case(
            description: "dead-letter topic without a cluster",
            yaml: minimal + "\nerrorHandling: {deadLetterTopic: dlq}", path: "errorHandling.deadLetterTopic",
            message: "set errorHandling.deadLetterCluster"),
        Case(
            description: "invalid dead-letter topic", yaml: minimal + "\nerrorHandling: {deadLetterTopic: \"a b\"}",
            path: "errorHandling.deadLetterTopic", message: "not a valid Kafka topic"),
        Case(
            description: "unknown dead-letter cluster", yaml: minimal + "\nerrorHandling: {deadLetterCluster: nowhere}",
            path: "errorHandling.deadLetterCluster", message: "unknown Kafka cluster \"nowhere\""),
        Case(
            description: "kafka source on an unknown cluster",
            yaml:
                "name: a\nsource:\n  type: kafka\n  config: {cluster: nope, topic: t, consumerGroup: g}\nsink: {type: stdout}",
            path: "source.config.cluster", message: "unknown Kafka cluster \"nope\""),
        Case(
            description: "dead-letter topic with commit policy sink",
            yaml:
                "name: a\nsource:\n  type: kafka\n  config: {cluster: main, topic: in, consumerGroup: g}\n"
                + "sink: {type: stdout}\nerrorHandling: {commitPolicy: sink, deadLetterTopic: dlq}",
            path: "errorHandling.deadLetterTopic", message: "is not used with commitPolicy sink"),
        Case(
            description: "kafka source without topic",
            yaml: "name: a\nsource:\n  type: kafka\n  config: {cluster: main, consumerGroup: g}\nsink: {type: stdout}",
            path: "source.config.topic", message: "is required"),
        Case(
            description: "kafka bad start offset",
            yaml:
                "name: a\nsource:\n  type: kafka\n  config: {cluster: main, topic: t, consumerGroup: g, startOffset: middle}\nsink: {type: stdout}",
            path: "source.config.startOffset", message: "earliest, latest or an offset"),
        Case(
            description: "inline cluster without brokers", yaml: minimal + "\nkafka:\n  clusters:\n    x: {config: {}}",
            path: "kafka.clusters.x.brokers", message: "is required"),
        Case(
            description: "inline cluster with a reserved property",
            yaml: minimal + "\nkafka:\n  clusters:\n    x: {brokers: [\"h:1\"], config: {group.id: g}}",
            path: "kafka.clusters.x.config", message: "is set by fiso-flow"),
        Case(description: "invalid YAML", yaml: "name: a\nsource: [unclosed", path: "", message: "invalid YAML"),
        Case(description: "not a mapping", yaml: "- a\n- b", path: "", message: "expected a mapping"),
    ]

    @Test(arguments: cases)
    func reportsTheProblem(_ testCase: Case) {
        let found = problems(testCase.yaml, clusters: ["main": KafkaClusterDefinition(brokers: ["k:9092"])])
        let match = found.first { $0.path == testCase.path && $0.message.contains(testCase.message) }
        #expect(match != nil, "expected \(testCase.path): …\(testCase.message)… in \(found.map(\.description))")
    }

    @Test func kafkaTransactionPreconditions() {
        let text = """
            name: tx
            source:
              type: kafka
              config: {cluster: a, topic: in, consumerGroup: g}
            sink:
              type: stdout
            errorHandling:
              commitPolicy: kafka_transaction
            """
        let found = problems(
            text, clusters: ["a": KafkaClusterDefinition(brokers: ["h:1"])], registry: .standard
        )
        #expect(found.contains { $0.path == "errorHandling.commitPolicy" && $0.message.contains("needs a kafka sink") })
        #expect(found.contains { $0.path == "errorHandling.transactionalId" && $0.message.contains("is required") })
    }

    @Test func problemDescriptionsNameFileLineAndPath() {
        let problem = ConfigProblem(file: "flows/a.yaml", path: "sink.config.url", line: 7, message: "is required")
        #expect(problem.description == "flows/a.yaml:7: sink.config.url: is required")
    }
}

@Suite struct DirectoryValidationTests {
    @Test func rejectsClashesBetweenFlows() throws {
        let directory = try TemporaryDirectory()
        try directory.write("a.yaml", minimal)
        try directory.write("b.yaml", minimal)  // same name and path
        try directory.write(
            "c.yaml",
            minimal.replacingOccurrences(of: "orders", with: "other").replacingOccurrences(
                of: "\":8081\"", with: "\"127.0.0.1:8081\"")
        )
        try directory.write(
            "d.yml",
            minimal.replacingOccurrences(of: "orders", with: "metrics-clash").replacingOccurrences(
                of: "8081", with: "9090"))
        let snapshot = try ConfigSnapshot.read(directory: directory.path, kafkaConfigPath: "/nonexistent").get()
        let loaded = FlowLoader(
            kafkaConfigPath: "/nonexistent", reservedAddresses: [ListenAddress(host: "0.0.0.0", port: 9090)]
        ).load(snapshot)
        #expect(loaded.flows.keys.map { ($0 as NSString).lastPathComponent } == ["a.yaml"])
        #expect(loaded.problems[directory.file("b.yaml")]?.first?.message.contains("also used by") == true)
        #expect(loaded.problems[directory.file("c.yaml")]?.first?.message.contains("overlaps") == true)
        #expect(loaded.problems[directory.file("d.yml")]?.first?.message.contains("metrics port") == true)
    }

    @Test func readsConfigMapLayoutsAndSkipsHiddenEntries() throws {
        let configMap = try ConfigMapDirectory(["orders.yaml": minimal, "notes.txt": "ignored"])
        let snapshot = try ConfigSnapshot.read(directory: configMap.path, kafkaConfigPath: "/nonexistent").get()
        #expect(snapshot.flowFiles.keys.map { ($0 as NSString).lastPathComponent } == ["orders.yaml"])
    }

    @Test func reportsProblemsOfTheSharedKafkaFile() throws {
        let directory = try TemporaryDirectory()
        let kafkaDirectory = try TemporaryDirectory()
        try directory.write("a.yaml", minimal)
        try kafkaDirectory.write("kafka.yaml", "clusters:\n  main:\n    brokers: [not-a-host-port]\n")
        let kafkaPath = kafkaDirectory.file("kafka.yaml")
        let snapshot = try ConfigSnapshot.read(directory: directory.path, kafkaConfigPath: kafkaPath).get()
        let loaded = FlowLoader(kafkaConfigPath: kafkaPath).load(snapshot)
        #expect(loaded.problems[kafkaPath]?.first?.message.contains("is not host:port") == true)
        #expect(loaded.flows.count == 1)
    }

    @Test func aMissingDirectoryIsAClearError() {
        guard case .failure(let error) = ConfigSnapshot.read(directory: "/no/such/dir", kafkaConfigPath: "/x") else {
            Issue.record("expected a failure")
            return
        }
        #expect(error.description.contains("/no/such/dir does not exist"))
    }
}

@Suite struct ListenAddressTests {
    @Test func parsesListenAddresses() throws {
        #expect(try ListenAddress(parsing: ":8081") == ListenAddress(host: "0.0.0.0", port: 8081))
        #expect(try ListenAddress(parsing: "[::1]:80") == ListenAddress(host: "::1", port: 80))
        #expect(throws: ListenAddress.ParseError.self) { try ListenAddress(parsing: "::1:80") }
        #expect(throws: ListenAddress.ParseError.self) { try ListenAddress(parsing: "host:70000") }
    }

    @Test func backoffGrowsAndStopsAtTheMaximum() {
        let policy = BackoffPolicy(
            kind: .exponential, initial: .milliseconds(100), maximum: .seconds(1), multiplier: 2, jitter: 0)
        #expect(policy.baseDelay(beforeRetry: 1) == .milliseconds(100))
        #expect(policy.baseDelay(beforeRetry: 3) == .milliseconds(400))
        #expect(policy.baseDelay(beforeRetry: 10) == .seconds(1))
        var generator = SystemRandomNumberGenerator()
        let jittered = BackoffPolicy(
            kind: .exponential, initial: .milliseconds(100), maximum: .seconds(1), multiplier: 2, jitter: 0.5)
        for _ in 0..<100 {
            let delay = jittered.delay(beforeRetry: 2, using: &generator)
            #expect(delay >= .milliseconds(100) && delay <= .milliseconds(300))
        }
    }
}
