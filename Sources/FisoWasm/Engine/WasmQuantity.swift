/// Parsing and printing of the quantities WASM configuration uses: Go-style durations (`"5s"`,
/// `"200ms"`, `"1m30s"`) and Kubernetes-style byte sizes (`"128Mi"`, `"64M"`, `"1048576"`).
public enum WasmQuantity {
    /// A Go-style duration: a sequence of decimal numbers, each with a unit (`ns`, `us`, `µs`,
    /// `ms`, `s`, `m`, `h`), e.g. `"300ms"`, `"1.5s"`, `"1m30s"`. Returns `nil` when malformed or
    /// negative.
    public static func parseDuration(_ text: String) -> Duration? {
        var rest = trimmed(text)
        guard !rest.isEmpty else { return nil }
        if rest == "0" { return .zero }
        var totalNanoseconds = 0.0
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            let unit = rest.prefix { !($0.isNumber || $0 == ".") }
            rest = rest.dropFirst(unit.count)
            let scale: Double
            switch unit {
            case "ns": scale = 1
            case "us", "µs", "μs": scale = 1e3
            case "ms": scale = 1e6
            case "s": scale = 1e9
            case "m": scale = 60e9
            case "h": scale = 3600e9
            default: return nil
            }
            totalNanoseconds += value * scale
        }
        guard totalNanoseconds.isFinite, totalNanoseconds < 9.2e18 else { return nil }
        return .nanoseconds(Int64(totalNanoseconds.rounded()))
    }

    /// A byte size: a plain number of bytes, or a number with a Kubernetes suffix — binary `Ki`,
    /// `Mi`, `Gi`, `Ti` or decimal `k`, `M`, `G`, `T`. Returns `nil` when malformed or negative.
    public static func parseByteSize(_ text: String) -> Int? {
        let trimmed = trimmed(text)
        let number = trimmed.prefix { $0.isNumber || $0 == "." }
        guard !number.isEmpty, let value = Double(number) else { return nil }
        let multiplier: Double
        switch trimmed.dropFirst(number.count) {
        case "": multiplier = 1
        case "Ki": multiplier = 1024
        case "Mi": multiplier = 1024 * 1024
        case "Gi": multiplier = 1024 * 1024 * 1024
        case "Ti": multiplier = 1024 * 1024 * 1024 * 1024
        case "k", "K": multiplier = 1e3
        case "M": multiplier = 1e6
        case "G": multiplier = 1e9
        case "T": multiplier = 1e12
        default: return nil
        }
        let bytes = (value * multiplier).rounded()
        guard bytes.isFinite, bytes < 9.2e18 else { return nil }
        return Int(bytes)
    }

    /// Prints a duration the way Go does: `"200ms"`, `"5s"`, `"1.5s"`, `"1m30s"`.
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

    /// Prints a byte count with the largest exact binary suffix: `"128Mi"`, `"1536Ki"`, `"1000"`.
    public static func formatBytes(_ bytes: Int) -> String {
        for (suffix, unit) in [("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)]
        where bytes != 0 && bytes % unit == 0 {
            return "\(bytes / unit)\(suffix)"
        }
        return "\(bytes)"
    }

    /// `value / unit` with the fraction printed without trailing zeros, as Go does.
    private static func decimal(_ value: Int64, unit: Int64) -> String {
        let whole = value / unit
        var fraction = value % unit
        guard fraction != 0 else { return "\(whole)" }
        var digits = String(fraction)
        let width = String(unit).count - 1
        digits = String(repeating: "0", count: width - digits.count) + digits
        while digits.hasSuffix("0") {
            digits.removeLast()
            fraction /= 10
        }
        return "\(whole).\(digits)"
    }

    private static func trimmed(_ text: String) -> Substring {
        var result = Substring(text)
        while result.first == " " || result.first == "\t" { result.removeFirst() }
        while result.last == " " || result.last == "\t" { result.removeLast() }
        return result
    }
}
