import ArgumentParser
import FisoFlow
import FisoJSON
import Foundation
import Logging

struct TransformCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transform",
        abstract: "Try a flow's transform on an event.",
        subcommands: [TransformTestCommand.self]
    )
}

struct TransformTestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Print the transformed payload and the CloudEvent the sink would receive.",
        discussion: """
            Runs the flow's transform, interceptors and cloudevents overrides on one event, without its source \
            or sink. Exits 1 when the event would take the error path.

              fiso-flow transform test --flow flows/orders.yaml --input '{"amount": 12.5}'
              fiso-flow transform test --flow flows/orders.yaml --input @event.json --header X-Tenant=acme
            """
    )

    @Option(help: "The flow file.") var flow: String
    @Option(help: "The event: JSON text, or @FILE to read it from a file.") var input: String
    @Option(name: .customLong("header"), help: "An event header, NAME=VALUE (repeatable).") var headers: [String] = []
    @Option(help: "Shared Kafka cluster file (default: FISO_KAFKA_CONFIG, else /etc/fiso/kafka/kafka.yaml).")
    var kafkaConfig: String?

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let kafkaPath = kafkaConfig ?? environment["FISO_KAFKA_CONFIG"] ?? KafkaClusterFile.defaultPath
        let clusters: [String: KafkaClusterDefinition]
        switch KafkaClusterFile.load(path: kafkaPath) {
        case .success(let loaded): clusters = loaded
        case .failure(let error): throw ValidationError("\(error)")
        }
        let text: String
        do {
            text = try String(contentsOfFile: flow, encoding: .utf8)
        } catch {
            throw ValidationError("cannot read \(flow): \(error.localizedDescription)")
        }
        let definition: FlowDefinition
        switch FlowFileParser(sharedKafkaClusters: clusters, kafkaConfigPath: kafkaPath).parse(text, file: flow) {
        case .success(let parsed): definition = parsed
        case .failure(let error):
            print(error)
            throw ExitCode(1)
        }
        let payload: JSONValue
        do {
            payload = try JSONValue(parsing: try readInput())
        } catch let error as JSONParseError {
            throw ValidationError("the input is not JSON: \(error)")
        }
        var eventHeaders = EventHeaders()
        for header in headers {
            guard let equals = header.firstIndex(of: "="), equals != header.startIndex else {
                throw ValidationError("--header takes NAME=VALUE, got \"\(header)\"")
            }
            eventHeaders[String(header[..<equals])] = String(header[header.index(after: equals)...])
        }
        var logger = Logger(label: "fiso-flow")
        logger.logLevel = .critical
        let result = try await FlowDryRun.run(definition, payload: payload, headers: eventHeaders, logger: logger)
        print("transformed payload:")
        print(result.transformed?.prettyText ?? "(the transform failed)")
        if let cloudEvent = result.cloudEvent {
            print("cloudevent:")
            print(JSONValue.object(cloudEvent.json).prettyText)
        }
        if let error = result.error {
            print("error: \(error.code.rawValue): \(error.message)")
            throw ExitCode(1)
        }
    }

    private func readInput() throws -> [UInt8] {
        guard input.hasPrefix("@") else { return Array(input.utf8) }
        let path = String(input.dropFirst())
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("cannot read the input file \(path)")
        }
        return Array(data)
    }
}
