import ArgumentParser
import AsyncHTTPClient
import FisoFlow
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1

/// HTTP source → pipeline (no transform) → HTTP sink, against a bare proxy built from the same
/// libraries (Hummingbird in, AsyncHTTPClient out) as the baseline, in one run.
struct HTTPBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http",
        abstract: "Throughput and latency of HTTP → pipeline → HTTP against a bare proxy baseline.",
        discussion: """
            Everything runs on 127.0.0.1 in this process: a receiver answering 200, the baseline proxy, the \
            fiso-flow runtime with one HTTP → HTTP flow, and a closed-loop load generator. Rounds alternate \
            baseline and pipeline so machine noise hits both alike; the best round of each is reported.
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

    func run() async throws {
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
                try await Self.withPipeline(sinkURL: receiverURL, interceptor: interceptorYAML) { pipelinePort in
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

    /// The flow's `interceptors` entry for `--wasm-module`, or an empty string.
    private var interceptorYAML: String {
        guard let wasmModule else { return "" }
        let path = URL(fileURLWithPath: wasmModule).standardizedFileURL.path
        return
            #"interceptors: [{type: wasm, config: {module: "\#(path)", engine: \#(wasmEngine), mode: \#(wasmMode)}}]"#
    }

    /// Runs the fiso-flow runtime in this process with one HTTP → HTTP flow (`interceptor`: an
    /// optional `interceptors:` line).
    static func withPipeline(
        sinkURL: String, interceptor: String = "", _ body: @Sendable (Int) async throws -> Void
    ) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fiso-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let port = try freeTCPPort()
        try """
        name: bench
        source: {type: http, config: {listenAddr: "127.0.0.1:\(port)", path: /in, maxInFlight: 100000}}
        sink: {type: http, config: {url: "\(sinkURL)"}}
        \(interceptor)
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
