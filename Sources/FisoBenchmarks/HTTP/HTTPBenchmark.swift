import ArgumentParser
import AsyncHTTPClient
import FisoFlow
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1

/// HTTP source → 6-field CEL transform → HTTP sink, against nginx `proxy_pass` to the same
/// upstream under `wrk` load when both are installed, or else against a bare proxy built from the
/// same libraries (Hummingbird in, AsyncHTTPClient out) under an in-process load generator.
struct HTTPBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http",
        abstract: "Throughput and latency of HTTP → CEL → HTTP against nginx proxy_pass (or a bare proxy).",
        discussion: """
            With nginx and wrk installed (scripts/bench-report.sh installs Debian's nginx-light and wrk): nginx \
            serves an upstream answering 200 and a proxy_pass to it (one worker per core, upstream keep-alive); \
            the fiso-flow runtime runs in this process with one HTTP → 6-field CEL → HTTP flow whose sink is \
            the same upstream; wrk (-t2, --concurrency connections, the same 1 KiB JSON body) loads the proxy and \
            the flow in turn. Without them: a Swift receiver, a bare Swift proxy and an in-process load \
            generator. Rounds alternate baseline and pipeline so machine noise hits both alike; the best round \
            of each is reported.
            """
    )

    @Option(help: "Measured seconds per round.") var duration: Double = 5
    @Option(help: "Warm-up seconds per round (not measured).") var warmup: Double = 1
    @Option(help: "Concurrent requests in flight.") var concurrency: Int = 32
    @Option(help: "Rounds of (baseline, pipeline).") var rounds: Int = 2
    @Option(help: "Event size in bytes.") var payloadBytes: Int = 1024
    @Option(
        help: """
            A WASM module the pipeline runs every event through (a wasm interceptor), e.g. \
            examples/modules/enrich-go/enrich.wasm; the baseline stays a bare proxy.
            """
    )
    var wasmModule: String?
    @Option(help: "The interceptor's engine: auto, wasmkit or wasmtime.") var wasmEngine = "auto"
    @Option(help: "The interceptor's mode: command or reactor.") var wasmMode = "command"
    @Option(help: "The baseline: auto (nginx when nginx and wrk are installed, else proxy), nginx or proxy.")
    var baseline = "auto"
    @Flag(help: "Leave out the 6-field CEL transform (a pure HTTP → HTTP flow).") var noTransform = false

    func run() async throws {
        switch baseline {
        case "nginx", "auto":
            if let nginx = NginxServers.binary, let wrk = WrkLoad.binary {
                return try await runAgainstNginx(nginx: nginx, wrk: wrk)
            }
            guard baseline == "auto" else {
                throw ValidationError("--baseline nginx needs nginx and wrk on PATH (apt-get install nginx-light wrk)")
            }
            print("nginx or wrk not installed: the baseline is the bare Swift proxy (see --help)")
        case "proxy": break
        default: throw ValidationError("--baseline must be auto, nginx or proxy")
        }
        let payload = Self.payload(bytes: payloadBytes)
        let receiver = CallbackResponder<BasicRequestContext> { request, _ in
            var request = request
            _ = try await request.collectBody(upTo: 1 << 22)
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            return Response(
                status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"ok":true}"#)))
        }
        let forwardingClient = HTTPLoadGenerator.makeClient(concurrency: 256)
        let loadClient = HTTPLoadGenerator.makeClient(concurrency: concurrency)
        do {
            try await measure(
                receiver: receiver, payload: payload, forwardingClient: forwardingClient, loadClient: loadClient)
        } catch {
            try? await forwardingClient.shutdown()
            try? await loadClient.shutdown()
            throw error
        }
        try await forwardingClient.shutdown()
        try await loadClient.shutdown()
    }

    private func measure(
        receiver: some HTTPResponder<BasicRequestContext>, payload: [UInt8], forwardingClient: HTTPClient,
        loadClient: HTTPClient
    ) async throws {
        try await withHTTPServer(receiver) { receiverPort in
            let receiverURL = "http://127.0.0.1:\(receiverPort)/events"
            let proxy = BareProxy(client: forwardingClient, target: receiverURL)
            try await withHTTPServer(proxy) { proxyPort in
                try await Self.withPipeline(sinkURL: receiverURL, extra: transformYAML + interceptorYAML) {
                    pipelinePort in
                    let generator = HTTPLoadGenerator(concurrency: concurrency, body: payload, client: loadClient)
                    var baseline: [HTTPLoadGenerator.Result] = []
                    var pipeline: [HTTPLoadGenerator.Result] = []
                    for round in 1...max(1, rounds) {
                        baseline.append(
                            await generator.run(
                                url: "http://127.0.0.1:\(proxyPort)/in", warmup: .seconds(warmup),
                                duration: .seconds(duration)
                            )
                        )
                        pipeline.append(
                            await generator.run(
                                url: "http://127.0.0.1:\(pipelinePort)/in", warmup: .seconds(warmup),
                                duration: .seconds(duration)
                            )
                        )
                        print(
                            "round \(round): baseline \(formatted(baseline.last!.statistics.throughput, decimals: 0)) req/s, "
                                + "pipeline \(formatted(pipeline.last!.statistics.throughput, decimals: 0)) req/s"
                        )
                    }
                    report(baseline: best(baseline), pipeline: best(pipeline))
                }
            }
        }
    }

    /// The headline: wrk against nginx proxy_pass and against the flow, the same upstream behind both.
    private func runAgainstNginx(nginx binary: String, wrk wrkBinary: String) async throws {
        let nginx = try await NginxServers.start(binary: binary)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "fiso-bench-wrk-\(UUID().uuidString)")
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let wrk = try WrkLoad(
                binary: wrkBinary, threads: 2, connections: concurrency, body: Self.payload(bytes: payloadBytes),
                directory: directory)
            let sinkURL = "http://127.0.0.1:\(nginx.upstreamPort)/events"
            try await Self.withPipeline(sinkURL: sinkURL, extra: transformYAML + interceptorYAML) { pipelinePort in
                let proxyURL = "http://127.0.0.1:\(nginx.proxyPort)/in"
                let pipelineURL = "http://127.0.0.1:\(pipelinePort)/in"
                var baseline: [WrkLoad.Result] = []
                var pipeline: [WrkLoad.Result] = []
                for round in 1...max(1, rounds) {
                    if warmup > 0 { _ = try await wrk.run(url: proxyURL, duration: warmup) }
                    baseline.append(try await wrk.run(url: proxyURL, duration: duration))
                    if warmup > 0 { _ = try await wrk.run(url: pipelineURL, duration: warmup) }
                    pipeline.append(try await wrk.run(url: pipelineURL, duration: duration))
                    print(
                        "round \(round): nginx \(formatted(baseline.last!.requestsPerSecond, decimals: 0)) req/s, "
                            + "pipeline \(formatted(pipeline.last!.requestsPerSecond, decimals: 0)) req/s")
                }
                reportAgainstNginx(
                    baseline: baseline.max { $0.requestsPerSecond < $1.requestsPerSecond }!,
                    pipeline: pipeline.max { $0.requestsPerSecond < $1.requestsPerSecond }!)
            }
        } catch {
            await nginx.stop()
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
        await nginx.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    private func reportAgainstNginx(baseline: WrkLoad.Result, pipeline: WrkLoad.Result) {
        let ratio = pipeline.requestsPerSecond / max(baseline.requestsPerSecond, 1)
        let p99Ratio = pipeline.p99Milliseconds / max(baseline.p99Milliseconds, 0.001)
        let goal = wasmModule == nil ? 0.40 : 0.30
        print("")
        print(
            "HTTP → \(noTransform ? "" : "6-field CEL → ")HTTP, \(payloadBytes)-byte events, wrk -t2 -c\(concurrency), "
                + "\(formatted(duration, decimals: 0)) s per round")
        if let wasmModule {
            print("pipeline runs every event through \(wasmModule) (engine \(wasmEngine), mode \(wasmMode))")
        }
        print("                        req/s     p50 ms    p99 ms   failures")
        for (name, result) in [("nginx proxy_pass     ", baseline), ("fiso-flow pipeline   ", pipeline)] {
            print(
                "\(name) \(pad(formatted(result.requestsPerSecond, decimals: 0), 9)) "
                    + "\(pad(formatted(result.p50Milliseconds, decimals: 3), 10)) "
                    + "\(pad(formatted(result.p99Milliseconds, decimals: 3), 9)) \(pad("\(result.failures)", 10))")
        }
        print(
            "throughput ratio (pipeline / nginx): \(formatted(ratio, decimals: 3))  (goal ≥ \(formatted(goal, decimals: 2)))"
        )
        print("p99 ratio (pipeline / nginx): \(formatted(p99Ratio, decimals: 2))  (goal ≤ 2.00)")
        print(
            "baseline_rps=\(formatted(baseline.requestsPerSecond, decimals: 0)) "
                + "pipeline_rps=\(formatted(pipeline.requestsPerSecond, decimals: 0)) ratio=\(formatted(ratio, decimals: 3)) "
                + "goal=\(formatted(goal, decimals: 2)) p99_ratio=\(formatted(p99Ratio, decimals: 2))")
    }

    private func best(_ results: [HTTPLoadGenerator.Result]) -> HTTPLoadGenerator.Result {
        results.max { $0.statistics.throughput < $1.statistics.throughput }!
    }

    private func report(baseline: HTTPLoadGenerator.Result, pipeline: HTTPLoadGenerator.Result) {
        let ratio = pipeline.statistics.throughput / max(baseline.statistics.throughput, 1)
        let overhead = pipeline.statistics.p99.inMilliseconds - baseline.statistics.p99.inMilliseconds
        // The goals are the runtime's own overhead; a module's cost is on top of them.
        let goals = wasmModule == nil
        print("")
        print(
            "HTTP → HTTP, \(payloadBytes)-byte events, concurrency \(concurrency), \(formatted(duration, decimals: 0)) s per round"
        )
        if let wasmModule {
            print("pipeline runs every event through \(wasmModule) (engine \(wasmEngine), mode \(wasmMode))")
        }
        print("                      req/s     p50 ms    p99 ms   failures")
        for (name, result) in [("baseline (bare proxy)", baseline), ("fiso-flow pipeline   ", pipeline)] {
            let stats = result.statistics
            print(
                "\(name) \(pad(formatted(stats.throughput, decimals: 0), 9)) \(pad(formatted(stats.median.inMilliseconds, decimals: 3), 10)) "
                    + "\(pad(formatted(stats.p99.inMilliseconds, decimals: 3), 9)) \(pad("\(result.failures)", 10))"
            )
        }
        print(
            "throughput ratio (pipeline / baseline): \(formatted(ratio, decimals: 3))\(goals ? "  (goal ≥ 0.70)" : "")")
        print("p99 overhead: \(formatted(overhead, decimals: 3)) ms\(goals ? "  (goal ≤ 1 ms)" : "")")
        print(
            "baseline_rps=\(formatted(baseline.statistics.throughput, decimals: 0)) pipeline_rps=\(formatted(pipeline.statistics.throughput, decimals: 0)) "
                + "ratio=\(formatted(ratio, decimals: 3)) p99_overhead_ms=\(formatted(overhead, decimals: 3))"
        )
    }

    private func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
    }

    /// A JSON object of about `bytes` bytes.
    static func payload(bytes: Int) -> [UInt8] {
        var text =
            #"{"order_id":"ord-000123","customer":{"id":"c-42","name":"Ada Lovelace","tier":"gold"},"amount":99.99,"items":["#
        var index = 0
        while text.utf8.count < bytes - 40 {
            text += (index == 0 ? "" : ",") + #"{"sku":"SKU-\#(index)","qty":\#(index % 5 + 1),"price":\#(index).5}"#
            index += 1
        }
        text += #"],"currency":"EUR"}"#
        return Array(text.utf8)
    }

    /// The flow's six-field `transform` (unless `--no-transform`): the HTTP headline's CEL work.
    private var transformYAML: String {
        guard !noTransform else { return "" }
        return """
            transform:
              fields:
                id: data.order_id
                customer: data.customer.id
                name: data.customer.name
                cents: data.amount * 100.0
                currency: data.currency
                items: size(data.items)

            """
    }

    /// The flow's `interceptors` entry for `--wasm-module`, or an empty string.
    private var interceptorYAML: String {
        guard let wasmModule else { return "" }
        let path = URL(fileURLWithPath: wasmModule).standardizedFileURL.path
        return
            #"interceptors: [{type: wasm, config: {module: "\#(path)", engine: \#(wasmEngine), mode: \#(wasmMode)}}]"#
    }

    /// Runs the fiso-flow runtime in this process with one HTTP → HTTP flow (`extra`: optional
    /// top-level `transform:` / `interceptors:` blocks).
    static func withPipeline(
        sinkURL: String, extra: String = "", _ body: @Sendable (Int) async throws -> Void
    ) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fiso-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let port = try freeTCPPort()
        try """
        name: bench
        source: {type: http, config: {listenAddr: "127.0.0.1:\(port)", path: /in, maxInFlight: 100000}}
        sink: {type: http, config: {url: "\(sinkURL)"}}
        \(extra)
        """.write(to: directory.appendingPathComponent("bench.yaml"), atomically: true, encoding: .utf8)
        try await withRuntime(directory: directory.path) { try await body(port) }
    }
}

/// The baseline: receive a POST, forward its body to the target with the same client library,
/// relay the answer. No parsing, no envelope, no metrics.
struct BareProxy: HTTPResponder {
    typealias Context = BasicRequestContext
    let client: HTTPClient
    let target: String

    func respond(to request: Request, context: BasicRequestContext) async throws -> Response {
        var request = request
        let body = try await request.collectBody(upTo: 1 << 20)
        var outbound = HTTPClientRequest(url: target)
        outbound.method = .POST
        outbound.headers.add(name: "Content-Type", value: "application/json")
        outbound.body = .bytes(body)
        let response = try await client.execute(outbound, timeout: .seconds(10))
        let answer = try await response.body.collect(upTo: 1 << 20)
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(
            status: HTTPResponse.Status(code: Int(response.status.code)), headers: headers,
            body: ResponseBody(byteBuffer: answer))
    }
}
