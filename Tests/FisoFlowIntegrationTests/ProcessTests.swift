import AsyncHTTPClient
import FisoFlowTestSupport
import FisoJSON
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// The real `fiso-flow` executable: signals, exit codes, command-line output, log format.
@Suite(.serialized) struct ProcessTests {
    @Test func sigtermDrainsEveryAcceptedRequestAndExitsZero() async throws {
        try await withTestReceiver({ _, _ in .init(status: 200, body: #"{"ok":true}"#, delay: .milliseconds(700)) }) {
            receiver in
            let directory = try TemporaryDirectory()
            let port = try freePort()
            let metricsPort = try freePort()
            try directory.write(
                "drain.yaml",
                """
                name: drain
                source: {type: http, config: {listenAddr: "127.0.0.1:\(port)", path: /in}}
                sink: {type: http, config: {url: "\(receiver.url)"}}
                """
            )
            let child = try ChildProcess(
                try fisoFlowBinary(), arguments: ["run", "--config", directory.path],
                environment: ["FISO_METRICS_ADDR": "127.0.0.1:\(metricsPort)", "FISO_SHUTDOWN_TIMEOUT": "20s"]
            )
            try await waitUntilReady(metricsPort: metricsPort)
            let requests = 24
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for number in 0..<requests {
                    group.addTask { try await postEvent(#"{"n":\#(number)}"#, port: port) }
                }
                try await waitUntil("every request reached the sink", timeout: .seconds(60)) {
                    receiver.count == requests
                }
                child.signal(SIGTERM)
                var statuses: [Int] = []
                for try await status in group { statuses.append(status) }
                return statuses
            }
            let exitStatus = try await child.waitForExit()
            #expect(statuses.count == requests)
            #expect(statuses.allSatisfy { $0 == 200 }, "\(statuses)")
            #expect(exitStatus == 0, "stderr: \(child.standardError)")
            #expect(child.standardError.contains("draining"))
        }
    }

    @Test func withNoValidFlowTheProcessExitsNonZeroWithReasons() async throws {
        let directory = try TemporaryDirectory()
        try directory.write(
            "bad.yaml", "name: bad\nsource: {type: http, config: {listenAddr: nowhere}}\nsink: {type: stdout}\n")
        let child = try ChildProcess(
            try fisoFlowBinary(),
            arguments: ["--config", directory.path, "--metrics-addr", "127.0.0.1:\(try freePort())"]
        )
        let status = try await child.waitForExit()
        #expect(status == 1)
        #expect(child.standardError.contains("no flow could be started"))
        #expect(
            child.standardError.contains("bad.yaml:2: source.config.listenAddr: invalid listen address \"nowhere\""))
    }

    @Test func validateListsEveryProblemAndSetsTheExitStatus() async throws {
        let directory = try TemporaryDirectory()
        try directory.write("good.yaml", "name: good\nsource: {type: http}\nsink: {type: stdout}\n")
        try directory.write(
            "bad.yml", "name: bad\nsource: {type: http, config: {path: nope}}\nsink:\n  type: http\n  config: {}\n")
        let child = try ChildProcess(try fisoFlowBinary(), arguments: ["validate", directory.path])
        #expect(try await child.waitForExit() == 1)
        let lines = child.standardOutput.split(separator: "\n").map(String.init)
        let bad = directory.file("bad.yml")
        #expect(
            lines == [
                "\(directory.file("good.yaml")): ok (flow \"good\": http → stdout)",
                "\(bad):2: source.config.path: must start with '/' and contain no query, fragment or spaces",
                "\(bad):5: sink.config.url: is required",
                "2 flow files checked: 1 valid, 1 invalid (2 problems)",
            ]
        )

        try directory.remove("bad.yml")
        let valid = try ChildProcess(try fisoFlowBinary(), arguments: ["validate", directory.path])
        #expect(try await valid.waitForExit() == 0)
        #expect(valid.standardOutput.hasSuffix("1 flow file checked: 1 valid, 0 invalid\n"))
    }

    @Test func jsonLogsCarryFlowAndCorrelationID() async throws {
        try await withTestReceiver { receiver in
            let directory = try TemporaryDirectory()
            let port = try freePort()
            let metricsPort = try freePort()
            try directory.write(
                "logs.yaml",
                """
                name: logs
                source: {type: http, config: {listenAddr: "127.0.0.1:\(port)", path: /in}}
                sink: {type: http, config: {url: "\(receiver.url)"}}
                """
            )
            let child = try ChildProcess(
                try fisoFlowBinary(), arguments: ["--config", directory.path, "--log-level", "debug"],
                environment: ["LOG_FORMAT": "json", "FISO_METRICS_ADDR": "127.0.0.1:\(metricsPort)"]
            )
            let client = HTTPClient.shared
            try await waitUntil("the flow answers") {
                var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/in")
                request.method = .POST
                request.headers.add(name: "X-Correlation-ID", value: "log-test-1")
                request.body = .bytes(ByteBuffer(string: "{}"))
                return (try? await client.execute(request, timeout: .seconds(2)))?.status == .ok
            }
            child.signal(SIGTERM)
            #expect(try await child.waitForExit() == 0)
            let lines = child.standardError.split(separator: "\n")
            #expect(!lines.isEmpty)
            let objects = lines.compactMap { try? JSONValue(parsing: String($0)) }
            #expect(objects.count == lines.count, "every line is one JSON object")
            #expect(objects.allSatisfy { $0["timestamp"] != nil && $0["level"] != nil && $0["message"] != nil })
            let delivered = objects.first { $0["message"] == "event delivered" }
            #expect(delivered?["flow"] == "logs")
            #expect(delivered?["correlation_id"] == "log-test-1")
        }
    }
}
