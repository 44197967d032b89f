import Dispatch
import FisoFlowTestSupport
import FisoJSON
import FisoKafka
import Foundation

/// The official CloudEvents Python SDK (PyPI `cloudevents`, 1.x API) as client and judge, driven
/// through `ce_sdk.py` beside this file. `scripts/setup.sh test` (run by `scripts/test.sh`)
/// installs it; without `python3` or the package every call fails with a message saying so.
enum CloudEventsSDK {
    /// `ce_sdk.py`, found from this source file.
    static let scriptPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("ce_sdk.py").path

    /// An HTTP request as the SDK builds it.
    struct HTTPRequest: Sendable {
        var headers: [(String, String)]
        var body: [UInt8]

        func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    }

    /// An event as the SDK read it: every attribute (extensions included), the data and the mode.
    struct ParsedEvent: Sendable, CustomStringConvertible {
        var json: JSONValue

        var mode: String? { json["mode"]?.stringValue }
        var data: JSONValue? { json["data"] }
        var id: String? { attribute("id") }
        var attributeNames: Set<String> {
            guard case .object(let attributes)? = json["attributes"] else { return [] }
            return Set(attributes.keys)
        }
        var description: String { json.jsonText }

        func attribute(_ name: String) -> String? { json["attributes"]?[name]?.stringValue }
    }

    /// A CloudEvent for the SDK to build: the context attributes (`specversion` 1.0 and `time`
    /// are the SDK's defaults when left out), extension attributes and JSON data.
    static func event(
        id: String, type: String = "order.created", source: String = "urn:fiso:tests:shop",
        specversion: String = "1.0", dataContentType: String? = "application/json", subject: String? = nil,
        time: String? = "2026-01-15T10:00:00Z", extensions: [String: String] = [:], data: JSONValue
    ) -> JSONValue {
        var attributes = JSONObject()
        attributes["specversion"] = .string(specversion)
        attributes["id"] = .string(id)
        attributes["source"] = .string(source)
        attributes["type"] = .string(type)
        if let dataContentType { attributes["datacontenttype"] = .string(dataContentType) }
        if let subject { attributes["subject"] = .string(subject) }
        if let time { attributes["time"] = .string(time) }
        for (name, value) in extensions.sorted(by: { $0.key < $1.key }) { attributes[name] = .string(value) }
        return .object(["attributes": .object(attributes), "data": data])
    }

    /// The HTTP request `to_structured`/`to_binary` make of `events` (one event), or a batch
    /// (`application/cloudevents-batch+json`) of their structured forms.
    static func httpRequest(mode: String, _ events: [JSONValue]) async throws -> HTTPRequest {
        let answer = try await run(["http-request", "--mode", mode], input: .object(["events": .array(events)]))
        guard case .object(let headers)? = answer["headers"], let body = answer["body_base64"]?.stringValue,
            let bytes = Data(base64Encoded: body)
        else { throw UnexpectedOutput(command: "http-request", output: answer) }
        return HTTPRequest(
            headers: headers.compactMap { name, value in value.stringValue.map { (name, $0) } }, body: Array(bytes))
    }

    /// What the SDK's `from_http` reads from a request an HTTP sink delivered; throws when it
    /// rejects it.
    static func parse(_ request: TestReceiver.Received) async throws -> ParsedEvent {
        var headers = JSONObject()
        for (name, value) in request.headers.sorted(by: { $0.key < $1.key }) { headers[name] = .string(value) }
        let input: JSONValue = .object([
            "headers": .object(headers), "body_base64": .string(Data(request.body).base64EncodedString()),
        ])
        return ParsedEvent(json: try await run(["http-parse"], input: input))
    }

    /// The Kafka record the SDK's `cloudevents.kafka.to_binary`/`to_structured` make of `event`
    /// for `topic`. `specContentType` replaces the 1.x SDK's structured `content-type` (the data's
    /// content type) with `application/cloudevents+json`, as the Kafka protocol binding asks.
    static func kafkaRecord(
        mode: String, _ event: JSONValue, key: String? = nil, topic: String, specContentType: Bool = false
    ) async throws -> KafkaProducerRecord {
        var input = event
        if let key, case .object(var object) = input {
            object["key"] = .string(key)
            input = .object(object)
        }
        let answer = try await run(
            ["kafka-record", "--mode", mode] + (specContentType ? ["--spec-content-type"] : []), input: input)
        guard case .array(let pairs)? = answer["headers"], let value = answer["value_base64"]?.stringValue,
            let bytes = Data(base64Encoded: value)
        else { throw UnexpectedOutput(command: "kafka-record", output: answer) }
        var headers: [KafkaHeader] = []
        for pair in pairs {
            guard case .array(let parts) = pair, parts.count == 2, let name = parts[0].stringValue,
                let text = parts[1].stringValue
            else { throw UnexpectedOutput(command: "kafka-record", output: answer) }
            headers.append(KafkaHeader(name: name, text: text))
        }
        return KafkaProducerRecord(
            topic: topic, key: answer["key"]?.stringValue.map { Array($0.utf8) }, value: Array(bytes),
            headers: headers)
    }

    /// What the SDK reads from a record a Kafka sink produced: `from_binary` when it carries a
    /// `ce_specversion` header, else `from_structured`. Throws when the SDK rejects it.
    static func parse(_ message: KafkaMessage) async throws -> ParsedEvent {
        let headers: [JSONValue] = message.headers.map { header in
            .array([.string(header.name), header.text.map { .string($0) } ?? .null])
        }
        let key: JSONValue = message.key.map { .string(String(decoding: $0, as: UTF8.self)) } ?? .null
        let input: JSONValue = .object([
            "headers": .array(headers), "key": key,
            "value_base64": .string(Data(message.value ?? []).base64EncodedString()),
        ])
        return ParsedEvent(json: try await run(["kafka-parse"], input: input))
    }

    // MARK: Running the script

    struct Failure: Error, CustomStringConvertible {
        var arguments: [String]
        var status: Int32
        var standardError: String

        var description: String {
            let command = "python3 ce_sdk.py \(arguments.joined(separator: " "))"
            if status == 127 {
                return "python3 is not on PATH: the CloudEvents interop tests need Python 3 and its `cloudevents` "
                    + "package (scripts/test.sh installs them through scripts/setup.sh test): \(standardError)"
            }
            if status == 2 && standardError.contains("not installed") {
                return "the CloudEvents Python SDK is missing (scripts/test.sh installs it through "
                    + "scripts/setup.sh test): \(standardError)"
            }
            return "\(command) exited with \(status): \(standardError)"
        }
    }

    struct UnexpectedOutput: Error, CustomStringConvertible {
        var command: String
        var output: JSONValue
        var description: String { "ce_sdk.py \(command) printed an unexpected answer: \(output.jsonText)" }
    }

    /// Runs `ce_sdk.py arguments` with `input` and returns the JSON it printed.
    static func run(_ arguments: [String], input: JSONValue) async throws -> JSONValue {
        let script = scriptPath
        guard FileManager.default.fileExists(atPath: script) else {
            throw Failure(arguments: arguments, status: -1, standardError: "\(script) does not exist")
        }
        let bytes = input.serialized()
        let result = try await withCheckedThrowingContinuation {
            (continuation: CheckedContinuation<(status: Int32, output: [UInt8], errors: String), any Error>) in
            // Process waits by blocking: keep that off the concurrency pool.
            DispatchQueue.global().async {
                continuation.resume(
                    with: Result { try runBlocking(script: script, arguments: arguments, input: bytes) })
            }
        }
        guard result.status == 0 else {
            throw Failure(arguments: arguments, status: result.status, standardError: result.errors)
        }
        do {
            return try JSONValue(parsing: result.output)
        } catch {
            throw Failure(
                arguments: arguments, status: result.status,
                standardError: "output is not JSON (\(error)): \(String(decoding: result.output, as: UTF8.self))")
        }
    }

    /// The input goes in a file (`--input`), standard error to a file: the only pipe is standard
    /// output, read to its end, so nothing can block and a script that exits early cannot raise
    /// SIGPIPE here.
    private static func runBlocking(
        script: String, arguments: [String], input: [UInt8]
    ) throws -> (status: Int32, output: [UInt8], errors: String) {
        let manager = FileManager.default
        let token = UUID().uuidString
        let inputURL = manager.temporaryDirectory.appendingPathComponent("ce-sdk-\(token).json")
        let errorsURL = manager.temporaryDirectory.appendingPathComponent("ce-sdk-\(token).stderr")
        defer {
            try? manager.removeItem(at: inputURL)
            try? manager.removeItem(at: errorsURL)
        }
        try Data(input).write(to: inputURL)
        guard manager.createFile(atPath: errorsURL.path, contents: nil) else {
            throw CocoaError(.fileWriteUnknown)
        }
        let errorsHandle = try FileHandle(forWritingTo: errorsURL)
        defer { try? errorsHandle.close() }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script] + arguments + ["--input", inputURL.path]
        let output = Pipe()
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = errorsHandle
        try process.run()
        let printed = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let errors = (try? String(contentsOf: errorsURL, encoding: .utf8)) ?? ""
        return (process.terminationStatus, Array(printed), errors.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

extension JSONValue {
    /// The same value with every object's members in key order, so that two documents compare
    /// equal whatever order their writers used (`JSONObject` equality is order-sensitive).
    var canonical: JSONValue {
        switch self {
        case .object(let members):
            return .object(
                JSONObject(
                    uniqueKeysWithValues: members.sorted { $0.key < $1.key }.map { ($0.key, $0.value.canonical) }))
        case .array(let elements):
            return .array(elements.map(\.canonical))
        default:
            return self
        }
    }
}
