import FisoWasm

/// Timing of many calls through ``WasmTransformer/transform(_:)``, the path the runtime uses:
/// what `fiso-flow wasm bench` and the engine benchmark print.
public struct WasmBenchmarkReport: Sendable {
    /// Calls timed (warm-up calls excluded).
    public var calls: Int
    /// Calls in flight at once.
    public var concurrency: Int
    /// Each call's latency as its caller saw it, sorted.
    public var latencies: [Duration]
    /// Wall-clock time for all timed calls.
    public var elapsed: Duration

    public init(calls: Int, concurrency: Int, latencies: [Duration], elapsed: Duration) {
        self.calls = calls
        self.concurrency = concurrency
        self.latencies = latencies
        self.elapsed = elapsed
    }

    public var medianMilliseconds: Double { Self.milliseconds(percentile(0.5)) }
    public var p99Milliseconds: Double { Self.milliseconds(percentile(0.99)) }
    public var callsPerSecond: Double {
        let seconds = Self.milliseconds(elapsed) / 1000
        return seconds > 0 ? Double(calls) / seconds : 0
    }

    /// The nearest-rank percentile (`fraction` in 0...1) of the latencies.
    public func percentile(_ fraction: Double) -> Duration {
        guard !latencies.isEmpty else { return .zero }
        let rank = Int((fraction * Double(latencies.count)).rounded(.up))
        return latencies[min(latencies.count - 1, max(0, rank - 1))]
    }

    /// `median_ms=<x> p99_ms=<y> calls_per_s=<z>`, the last line `fiso-flow wasm bench` prints.
    public var summaryLine: String {
        "median_ms=\(Self.format(medianMilliseconds, decimals: 3)) p99_ms=\(Self.format(p99Milliseconds, decimals: 3)) "
            + "calls_per_s=\(Self.format(callsPerSecond, decimals: 1))"
    }

    static func milliseconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) * 1e-15
    }

    /// Fixed-point formatting without Foundation.
    static func format(_ value: Double, decimals: Int) -> String {
        guard value.isFinite else { return "\(value)" }
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        let whole = Int(scaled / scale)
        var fraction = String(Int(scaled - Double(whole) * scale))
        fraction = String(repeating: "0", count: max(0, decimals - fraction.count)) + fraction
        return (value < 0 ? "-" : "") + "\(whole)" + (decimals > 0 ? ".\(fraction)" : "")
    }
}

public enum WasmCallBenchmark {
    /// Runs `warmup` untimed calls, then `calls` timed calls of `input`, `concurrency` at a time.
    ///
    /// - Throws: the first call's ``WasmError`` (a benchmark of a failing module is meaningless).
    public static func run(
        _ transformer: WasmTransformer,
        input: WasmTransformInput,
        calls: Int,
        concurrency: Int = 1,
        warmup: Int = 3
    ) async throws -> WasmBenchmarkReport {
        for _ in 0..<max(0, warmup) {
            _ = try await transformer.transform(input)
        }
        let clock = ContinuousClock()
        let calls = max(1, calls)
        let concurrency = max(1, min(concurrency, calls))
        let started = clock.now
        let latencies = try await withThrowingTaskGroup(of: [Duration].self) { group in
            for worker in 0..<concurrency {
                let share = calls / concurrency + (worker < calls % concurrency ? 1 : 0)
                group.addTask {
                    var latencies: [Duration] = []
                    latencies.reserveCapacity(share)
                    for _ in 0..<share {
                        let callStarted = clock.now
                        _ = try await transformer.transform(input)
                        latencies.append(clock.now - callStarted)
                    }
                    return latencies
                }
            }
            var all: [Duration] = []
            for try await part in group { all.append(contentsOf: part) }
            return all
        }
        return WasmBenchmarkReport(
            calls: calls,
            concurrency: concurrency,
            latencies: latencies.sorted(),
            elapsed: clock.now - started
        )
    }
}
