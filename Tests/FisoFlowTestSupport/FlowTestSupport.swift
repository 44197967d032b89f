import AsyncHTTPClient
import FisoFlow
import FisoJSON
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import Prometheus
import Synchronization
import Testing

package let quietLogger: Logger = {
    var logger = Logger(label: "fiso-flow-tests")
    logger.logLevel =
        ProcessInfo.processInfo.environment["FISO_TEST_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) } ?? .critical
    return logger
}()

/// A temporary flow directory, removed when the test ends.
package final class TemporaryDirectory: Sendable {
    package let path: String

    package init() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("fiso-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        path = base.path
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }

    package func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    package func write(_ name: String, _ text: String) throws {
        try text.write(toFile: file(name), atomically: true, encoding: .utf8)
    }

    package func remove(_ name: String) throws {
        try FileManager.default.removeItem(atPath: file(name))
    }
}

/// A directory laid out the way the kubelet mounts a ConfigMap: the real files live in a
/// timestamped directory, `..data` links to it, and each visible name links into `..data`.
/// ``update(_:)`` swaps `..data` atomically, as the kubelet does.
package final class ConfigMapDirectory: Sendable {
    package let directory: TemporaryDirectory
    private let generation = NIOLockedValueBox(0)

    package init(_ files: [String: String]) throws {
        directory = try TemporaryDirectory()
        try update(files)
    }

    package var path: String { directory.path }

    package func update(_ files: [String: String]) throws {
        try update(binary: files.mapValues { Data($0.utf8) })
    }

    package func update(binary files: [String: Data]) throws {
        let manager = FileManager.default
        let number = generation.withLockedValue { value in
            value += 1
            return value
        }
        let versionName = "..2026_01_01_00_00_\(String(format: "%02d", number)).\(number)"
        let versionPath = directory.file(versionName)
        try manager.createDirectory(atPath: versionPath, withIntermediateDirectories: false)
        for (name, contents) in files {
            try contents.write(to: URL(fileURLWithPath: (versionPath as NSString).appendingPathComponent(name)))
        }
        // Atomic swap: make a new link beside ..data and rename it over ..data.
        let temporaryLink = directory.file("..data_tmp")
        try? manager.removeItem(atPath: temporaryLink)
        try manager.createSymbolicLink(atPath: temporaryLink, withDestinationPath: versionName)
        guard rename(temporaryLink, directory.file("..data")) == 0 else {
            throw CocoaError(.fileWriteUnknown)
        }
        for name in files.keys where !manager.fileExists(atPath: directory.file(name)) {
            try manager.createSymbolicLink(atPath: directory.file(name), withDestinationPath: "..data/\(name)")
        }
    }
}

/// A running in-process server on a temporary flow directory, stopped after the body.
package struct RunningServer: Sendable {
    package let server: FisoFlowServer
    package let registry: PrometheusCollectorRegistry
    package let client: HTTPClient

    package var runtime: FlowRuntime { server.runtime }

    /// The port of a flow whose source is `listenAddr: 127.0.0.1:0`.
    package var ingressPort: Int { runtime.boundHTTPPort(for: ListenAddress(host: "127.0.0.1", port: 0)) ?? 0 }
    package var metricsPort: Int { server.metricsPort.port ?? 0 }

    package func post(_ path: String, _ body: String, headers: [(String, String)] = []) async throws -> (
        status: Int, body: String, headers: [(String, String)]
    ) {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(ingressPort)\(path)")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await client.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 16 << 20)
        return (Int(response.status.code), String(buffer: bytes), response.headers.map { ($0.name, $0.value) })
    }

    package func get(port: Int, _ path: String) async throws -> (status: Int, body: String) {
        let request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        let response = try await client.execute(request, timeout: .seconds(10))
        let bytes = try await response.body.collect(upTo: 16 << 20)
        return (Int(response.status.code), String(buffer: bytes))
    }

    /// The value of one sample of the Prometheus text, e.g. `fiso_flow_events_total{flow="a",status="success"}`.
    package func metric(_ sample: String) -> Double? {
        for line in registry.emitToString().split(separator: "\n") where line.hasPrefix(sample + " ") {
            return Double(line.dropFirst(sample.count + 1))
        }
        return nil
    }
}

/// Starts a server on `directory`, waits until it is ready, runs `body`, then shuts down and waits
/// for the drain.
package func withRunningServer<T: Sendable>(
    directory: String, reloadInterval: Duration = .milliseconds(100), shutdownTimeout: Duration = .seconds(10),
    standardOutput: StandardOutput = StandardOutput(), components: ComponentRegistry = .standard,
    waitForReady: Bool = true, readyTimeout: Duration = .seconds(15),
    _ body: @Sendable (RunningServer) async throws -> T
) async throws -> T {
    let registry = PrometheusCollectorRegistry()
    let configuration = RuntimeConfiguration(
        configDirectory: directory, kafkaConfigPath: "/nonexistent/kafka.yaml",
        metricsAddress: ListenAddress(host: "127.0.0.1", port: 0), shutdownTimeout: shutdownTimeout,
        reloadInterval: reloadInterval, registry: components
    )
    let server = FisoFlowServer(
        configuration: configuration, metricsRegistry: registry, logger: quietLogger, standardOutput: standardOutput)
    // Enough connections that concurrent test requests never queue for one (the default pool of 8
    // times out queued requests after 10 s on a loaded machine).
    var clientConfiguration = HTTPClient.Configuration()
    clientConfiguration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
    clientConfiguration.timeout.connect = .seconds(30)
    let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration)
    let running = RunningServer(server: server, registry: registry, client: client)
    do {
        let result = try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            if waitForReady {
                try await waitUntil("the server is ready", timeout: readyTimeout) {
                    server.runtime.status.isReady && server.metricsPort.port != nil
                }
            }
            let result = try await body(running)
            await server.shutdown()
            try await group.waitForAll()
            return result
        }
        try await client.shutdown()
        return result
    } catch {
        try? await client.shutdown()
        throw error
    }
}

package struct TimedOut: Error, CustomStringConvertible {
    package var what: String
    package var description: String { "timed out waiting until \(what)" }

    package init(what: String) { self.what = what }
}

/// Polls `condition` every 20 ms until it holds, failing after `timeout`.
package func waitUntil(
    _ what: String, timeout: Duration = .seconds(15), _ condition: @Sendable () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    throw TimedOut(what: what)
}

/// A flow with an HTTP source on 127.0.0.1 (free port) and an HTTP sink. `extra` is appended at
/// the top level (e.g. an `errorHandling` block).
package func httpFlow(
    name: String, path: String = "/in", sinkURL: String, sourceConfig: [(String, String)] = [],
    sinkConfig: [(String, String)] = [], extra: String = ""
) -> String {
    var lines = [
        "name: \(name)", "source:", "  type: http", "  config:", "    listenAddr: \"127.0.0.1:0\"", "    path: \(path)",
    ]
    lines += sourceConfig.map { "    \($0.0): \($0.1)" }
    lines += ["sink:", "  type: http", "  config:", "    url: \(sinkURL)"]
    lines += sinkConfig.map { "    \($0.0): \($0.1)" }
    return lines.joined(separator: "\n") + "\n" + extra
}
