/// Durations written the way Go's `time.ParseDuration` reads them (`300ms`, `1.5h`, `2h45m`), so
/// flow files written for the Go original keep working.
public enum GoDuration {
    public struct ParseError: Error, CustomStringConvertible {
        public var text: String
        public var description: String {
            "invalid duration \"\(text)\": expected a number with a unit, e.g. \"250ms\", \"5s\", \"1m30s\" "
                + "(units: ns, us, ms, s, m, h)"
        }
    }

    private static let unitNanoseconds: [(suffix: String, nanoseconds: Double)] = [
        ("ns", 1), ("us", 1e3), ("µs", 1e3), ("μs", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9),
    ]

    public static func parse(_ text: String) throws(ParseError) -> Duration {
        var rest = Substring(text.trimmingSpaces())
        guard !rest.isEmpty else { throw ParseError(text: text) }
        var sign = 1.0
        if rest.first == "-" || rest.first == "+" {
            sign = rest.first == "-" ? -1 : 1
            rest = rest.dropFirst()
        }
        if rest == "0" { return .zero }
        var totalNanoseconds = 0.0
        while !rest.isEmpty {
            let number = rest.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
            guard !number.isEmpty, let value = Double(number) else { throw ParseError(text: text) }
            rest = rest.dropFirst(number.count)
            let unitText = rest.prefix { !($0.isASCII && ($0.isNumber || $0 == ".")) }
            // Longest suffix first so "ms" is not read as "m" followed by garbage.
            guard let unit = unitNanoseconds.filter({ unitText == $0.suffix }).first else {
                throw ParseError(text: text)
            }
            rest = rest.dropFirst(unitText.count)
            totalNanoseconds += value * unit.nanoseconds
        }
        guard totalNanoseconds.isFinite, totalNanoseconds < 9.2e18 else { throw ParseError(text: text) }
        return .nanoseconds(Int64(sign * totalNanoseconds))
    }

    /// The shortest Go-style text for a duration (`1.5s`, `200ms`, `2m0s` becomes `2m`).
    public static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let nanoseconds = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        if nanoseconds == 0 { return "0s" }
        if nanoseconds % 3_600_000_000_000 == 0 { return "\(nanoseconds / 3_600_000_000_000)h" }
        if nanoseconds % 60_000_000_000 == 0 { return "\(nanoseconds / 60_000_000_000)m" }
        if nanoseconds % 1_000_000_000 == 0 { return "\(nanoseconds / 1_000_000_000)s" }
        if nanoseconds % 1_000_000 == 0 { return "\(nanoseconds / 1_000_000)ms" }
        if nanoseconds % 1_000 == 0 { return "\(nanoseconds / 1_000)us" }
        return "\(nanoseconds)ns"
    }
}

/// Byte sizes as plain numbers or Kubernetes quantities: `1048576`, `512Ki`, `128Mi`, `1Gi`,
/// `10M` (decimal suffixes k/K, M, G are powers of 1000).
public enum ByteSize {
    public struct ParseError: Error, CustomStringConvertible {
        public var text: String
        public var description: String {
            "invalid size \"\(text)\": expected bytes or a quantity such as \"512Ki\", \"128Mi\", \"1Gi\""
        }
    }

    private static let suffixes: [(suffix: String, multiplier: Int)] = [
        ("Ki", 1 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30), ("Ti", 1 << 40),
        ("k", 1000), ("K", 1000), ("M", 1_000_000), ("G", 1_000_000_000), ("T", 1_000_000_000_000),
        ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("B", 1), ("", 1),
    ]

    public static func parse(_ text: String) throws(ParseError) -> Int {
        let trimmed = text.trimmingSpaces()
        let digits = trimmed.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
        let suffix = trimmed.dropFirst(digits.count)
        guard !digits.isEmpty, let value = Double(digits),
            let multiplier = suffixes.first(where: { $0.suffix == suffix })?.multiplier
        else { throw ParseError(text: text) }
        let bytes = value * Double(multiplier)
        guard bytes.isFinite, bytes < 9e18 else { throw ParseError(text: text) }
        return Int(bytes)
    }

    /// A readable size: `1 MiB`, `512 KiB`, `1.5 MiB`, `300 B`.
    public static func format(_ bytes: Int) -> String {
        let units: [(String, Double)] = [("GiB", Double(1 << 30)), ("MiB", Double(1 << 20)), ("KiB", Double(1 << 10))]
        for (name, size) in units where Double(bytes) >= size {
            let value = Double(bytes) / size
            let rounded = (value * 10).rounded() / 10
            return rounded == rounded.rounded() ? "\(Int(rounded)) \(name)" : "\(rounded) \(name)"
        }
        return "\(bytes) B"
    }
}

extension String {
    func trimmingSpaces() -> String {
        var view = Substring(self)
        while let first = view.first, first.isWhitespace { view = view.dropFirst() }
        while let last = view.last, last.isWhitespace { view = view.dropLast() }
        return String(view)
    }
}
