/// Durations written the way Go's `time.ParseDuration` reads them (`300ms`, `1.5h`, `2h45m`), so
/// flow files written for the Go original keep working, and printed the way Go prints them.
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

    /// A sequence of decimal numbers, each with a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`), with
    /// an optional sign; `0` alone needs no unit.
    public static func parse(_ text: String) throws(ParseError) -> Duration {
        var rest = Substring(text).trimmingSpaces()
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
            guard let unit = unitNanoseconds.first(where: { unitText == $0.suffix }) else {
                throw ParseError(text: text)
            }
            rest = rest.dropFirst(unitText.count)
            totalNanoseconds += value * unit.nanoseconds
        }
        guard totalNanoseconds.isFinite, totalNanoseconds < 9.2e18 else { throw ParseError(text: text) }
        return .nanoseconds(Int64(sign * totalNanoseconds))
    }

    /// The text Go's `Duration.String` gives: `200ms`, `1.5s`, `1m30s`, `2m0s`, `1h0m0s`, `1.5µs`.
    public static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let nanoseconds = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        if nanoseconds == 0 { return "0s" }
        if nanoseconds < 0 { return "-" + format(.nanoseconds(-nanoseconds)) }
        if nanoseconds < 1000 { return "\(nanoseconds)ns" }
        if nanoseconds < 1_000_000 { return decimal(nanoseconds, unit: 1000) + "µs" }
        if nanoseconds < 1_000_000_000 { return decimal(nanoseconds, unit: 1_000_000) + "ms" }
        var text = ""
        var remaining = nanoseconds
        let hours = remaining / 3_600_000_000_000
        remaining %= 3_600_000_000_000
        let minutes = remaining / 60_000_000_000
        remaining %= 60_000_000_000
        if hours > 0 { text += "\(hours)h" }
        if hours > 0 || minutes > 0 { text += "\(minutes)m" }
        return text + decimal(remaining, unit: 1_000_000_000) + "s"
    }

    /// `value / unit` with the fraction printed without trailing zeros, as Go does.
    private static func decimal(_ value: Int64, unit: Int64) -> String {
        let whole = value / unit
        let fraction = value % unit
        guard fraction != 0 else { return "\(whole)" }
        var digits = String(fraction)
        digits = String(repeating: "0", count: String(unit).count - 1 - digits.count) + digits
        while digits.hasSuffix("0") { digits.removeLast() }
        return "\(whole).\(digits)"
    }
}

/// Byte sizes as plain numbers or Kubernetes quantities: `1048576`, `512Ki`, `128Mi`, `1Gi`,
/// `10M` (decimal suffixes k/K, M, G, T are powers of 1000).
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
        let trimmed = Substring(text).trimmingSpaces()
        let digits = trimmed.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
        let suffix = trimmed.dropFirst(digits.count)
        guard !digits.isEmpty, let value = Double(digits),
            let multiplier = suffixes.first(where: { $0.suffix == suffix })?.multiplier
        else { throw ParseError(text: text) }
        let bytes = (value * Double(multiplier)).rounded()
        guard bytes.isFinite, bytes < 9e18 else { throw ParseError(text: text) }
        return Int(bytes)
    }

    /// A readable size for messages: `1 MiB`, `512 KiB`, `1.5 MiB`, `300 B`.
    public static func format(_ bytes: Int) -> String {
        let units: [(String, Double)] = [("GiB", Double(1 << 30)), ("MiB", Double(1 << 20)), ("KiB", Double(1 << 10))]
        for (name, size) in units where Double(bytes) >= size {
            let rounded = (Double(bytes) / size * 10).rounded() / 10
            return rounded == rounded.rounded() ? "\(Int(rounded)) \(name)" : "\(rounded) \(name)"
        }
        return "\(bytes) B"
    }

    /// The Kubernetes quantity with the largest exact binary suffix: `128Mi`, `1536Ki`, `1000`; what
    /// a setting such as `memoryLimit` would be written as.
    public static func formatQuantity(_ bytes: Int) -> String {
        for (suffix, unit) in [("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)]
        where bytes != 0 && bytes % unit == 0 {
            return "\(bytes / unit)\(suffix)"
        }
        return "\(bytes)"
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> Substring {
        var view = self
        while let first = view.first, first.isWhitespace { view = view.dropFirst() }
        while let last = view.last, last.isWhitespace { view = view.dropLast() }
        return view
    }
}
