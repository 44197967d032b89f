/// Latency samples and the figures benchmarks report from them.
public struct LatencyStatistics: Sendable {
    /// Samples in nanoseconds, sorted.
    public let sortedNanoseconds: [Int64]
    /// Wall time the samples were collected over.
    public let elapsed: Duration

    public init(nanoseconds: [Int64], elapsed: Duration) {
        sortedNanoseconds = nanoseconds.sorted()
        self.elapsed = elapsed
    }

    public var count: Int { sortedNanoseconds.count }

    /// The value below which `fraction` of the samples fall (nearest-rank).
    public func percentile(_ fraction: Double) -> Duration {
        guard !sortedNanoseconds.isEmpty else { return .zero }
        let rank = Int((fraction * Double(sortedNanoseconds.count)).rounded(.up)) - 1
        return .nanoseconds(sortedNanoseconds[min(max(rank, 0), sortedNanoseconds.count - 1)])
    }

    public var median: Duration { percentile(0.5) }
    public var p99: Duration { percentile(0.99) }

    /// Samples per second of wall time.
    public var throughput: Double {
        let seconds = elapsed.inSeconds
        return seconds > 0 ? Double(count) / seconds : 0
    }
}

extension Duration {
    public var inSeconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    public var inMilliseconds: Double { inSeconds * 1000 }
    public var inMicroseconds: Double { inSeconds * 1_000_000 }
}

/// Formats a number with a fixed count of decimals, for tables.
public func formatted(_ value: Double, decimals: Int = 2) -> String {
    var factor = 1.0
    for _ in 0..<decimals { factor *= 10 }
    let rounded = (value * factor).rounded() / factor
    if decimals == 0 { return "\(Int(rounded))" }
    var text = "\(rounded)"
    if let dot = text.firstIndex(of: ".") {
        let fraction = text[text.index(after: dot)...]
        if fraction.count < decimals { text += String(repeating: "0", count: decimals - fraction.count) }
    } else if decimals > 0 {
        text += "." + String(repeating: "0", count: decimals)
    }
    return text
}
