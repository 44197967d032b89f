import FisoProcessTesting
import Foundation

/// Two nginx servers in one process for the HTTP baseline: an upstream that answers every request
/// with `200 {"ok":true}`, and a `proxy_pass` to it with upstream keep-alive — what a user would
/// put in front of a service instead of fiso-flow, at nginx's best settings for this machine (one
/// worker per core, no access log).
struct NginxServers: Sendable {
    let upstreamPort: Int
    let proxyPort: Int
    private let process: TiedChildProcess
    private let directory: URL

    /// nginx from `PATH` (or /usr/sbin); nil when it is not installed.
    static var binary: String? { LocalMachine.onPath("nginx") }

    static func start(binary: String) async throws -> NginxServers {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "fiso-bench-nginx-\(UUID().uuidString)")
        try FileManager.default.createDirectory(
            at: directory.appendingPathComponent("logs"), withIntermediateDirectories: true)
        let upstreamPort = try LocalMachine.freePort()
        let proxyPort = try LocalMachine.freePort()
        let configuration = """
            worker_processes auto;
            pid \(directory.path)/nginx.pid;
            error_log \(directory.path)/logs/error.log error;
            events { worker_connections 4096; multi_accept on; }
            http {
                access_log off;
                client_body_temp_path \(directory.path)/body;
                proxy_temp_path \(directory.path)/proxy;
                keepalive_requests 1000000;
                upstream receiver { server 127.0.0.1:\(upstreamPort); keepalive 256; }
                server {
                    listen 127.0.0.1:\(upstreamPort) reuseport;
                    location / {
                        default_type application/json;
                        return 200 '{"ok":true}';
                    }
                }
                server {
                    listen 127.0.0.1:\(proxyPort) reuseport;
                    client_body_buffer_size 64k;
                    location / {
                        proxy_pass http://receiver/events;
                        proxy_http_version 1.1;
                        proxy_set_header Connection "";
                    }
                }
            }
            """
        let file = directory.appendingPathComponent("nginx.conf")
        try configuration.write(to: file, atomically: true, encoding: .utf8)
        let process = try TiedChildProcess.start(
            command: #""$0" -p "$1" -c "$2" -g "daemon off;""#, arguments: [binary, directory.path, file.path])
        let deadline = ContinuousClock.now + .seconds(10)
        while !(LocalMachine.accepts(port: upstreamPort) && LocalMachine.accepts(port: proxyPort)) {
            guard ContinuousClock.now < deadline, !process.hasExited else {
                await process.stop()
                let log =
                    (try? String(contentsOf: directory.appendingPathComponent("logs/error.log"), encoding: .utf8)) ?? ""
                throw BenchmarkSetupError("nginx did not start: \(log)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        return NginxServers(upstreamPort: upstreamPort, proxyPort: proxyPort, process: process, directory: directory)
    }

    func stop() async {
        await process.stop()
        try? FileManager.default.removeItem(at: directory)
    }
}

/// Closed-loop HTTP load from `wrk` (a separate C process, so the load generator does not share
/// this process's threads with what it measures): `connections` keep-alive connections POSTing
/// one JSON body for a fixed time.
struct WrkLoad: Sendable {
    struct Result: Sendable {
        var requestsPerSecond: Double
        var p50Milliseconds: Double
        var p99Milliseconds: Double
        /// Non-2xx/3xx answers plus socket errors.
        var failures: Int
    }

    let binary: String
    let threads: Int
    let connections: Int
    let scriptFile: String

    /// wrk from `PATH`; nil when it is not installed.
    static var binary: String? { LocalMachine.onPath("wrk") }

    init(binary: String, threads: Int, connections: Int, body: [UInt8], directory: URL) throws {
        self.binary = binary
        self.threads = threads
        self.connections = connections
        let bodyFile = directory.appendingPathComponent("body.json")
        try Data(body).write(to: bodyFile)
        let script = directory.appendingPathComponent("post.lua")
        try """
        wrk.method = "POST"
        wrk.headers["Content-Type"] = "application/json"
        local file = io.open("\(bodyFile.path)", "rb")
        wrk.body = file:read("*a")
        file:close()
        """.write(to: script, atomically: true, encoding: .utf8)
        scriptFile = script.path
    }

    /// Runs wrk to the end without holding a thread of the concurrency pool (which the measured
    /// pipeline in this process needs).
    func run(url: String, duration: Double) async throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = [
            "-t\(threads)", "-c\(connections)", "-d\(max(1, Int(duration.rounded())))s", "--latency", "-s", scriptFile,
            url,
        ]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        let exited = AsyncStream.makeStream(of: Void.self)
        process.terminationHandler = { _ in exited.continuation.finish() }
        try process.run()
        for await _ in exited.stream {}
        // wrk prints a few hundred bytes, well within the pipe's buffer.
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0, let rate = Self.number(after: "Requests/sec:", in: text) else {
            throw BenchmarkSetupError("wrk failed (status \(process.terminationStatus)): \(text)")
        }
        var failures = Int(Self.number(after: "Non-2xx or 3xx responses:", in: text) ?? 0)
        if let line = text.split(separator: "\n").first(where: { $0.contains("Socket errors:") }) {
            failures += line.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }.reduce(0, +)
        }
        return Result(
            requestsPerSecond: rate, p50Milliseconds: Self.latency("50%", in: text) ?? 0,
            p99Milliseconds: Self.latency("99%", in: text) ?? 0, failures: failures)
    }

    static func number(after label: String, in text: String) -> Double? {
        guard let range = text.range(of: label) else { return nil }
        let rest = text[range.upperBound...].drop { $0 == " " }
        return Double(rest.prefix { $0.isNumber || $0 == "." })
    }

    /// A line of wrk's latency distribution (`     99%    5.10ms`) in milliseconds.
    static func latency(_ percentile: String, in text: String) -> Double? {
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard parts.count == 2, parts[0] == percentile else { continue }
            let value = parts[1]
            let number = Double(value.prefix { $0.isNumber || $0 == "." }) ?? 0
            if value.hasSuffix("us") { return number / 1000 }
            if value.hasSuffix("ms") { return number }
            if value.hasSuffix("s") { return number * 1000 }
        }
        return nil
    }
}

struct BenchmarkSetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
