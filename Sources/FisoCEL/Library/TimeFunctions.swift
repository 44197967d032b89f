import Foundation
import NIOConcurrencyHelpers

/// Timestamp and duration accessors: `getFullYear`, `getMonth`, `getDate`, `getDayOfMonth`,
/// `getDayOfWeek`, `getDayOfYear`, `getHours`, `getMinutes`, `getSeconds`, `getMilliseconds`,
/// each in UTC or in a time zone given as an IANA name (`Europe/Paris`), `UTC`, or a fixed offset
/// (`+05:30`, `-02:00`).
enum TimeFunctions {
    private enum Field {
        case fullYear, month, date, dayOfMonth, dayOfWeek, dayOfYear, hours, minutes, seconds, milliseconds
    }

    static func register(into registry: inout FunctionRegistry) {
        let fields: [(String, Field)] = [
            ("getFullYear", .fullYear), ("getMonth", .month), ("getDate", .date), ("getDayOfMonth", .dayOfMonth),
            ("getDayOfWeek", .dayOfWeek), ("getDayOfYear", .dayOfYear), ("getHours", .hours),
            ("getMinutes", .minutes), ("getSeconds", .seconds), ("getMilliseconds", .milliseconds),
        ]
        for (name, field) in fields {
            registry.member(
                name, arguments: 0,
                .unary { value, _ throws(CELEvaluationError) in
                    try accessor(name, field, value, zone: nil)
                })
            registry.member(
                name, arguments: 1,
                .binary { value, zone, _ throws(CELEvaluationError) in
                    guard case .string(let zoneName) = zone else { throw .noOverload(name, value, zone) }
                    return try accessor(name, field, value, zone: zoneName)
                })
        }
    }

    private static func accessor(_ name: String, _ field: Field, _ value: CELValue, zone: String?)
        throws(CELEvaluationError) -> CELValue
    {
        switch value {
        case .timestamp(let time):
            var seconds = time.seconds
            if let zone { seconds += try offset(of: zone, at: time.seconds) }
            let civil = CivilTime(secondsSinceEpoch: seconds)
            let result: Int
            switch field {
            case .fullYear: result = civil.year
            case .month: result = civil.month - 1
            case .date: result = civil.day
            case .dayOfMonth: result = civil.day - 1
            case .dayOfWeek: result = civil.dayOfWeek
            case .dayOfYear: result = civil.dayOfYear
            case .hours: result = civil.hour
            case .minutes: result = civil.minute
            case .seconds: result = civil.second
            case .milliseconds: result = Int(time.nanos / 1_000_000)
            }
            return .int(Int64(result))
        case .duration(let span) where zone == nil:
            switch field {
            case .hours: return .int(span.nanoseconds / 3_600_000_000_000)
            case .minutes: return .int(span.nanoseconds / 60_000_000_000)
            case .seconds: return .int(span.nanoseconds / 1_000_000_000)
            case .milliseconds: return .int(span.nanoseconds % 1_000_000_000 / 1_000_000)
            default: throw .noOverload(name, value)
            }
        default:
            throw .noOverload(name, arguments: [value] + (zone.map { [.string($0)] } ?? []))
        }
    }

    private static let zoneCache = NIOLockedValueBox<[String: TimeZone]>([:])

    /// Seconds to add to UTC to get local time in `zone` at the given instant.
    static func offset(of zone: String, at seconds: Int64) throws(CELEvaluationError) -> Int64 {
        if zone == "UTC" || zone == "Z" { return 0 }
        if let fixed = fixedOffset(zone) { return fixed }
        let cached = zoneCache.withLockedValue { $0[zone] }
        let timeZone: TimeZone
        if let cached {
            timeZone = cached
        } else {
            guard let resolved = TimeZone(identifier: zone) else {
                throw .invalid("unknown time zone '\(zone)'")
            }
            zoneCache.withLockedValue { cache in
                if cache.count > 1000 { cache.removeAll() }
                cache[zone] = resolved
            }
            timeZone = resolved
        }
        return Int64(timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(seconds))))
    }

    /// `+HH:MM` / `-HH:MM` / `HH:MM` (also `+HH` and `+HHMM`).
    private static func fixedOffset(_ zone: String) -> Int64? {
        var bytes = Array(zone.utf8)
        guard let first = bytes.first else { return nil }
        var sign = UInt8(ascii: "+")
        if first == UInt8(ascii: "+") || first == UInt8(ascii: "-") {
            sign = first
            bytes.removeFirst()
        } else if !zone.contains(":") {
            return nil
        }
        let digits = bytes.filter { $0 != UInt8(ascii: ":") }
        guard digits.count == 2 || digits.count == 4, digits.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        let values = digits.map { Int64($0 - 48) }
        let hours = values[0] * 10 + values[1]
        let minutes = digits.count == 4 ? values[2] * 10 + values[3] : 0
        guard hours < 24, minutes < 60 else { return nil }
        let total = hours * 3600 + minutes * 60
        return sign == UInt8(ascii: "-") ? -total : total
    }
}
