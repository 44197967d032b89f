import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import Synchronization

/// Closed-loop HTTP load: `concurrency` workers each send a POST, wait for the answer and send the
/// next, for a fixed time. Records the latency of every request that got a 2xx answer.
public struct HTTPLoadGenerator: Sendable {
    public var concurrency: Int
    public var body: [UInt8]
    public var client: HTTPClient

    public struct Result: Sendable {
        public var statistics: LatencyStatistics
        public var failures: Int
    }

    public init(concurrency: Int, body: [UInt8], client: HTTPClient) {
        self.concurrency = concurrency
        self.body = body
        self.client = client
    }

    /// Sends load to `url` for `duration` (after `warmup`, whose requests are not counted).
    public func run(url: String, warmup: Duration, duration: Duration) async -> Result {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: body))
        let client = client
        return await ClosedLoopLoad.run(concurrency: concurrency, warmup: warmup, duration: duration) {
            [request] in
            do {
                let response = try await client.execute(request, timeout: .seconds(30))
                _ = try await response.body.collect(upTo: 1 << 20)
                return (200..<300).contains(Int(response.status.code))
            } catch {
                return false
            }
        }
    }

    /// An HTTP client sized for `concurrency` connections to one host.
    public static func makeClient(concurrency: Int) -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(
            idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: concurrency)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }
}

/// Closed-loop load of any kind: `concurrency` workers each make a call, wait for its outcome and
/// make the next, for `warmup` (not counted) and then `duration`. Records the latency of every call
/// that succeeded within the measured window.
enum ClosedLoopLoad {
    static func run(
        concurrency: Int, warmup: Duration, duration: Duration, call: @escaping @Sendable () async -> Bool
    ) async -> HTTPLoadGenerator.Result {
        let warmupEnd = ContinuousClock.now + warmup
        let end = warmupEnd + duration
        let perWorker = await withTaskGroup(of: ([Int64], Int).self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var samples: [Int64] = []
                    samples.reserveCapacity(1 << 14)
                    var failures = 0
                    while true {
                        let start = ContinuousClock.now
                        if start >= end { break }
                        let succeeded = await call()
                        let finish = ContinuousClock.now
                        guard start >= warmupEnd, finish <= end else { continue }
                        if succeeded {
                            let (seconds, attoseconds) = (finish - start).components
                            samples.append(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
                        } else {
                            failures += 1
                        }
                    }
                    return (samples, failures)
                }
            }
            var all: [([Int64], Int)] = []
            for await result in group { all.append(result) }
            return all
        }
        return HTTPLoadGenerator.Result(
            statistics: LatencyStatistics(nanoseconds: perWorker.flatMap(\.0), elapsed: duration),
            failures: perWorker.map(\.1).reduce(0, +)
        )
    }
}
